"""End to end: the real binary on a loopback port, driven by real clients (urllib, raw sockets, curl)."""

import gzip
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from conftest import wait_for

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# Families whose values change from one scrape to the next.
VOLATILE = re.compile(rb"^(# (HELP|TYPE|UNIT) )?(process_|mlops_exporter_(http|scrape|collector))")


def stable(body: bytes) -> list:
    return [line for line in body.split(b"\n") if not VOLATILE.match(line)]


def sample_value(body: str, name: str, labels: dict):
    """The value of the first sample of `name` whose labels include `labels`; None when there is none."""
    for family in parse_text(body):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def raw_exchange(port, payload: bytes, read_until=None, timeout=5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if read_until and read_until(data):
                break
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_endpoints_and_errors(start_exporter):
    e = start_exporter()
    status, headers, body = e.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'href="/metrics"' in body and b"/-/healthy" in body
    assert e.get("/-/healthy")[0] == 200
    assert e.get("/-/ready")[0] == 200
    status, _, body = e.get("/nope")
    assert status == 404 and body.count(b"\n") == 1
    status, headers, _ = e.get("/metrics", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD, OPTIONS"  # OPTIONS too (RFC 9110 §15.5.6)
    # OPTIONS says what a path takes (HAProxy's default health check is `OPTIONS / HTTP/1.0`: a 405 marked the
    # exporter down); `OPTIONS *` what the server takes.
    for path, allowed in (("/", "GET, HEAD, OPTIONS"), ("/-/reload", "POST, PUT, OPTIONS")):
        status, headers, body = e.get(path, method="OPTIONS")
        assert status == 200 and headers["Allow"] == allowed and body == b"", (path, status, headers)
    # A model that is not configured is a 404 there too, as for GET and POST (it was 200 from the path's shape).
    # Whatever the method: whether the resource exists is decided before the method is (a 405's Allow and OPTIONS'
    # say what it takes; GET on an ingestion path of such a model, POST on its page and OPTIONS on a status path that
    # is no page were 405 or 200 with Allow).
    for path in ("/models/nope", "/api/v1/models/nope/predictions"):
        for method in ("OPTIONS", "GET", "HEAD", "POST", "DELETE"):
            status, _, body = e.get(path, method=method)
            assert status == 404, (path, method, status, body)
            assert method == "HEAD" or body.startswith(b'unknown model "nope"'), (path, method, body)
    for path in ("/models/", "/models/a/b"):
        for method in ("OPTIONS", "GET", "POST"):
            status, _, body = e.get(path, method=method)
            assert status == 404 and body.startswith(b"404 page not found"), (path, method, status, body)
    with socket.create_connection(("127.0.0.1", e.port), timeout=5) as s:
        s.sendall(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")


def test_negotiation_content_types_and_promtool(start_exporter):
    e = start_exporter()
    status, headers, text = e.get("/metrics", {"Accept": "*/*"})
    assert status == 200 and headers["Content-Type"] == TEXT_TYPE
    assert "Accept" in headers["Vary"] and "Accept-Encoding" in headers["Vary"]
    families = {f.name for f in parse_text(text.decode())}
    assert {"mlops_exporter_build_info", "process_cpu_seconds", "process_open_fds"} <= families
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True)
    assert check.returncode == 0, check.stderr.decode()

    status, headers, om = e.get("/metrics", {"Accept": PROMETHEUS_ACCEPT})
    assert status == 200 and headers["Content-Type"] == OM_TYPE
    assert om.endswith(b"# EOF\n")
    assert {f.name for f in parse_om(om.decode())} >= {"mlops_exporter_build", "process_cpu_seconds"}


def test_build_info_names_the_git_revision(start_exporter):
    """mlops_exporter_build_info's `revision` is the commit the binary was built from, read with git at build time by
    the package's RevisionPlugin when the package is a git checkout (it was "unknown", always). Skipped when this tree
    is not a git checkout of its own (a tarball)."""
    from conftest import ROOT, scrape
    top = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if top.returncode != 0 or os.path.realpath(top.stdout.strip()) != os.path.realpath(ROOT):
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    _, samples = scrape(start_exporter())
    revisions = [dict(labels)["revision"] for (name, labels) in samples if name == "mlops_exporter_build_info"]
    assert revisions == [head.stdout.strip()]


def test_gzip_body_equals_plain_body(start_exporter):
    e = start_exporter()
    _, plain_headers, plain = e.get("/metrics")
    _, headers, compressed = e.get("/metrics", {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain_headers
    assert stable(gzip.decompress(compressed)) == stable(plain)
    # curl decodes it itself.
    out = subprocess.run(
        ["curl", "-sS", "--compressed", "-o", "-", "-w", "\n%{content_type}", f"{e.base}/metrics"],
        capture_output=True, check=True,
    ).stdout
    body, content_type = out.rsplit(b"\n", 1)
    assert content_type.decode() == TEXT_TYPE
    assert stable(body) == stable(plain)


def test_head_has_length_but_no_body(start_exporter):
    e = start_exporter()
    data = raw_exchange(e.port, b"HEAD /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert int(re.search(rb"(?i)content-length: (\d+)", head).group(1)) > 0
    assert rest == b""


def test_keep_alive_reuses_one_connection(start_exporter):
    e = start_exporter()
    before = sample_value(e.get()[2].decode(), "mlops_exporter_http_connections_total", {})
    with socket.create_connection(("127.0.0.1", e.port)) as s:
        f = s.makefile("rb")
        for _ in range(5):
            s.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            status = f.readline()
            assert status.startswith(b"HTTP/1.1 200")
            length = 0
            while (line := f.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert f.read(length).startswith(b"mlops-exporter is Healthy")
    after = sample_value(e.get()[2].decode(), "mlops_exporter_http_connections_total", {})
    # One connection for the five requests, one for the second scrape.
    assert after - before == 2


def test_pipelined_requests_answered_in_order(start_exporter):
    e = start_exporter()
    payload = (
        b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    data = raw_exchange(e.port, payload)
    statuses = re.findall(rb"HTTP/1.1 (\d{3})", data)
    assert statuses == [b"200", b"404", b"200"]
    assert data.index(b"Healthy") < data.index(b"not found") < data.index(b"Ready")


def test_http10_closes_and_bad_requests_get_one_line_reasons(start_exporter):
    e = start_exporter()
    data = raw_exchange(e.port, b"GET /-/healthy HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.0 200") or data.startswith(b"HTTP/1.1 200")
    for payload, code in [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", b"400"),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 500 + b"\r\n", b"431"),
        (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", b"505"),
    ]:
        data = raw_exchange(e.port, payload)
        assert data.startswith(b"HTTP/1.1 " + code), (payload[:40], data[:200])
        body = data.partition(b"\r\n\r\n")[2]
        assert body.count(b"\n") == 1 and len(body) > 3, body


def test_an_empty_body_of_unknown_length_is_no_body(start_exporter):
    """GET /metrics with `Transfer-Encoding: chunked` and only the last chunk: an empty body, no body, so the scrape
    is answered (it was refused 413 before a byte of it arrived); a chunked body that holds bytes, or a length given,
    is still refused."""
    e = start_exporter()
    head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    for payload, code in [
        (head + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"200"),
        (head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", b"413"),
        (head + b"Content-Length: 5\r\n\r\nhello", b"413"),
        (head + b"Content-Length: 0\r\n\r\n", b"200"),
    ]:
        data = raw_exchange(e.port, payload)
        assert data.startswith(b"HTTP/1.1 " + code), (payload, data[:200])
        if code == b"200":
            assert b"mlops_exporter_build_info" in data


def test_slowloris_cut_at_header_timeout(start_exporter):
    e = start_exporter("--web.header-timeout", "1")
    with socket.create_connection(("127.0.0.1", e.port)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        s.settimeout(10)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        elapsed = time.monotonic() - start
    assert data.startswith(b"HTTP/1.1 408"), data[:100]
    assert 0.5 < elapsed < 5, elapsed


def test_vanishing_clients_leak_no_fds(start_exporter):
    """Sockets, not every descriptor: under CI load the count of all descriptors once stayed above its baseline for
    10 s (twice in two sessions, never reproduced alone): a descriptor the runtime opens lazily (Dispatch's eventfd
    or timerfd) is no client left open. The failure names what the descriptors are."""
    e = start_exporter()
    e.get("/-/healthy")
    baseline = e.open_sockets()
    reads = [0]

    def accepted():
        """Connections the exporter accepted, this scrape's own included (read k counts k scrapes)."""
        reads[0] += 1
        for line in e.get("/metrics")[2].decode().splitlines():
            if line.startswith("mlops_exporter_http_connections_total "):
                return float(line.split()[1])

    before = accepted()
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", e.port))
        s.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial" if i % 2 else b"GET /met")
        s.close()
    # Every client's connection accepted first: fds back to the baseline between two accept batches proved nothing
    # (CI: back to 14, then 45 once the rest of the backlog was accepted).
    wait_for(lambda: accepted() >= before + 50 + (reads[0] - 1), timeout=10, what="the 50 connections accepted")
    try:
        wait_for(lambda: e.open_sockets() <= baseline, timeout=10, what=f"sockets back to {baseline}")
    except AssertionError as failure:
        raise AssertionError(f"{failure}; descriptors now: {sorted(e.fd_targets())}") from None


def test_sigterm_lets_running_scrapes_complete(start_exporter):
    e = start_exporter()
    results = []
    lock = threading.Lock()
    stop = threading.Event()

    def scraper():
        while not stop.is_set():
            try:
                status, _, body = e.get("/metrics", {"Accept": PROMETHEUS_ACCEPT}, timeout=10)
            except OSError:
                return  # refused after the listener closed: expected, not a truncated response
            with lock:
                results.append((status, body.endswith(b"# EOF\n")))

    threads = [threading.Thread(target=scraper) for _ in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: len(results) >= 40, timeout=30, what="scrapes under way")
    e.proc.send_signal(signal.SIGTERM)
    assert e.proc.wait(timeout=20) == 0
    stop.set()
    for t in threads:
        t.join(timeout=20)
    assert results and all(status == 200 and complete for status, complete in results)


SHUTDOWN_SIGNALS_MASK = ((1 << (signal.SIGHUP - 1)) | (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))
                         | (1 << (signal.SIGQUIT - 1)))


def blocked_signals(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        for line in f:
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16)
    raise AssertionError(f"no SigBlk for task {tid}")


def test_shutdown_signals_reach_only_the_waiting_thread_and_stop_a_busy_exporter(start_exporter):
    """SIGTERM/SIGINT/SIGQUIT/SIGHUP are blocked in every thread but the one waiting for them (so a signal can never
    be taken, and lost, by a busy or ignoring thread); a signal sent while pages render and scrapes run stops it.
    (SIGQUIT was left to the Swift runtime's backtracer: a 'crashed' report on stderr, and the process ran on.)"""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        e = start_exporter()
        pid = e.proc.pid
        tasks = os.listdir(f"/proc/{pid}/task")
        assert len(tasks) > 2, tasks
        # The main thread unblocks them once it waits for them, just after it logged `listening` (a signal sent
        # meanwhile stays pending until then): polled, as a loaded machine can read the mask in between.
        wait_for(lambda: blocked_signals(pid, pid) & SHUTDOWN_SIGNALS_MASK == 0, timeout=10,
                 what="the main thread waiting for the shutdown signals")
        for tid in tasks:
            if int(tid) != pid:
                assert blocked_signals(pid, tid) & SHUTDOWN_SIGNALS_MASK == SHUTDOWN_SIGNALS_MASK, tid
        stop = threading.Event()
        served = []

        def load(path):
            while not stop.is_set():
                try:
                    served.append(e.get(path, timeout=10)[0])
                except OSError:
                    return

        threads = [threading.Thread(target=load, args=(p,)) for p in ("/", "/", "/metrics", "/metrics")]
        for t in threads:
            t.start()
        wait_for(lambda: len(served) >= 20, timeout=30, what="pages and scrapes under way")
        e.proc.send_signal(signal.SIGHUP)  # a reload first: the same thread goes on waiting
        assert e.get("/-/healthy")[0] == 200 and e.proc.poll() is None
        sent = time.monotonic()
        e.proc.send_signal(sig)
        assert e.proc.wait(timeout=20) == 0
        stop.set()
        for t in threads:
            t.join(timeout=20)
        assert time.monotonic() - sent < 10
        assert b"shutting down" in e.log_path.read_bytes()


def test_excess_concurrent_scrapes_get_503(start_exporter):
    e = start_exporter("--bench.synthetic-series", "100000", "--web.max-requests", "2")
    results = []
    lock = threading.Lock()

    def scrape():
        status, _, body = e.get("/metrics", timeout=30)
        with lock:
            results.append((status, body))

    rejected = 0
    for _ in range(10):  # bounded: usually the first round already shows both behaviours
        threads = [threading.Thread(target=scrape) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        rejected = sum(1 for status, _ in results if status == 503)
        if rejected:
            break
    assert rejected > 0
    for status, body in results:
        assert status in (200, 503)
        if status == 503:
            assert body == b"Limit of concurrent requests reached (2), try again later.\n"
    text = e.get("/metrics")[2].decode()
    assert sample_value(text, "mlops_exporter_scrapes_rejected_total", {"reason": "max_requests"}) == rejected
    assert sample_value(text, "mlops_exporter_http_requests_total", {"handler": "metrics", "code": "503"}) == rejected


def test_concurrent_scrapes_share_one_render(start_exporter):
    e = start_exporter("--bench.synthetic-series", "100000", "--web.max-requests", "0")
    probes = []

    def coalesced():
        probes.append(1)
        return sample_value(e.get("/metrics")[2].decode(), "mlops_exporter_scrapes_coalesced_total", {})

    statuses = []
    for _ in range(10):  # bounded rounds of 12 simultaneous scrapes
        threads = [threading.Thread(target=lambda: statuses.append(e.get("/metrics", timeout=30)[0]))
                   for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        if coalesced() > 0:
            break
    assert set(statuses) == {200}
    assert coalesced() > 0
    # Each scrape is counted exactly once, whether it rendered or shared a render (a response's own
    # scrape is counted after its body was rendered, so the last probe is not in its own body).
    text = e.get("/metrics")[2].decode()
    served = sample_value(text, "mlops_exporter_scrapes_total", {"format": "text", "encoding": "identity"})
    assert served == len(statuses) + len(probes)


def test_out_of_file_descriptors_a_scrape_is_served_by_evicting_an_idle_connection(binary, tmp_path):
    """With the open-file limit below the connection cap (a systemd service's soft 1024 against the default cap of
    1024), connections that send nothing take every descriptor. As at the cap, the oldest of them (older than 1 s) is
    evicted to make room for a client waiting in the backlog. Before, no eviction ran below the cap: the scrape waited
    for the idlers' header timeout (10.8 s seen). Soft and hard limit both at 48, so the start cannot raise it; the
    start warns that the limit is below what the caps may hold."""
    import resource

    from conftest import Exporter

    e = Exporter(binary, [], tmp_path, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48)))
    clients = []
    try:
        for _ in range(60):  # more than the limit: the rest wait in the backlog
            clients.append(socket.create_connection(("127.0.0.1", e.port), timeout=5))
        wait_for(lambda: "out of file descriptors" in e.log_path.read_text(), timeout=10, what="descriptors exhausted")
        assert "open-file limit is below" in e.log_path.read_text()
        time.sleep(1.2)  # the idlers pass the eviction age (1 s); waiting out a duration, not synchronising
        started = time.monotonic()
        status, _, body = e.get("/metrics", timeout=8)
        assert status == 200
        assert time.monotonic() - started < 3
        text = body.decode()
        assert sample_value(text, "mlops_exporter_http_errors_total", {"reason": "evicted"}) >= 1
    finally:
        for c in clients:
            c.close()
        e.stop(signal.SIGKILL)


def test_out_of_file_descriptors_a_scrape_is_served_by_evicting_a_kept_alive_connection(binary, tmp_path):
    """As above, with clients that made a request each and keep their connections alive, idle (a scraper's, pooled
    model clients'): the one idle the longest is evicted for a client waiting in the backlog, as at the cap. Before,
    only connections without a request were evicted when out of descriptors: the scrape waited for the idle timeout
    (60 s; a probe found it)."""
    import http.client
    import resource

    from conftest import Exporter

    e = Exporter(binary, [], tmp_path, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40)))
    kept = []
    waiting = []
    try:
        for _ in range(60):
            if "out of file descriptors" in e.log_path.read_text():
                break
            c = socket.create_connection(("127.0.0.1", e.port), timeout=5)
            c.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                c.settimeout(0.5)
                answered = c.recv(4096).startswith(b"HTTP/1.1 200")
            except TimeoutError:
                answered = False  # in the backlog: out of descriptors
            c.settimeout(5)
            (kept if answered else waiting).append(c)
        wait_for(lambda: "out of file descriptors" in e.log_path.read_text(), timeout=10, what="descriptors exhausted")
        assert len(kept) >= 20, len(kept)
        started = time.monotonic()
        scrape = http.client.HTTPConnection("127.0.0.1", e.port, timeout=8)
        scrape.request("GET", "/metrics")
        response = scrape.getresponse()
        text = response.read().decode()
        assert response.status == 200
        assert time.monotonic() - started < 5
        assert sample_value(text, "mlops_exporter_http_errors_total", {"reason": "evicted_idle"}) >= 1
        scrape.close()
    finally:
        for c in kept + waiting:
            c.close()
        e.stop(signal.SIGKILL)


HELD_MODEL = "models:\n  - name: m\n    task: regression\n    versions: [\"1\"]\n    collectors: [service]\n"


def hold_descriptors(e, limit):
    """Opens connections that each send a prediction request's head and hold its body (for model `m` of
    HELD_MODEL: not answered, not idle, so never evicted; run with `--web.body-min-rate 0`) until the exporter holds
    `limit` descriptors; returns them."""
    # The connections of earlier requests closed first: one closing as a holder is accepted left the count as it was.
    wait_for(lambda: sum(t.startswith("socket:") for t in e.fd_targets()) == 1, timeout=10,
             what="the exporter to hold only its listener")
    holders = []
    for _ in range(limit):
        before = e.open_fds()
        if before >= limit:
            break
        c = socket.create_connection(("127.0.0.1", e.port), timeout=5)
        c.sendall(b"POST /api/v1/models/m/predictions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        holders.append(c)
        # Accepted, or left in the backlog: the exporter is then at its limit (one of its descriptors may not have
        # been counted when `before` was read).
        wait_for(lambda: e.open_fds() > before or "out of file descriptors" in e.log_path.read_text(), timeout=5,
                 what="the holder accepted")
    wait_for(lambda: e.open_fds() >= limit, timeout=10, what=f"{limit} descriptors held")
    return holders


def test_at_the_open_file_limit_a_scrape_still_has_the_process_series(binary, tmp_path):
    """Clients that send a request head and hold its body (not evictable: they sent a request) take every descriptor
    but the one a scrape's connection takes: the exporter's own process_* series are still there, when they matter
    most. Its procfs files are opened at start and kept; before, a scrape opened /proc/self/stat, limits and netstat,
    failed with EMFILE, and every process_* series was left out (a probe found it)."""
    import resource

    from conftest import Exporter

    limit = 40
    config = tmp_path / "models.yaml"
    config.write_text(HELD_MODEL)
    e = Exporter(binary, ["--config", str(config), "--web.body-min-rate", "0", "--web.body-timeout", "60"], tmp_path,
                 preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
    holders = []
    try:
        holders = hold_descriptors(e, limit - 1)  # one left: the scrape's connection
        status, _, body = e.get("/metrics", timeout=10)
        assert status == 200
        text = body.decode()
        assert sample_value(text, "process_max_fds", {"process": "exporter"}) == limit
        assert sample_value(text, "process_open_fds", {"process": "exporter"}) == limit
        assert sample_value(text, "process_resident_memory_bytes", {"process": "exporter"}) > 0
        assert sample_value(text, "process_network_receive_bytes_total", {"process": "exporter"}) is not None
    finally:
        for c in holders:
            c.close()
        e.stop(signal.SIGKILL)


def test_a_web_config_change_seen_out_of_descriptors_is_applied_once_they_free(binary, tmp_path):
    """The web configuration file changes while clients hold every descriptor: the change waits (logged) and is
    applied at the first look after they free. Before, the watcher read it then, failed with EMFILE, and never tried
    again: a rotated certificate stayed unserved until the next change or a SIGHUP (a probe found it)."""
    import resource

    from conftest import Exporter

    limit = 40
    web = tmp_path / "web.yml"
    web.write_text("http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    config = tmp_path / "models.yaml"
    config.write_text(HELD_MODEL)
    e = Exporter(binary, ["--config", str(config), "--web.config.file", str(web), "--web.body-min-rate", "0",
                          "--web.body-timeout", "60"],
                 tmp_path, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
    holders = []
    try:
        assert e.get("/-/healthy")[1].get("X-Frame-Options") == "deny"
        holders = hold_descriptors(e, limit)
        web.write_text("http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n")
        # The watcher looks every 5 s.
        wait_for(lambda: "a change waits" in e.log_path.read_text() or "reload rejected" in e.log_path.read_text(),
                 timeout=15, what="the watcher to see the change")
        for c in holders:
            c.close()
        holders = []

        def applied():
            try:
                return e.get("/-/healthy", timeout=2)[1].get("X-Frame-Options") == "sameorigin"
            except OSError:
                return False

        wait_for(applied, timeout=15, what="the change applied once descriptors are free")
        assert "reload rejected" not in e.log_path.read_text()
    finally:
        for c in holders:
            c.close()
        e.stop(signal.SIGKILL)


def test_out_of_file_descriptors_does_not_spin(binary, tmp_path):
    """With RLIMIT_NOFILE tiny, connections beyond it make accept fail with EMFILE: the exporter must back
    off (not burn CPU on a listener that stays readable) and serve again once descriptors free up."""
    import resource

    from conftest import Exporter

    def limit_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

    e = Exporter(binary, [], tmp_path, preexec_fn=limit_fds)
    try:
        clients = []
        for _ in range(60):  # more than the limit: the kernel queues them in the backlog
            clients.append(socket.create_connection(("127.0.0.1", e.port), timeout=5))

        def cpu_seconds():
            fields = open(f"/proc/{e.proc.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        # The exporter logs "out of file descriptors; pausing accept" (error "Too many open files") when accept
        # fails with EMFILE. On a timeout, say what the process held and logged (a failure under CI load, once,
        # left nothing else to go on).
        def limit_reached():
            return "out of file descriptors" in e.log_path.read_text() or e.open_fds() >= 38

        def held():
            targets = []
            for fd in os.listdir(f"/proc/{e.proc.pid}/fd"):
                try:
                    targets.append(os.readlink(f"/proc/{e.proc.pid}/fd/{fd}"))
                except OSError:
                    pass
            return sorted(targets)

        try:
            wait_for(limit_reached, timeout=10, what="descriptor limit reached")
        except AssertionError as failure:
            raise AssertionError(
                f"{failure}; descriptors open: {held()}; clients connected: {len(clients)}; "
                f"log tail: {e.log_path.read_text()[-2000:]}"
            ) from None
        before = cpu_seconds()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:  # a bounded observation window, not synchronisation
            time.sleep(0.1)
        assert cpu_seconds() - before < 0.5, "the accept loop spins while out of descriptors"
        for c in clients:
            c.close()

        # A refused connection failed the test at once, saying nothing of the exporter (one CI run of session 36,
        # not seen again in 23 runs, 14 of them beside two CPU hogs): an exporter that exited is said so with its
        # log; one still running is polled until it serves.
        def serving():
            if e.proc.poll() is not None:
                raise AssertionError(
                    f"the exporter exited ({e.proc.returncode}) after running out of descriptors; "
                    f"log tail: {e.log_path.read_text()[-3000:]}")
            try:
                return e.get("/-/healthy", timeout=2)[0] == 200
            except OSError:  # refused or reset (urllib's URLError is an OSError)
                return False

        try:
            wait_for(serving, timeout=20, what="serving again")
        except AssertionError as failure:
            raise AssertionError(f"{failure}; descriptors open: {held()}; log tail: {e.log_path.read_text()[-2000:]}") \
                from None
        text = e.get("/metrics")[2].decode()
        assert sample_value(text, "mlops_exporter_http_errors_total", {"reason": "emfile"}) > 0
    finally:
        e.stop(signal.SIGKILL)


def test_descriptors_are_made_before_listening(binary, tmp_path):
    """Once the exporter listens, clients may take every descriptor it may open (the test above). What it made after
    that failed then: libdispatch's event loop (an epoll and an eventfd, made at the first `asyncAfter`, the status
    history's) trapped the process (SIGILL: the test above failed so in a CI run), its timerfd left the timers
    unarmed, and the signal pipe made after the start stopped the exporter. Traced with strace: after it says it
    listens, through scrapes and status-history ticks, it makes no descriptor but its connections and files."""
    import shutil

    from conftest import Exporter

    strace = shutil.which("strace")
    assert strace, "strace is missing (scripts/install-deps installs it)"
    trace = tmp_path / "trace"
    made = "epoll_create,epoll_create1,eventfd,eventfd2,timerfd_create,signalfd,signalfd4,pipe,pipe2,inotify_init1"
    e = Exporter(strace, [], tmp_path, subcommand=(
        "-f", "-qq", "-s", "200", "-o", str(trace), "-e", f"trace={made},listen,timerfd_settime,write", str(binary), "serve"))
    try:
        def after_listening():
            lines = trace.read_text(errors="replace").splitlines()
            start = next((i for i, line in enumerate(lines) if "msg=listening" in line), None)
            return None if start is None else lines[start + 1:]

        for path in ("/metrics", "/-/healthy", "/metrics"):
            assert e.get(path)[0] == 200
        # The status history samples every second: two more ticks re-armed the timer (without a new descriptor).
        wait_for(lambda: sum("timerfd_settime(" in line for line in (after_listening() or [])) >= 2,
                 timeout=20, what="two status-history ticks traced")
        calls = tuple(f" {name}(" for name in made.split(","))

        def making(line):
            return any(call in " " + line.split(None, 1)[-1] for call in calls)

        late = [line for line in after_listening() if making(line)]
        assert not late, f"descriptors made after the exporter said it listens: {late}"
        # Stricter, and what caught libdispatch's descriptors (its timerfd is made by its manager thread, which the
        # first timer starts): once a listener is open, only the thread that opened it makes descriptors, the
        # server's event loops, before it starts them.
        lines = trace.read_text(errors="replace").splitlines()
        first = next(i for i, line in enumerate(lines) if " listen(" in " " + line.split(None, 1)[-1])
        listener = lines[first].split()[0]
        others = [line for line in lines[first:] if making(line) and line.split()[0] != listener]
        assert not others, f"descriptors made by another thread after the listener was opened: {others}"
    finally:
        # The exporter first (a killed strace detaches from it and leaves it running).
        for task in os.listdir(f"/proc/{e.proc.pid}/task"):
            for child in open(f"/proc/{e.proc.pid}/task/{task}/children").read().split():
                os.kill(int(child), signal.SIGKILL)
        e.stop()


def test_write_stall_is_not_reset_by_trickled_input(start_exporter):
    """A client that never reads a large response but keeps sending a byte now and then must still be
    cut at the write-stall timeout: only bytes written count as progress."""
    e = start_exporter("--web.write-timeout", "1", "--bench.synthetic-series", "300000")
    # The first render of 300,000 series in a debug build took 17.7 s at load average 8.6 on 2 vCPUs.
    text = e.get("/metrics", timeout=120)[2].decode()
    before = sample_value(text, "mlops_exporter_http_errors_total", {"reason": "write_stall"})
    s = socket.create_connection(("127.0.0.1", e.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")

    def stalled():
        try:
            s.send(b"G")  # trickle the next request head; never read
        except OSError:
            pass
        text = e.get("/metrics", timeout=10)[2].decode()
        return sample_value(text, "mlops_exporter_http_errors_total", {"reason": "write_stall"}) > before

    try:
        wait_for(stalled, timeout=20, interval=0.3, what="the write-stall timeout to cut the slow reader")
    finally:
        s.close()


def test_sidecar_target_process_metrics(start_exporter, tmp_path):
    """--process.pidfile: the model server's process_* series carry process="target"; when it exits the
    exporter keeps serving and says so in mlops_exporter_process_target_up."""
    target = subprocess.Popen(["sleep", "120"])
    try:
        pidfile = tmp_path / "model.pid"
        pidfile.write_text(f"{target.pid}\n")
        e = start_exporter("--process.pidfile", str(pidfile))
        text = e.get("/metrics")[2].decode()
        assert sample_value(text, "mlops_exporter_process_target_up", {"process": "target"}) == 1
        assert sample_value(text, "process_threads", {"process": "target"}) == 1
        assert sample_value(text, "process_threads", {"process": "exporter"}) >= 2
        start = sample_value(text, "process_start_time_seconds", {"process": "target"})
        assert abs(start - time.time()) < 120
        target.kill()
        target.wait()
        wait_for(lambda: "mlops_exporter_process_target_up{process=\"target\"} 0" in e.get("/metrics")[2].decode(),
                 timeout=10, what="target_up 0 after the target exits")
        text = e.get("/metrics")[2].decode()
        assert 'process_threads{process="target"}' not in text
        assert e.get("/-/healthy")[0] == 200
    finally:
        target.kill()
        target.wait()


def test_every_documented_server_error_reason_is_exposed_from_the_start(start_exporter):
    """Each `reason` docs/metrics.md lists for mlops_exporter_http_errors_total (those of plain HTTP/1.1 and HTTP/2) is
    a series at 0 before any error, so that `rate()` and `increase()` see its first one (`stream_refused` appeared only
    when a stream was first refused)."""
    row = next(line for line in open("docs/metrics.md") if line.startswith("| `mlops_exporter_http_errors_total`"))
    listed = re.findall(r"`([a-z_]+)`", row.split("|")[3])
    reasons = [r for r in listed if r != "reason" and not r.startswith("tls_")]
    assert "stream_refused" in reasons and "evicted" in reasons, listed
    status, _, body = start_exporter().get("/metrics")
    assert status == 200
    exposed = set(re.findall(r'^mlops_exporter_http_errors_total\{reason="([a-z_]+)"\} 0', body.decode(), re.M))
    assert set(reasons) <= exposed, set(reasons) - exposed


def test_a_reset_of_an_idle_keep_alive_connection_is_no_error_but_one_mid_request_is(start_exporter):
    """A client that resets its keep-alive connection after its last response lost nothing: it was counted `reset` in
    the error counters an SRE alerts on (seen through the proxy: a script streaming with the openai SDK that exits
    without closing its client, 2 runs in 3). A reset in the middle of a request head still is one."""
    import struct
    e = start_exporter()

    def resets():
        return sample_value(e.get("/metrics")[2].decode(), "mlops_exporter_http_errors_total", {"reason": "reset"})

    def reset_after(request):
        s = socket.create_connection(("127.0.0.1", e.port))
        s.sendall(request)
        if request.endswith(b"\r\n\r\n"):
            data = b""
            while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + int(
                    re.search(rb"Content-Length: (\d+)", data).group(1)):
                chunk = s.recv(65536)
                assert chunk, data
                data += chunk
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST

    before = resets()
    for _ in range(3):
        reset_after(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
    reset_after(b"GET /-/healthy HTTP/1.1\r\nHo")  # mid-head
    assert wait_for(lambda: resets() == before + 1 or None, timeout=10, what="the mid-head reset counted")
    assert resets() == before + 1
