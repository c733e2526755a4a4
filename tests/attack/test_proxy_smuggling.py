"""Request smuggling and host confusion through the reverse proxy, on loopback, against the real binary and an
upstream that records every byte it receives: framing another parser could read differently (a lone LF in chunk
framing, an unclosed quoted chunk extension), hosts that are no host, and pipelined POSTs. Each asserts what the
upstream saw: nothing of a refused request, and pipelined unsafe requests one after another, never together. Each
failed on the binary before the fixes (framing and hosts reached the upstream; the second POST went out on a second
connection while the first was unanswered)."""

import re
import socket
import threading
import time

from conftest import sample, scrape, wait_for

MODELS = """
models:
  - name: credit
    task: binary_classification
    versions: [default]
    classes: ["0", "1"]
    positive_class: "1"
    features: [{name: x0, type: numeric}]
    collectors: [service]
"""


class RecordingUpstream:
    """An HTTP/1.1 upstream that answers each request head (and its Content-Length body) with 200 after `delay`
    seconds, and records (connection number, arrival time, request line) of each, and every byte received."""

    def __init__(self, delay=0.0, response=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"):
        self.delay = delay
        self.response = response
        self.requests = []
        self.received = b""
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn, number):
        buffer = b""
        conn.settimeout(30)

        def read_until(done):
            """Reads into `buffer`, recording every byte, until `done()`; False when the peer closed first."""
            nonlocal buffer
            while not done():
                data = conn.recv(65536)
                if not data:
                    return False
                with self.lock:
                    self.received += data
                buffer += data
            return True

        try:
            while True:
                if not read_until(lambda: b"\r\n\r\n" in buffer):
                    return
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if not read_until(lambda: len(buffer) >= length):
                    return
                buffer = buffer[length:]
                with self.lock:
                    self.requests.append((number, time.monotonic(), head.split(b"\r\n")[0].decode()))
                time.sleep(self.delay)
                conn.sendall(self.response)
        except OSError:
            return
        finally:
            conn.close()

    def close(self):
        self.sock.close()


def start(start_exporter, tmp_path, upstream, *args, preexec_fn=None):
    """The exporter (with the flags `args`) with its proxy on a kernel-chosen port (read from its log: a port picked
    free beforehand could be taken meanwhile by the exporter's own web listener, which binds port 0); (exporter, proxy
    port)."""
    config = tmp_path / "proxy.yaml"
    config.write_text(MODELS + f'proxy:\n  listen: ["127.0.0.1:0"]\n  upstream: http://127.0.0.1:{upstream.port}\n')
    exporter = start_exporter("--config", str(config), *args, preexec_fn=preexec_fn)

    def proxy_port():
        m = re.search(r'msg="proxy listening" addresses=127\.0\.0\.1:(\d+)', exporter.log_path.read_text())
        return int(m.group(1)) if m else None

    return exporter, wait_for(proxy_port, timeout=30, what="the proxy to log its listen address")


def exchange(port, raw, timeout=5.0):
    """Sends `raw` on a new connection and reads until the proxy closes it or `timeout` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        answer = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            answer += data
            if answer.count(b"HTTP/1.1 ") >= 1 and b"Connection: close" in answer:
                break
        return answer


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"

ATTACKS = [
    # A lone LF where chunk framing needs CRLF (the smuggling of CVE-2025-22871), in each place.
    b"POST /v2/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" + SMUGGLED,
    b"POST /v2/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\nhello\r\n0\r\n\r\n" + SMUGGLED,
    b"POST /v2/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n" + SMUGGLED,
    # ... and in the trailer section, which ends the body too: `X: 1\n\r\n` was a trailer line and the end here, one
    # long trailer line to a parser that takes only CRLF (an attacker of the proxy found it accepted).
    b"POST /v2/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: 1\n\r\n" + SMUGGLED,
    b"POST /v2/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\n" + SMUGGLED,
    # A quoted chunk extension that does not close on its line.
    b'POST /v2/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a="x\r\nhello\r\n0\r\n\r\n' + SMUGGLED,
    # Hosts that are no host.
    b"GET /v2/x HTTP/1.1\r\nHost: a b/c\r\n\r\n",
    b"GET /v2/x HTTP/1.1\r\nHost: a:80@evil\r\n\r\n",
    b"GET /v2/x HTTP/1.1\r\nHost: a/../b\r\n\r\n",
    b"GET http://a:80@evil/v2/x HTTP/1.1\r\nHost: h\r\n\r\n",
    # A fragment, which upstreams cut off: the route read another path than the one served (no model's series).
    b"POST /v2/models/credit/infer#x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
    b"GET /v2/x?a#evil HTTP/1.1\r\nHost: h\r\n\r\n",
    # A singleton field given twice: the proxy would take the first, another hop the second.
    b"OPTIONS /v2/x HTTP/1.1\r\nHost: h\r\nMax-Forwards: 5\r\nMax-Forwards: 0\r\n\r\n",
    b"GET /v2/x HTTP/1.1\r\nHost: h\r\nX-Request-Id: a1\r\nX-Request-Id: b1\r\n\r\n",
    # A Max-Forwards that is no number stops no loop (it went on unchanged).
    b"OPTIONS /v2/x HTTP/1.1\r\nHost: h\r\nMax-Forwards: abc\r\n\r\n",
    b"TRACE /v2/x HTTP/1.1\r\nHost: h\r\nMax-Forwards: -1\r\n\r\n",
]


def test_ambiguous_framing_and_hosts_never_reach_the_upstream(start_exporter, tmp_path):
    upstream = RecordingUpstream()
    try:
        exporter, port = start(start_exporter, tmp_path, upstream)
        for raw in ATTACKS:
            answer = exchange(port, raw)
            assert answer.startswith(b"HTTP/1.1 400 "), (raw, answer[:200])
        # A plain request still goes through (the proxy is up), and it is the only thing the upstream ever saw.
        assert exchange(port, b"GET /v2/ok HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").startswith(
            b"HTTP/1.1 200 ")
        assert [line for _, _, line in upstream.requests] == ["GET /v2/ok HTTP/1.1"]
        assert b"smuggled" not in upstream.received and b"evil" not in upstream.received
        wait_for(lambda: sample(scrape(exporter)[1], "mlops_proxy_client_connection_errors_total",
                                reason="bad_request") == len(ATTACKS), what="every refusal counted")
        # A Max-Forwards larger than the proxy recognises goes on as the largest it does (RFC 9110 §7.6.2: the lesser
        # of one less and that), not unchanged.
        assert exchange(port, b"OPTIONS /v2/mf HTTP/1.1\r\nHost: h\r\nMax-Forwards: 99999999999999999999999\r\n"
                              b"Connection: close\r\n\r\n").startswith(b"HTTP/1.1 200 ")
        assert b"Max-Forwards: 999999999\r\n" in upstream.received, upstream.received
        # A body refused by the server is not a client that left: the four chunked attacks, whose heads were
        # forwarded, were counted in client_cancelled_total as well.
        samples = scrape(exporter)[1]
        cancelled = sum(v for (name, _), v in samples.items() if name == "mlops_proxy_client_cancelled_total")
        assert cancelled == 0, cancelled
    finally:
        upstream.close()


def test_pipelined_posts_reach_the_upstream_one_after_another(start_exporter, tmp_path):
    upstream = RecordingUpstream(delay=0.3)
    try:
        _, port = start(start_exporter, tmp_path, upstream)
        post = b"POST /v2/%d HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(post % 1 + post % 2 + post % 3)
            answer = b""
            while answer.count(b"HTTP/1.1 200 ") < 3:
                data = s.recv(65536)
                assert data, answer
                answer += data
        lines = [line for _, _, line in upstream.requests]
        assert lines == ["POST /v2/1 HTTP/1.1", "POST /v2/2 HTTP/1.1", "POST /v2/3 HTTP/1.1"], lines
        # Each went out once the one before was answered (0.3 s each), on one kept-alive connection.
        times = [t for _, t, _ in upstream.requests]
        assert all(b - a >= 0.25 for a, b in zip(times, times[1:])), times
        assert {number for number, _, _ in upstream.requests} == {1}
    finally:
        upstream.close()


def h2c_exchange(port, path, headers=()):
    """One request over h2c (prior knowledge) with raw header bytes; (status, response headers as raw pairs)."""
    import h2.config
    import h2.connection
    import h2.events

    config = h2.config.H2Configuration(client_side=True, header_encoding=None, validate_outbound_headers=False,
                                       normalize_outbound_headers=False, validate_inbound_headers=False)
    connection = h2.connection.H2Connection(config)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        connection.initiate_connection()
        connection.send_headers(1, [(b":method", b"GET"), (b":path", path), (b":scheme", b"http"),
                                    (b":authority", b"h"), *headers], end_stream=True)
        s.sendall(connection.data_to_send())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            data = s.recv(65536)
            assert data, "closed before the response"
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    fields = list(event.headers)
                    return dict(fields)[b":status"], fields
            s.sendall(connection.data_to_send())
    raise AssertionError("no response")


def test_http2_targets_and_field_bytes_as_over_http1(start_exporter, tmp_path):
    """Over HTTP/2 as over HTTP/1.1: a :path with bytes outside ASCII is refused 400 (it was forwarded, and a byte
    that is not UTF-8 became U+FFFD on the way), and a field value that is not UTF-8 passes unchanged both ways (it
    became U+FFFD)."""
    upstream = RecordingUpstream(response=b"HTTP/1.1 200 OK\r\nX-A: \xff\xfe\r\nContent-Length: 2\r\n\r\nok")
    try:
        _, port = start(start_exporter, tmp_path, upstream)
        for path in (b"/v2/models/cr\xc3\xa9dit/infer", b"/v2/x?q=\x80"):
            assert h2c_exchange(port, path)[0] == b"400", path
        status, fields = h2c_exchange(port, b"/v2/ok", [(b"x-a", b"\xff\xfe")])
        assert status == b"200"
        assert (b"x-a", b"\xff\xfe") in fields, fields
        assert [line for _, _, line in upstream.requests] == ["GET /v2/ok HTTP/1.1"]
        assert b"x-a: \xff\xfe\r\n" in upstream.received, upstream.received
        # Cookies an HTTP/2 client sends apart are joined into one line (RFC 9113 §8.2.3), bytes unchanged too.
        status, _ = h2c_exchange(port, b"/v2/cookies", [(b"cookie", b"a=1"), (b"x-b", b"2"), (b"cookie", b"b=\xff")])
        assert status == b"200"
        assert b"cookie: a=1; b=\xff\r\n" in upstream.received and b"x-b: 2\r\n" in upstream.received, \
            upstream.received
        # 150 crumbs are one field, as the one line they become (and the same cookie over HTTP/1.1) is: they were
        # counted one field each against the 100-field limit and refused 431 (an HTTP/2 probe). 99 other fields
        # beside them still pass, and a 101st field is still refused.
        crumbs = [(b"cookie", b"c%d=1" % i) for i in range(150)]
        others = [(b"x-f%d" % i, b"1") for i in range(99)]
        assert h2c_exchange(port, b"/v2/crumbs", crumbs + others)[0] == b"200"
        assert b"cookie: " + b"; ".join(b"c%d=1" % i for i in range(150)) + b"\r\n" in upstream.received
        assert h2c_exchange(port, b"/v2/crumbs", crumbs + others + [(b"x-f99", b"1")])[0] == b"431"
    finally:
        upstream.close()


def test_interim_responses_beyond_the_limit_are_counted(start_exporter, tmp_path):
    """An upstream's 1xx beyond 8 in one exchange is not passed on, and is counted (it was dropped unsaid)."""
    upstream = RecordingUpstream(
        response=b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" * 20 + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    try:
        exporter, port = start(start_exporter, tmp_path, upstream)
        answer = exchange(port, b"GET /v2/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        assert answer.count(b"HTTP/1.1 103 ") == 8 and b"HTTP/1.1 200 OK" in answer, answer
        wait_for(lambda: sample(scrape(exporter)[1], "mlops_proxy_interim_responses_dropped_total",
                                reason="over_limit") == 12, what="the 12 dropped interim responses counted")
    finally:
        upstream.close()
