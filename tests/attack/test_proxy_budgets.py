"""The process-wide memory bounds hold for the web port and the proxy's port together (docs/security.md): the bytes of
request bodies held, and their gauge. Each port's server had a budget of its own: together they held twice
`--web.max-buffered-body-bytes` (an attacker of the proxy held 256 MiB on each port), and what the proxy's port held
was on no gauge (mlops_exporter_http_buffered_body_bytes read 0)."""
import re
import socket

from conftest import sample, scrape, wait_for
from test_proxy_smuggling import RecordingUpstream, start

KiB = 1024
BUDGET = 1024 * KiB
# A body for the web port's handler reserves its whole announced Content-Length when it is admitted; one the proxy
# streams to its upstream, a window of 64 KiB for as long as it lasts.
WINDOW = 64 * KiB
PREDICTIONS = "/api/v1/models/credit/predictions"
INFER = "/v2/models/credit/infer"


def hold_body(port, path, length):
    """A POST announcing `length` body bytes, of which 16 KiB are sent: the connection, left open, holds its budget."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
              f"Content-Length: {length}\r\n\r\n".encode() + b" " * (16 * KiB))
    return s


def status_of(sock, timeout=5):
    """The status of the first answer on `sock`, or None when none came within `timeout`."""
    sock.settimeout(timeout)
    try:
        head = sock.recv(4096)
    except OSError:
        return None
    m = re.match(rb"HTTP/1\.1 (\d{3})", head)
    return int(m.group(1)) if m else None


def buffered(exporter):
    return sample(scrape(exporter)[1], "mlops_exporter_http_buffered_body_bytes")


def test_the_web_port_and_the_proxy_share_one_body_budget(start_exporter, tmp_path):
    upstream = RecordingUpstream()
    try:
        exporter, proxy_port = start(start_exporter, tmp_path, upstream, "--web.max-buffered-body-bytes", str(BUDGET),
                                     "--web.max-body-bytes", str(BUDGET))
        # A body held on the web port leaves no room for one on the proxy's ...
        held = BUDGET - 32 * KiB
        web = hold_body(exporter.port, PREDICTIONS, held)
        wait_for(lambda: buffered(exporter) >= held, timeout=10, what="the web port's body on the gauge")
        refused = hold_body(proxy_port, INFER, 256 * KiB)
        assert status_of(refused) == 503
        refused.close()
        web.close()
        wait_for(lambda: buffered(exporter) == 0, timeout=10, what="the web port's body to be let go")
        # ... and bodies held on the proxy's port are on the gauge, and leave no room on the web port.
        proxied = [hold_body(proxy_port, INFER, 256 * KiB) for _ in range(15)]
        wait_for(lambda: buffered(exporter) >= 15 * WINDOW, timeout=10, what="the proxy port's bodies on the gauge")
        refused = hold_body(exporter.port, PREDICTIONS, 128 * KiB)
        assert status_of(refused) == 503
        refused.close()
        for s in proxied:
            s.close()
        _, samples = scrape(exporter)
        assert sample(samples, "mlops_proxy_client_connection_errors_total", reason="body_memory") == 1
        assert sample(samples, "mlops_exporter_http_errors_total", reason="body_memory") == 1
        assert sample(samples, "mlops_exporter_http_buffered_body_limit_bytes") == BUDGET
    finally:
        upstream.close()


def test_out_of_descriptors_silent_connections_on_the_proxy_port_make_room_for_a_scrape(start_exporter, tmp_path):
    """Connections that send nothing to the proxy's port take every descriptor the process may open: a scrape on the
    web port gets in within the eviction age (1 s) and a moment, the oldest of them evicted to make room (counted on
    the proxy's side). The two servers share the process's descriptors (docs/security.md); each evicted only its own,
    and the scrape waited for their header timeout (10 s; a probe found it)."""
    import resource
    import time

    upstream = RecordingUpstream()
    limit = 48
    silent = []
    try:
        exporter, proxy_port = start(
            start_exporter, tmp_path, upstream,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
        for _ in range(limit):
            before = exporter.open_fds()
            if before >= limit:
                break
            silent.append(socket.create_connection(("127.0.0.1", proxy_port), timeout=5))
            wait_for(lambda: exporter.open_fds() > before, timeout=5, what="the silent connection accepted")
        assert exporter.open_fds() == limit
        time.sleep(1.2)  # the silent connections pass the eviction age (1 s): a duration waited out
        started = time.monotonic()
        assert exporter.get("/-/healthy", timeout=8)[0] == 200
        assert time.monotonic() - started < 4
        assert sample(scrape(exporter)[1], "mlops_proxy_client_connection_errors_total", reason="evicted") >= 1
    finally:
        for c in silent:
            c.close()
        upstream.close()
