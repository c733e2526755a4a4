"""What the LLM metrics tests share (tests/e2e/test_llm.py, issue 17, docs/llm.md): the metric names in one place,
the configuration, the scripted OpenAI-compatible upstream (tests/e2e/peers/openai_upstream.py) run as a process,
what its log says a request should have measured, and a raw HTTP/1.1 client that keeps the arrival time of every
byte (for the pass-through and the unbuffered checks)."""
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port, wait_for

# --- Names (the spec of issue 17). When the exporter renames something, change it here only. ----------------------
REQUESTS = "mlops_llm_requests_total"  # {model, version, endpoint, outcome}
IN_FLIGHT = "mlops_llm_requests_in_flight"  # {model, version}
DURATION = "mlops_llm_request_duration_seconds"  # histogram {model, version}
TTFT = "mlops_llm_time_to_first_token_seconds"
ITL = "mlops_llm_inter_token_latency_seconds"
TPOT = "mlops_llm_time_per_output_token_seconds"
TOKENS = "mlops_llm_tokens_total"  # {model, version, type: prompt | completion | cached, source: usage | estimated}
FINISH = "mlops_llm_finish_reasons_total"  # {model, version, reason}
ERRORS = "mlops_llm_errors_total"  # {model, version, reason}
WITHIN = "mlops_llm_requests_within_objective_total"  # {model, version, objective: ttft | tpot | duration | all}
MALFORMED = "mlops_llm_stream_malformed_events_total"  # {model, version}
OTHER_VERSION = "__other__"
ENDPOINTS = {"/v1/chat/completions": "chat_completions", "/v1/completions": "completions",
             "/v1/embeddings": "embeddings", "/v1/responses": "responses"}

# --- The configuration. ---------------------------------------------------------------------------------------------
SERVED = "meta-llama/Llama-3.1-8B-Instruct"
ADAPTER = "sql-lora"
# Goodput objectives chosen far (≥ 4 tolerances) from what the goodput test's scripts do on either side.
OBJECTIVES = {"ttft_seconds": 0.25, "tpot_seconds": 0.05, "duration_seconds": 1.0}
CHAT_MODEL = f"""
  - name: chat
    task: text_generation
    versions: [default, sql]
    llm:
      served_names: [{SERVED}]
      adapters: {{{ADAPTER}: sql}}
      objectives: {{{", ".join(f"{k}: {v}" for k, v in OBJECTIVES.items())}}}
"""
CATCH_ALL_MODEL = """
  - name: fallback
    task: text_generation
    versions: [default]
    llm:
      catch_all: true
"""
MODELS = "models:" + CHAT_MODEL + CATCH_ALL_MODEL
MODELS_WITHOUT_CATCH_ALL = "models:" + CHAT_MODEL
# The proxy's default routes include the four OpenAI paths with `protocol: openai`: the tests leave `routes` out;
# one test lists them explicitly (OPENAI_ROUTES) to check the key.
OPENAI_ROUTES_YAML = "".join(f"    - {{path: {p}, protocol: openai}}\n" for p in ENDPOINTS)

# --- Tolerances. -----------------------------------------------------------------------------------------------------
# One observation (a TTFT, a duration, one gap) as the proxy times it may differ from the upstream's write times by
# the loopback hops and the scheduling of three processes (the proxy is a debug build; the machine has 2 cores and
# pytest runs two workers, beside builds): 50 ms each way per observation. On a quiet machine the differences were at
# most 5.5 ms; under a load average near 3, 43 ms was seen (a 20 ms tolerance failed 3 runs in 8). Counts are exact.
TOL = 0.050


# --- The upstream. ----------------------------------------------------------------------------------------------------
PEER = Path(__file__).resolve().parent / "peers" / "openai_upstream.py"


class OpenAIUpstream:
    """tests/e2e/peers/openai_upstream.py as a process of its own (its timing is then not disturbed by the test's
    client in the same interpreter), on a port chosen free here."""

    def __init__(self, log_path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_file = open(log_path, "w+")
        self.log_path = log_path
        self.proc = subprocess.Popen([sys.executable, str(PEER), "--port", str(self.port)], stdout=self.log_file,
                                     stderr=subprocess.STDOUT)
        wait_for(self._healthy, timeout=15, what="the OpenAI upstream to answer /_health")

    def _healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"the upstream exited with {self.proc.returncode}: {Path(self.log_path).read_text()}")
        try:
            with urllib.request.urlopen(self.base + "/_health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def record(self, rid, timeout=10):
        """The upstream's record of request `rid`, once the request has ended there (polled)."""
        def get():
            try:
                with urllib.request.urlopen(f"{self.base}/_log/{rid}", timeout=2) as r:
                    return json.load(r)
            except urllib.error.HTTPError:
                return None
        return wait_for(get, timeout=timeout, what=f"the upstream's record of {rid}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


@pytest.fixture(scope="module")
def openai_upstream(tmp_path_factory):
    u = OpenAIUpstream(tmp_path_factory.mktemp("openai-upstream") / "upstream.log")
    yield u
    u.stop()


def sdk_client(port):
    """The official SDK pointed at `port`, without retries (a 429 or 500 must reach the test once)."""
    try:
        import openai
    except ImportError:
        pytest.skip("the openai SDK is not installed (pip install -r tests/requirements.txt)")
    return openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="test-key", max_retries=0, timeout=30)


def script(**fields):
    """The `X-Script` header of a request."""
    return {"X-Script": json.dumps(fields)}


# --- What a request should have measured, from the upstream's record. ------------------------------------------------

class Expected:
    """The upstream's side of one request: TTFT (its last request byte to its first content write), the gaps between
    content writes, duration (to its last write), TPOT over `completion_tokens`. The proxy measures from its own
    copies of these instants: each differs by a loopback hop (within TOL)."""

    def __init__(self, record, completion_tokens=None):
        self.record = record
        content = [e["t"] for e in record["events"] if e["kind"] == "content"]
        self.content_events = len(content)
        t0 = record["t_request"]
        self.ttft = content[0] - t0 if content else None
        self.gaps = [b - a for a, b in zip(content, content[1:])]
        self.itl_sum = content[-1] - content[0] if content else 0.0
        self.duration = record["t_end"] - t0 if record["t_end"] is not None else None
        tokens = completion_tokens if completion_tokens is not None else len(content)
        self.tpot = ((record["t_end"] - content[0]) / (tokens - 1)
                     if content and tokens >= 2 and record["t_end"] is not None else None)


# --- Series. ---------------------------------------------------------------------------------------------------------

def assert_buckets(buckets, observations, tolerance, what):
    """Each cumulative bucket of a histogram holds at least the observations certainly at or below its bound and at
    most those not certainly above it: `observations` are the upstream's side of each one, the proxy's may differ by
    `tolerance` either way."""
    for bound, count in buckets.items():
        surely_in = sum(1 for x in observations if x + tolerance <= bound)
        maybe_in = sum(1 for x in observations if x - tolerance <= bound)
        assert surely_in <= count <= maybe_in, (what, bound, count, surely_in, maybe_in, sorted(observations))


def value(samples, name, **labels):
    """A counter or gauge (0 when the series is absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name, **labels):
    """The sum over the series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def histogram(samples, name, **labels):
    """(count, sum, {le: cumulative count}) of histogram `name{labels}`; zeros when absent."""
    count = value(samples, name + "_count", **labels)
    total_ = value(samples, name + "_sum", **labels)
    buckets = {}
    for (n, ls), v in samples.items():
        d = dict(ls)
        if n == name + "_bucket" and {k: d.get(k) for k in labels} == labels:
            buckets[float(d["le"])] = v
    return count, total_, buckets


def assert_close(actual, expected, tolerance, what):
    assert abs(actual - expected) <= tolerance, f"{what}: {actual:.4f} s measured, {expected:.4f} s ± " \
                                                f"{tolerance:.4f} s expected from the upstream's log"


# --- A raw HTTP/1.1 client with arrival times. ----------------------------------------------------------------------

class RawExchange:
    """One request on a new connection; the response read until its chunked body ends, the peer closes, or
    `timeout`. `reads`: (monotonic time, bytes) of every recv; `status`, `headers`, `body` (de-chunked), `complete`
    (the terminating chunk arrived), `events`: (SSE event bytes with its blank line, arrival time of its last
    byte)."""

    def __init__(self, port, path, body: bytes, headers=None, timeout=30):
        self.sent_body = body
        head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
                f"Content-Length: {len(body)}", "Accept: text/event-stream"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.reads = []
        deadline = time.monotonic() + timeout
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.t_sent = time.monotonic()
            s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            raw = bytearray()
            while time.monotonic() < deadline:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    data = s.recv(65536)
                except socket.timeout:
                    break
                t = time.monotonic()
                if not data:
                    break
                self.reads.append((t, data))
                raw += data
                if self._ended(raw):
                    break
        self._decode(bytes(raw))

    @staticmethod
    def _ended(raw):
        end = raw.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = raw[:end].lower()
        if b"transfer-encoding: chunked" in head:
            rest = raw[end + 4:]
            return rest == b"0\r\n\r\n" or rest.endswith(b"\r\n0\r\n\r\n")
        m = re.search(rb"content-length:\s*(\d+)", head)
        return m is not None and len(raw) - end - 4 >= int(m.group(1))

    def _time_of(self, raw_offset):
        """Arrival time of the raw byte at `raw_offset`."""
        end = 0
        for t, data in self.reads:
            end += len(data)
            if raw_offset < end:
                return t
        raise AssertionError(f"byte {raw_offset} never arrived")

    def _decode(self, raw):
        end = raw.find(b"\r\n\r\n")
        assert end >= 0, f"no response head in {raw[:200]!r}"
        lines = raw[:end].decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = [tuple(p.strip() for p in line.split(":", 1)) for line in lines[1:]]
        fields = {k.lower(): v for k, v in self.headers}
        pos = end + 4
        body, offsets = bytearray(), []  # offsets: (body start, raw start, length) of each piece of chunk data
        self.complete = False
        if "chunked" in fields.get("transfer-encoding", "").lower():
            while True:
                line_end = raw.find(b"\r\n", pos)
                if line_end < 0:
                    break
                size = int(raw[pos:line_end].split(b";")[0], 16)
                pos = line_end + 2
                if size == 0:
                    self.complete = raw[pos:pos + 2] == b"\r\n"
                    break
                piece = raw[pos:pos + size]
                offsets.append((len(body), pos, len(piece)))
                body += piece
                if len(piece) < size or raw[pos + size:pos + size + 2] != b"\r\n":
                    break
                pos += size + 2
        else:
            piece = raw[pos:]
            offsets.append((0, pos, len(piece)))
            body += piece
            self.complete = len(piece) == int(fields.get("content-length", -1))
        self.body = bytes(body)

        def arrival(body_offset):
            for start, raw_start, length in offsets:
                if start <= body_offset < start + length:
                    return self._time_of(raw_start + body_offset - start)
            raise AssertionError(body_offset)

        # SSE: lines end with CRLF, LF or CR; an empty line ends an event.
        self.events = []
        start = line_start = 0
        for m in re.finditer(rb"\r\n|\n|\r", self.body):
            if m.start() == line_start:  # an empty line: the event [start, m.end()) is complete
                if m.start() > start:
                    self.events.append((self.body[start:m.end()], arrival(m.end() - 1)))
                start = m.end()
            line_start = m.end()

    def data_events(self):
        """(data field, arrival time) of the events that have a data field (comments excluded)."""
        out = []
        for text, t in self.events:
            data = [line[5:].lstrip(b" ") for line in re.split(rb"\r\n|\n|\r", text) if line.startswith(b"data:")]
            if data:
                out.append((b"\n".join(data), t))
        return out
