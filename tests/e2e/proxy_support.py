"""What the reverse-proxy tests share (tests/e2e/test_proxy.py, test_proxy_peers.py): the proxy's names (configuration
keys, metric families, label values, reasons) in one place, the `proxy:` section of a configuration file, an exporter
started with a proxy listening on a port the kernel chose, and plain HTTP/1.1 calls that return every header
line and the body bytes as received."""
import http.client
import re
import signal
import socket
import time

import pytest

from conftest import Exporter, wait_for

# --- Names (docs/proxy.md). When the proxy renames something, change it here only. ---------------------------------
PROXY_REQUESTS = "mlops_proxy_requests_total"  # {model}
PROXY_UPSTREAM_ERRORS = "mlops_proxy_upstream_errors_total"  # {model, reason}
PROXY_CAPTURE_FAILURES = "mlops_proxy_capture_failures_total"  # {model, reason}
PROXY_CANCELLED = "mlops_proxy_client_cancelled_total"  # {model}
PROXY_CAPTURED = "mlops_proxy_captured_total"  # {model}: exchanges decoded into predictions
PROXY_UPSTREAM_OPEN = "mlops_proxy_upstream_connections"  # gauge: connections to the upstream open now
UNROUTED = "__unrouted__"  # the model label of a request no route (or no configured model) claims
UPSTREAM_ERROR_REASONS = ("connect_refused", "connect_failed", "connect_timeout", "reset", "response_timeout",
                          "read_timeout", "bad_response", "pool_full")
TOO_LARGE = "too_large"  # capture failure of a body over capture.max_body_bytes
REQUEST_ID_HEADER = "X-Request-Id"
DEFAULT_VERSION = "default"  # the version of a routed request whose path and response name none
# Model service series fed by the proxy (docs/proxy.md, "What is recorded"): one latency observation per proxied
# exchange; requests one per captured row (as the ingestion API counts predictions), or one per exchange that was
# not captured (an error status, a capture failure, too large, not sampled); predicted classes, ingest counts and
# drift observations one per captured row.
MODEL_REQUESTS = "mlops_model_requests_total"  # {model, version, status: ok | error}
MODEL_LATENCY_COUNT = "mlops_model_latency_seconds_count"  # {model, version}
MODEL_ERRORS = "mlops_model_errors_total"  # {model, version, kind}: http_<status>, or the proxy's failure reason
HTTP_ERROR_KIND = "http_{status}"
PREDICTED_CLASS = "mlops_model_predicted_class_total"  # {model, version, class}
INGEST_EVENTS = "mlops_ingest_events_total"  # {model, kind}
WINDOW_OBSERVATIONS = "mlops_feature_window_observations"  # {model, feature}
LABELS_JOINED = "mlops_labels_joined_total"  # {model, source}
# A generated request id: `<instance>~<ULID>` (docs/storage.md, "Labels in a fleet"), ULID in Crockford base 32.
GENERATED_ID = r"{instance}~[0-9A-HJKMNP-TV-Z]{{26}}"

DEFAULT_ROUTES = ("/v2/models/{model}/versions/{version}/infer", "/v2/models/{model}/infer",
                  "/v1/models/{model}:predict")


def proxy_section(listen_port, upstream, routes=None, connect_timeout="2s", response_timeout="10s",
                  read_timeout="10s", max_connections=64, max_body_bytes=1048576, sample_rate=1.0, max_waiting=None,
                  inject_include_usage=False, idle_timeout=None):
    """The `proxy:` section of a configuration file (YAML). `routes`: (path, model or None, or a dict of the route's
    other fields) pairs; None keeps the default routes."""
    text = (
        "proxy:\n"
        f"  listen: [\"127.0.0.1:{listen_port}\"]\n"
        f"  upstream: {upstream}\n"
        f"  connect_timeout: {connect_timeout}\n"
        f"  response_timeout: {response_timeout}\n"
        f"  read_timeout: {read_timeout}\n"
        f"  max_connections: {max_connections}\n"
        + (f"  max_waiting: {max_waiting}\n" if max_waiting is not None else "")
        + (f"  idle_timeout: {idle_timeout}\n" if idle_timeout is not None else "") +
        f"  request_id_header: {REQUEST_ID_HEADER}\n"
        f"  capture: {{max_body_bytes: {max_body_bytes}, sample_rate: {sample_rate}}}\n"
        + ("  inject_include_usage: true\n" if inject_include_usage else "")
    )
    if routes is not None:
        text += "  routes:\n"
        for path, model in routes:
            text += f"    - path: \"{path}\"\n"
            if isinstance(model, dict):
                text += "".join(f"      {key}: \"{value}\"\n" for key, value in model.items())
            elif model is not None:
                text += f"      model: {model}\n"
    return text


class ProxiedExporter(Exporter):
    """An exporter whose configuration has a `proxy:` section: its web port is the one its `listening` line logs; its
    proxy port the one its `proxy listening` line logs (the proxy listens on port 0, a port the kernel chooses: one
    picked free beforehand could be taken by the web listener's own port 0 in the meantime); `proxy` talks to it."""

    def __init__(self, binary, args, tmp_path):
        super().__init__(binary, args, tmp_path)
        self.proxy_port = int(wait_for(self._proxy_port_from_log, timeout=15, what="the proxy to log its address"))
        self.proxy = Client("127.0.0.1", self.proxy_port)
        wait_for(self._proxy_accepts, timeout=15, what=f"the proxy to listen on {self.proxy_port}")

    def _port_from_log(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"exporter exited with {self.proc.returncode}: {self.log_path.read_text()}")
        # The exporter's own "listening" line (the proxy's is "proxy listening").
        for line in self.log_path.read_text().splitlines():
            if "msg=listening " in line:
                ports = re.findall(r"127\.0\.0\.1:(\d+)", line.split("addresses=", 1)[-1].split(" ", 1)[0])
                if ports:
                    return ports[0]
        return None

    def _proxy_port_from_log(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"exporter exited with {self.proc.returncode}: {self.log_path.read_text()}")
        m = re.search(r'msg="proxy listening" addresses=127\.0\.0\.1:(\d+)', self.log_path.read_text())
        return m.group(1) if m else None

    def _proxy_accepts(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"exporter exited with {self.proc.returncode}: {self.log_path.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", self.proxy_port), timeout=1).close()
            return True
        except OSError:
            return False


@pytest.fixture
def start_proxy(binary, tmp_path):
    """Factory: start_proxy(models_yaml, upstream, *args, routes=None, **proxy_options) -> ProxiedExporter, with the
    proxy section appended to `models_yaml`; every process is stopped after the test."""
    started = []

    def start(models_yaml, upstream, *args, routes=None, **options):
        config = tmp_path / f"proxy-{len(started)}.yaml"
        config.write_text(models_yaml + proxy_section(0, upstream, routes, **options))
        e = ProxiedExporter(binary, ["--config", str(config), *args], tmp_path)
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop(signal.SIGKILL)


class Client:
    """Plain HTTP/1.1 calls to one host and port, a new connection each (so that nothing is shared between the
    direct and the proxied call); `call` returns (status, [(name, value)] as received, body bytes)."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.base = f"http://{host}:{port}"

    def call(self, method, path, body=None, headers=None, timeout=30):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            c.close()

    def open(self, method, path, body=None, headers=None, timeout=30):
        """Sends a request and returns (connection, response) with the body unread."""
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        c.request(method, path, body=body, headers=headers or {})
        return c, c.getresponse()


# Headers that describe the content (or that the upstream set for its client): the proxy passes them unchanged.
# Date and Server may differ; hop-by-hop ones are the proxy's own; the request id is the proxy's to add.
NOT_CONTENT = {"date", "server", "connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer",
               "upgrade", REQUEST_ID_HEADER.lower()}


def read_head(sock):
    """The bytes `sock` receives up to the end of a message head (`\\r\\n\\r\\n`), asserting the peer does not close
    first; what came after the head, if anything, is included."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


def content_headers(headers):
    """The header lines that must be byte-identical through the proxy, names lowercased, sorted by name: the order of
    fields of different names carries no meaning (RFC 9110 §5.3), that of lines of the same name does (kept)."""
    return sorted(((k.lower(), v) for k, v in headers if k.lower() not in NOT_CONTENT), key=lambda field: field[0])


def header(headers, name):
    values = [v for k, v in headers if k.lower() == name.lower()]
    return values[0] if len(values) == 1 else (values or None)


def elapsed(function):
    """(result, seconds) of calling `function`."""
    t = time.monotonic()
    result = function()
    return result, time.monotonic() - t
