"""Shared fixtures for the end-to-end and oracle tests: build the Swift products once, start the real
binary on a loopback port chosen at run time, and talk to it over HTTP."""

import atexit
import fcntl
import os
import re
import shutil
import tempfile
import signal
import socket
import subprocess
import time
import json
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = os.environ.get("SWIFT_SCRATCH", ".build")


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    """Polls `predicate` until it returns a truthy value or `timeout` passes (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="session")
def binary():
    """Path of the debug `mlops-exporter` binary, built once per session."""
    return build_product("mlops-exporter")


class Exporter:
    """A running mlops-exporter process listening on 127.0.0.1 at a kernel-chosen port."""

    def __init__(self, binary, args, tmp_path, preexec_fn=None, subcommand=("serve",), serve_flags=True):
        """`serve_flags`: add `--web.listen-address 127.0.0.1:0 --log.level debug` (not for another program)."""
        self.log_path = tmp_path / f"exporter-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w+")
        # `--log.level debug` unless the caller sets a level (an option given twice is refused).
        level = ["--log.level", "debug"]
        if any(str(a) == "--log.level" or str(a).startswith("--log.level=") for a in args):
            level = []
        common = ["--web.listen-address", "127.0.0.1:0", *level] if serve_flags else []
        self.proc = subprocess.Popen(
            [str(binary), *subcommand, *common, *args],
            stdout=self.log, stderr=self.log, cwd=ROOT, preexec_fn=preexec_fn,
        )
        try:
            port = wait_for(self._port_from_log, timeout=30, what="exporter to log its listen address")
        except BaseException:
            # Never announced a port (a flag that silences the announcement, a hang): not left running for the rest
            # of the session, where a stray exporter spinning skewed every later timing.
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=30)
            raise
        self.port = int(port)
        self.base = f"http://127.0.0.1:{self.port}"

    def _port_from_log(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"exporter exited with {self.proc.returncode}: {self.log_path.read_text()}")
        m = re.search(r"127\.0\.0\.1:(\d+)", self.log_path.read_text())
        return m.group(1) if m else None

    def get(self, path="/metrics", headers=None, method="GET", timeout=10, data=None):
        req = urllib.request.Request(self.base + path, headers=headers or {}, method=method, data=data)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def post(self, path, body: bytes, headers=None, timeout=30):
        """POSTs `body`; returns (status, headers, body) also for error statuses."""
        return self.get(path, headers=headers, method="POST", timeout=timeout, data=body)

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def fd_targets(self):
        """What each of the exporter's descriptors is (`socket:[…]`, `anon_inode:[eventfd]`, a path): for telling a
        connection left open from a descriptor the runtime opened lazily (Dispatch's eventfd and timerfd)."""
        targets = []
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                targets.append(os.readlink(f"/proc/{self.proc.pid}/fd/{fd}"))
            except OSError:
                pass  # closed meanwhile
        return targets

    def open_sockets(self):
        return sum(1 for target in self.fd_targets() if target.startswith("socket:"))

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def start_exporter(binary, tmp_path):
    """Factory: start_exporter(*args, preexec_fn=None) -> Exporter; every process is stopped after the test."""
    started = []

    def start(*args, preexec_fn=None):
        e = Exporter(binary, list(args), tmp_path, preexec_fn=preexec_fn)
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop(signal.SIGKILL)


_private_binaries = None


def build_product(product, configuration="debug"):
    """Builds a Swift executable product (`debug` or `release`) and returns the path of a copy private to this
    process. pytest workers build at different moments, and a build that relinks a product while another worker
    starts it makes that start fail with ETXTBSY (seen in CI with three workers): each worker runs its own copy,
    made under a lock that every worker's build holds too.

    With MLOPS_TEST_BIN_DIR set (scripts/test sets it to the debug products its `swift build --build-tests` has just
    made), a debug product is taken from there as it is, and nothing is built: a worker's first `swift build
    --product` after that build was no no-op (it recompiled SwiftProtobuf and relinked, 32 s on a fresh clone), and
    the three workers waited for it in turn (setups of 25-60 s in CI)."""
    global _private_binaries
    prebuilt = os.environ.get("MLOPS_TEST_BIN_DIR")
    if prebuilt and configuration == "debug":
        path = Path(prebuilt) / product
        if not path.is_file():
            pytest.fail(f"MLOPS_TEST_BIN_DIR={prebuilt}: {product} is not there (build it first)", pytrace=False)
        return path
    if _private_binaries is None:
        _private_binaries = Path(tempfile.mkdtemp(prefix=f"mlops-pytest-bin-{os.getpid()}-"))
        atexit.register(shutil.rmtree, _private_binaries, True)
    (ROOT / SCRATCH).mkdir(exist_ok=True)
    with open(ROOT / SCRATCH / ".pytest-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(
            ["swift", "build", "-c", configuration, "--scratch-path", SCRATCH, "--product", product],
            cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        )
        path = ROOT / SCRATCH / configuration / product
        assert path.exists(), path
        copy = _private_binaries / configuration / product
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
    return copy


def free_port():
    """A port that was free a moment ago, for peers that cannot report the one they bound."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prometheus(tmp_path):
    """Starts Prometheus with a generated config; yields (start_fn) taking the exporter's port."""
    procs = []

    def start(target_port, scrape_configs=None, rule_files=(), extra="", name=None, flags=()):
        """`scrape_configs`: the YAML list to use instead of one plain `mlops` job on `target_port`;
        `rule_files`: rule files to load (evaluated every second); `extra`: more top-level configuration
        (`alerting`, `remote_write`); `name`: a folder of its own for a second Prometheus in one test; `flags`: more
        command-line flags (`--web.enable-remote-write-receiver`)."""
        port = free_port()
        home = tmp_path / name if name else tmp_path
        home.mkdir(exist_ok=True)
        config = home / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            + ("rule_files:\n" if rule_files else "")
            + "".join(f"  - {json.dumps(str(f))}\n" for f in rule_files)
            + extra
            + "scrape_configs:\n"
            + (scrape_configs or (
                "  - job_name: mlops\n"
                f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"))
        )
        log = open(home / "prometheus.log", "w")
        proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={home / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", *flags],
            stdout=log, stderr=log,
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"

        def ready():
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(ready, timeout=60, what="prometheus ready")
        return base

    yield start
    # Last started first: a Prometheus that remote-writes to an earlier one flushes to it while stopping.
    for p in reversed(procs):
        p.terminate()
        p.wait(timeout=30)


def query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def scalar(base, expr):
    result = query(base, expr)
    return float(result[0]["value"][1]) if result else None


def scrape(exporter):
    """GET /metrics in the text format: (text, {(name, sorted label pairs): value}), the parse by
    prometheus_client."""
    from prometheus_client.parser import text_string_to_metric_families

    status, _, body = exporter.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})
    assert status == 200, status
    text = body.decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return text, samples


def sample(samples, name, **labels):
    """The value of the series `name{labels}` in a `scrape` result; None when it is absent."""
    return samples.get((name, tuple(sorted(labels.items()))))


class WriteReceiver:
    """An HTTP receiver (a remote write endpoint) on a free loopback port that answers every POST `status` with
    `headers` and notes when each arrived, on the monotonic clock; `close()` stops it."""

    def __init__(self, status=204, headers=None):
        import http.server
        import threading

        arrivals = self.arrivals = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrivals.append(time.monotonic())
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def since(self, instant):
        return sum(1 for t in self.arrivals if t >= instant)

    def close(self):
        self.server.shutdown()
