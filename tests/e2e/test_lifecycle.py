"""Stopping under traffic and signals, with the proxy configured (a probe of the lifecycle found these): the web and
proxy ports stop under one deadline, a storm of SIGHUPs does not keep a SIGTERM waiting behind it, and signals during
the stop never turn a graceful exit into a death by signal."""

import http.server
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import WriteReceiver, wait_for
from proxy_support import start_proxy  # noqa: F401

MODELS = """
models:
  - name: credit
    task: binary_classification
    versions: [v1]
    classes: ["0", "1"]
    positive_class: "1"
    features: [{name: x0, type: numeric}]
    collectors: [service]
    capture: {protocol: open_inference_v2}
"""


class SlowUpstream:
    """An upstream answering every request with a chunked body of one chunk every 0.2 s for `seconds` (a stream)."""

    def __init__(self, seconds=30):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                deadline = time.monotonic() + seconds
                try:
                    while time.monotonic() < deadline:
                        self.wfile.write(b"7\r\ndata: x\r\n")
                        self.wfile.flush()
                        time.sleep(0.2)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def slow_upstream():
    upstream = SlowUpstream()
    yield upstream
    upstream.close()


def stop_seconds(exporter, sig=signal.SIGTERM):
    began = time.monotonic()
    exporter.proc.send_signal(sig)
    rc = exporter.proc.wait(timeout=60)
    return time.monotonic() - began, rc


def test_a_stream_on_the_proxy_and_a_slow_upload_stop_under_one_deadline(start_proxy, slow_upstream):
    """Before, the proxy drained first with the whole `--shutdown-timeout`, then the web port with it again: 6 s for a
    3 s timeout, the web port serving all along, and a supervisor's SIGKILL came before the last checkpoint."""
    exporter = start_proxy(MODELS, slow_upstream.url, "--shutdown-timeout", "2")
    stream = socket.create_connection(("127.0.0.1", exporter.proxy_port))
    stream.sendall(b"POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    wait_for(lambda: b"data: x" in stream.recv(4096), timeout=10, what="the stream through the proxy")
    upload = socket.create_connection(("127.0.0.1", exporter.port))
    upload.sendall(b"POST /api/v1/models/credit/predictions HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n" + b" " * 1000)
    took, rc = stop_seconds(exporter)
    assert rc == 0
    assert took < 3.5, f"stopped after {took:.1f} s with --shutdown-timeout 2"
    stream.close()
    upload.close()


def test_a_storm_of_sighups_does_not_hold_back_sigterm(start_proxy, slow_upstream):
    """40 SIGHUPs, then SIGTERM: before, each SIGHUP was a reload of its own (with the proxy, up to 5 s each, waiting
    for the routings the reloads replaced) and SIGTERM waited 19 s behind them, the exporter ready and serving."""
    exporter = start_proxy(MODELS, slow_upstream.url, "--shutdown-timeout", "2")
    for _ in range(40):
        exporter.proc.send_signal(signal.SIGHUP)
        time.sleep(0.03)
    took, rc = stop_seconds(exporter)
    assert rc == 0
    assert took < 9, f"stopped {took:.1f} s after SIGTERM"
    reloads = exporter.log_path.read_text().count("SIGHUP")
    assert reloads < 40, "every SIGHUP was a reload of its own"


def test_remote_write_keeps_time_for_its_staleness_markers(start_proxy, slow_upstream):
    """A stream held open to the deadline: the drains leave remote write a slice of it for the staleness markers (the
    stopped exporter's series end at once on the receiver). Before, the drains took it all and no marker was sent,
    silently."""
    receiver = WriteReceiver()
    posts = receiver.arrivals
    try:
        models = MODELS + (f"remote_write:\n  url: http://127.0.0.1:{receiver.port}/api/v1/write\n"
                           "  interval: 60s\n  timeout: 2s\n")
        exporter = start_proxy(models, slow_upstream.url, "--shutdown-timeout", "3")
        wait_for(lambda: posts, timeout=10, what="a first remote write")
        stream = socket.create_connection(("127.0.0.1", exporter.proxy_port))
        stream.sendall(b"POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        wait_for(lambda: b"data: x" in stream.recv(4096), timeout=10, what="the stream through the proxy")
        stopping = time.monotonic()
        took, rc = stop_seconds(exporter)
        assert rc == 0 and took < 4, took
        # The markers: the one write after the stop began (the interval's next write is a minute after the first).
        assert any(t > stopping for t in posts), (stopping, posts, exporter.log_path.read_text()[-1500:])
        stream.close()
    finally:
        receiver.close()


def test_signals_during_the_stop_never_kill_it(start_proxy, slow_upstream):
    """SIGHUPs every few milliseconds through a stop: before, one that came after the handlers were put back took the
    default action and the exporter exited 129 after stopping cleanly (4 of 16 runs)."""
    for _ in range(6):
        exporter = start_proxy(MODELS, slow_upstream.url, "--shutdown-timeout", "1")
        pid = exporter.proc.pid
        hammer = subprocess.Popen(
            ["bash", "-c", f"kill -TERM {pid}; for i in $(seq 300); do kill -HUP {pid} 2>/dev/null || exit 0; "
                           "sleep 0.003; done"])
        rc = exporter.proc.wait(timeout=60)
        hammer.wait(timeout=60)
        assert rc == 0, exporter.log_path.read_text()[-2000:]
