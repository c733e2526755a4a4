"""End to end: HTTP/2 (h2c, Upgrade, ALPN), TLS and the exporter-toolkit web configuration, driven by the
real clients (curl, nghttp, h2load, openssl) against the real binary on loopback."""

import base64
import ctypes
import re
import signal
import socket
import ssl
import subprocess
import warnings

import pytest

from conftest import ROOT, scalar, wait_for
from test_serve import sample_value, stable

# nghttp, h2load and openssl come from scripts/install-deps: a missing one fails these tests, never skips them.


def bcrypt(password: str) -> str:
    """A `$2y$` bcrypt hash (cost 4) made by the system's libxcrypt, as htpasswd -B would."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    setting = lib.crypt_gensalt(b"$2y$", 4, None, 0)
    return lib.crypt(password.encode(), setting).decode()


def curl(*args, timeout=15):
    """Runs curl; returns (exit code, "<http_version> <code>", stderr)."""
    r = subprocess.run(
        ["curl", "-sS", "--max-time", str(timeout), "-o", "/dev/null", "-w", "%{http_version} %{http_code}", *args],
        capture_output=True, text=True,
    )
    return r.returncode, r.stdout, r.stderr


def curl_body(*args) -> bytes:
    r = subprocess.run(["curl", "-sS", "--max-time", "15", *args], capture_output=True, check=True)
    return r.stdout


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue(cwd, name, cn, ca="ca", san=None):
    """A P-256 key and a certificate for `cn` signed by `ca`."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=cwd)
    extra = []
    if san:
        (cwd / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        extra = ["-extfile", f"{name}.ext"]
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", *extra, cwd=cwd)


@pytest.fixture
def pki(tmp_path):
    """A test CA, a server certificate for 127.0.0.1/localhost and a client certificate, made at test time."""
    d = tmp_path / "pki"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
            "-out", "ca.crt", "-days", "2", "-subj", "/CN=mlops-test-ca", cwd=d)
    issue(d, "server", "localhost", san="DNS:localhost,IP:127.0.0.1")
    issue(d, "client", "scraper")
    return d


def web_config(path, pki=None, users=None, extra=""):
    text = ""
    if pki is not None:
        text += f"tls_server_config:\n  cert_file: {pki}/server.crt\n  key_file: {pki}/server.key\n"
    if users:
        text += "basic_auth_users:\n" + "".join(f"  {u}: '{h}'\n" for u, h in users.items())
    path.write_text(text + extra)
    return path


def https(e):
    return f"https://127.0.0.1:{e.port}"


# MARK: - h2c


def test_h2c_prior_knowledge_upgrade_and_nghttp(start_exporter):
    e = start_exporter("--no-process-metrics")
    assert curl("--http2-prior-knowledge", f"{e.base}/metrics")[1] == "2 200"
    code, status, err = curl("-v", "--http2", f"{e.base}/metrics")
    assert status == "2 200" and "101 Switching Protocols" in err, err
    trace = subprocess.run(["nghttp", "-nv", f"{e.base}/metrics"], capture_output=True, text=True, timeout=15)
    assert trace.returncode == 0 and ":status: 200" in trace.stdout and "recv DATA frame" in trace.stdout
    upgrade = subprocess.run(["nghttp", "-nuv", f"{e.base}/-/healthy"], capture_output=True, text=True, timeout=15)
    assert upgrade.returncode == 0 and "HTTP Upgrade success" in upgrade.stdout
    body = e.get("/metrics")[2].decode()
    # Three /metrics requests over h2 (prior knowledge, the upgraded one, nghttp); this HTTP/1.1 scrape is counted
    # after its own body is rendered, so no HTTP/1.1 series yet.
    assert sample_value(body, "mlops_exporter_http_requests_total",
                        {"handler": "metrics", "code": "200", "protocol": "h2"}) == 3
    assert sample_value(body, "mlops_exporter_http_requests_total",
                        {"handler": "metrics", "code": "200", "protocol": "http/1.1"}) is None


def test_h2_body_equals_http1_body(start_exporter):
    e = start_exporter("--no-process-metrics", "--bench.synthetic-series", "2000")
    h2 = curl_body("--http2-prior-knowledge", f"{e.base}/metrics")
    h1 = curl_body("--http1.1", f"{e.base}/metrics")
    assert len(h2) > 100_000
    assert stable(h2) == stable(h1)
    gz2 = curl_body("--http2-prior-knowledge", "--compressed", f"{e.base}/metrics")
    assert stable(gz2) == stable(h1)


def test_h2load_20000_requests_without_failures_or_fd_leak(start_exporter):
    e = start_exporter("--no-process-metrics", "--web.max-requests", "0")
    e.get("/metrics")
    fds = e.open_sockets()
    r = subprocess.run(["h2load", "-n", "20000", "-c", "10", "-m", "10", f"{e.base}/metrics"],
                       capture_output=True, text=True, timeout=300)
    assert "requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed, 0 errored" in r.stdout, \
        r.stdout
    assert "status codes: 20000 2xx" in r.stdout
    # Closing is graceful (lingering close up to a few seconds per connection); on a loaded CI machine give it time.
    wait_for(lambda: e.open_sockets() <= fds, timeout=60, what=f"connections to close (sockets before: {fds})")
    # Large bodies (10,000 series, ~560 KB): output is held back at 64 KiB per connection and resumed.
    big = start_exporter("--no-process-metrics", "--web.max-requests", "0", "--bench.synthetic-series", "10000")
    r = subprocess.run(["h2load", "-n", "1000", "-c", "10", "-m", "10", f"{big.base}/metrics"],
                       capture_output=True, text=True, timeout=300)
    assert "1000 succeeded, 0 failed, 0 errored" in r.stdout, r.stdout


def test_malformed_h2_input_closes_only_that_connection(start_exporter):
    e = start_exporter("--no-process-metrics")
    e.get("/-/healthy")
    fds = e.open_sockets()
    with socket.create_connection(("127.0.0.1", e.port), timeout=5) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64)
        data = b""
        while chunk := s.recv(65536):  # the server closes: recv returns b"" (or resets)
            data += chunk
    # Oversized header block: that stream is answered 431 (as HTTP/1.1 answers it), the connection and the server go on.
    r = subprocess.run(["nghttp", "-nv", "-H", "x-big: " + "y" * 40_000, f"{e.base}/metrics"],
                       capture_output=True, text=True, timeout=15)
    assert ":status: 431" in r.stdout, r.stdout[-2000:]
    # An RST_STREAM-heavy client: h2load with 1-request streams and many connections opened and closed.
    flood = subprocess.run(["h2load", "-n", "2000", "-c", "50", "-m", "100", f"{e.base}/-/healthy"],
                           capture_output=True, text=True, timeout=120)
    assert "0 errored" in flood.stdout
    assert curl("--http2-prior-knowledge", f"{e.base}/-/healthy")[1] == "2 200"
    # Closing is graceful (lingering close up to a few seconds per connection); on a loaded CI machine give it time.
    wait_for(lambda: e.open_sockets() <= fds, timeout=60, what=f"connections to close (sockets before: {fds})")


# MARK: - TLS


def test_tls_alpn_negotiates_h2_and_falls_back_to_http11(start_exporter, pki, tmp_path):
    web = web_config(tmp_path / "web.yml", pki, extra="http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    e = start_exporter("--web.config.file", str(web), "--web.max-requests", "0")
    code, status, err = curl("-v", "--cacert", str(pki / "ca.crt"), f"{https(e)}/metrics")
    assert status == "2 200", err
    assert "ALPN: server accepted h2" in err and "x-frame-options: deny" in err.lower()
    assert curl("--http1.1", "--cacert", str(pki / "ca.crt"), f"{https(e)}/metrics")[1] == "1.1 200"
    # Cleartext to the TLS port is refused with the reason, in cleartext (as Go's server does), and counted; before,
    # the connection closed with nothing said (curl: 000).
    plain = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", f"{e.base}/metrics"], capture_output=True, text=True,
                           timeout=30)
    assert plain.stdout == "client sent an HTTP request to an HTTPS server\n\n400", plain
    load = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "10", f"{https(e)}/metrics"],
                          capture_output=True, text=True, timeout=120)
    assert "Application protocol: h2" in load.stdout and "2000 succeeded, 0 failed" in load.stdout, load.stdout
    body = curl_body("--cacert", str(pki / "ca.crt"), f"{https(e)}/metrics").decode()
    # h2: the first curl and h2load's 2000; HTTP/1.1: the --http1.1 curl (this scrape is counted after it renders).
    assert sample_value(body, "mlops_exporter_http_requests_total", {"handler": "metrics", "protocol": "h2"}) == 2001
    assert sample_value(body, "mlops_exporter_http_requests_total",
                        {"handler": "metrics", "protocol": "http/1.1"}) == 1
    assert sample_value(body, "mlops_exporter_http_errors_total", {"reason": "tls_http_request"}) == 1
    log = e.log_path.read_text()
    assert "PRIVATE KEY" not in log and (pki / "server.key").read_text().splitlines()[1] not in log


def test_tls12_suites_http2_must_not_use_get_http11(start_exporter, pki, tmp_path):
    """RFC 9113 §9.2.2: HTTP/2 over TLS 1.2 only with an AEAD suite and an ephemeral key exchange. Before, a client
    offering h2 and http/1.1 over ECDHE-ECDSA-AES128-SHA (CBC) got h2; now it gets http/1.1 (and one offering only h2
    still gets h2, as before); an AEAD suite and TLS 1.3 still get h2."""
    web = web_config(tmp_path / "web.yml", pki)
    e = start_exporter("--web.config.file", str(web))

    def negotiated(cipher, protocols, tls13=False):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(str(pki / "ca.crt"))
        if not tls13:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers(cipher)
        context.set_alpn_protocols(protocols)
        with socket.create_connection(("127.0.0.1", e.port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                return tls.cipher()[0], tls.selected_alpn_protocol()

    assert negotiated("ECDHE-ECDSA-AES128-SHA", ["h2", "http/1.1"]) == ("ECDHE-ECDSA-AES128-SHA", "http/1.1")
    assert negotiated("ECDHE-ECDSA-AES128-SHA", ["h2"]) == ("ECDHE-ECDSA-AES128-SHA", "h2")
    assert negotiated("ECDHE-ECDSA-AES128-GCM-SHA256", ["h2", "http/1.1"]) == ("ECDHE-ECDSA-AES128-GCM-SHA256", "h2")
    assert negotiated("", ["h2", "http/1.1"], tls13=True)[1] == "h2"


def test_tls_handshake_timeout(start_exporter, pki, tmp_path):
    web = web_config(tmp_path / "web.yml", pki)
    e = start_exporter("--web.config.file", str(web), "--web.tls-handshake-timeout", "0.3")
    with socket.create_connection(("127.0.0.1", e.port), timeout=5) as s:
        assert s.recv(1) == b""  # closed by the server, without a byte from us
    body = curl_body("--cacert", str(pki / "ca.crt"), f"{https(e)}/metrics").decode()
    assert sample_value(body, "mlops_exporter_http_errors_total", {"reason": "tls_handshake_timeout"}) == 1


def test_basic_auth_over_tls(start_exporter, pki, tmp_path):
    web = web_config(tmp_path / "web.yml", pki, users={"prom": bcrypt("s3cret")})
    e = start_exporter("--web.config.file", str(web))
    ca = ("--cacert", str(pki / "ca.crt"))
    for args in [(), ("-u", "prom:wrong"), ("-u", "nobody:s3cret"), ("--http1.1", "-u", "prom:wrong")]:
        r = subprocess.run(["curl", "-sS", "-D", "-", "-o", "/dev/null", *ca, *args, f"{https(e)}/metrics"],
                           capture_output=True, text=True, timeout=15)
        assert re.search(r"^HTTP/[\d.]+ 401", r.stdout, re.M), r.stdout
        assert re.search(r'^www-authenticate: Basic realm="mlops-exporter"', r.stdout, re.M | re.I), r.stdout
    for _ in range(3):  # the second and third are answered from the cache of successful checks
        assert curl(*ca, "-u", "prom:s3cret", f"{https(e)}/metrics")[1] == "2 200"


def test_mutual_tls_rejects_a_client_without_certificate(start_exporter, pki, tmp_path):
    # The extra lines continue tls_server_config.
    web = web_config(tmp_path / "web.yml", pki, extra=(
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki}/ca.crt\n"))
    e = start_exporter("--web.config.file", str(web))
    ca = ("--cacert", str(pki / "ca.crt"))
    code, status, _ = curl(*ca, f"{https(e)}/metrics")
    assert code != 0 and status.endswith("000")
    assert curl(*ca, "--cert", str(pki / "client.crt"), "--key", str(pki / "client.key"),
                f"{https(e)}/metrics")[1] == "2 200"
    body = curl_body(*ca, "--cert", str(pki / "client.crt"), "--key", str(pki / "client.key"),
                     f"{https(e)}/metrics").decode()
    assert sample_value(body, "mlops_exporter_http_errors_total", {"reason": "tls_no_client_certificate"}) == 1
    # A client that resumes its session (nginx's proxy_ssl_session_reuse, Go's session cache) is served again, on
    # TLS 1.2 and 1.3: before, with client certificates asked for, every resumption got an internal_error alert.
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
        context.minimum_version = context.maximum_version = version
        session = None
        for attempt in range(3):
            with socket.create_connection(("127.0.0.1", e.port), timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
                    tls.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    answer = b""
                    while chunk := tls.recv(4096):
                        answer += chunk
                    assert answer.startswith(b"HTTP/1.1 200"), (version, attempt, answer)
                    if attempt > 0:
                        assert tls.session_reused, (version, attempt)
                    session = tls.session


def old_tls_client_answer(port, version):
    """A TLS `version` (1.0 or 1.1) client's answer to GET /-/healthy, or the handshake's error."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT@SECLEVEL=0")  # this client's own OpenSSL refuses these versions otherwise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw) as tls:
                tls.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return tls.recv(4096)
        except ssl.SSLError as error:
            return error


def test_min_version_tls10_serves_tls10_and_tls11_clients(start_exporter, pki, tmp_path):
    """`min_version: TLS10` (or TLS11) serves such clients, as exporter-toolkit does: before, OpenSSL's security level
    refused every one (counted `tls_no_shared_cipher`) while the file was accepted. Without it they are refused."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
    e = start_exporter("--web.config.file", str(web_config(tmp_path / "web.yml", pki, extra="  min_version: TLS10\n")))
    for version in old:
        answer = old_tls_client_answer(e.port, version)
        assert isinstance(answer, bytes) and answer.startswith(b"HTTP/1.1 200"), (version, answer)
    strict = start_exporter("--web.config.file", str(web_config(tmp_path / "strict.yml", pki)))
    for version in old:
        assert isinstance(old_tls_client_answer(strict.port, version), ssl.SSLError), version
    body = curl_body("--cacert", str(pki / "ca.crt"), f"{https(strict)}/metrics").decode()
    assert sample_value(body, "mlops_exporter_http_errors_total", {"reason": "tls_protocol_version"}) == 2, body


def test_inline_pem_and_client_allowed_sans_as_exporter_toolkit(start_exporter, pki, tmp_path):
    """exporter-toolkit's inline `cert`, `key` and `client_ca`, and `client_allowed_sans`: a client certificate that
    chains to the CA but carries none of the allowed names is refused at the handshake (counted); one carrying an
    allowed DNS name or IP address is served; the older `RequireClientCert` means RequireAnyClientCert. Before, each
    field was unknown and the exporter did not start with a web configuration shared with Go exporters."""
    issue(pki, "allowed", "scraper", san="DNS:scraper.example")
    issue(pki, "allowed-ip", "scraper-ip", san="IP:10.1.2.3")
    issue(pki, "allowed-ip6", "scraper-ip6", san="IP:2001:db8:0:0:0:0:0:1")
    issue(pki, "other", "intruder", san="DNS:intruder.example,IP:10.9.9.9")

    def block(path):
        return "|\n" + "".join(f"    {line}\n" for line in (pki / path).read_text().splitlines())
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config:\n"
                   f"  cert: {block('server.crt')}  key: {block('server.key')}"
                   f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca: {block('ca.crt')}"
                   "  client_allowed_sans: [scraper.example, 10.1.2.3, '2001:db8::1']\n")
    e = start_exporter("--web.config.file", str(web))
    ca = ("--cacert", str(pki / "ca.crt"))

    def with_cert(name):
        return curl(*ca, "--cert", str(pki / f"{name}.crt"), "--key", str(pki / f"{name}.key"), f"{https(e)}/-/healthy")
    assert with_cert("allowed")[1] == "2 200"
    assert with_cert("allowed-ip")[1] == "2 200"
    assert with_cert("allowed-ip6")[1] == "2 200"  # written as Go writes it (RFC 5952)
    code, status, _ = with_cert("other")
    assert code != 0 and status.endswith("000")
    code, status, _ = with_cert("client")  # no SAN at all
    assert code != 0 and status.endswith("000")
    body = curl_body(*ca, "--cert", str(pki / "allowed.crt"), "--key", str(pki / "allowed.key"),
                     f"{https(e)}/metrics").decode()
    assert sample_value(body, "mlops_exporter_http_errors_total", {"reason": "tls_bad_client_certificate"}) == 2
    # RequireAnyClientCert (spelled RequireClientCert): the chain is not verified, the names still are.
    issue_self_signed = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                         "self.key", "-out", "self.crt", "-days", "2", "-subj", "/CN=self", "-addext",
                         "subjectAltName=DNS:scraper.example"]
    openssl(*issue_self_signed, cwd=pki)
    web.write_text(f"tls_server_config:\n  cert_file: {pki}/server.crt\n  key_file: {pki}/server.key\n"
                   "  client_auth_type: RequireClientCert\n  client_allowed_sans: [scraper.example]\n")
    e.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: with_cert("self")[1] == "2 200", timeout=20, what="the reloaded web configuration")
    code, status, _ = with_cert("other")
    assert code != 0 and status.endswith("000")


# MARK: - Web configuration file


def test_bad_web_config_stops_with_file_line_and_field(binary, tmp_path, pki):
    bad = tmp_path / "web.yml"
    bad.write_text(f"tls_server_config:\n  cert_file: {pki}/server.crt\n  key_fil: x\n")
    r = subprocess.run([str(binary), "serve", "--web.listen-address", "127.0.0.1:0", "--web.config.file", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"{bad}:3:3: tls_server_config.key_fil: unknown field" in r.stderr
    assert f"{bad}:2:3: tls_server_config.key_file: missing" in r.stderr
    # A key that does not belong to the certificate is caught when the server starts.
    mismatch = web_config(tmp_path / "mismatch.yml")
    mismatch.write_text(f"tls_server_config:\n  cert_file: {pki}/server.crt\n  key_file: {pki}/client.key\n")
    r = subprocess.run([str(binary), "serve", "--web.listen-address", "127.0.0.1:0", "--web.config.file",
                        str(mismatch)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and f"cannot load key file {pki}/client.key: key values mismatch" in r.stderr, r.stderr


def test_sighup_reload_keeps_old_web_config_when_bad_and_rereads_certificates(start_exporter, pki, tmp_path):
    web = web_config(tmp_path / "web.yml", pki, users={"prom": bcrypt("one")})
    e = start_exporter("--web.config.file", str(web))
    ca = ("--cacert", str(pki / "ca.crt"))

    def gauge():
        body = curl_body(*ca, "-u", "prom:one", f"{https(e)}/metrics").decode()
        return sample_value(body, "mlops_exporter_web_config_last_reload_successful", {})

    assert gauge() == 1
    web.write_text(web.read_text().replace("basic_auth_users:", "basic_auth_user:"))
    e.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: gauge() == 0, what="rejected reload")
    # The gauge is set just before the line is logged: polled, as a scrape can come in between.
    wait_for(lambda: "keeping the previous configuration" in e.log_path.read_text(), what="the rejection logged")
    assert curl(*ca, "-u", "prom:one", f"{https(e)}/metrics")[1] == "2 200"
    # A good file: new password, and a renewed certificate read again.
    issue(pki, "server", "renewed.localhost", san="DNS:localhost,IP:127.0.0.1")
    web_config(web, pki, users={"prom": bcrypt("two")})
    e.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: curl(*ca, "-u", "prom:two", f"{https(e)}/metrics")[1] == "2 200", what="good reload")
    assert curl(*ca, "-u", "prom:one", f"{https(e)}/metrics")[1] == "2 401"
    _, _, err = curl("-v", *ca, "-u", "prom:two", f"{https(e)}/metrics")
    assert "CN=renewed.localhost" in err, err


def test_a_certificate_replaced_on_disk_is_served_without_a_sighup(start_exporter, pki, tmp_path):
    """exporter-toolkit reads the TLS files at every connection: a certificate rotated in place (cert-manager's mounted
    secret) is served without a signal. Before, the old one was served until a SIGHUP (or until it expired)."""
    web = web_config(tmp_path / "web.yml", pki)
    e = start_exporter("--web.config.file", str(web))
    ca = ("--cacert", str(pki / "ca.crt"))
    assert "CN=localhost" in curl("-v", *ca, f"{https(e)}/metrics")[2]
    issue(pki, "server", "rotated.localhost", san="DNS:localhost,IP:127.0.0.1")
    wait_for(lambda: "CN=rotated.localhost" in curl("-v", *ca, f"{https(e)}/metrics")[2], timeout=30, interval=0.5,
             what="the rotated certificate served")
    # The certificate is installed just before the reload is logged: polled.
    wait_for(lambda: "web configuration reloaded" in e.log_path.read_text(), what="the reload logged")


def test_prometheus_scrapes_over_https_with_basic_auth(start_exporter, prometheus, pki, tmp_path):
    web = web_config(tmp_path / "web.yml", pki, users={"prom": bcrypt("s3cret")})
    # One exporter per job, so that each one's self metrics show only that job's protocol.
    default, h1 = start_exporter("--web.config.file", str(web)), start_exporter("--web.config.file", str(web))

    def job(name, port, password, options=""):
        return (
            f"  - job_name: {name}\n    scheme: https\n{options}"
            f"    tls_config:\n      ca_file: {pki}/ca.crt\n"
            f"    basic_auth:\n      username: prom\n      password: {password}\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        )

    base = prometheus(default.port, job("default", default.port, "s3cret")
                      + job("h1", h1.port, "s3cret", "    enable_http2: false\n") + job("wrong", h1.port, "nope"))
    wait_for(lambda: scalar(base, 'up{job="default"}') == 1 and scalar(base, 'up{job="h1"}') == 1, timeout=60,
             what="both https jobs up")
    wait_for(lambda: scalar(base, 'up{job="wrong"}') == 0, timeout=60, what="wrong password job down")
    # Answered scrapes (the wrong password's 401s, which job "wrong" gets from h1's exporter over h2, are counted
    # too: under code="401").
    requests = ('sum(mlops_exporter_http_requests_total{job="%s",handler="metrics",protocol="%s",code="200"})'
                ' or vector(0)')
    wait_for(lambda: scalar(base, requests % ("default", "h2")) >= 2, timeout=60, what="default scrapes over h2")
    wait_for(lambda: scalar(base, requests % ("h1", "http/1.1")) >= 2, timeout=60, what="h1 job over HTTP/1.1")
    assert scalar(base, requests % ("default", "http/1.1")) == 0
    assert scalar(base, requests % ("h1", "h2")) == 0
    refused = 'sum(mlops_exporter_http_requests_total{job="h1",handler="metrics",protocol="h2",code="401"}) or vector(0)'
    wait_for(lambda: scalar(base, refused) >= 1, timeout=60, what="the wrong password's 401s counted")
    targets = subprocess.run(["curl", "-sS", f"{base}/api/v1/targets"], capture_output=True, text=True).stdout
    assert "401" in targets, targets


def test_ingestion_bodies_over_h2_match_http11(start_exporter, tmp_path):
    """The ingestion API takes the same request bodies over h2c as over HTTP/1.1 (here ~150 KB, several
    DATA frames and flow-control windows) and answers the same."""
    e = start_exporter("--config", str(ROOT / "examples" / "models.yaml"))
    body = tmp_path / "events.ndjson"
    body.write_text("".join(
        '{"version": "v1", "prediction": "fraud", "latency_seconds": 0.01, "id": "%d"}\n' % i for i in range(2000)))
    url = f"{e.base}/api/v1/models/fraud/predictions"

    def post(*args):
        r = subprocess.run(["curl", "-sS", "--max-time", "30", "-w", "\n%{http_version} %{http_code}", *args,
                            "-H", "Content-Type: application/x-ndjson", "--data-binary", f"@{body}", url],
                           capture_output=True, text=True, check=True)
        return r.stdout.rsplit("\n", 1)

    h1_body, h1_status = post("--http1.1")
    h2_body, h2_status = post("--http2-prior-knowledge")
    assert h1_status == "1.1 202" and h2_status == "2 202", (h1_status, h2_status)
    assert h1_body == h2_body
    text = e.get("/metrics")[2].decode()
    assert sample_value(text, "mlops_ingest_events_total", {"model": "fraud", "kind": "predictions"}) == 4000


def test_tls_alpn_without_a_common_protocol_is_refused(start_exporter, pki, tmp_path):
    """A client offering ALPN protocols the server does not speak gets the no_application_protocol alert (RFC 7301
    section 3.2), as from Go's servers and nginx, counted by its reason; before, it was answered in HTTP/1.1, a
    protocol it had not offered."""
    e = start_exporter("--web.config.file", str(web_config(tmp_path / "web.yml", pki)))
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.set_alpn_protocols(["spdy/3", "h3"])
    with socket.create_connection(("127.0.0.1", e.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError, match="(?i)no.application.protocol"):
            context.wrap_socket(raw, server_hostname="localhost")
    # A client offering http/1.1 among others is still served in it; one offering no ALPN at all, too.
    context.set_alpn_protocols(["spdy/3", "http/1.1"])
    with socket.create_connection(("127.0.0.1", e.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"
    assert curl("--http1.1", "--no-alpn", "--cacert", str(pki / "ca.crt"), f"{https(e)}/metrics")[1] == "1.1 200"
    body = curl_body("--cacert", str(pki / "ca.crt"), f"{https(e)}/metrics").decode()
    assert sample_value(body, "mlops_exporter_http_errors_total", {"reason": "tls_no_application_protocol"}) == 1


def test_http2_false_turns_off_h2c_and_alpn_h2(start_exporter, pki, tmp_path):
    clear = start_exporter("--web.config.file", str(web_config(tmp_path / "clear.yml", extra=(
        "http_server_config:\n  http2: false\n"))))
    assert curl("--http2", f"{clear.base}/metrics")[1] == "1.1 200"  # the Upgrade is ignored
    assert curl("--http2-prior-knowledge", f"{clear.base}/metrics")[1].endswith("000")
    tls = start_exporter("--web.config.file", str(web_config(tmp_path / "tls.yml", pki, extra=(
        "http_server_config:\n  http2: false\n"))))
    code, status, err = curl("-v", "--cacert", str(pki / "ca.crt"), f"{https(tls)}/metrics")
    assert status == "1.1 200" and "ALPN: server accepted http/1.1" in err, err


def test_rate_limit_answers_429_beyond_the_bucket_and_counts_it(start_exporter, binary, tmp_path):
    """exporter-toolkit's `rate_limit: {interval, burst}`: `burst` requests at once, then one per interval; beyond,
    429 with Retry-After, counted. Before, the field was unknown and a web configuration shared with Go exporters
    stopped the exporter from starting."""
    web = web_config(tmp_path / "web.yml", extra="rate_limit:\n  interval: 3s\n  burst: 3\n")
    e = start_exporter("--web.config.file", str(web))
    statuses = [e.get("/-/healthy") for _ in range(5)]
    assert [s for s, _, _ in statuses] == [200, 200, 200, 429, 429], statuses
    # Retry-After: when the next token comes at the latest (it said 1 s whatever the interval).
    assert statuses[3][1].get("Retry-After") == "3" and statuses[3][2] == b"Too Many Requests\n"
    # A body is refused at its head, like a request without one.
    status, _, _ = e.post("/api/v1/models/fraud/predictions", b'{"version":"v1"}\n',
                          {"Content-Type": "application/x-ndjson"})
    assert status == 429
    refused = 3

    def scraped():
        nonlocal refused
        status, _, body = e.get("/metrics")
        if status == 429:
            refused += 1
            return None
        return body.decode()
    body = wait_for(scraped, timeout=20, interval=0.5, what="a token again")
    assert sample_value(body, "mlops_exporter_http_rate_limited_total", {}) == refused
    assert sample_value(body, "mlops_exporter_http_requests_total",
                        {"handler": "healthy", "protocol": "http/1.1", "code": "429"}) == 2
    # A head refused before its body is read (wrong credentials) takes its token too: before, it took none, so
    # password guesses in POSTs went unlimited.
    guarded = web_config(tmp_path / "guarded.yml", users={"prom": bcrypt("s3cret")},
                         extra="rate_limit:\n  interval: 60s\n  burst: 2\n")
    g = start_exporter("--web.config.file", str(guarded))
    guesses = [g.post("/api/v1/models/fraud/predictions", b'{"version":"v1"}\n',
                      {"Content-Type": "application/x-ndjson",
                       "Authorization": "Basic " + base64.b64encode(f"prom:guess{i}".encode()).decode()})[0]
               for i in range(4)]
    assert guesses == [401, 401, 429, 429], guesses
    # A burst of 0 would refuse every request: refused as a mistake, with the place.
    bad = web_config(tmp_path / "bad.yml", extra="rate_limit:\n  interval: 1s\n  burst: 0\n")
    r = subprocess.run([str(binary), "serve", "--web.config.file", str(bad), "--web.listen-address", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and f"{bad}:3:10: rate_limit.burst: must be at least 1" in r.stderr, r.stderr


def test_basic_auth_and_a_model_token_together(start_exporter, tmp_path):
    """With basic auth on, an ingestion request to a model that has a token authenticates with the token alone;
    every other request (other paths, models without a token, other schemes) still needs basic auth."""
    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n"
        "  - {name: fraud, task: binary_classification, versions: [v1], classes: [legit, fraud],\n"
        "     positive_class: fraud, collectors: [service]}\n"
        "  - {name: eta, task: regression, versions: [v1], token: t0ken, collectors: [service]}\n")
    web = web_config(tmp_path / "web.yml", users={"prom": bcrypt("s3cret")})
    e = start_exporter("--config", str(config), "--web.config.file", str(web))
    body = ('{"version":"v1","prediction":3.5}\n', '{"version":"v1","prediction":"fraud"}\n')

    def post(model, *args):
        return curl("-X", "POST", "-H", "Content-Type: application/x-ndjson", "--data-binary",
                    body[0] if model == "eta" else body[1], *args, f"{e.base}/api/v1/models/{model}/predictions")[1]

    assert post("eta", "-H", "Authorization: Bearer t0ken") == "1.1 202"
    assert post("eta", "-H", "authorization: bearer t0ken") == "1.1 202"  # scheme case-insensitive
    assert post("eta", "-H", "Authorization: Bearer wrong") == "1.1 401"  # checked by the endpoint
    assert post("eta") == "1.1 401"  # no credentials: basic auth asks for them
    assert post("eta", "-u", "prom:s3cret") == "1.1 401"  # basic auth passes, but the model wants its token
    assert post("fraud", "-H", "Authorization: Bearer t0ken") == "1.1 401"  # no token on fraud: basic auth applies
    assert post("fraud", "-u", "prom:s3cret") == "1.1 202"
    assert post("fraud") == "1.1 401"
    assert curl("-H", "Authorization: Bearer t0ken", f"{e.base}/metrics")[1] == "1.1 401"
    assert curl("-u", "prom:s3cret", f"{e.base}/metrics")[1] == "1.1 200"
    metrics = curl_body("-u", "prom:s3cret", f"{e.base}/metrics").decode()
    assert sample_value(metrics, "mlops_ingest_events_total", {"model": "eta", "kind": "predictions"}) == 2
    assert sample_value(metrics, "mlops_ingest_events_total", {"model": "fraud", "kind": "predictions"}) == 1
