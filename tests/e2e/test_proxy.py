"""The reverse proxy of `mlops-exporter serve` (issue 16, docs/proxy.md) in front of an upstream the test controls
(tests/e2e/peers/faulty_upstream.py): what a client receives through the proxy equals what it receives directly;
hop-by-hop headers, X-Forwarded-*, request ids (joined by delayed labels); per-model counts checked against what was
sent; every upstream fault answered and counted; streamed responses flushed event by event (measured); a bounded
pool; 5 MB bodies both ways; RSS flat over 100,000 proxied requests (h2load)."""
import hashlib
import http.client
import json
import re
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from contextlib import contextmanager

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from conftest import free_port, sample, scrape, wait_for
from peers.faulty_upstream import WEIGHTS, Response, Upstream, body_bytes, json_response
from proxy_support import (
    DEFAULT_ROUTES, GENERATED_ID, HTTP_ERROR_KIND, INGEST_EVENTS, LABELS_JOINED, MODEL_ERRORS, MODEL_LATENCY_COUNT,
    MODEL_REQUESTS,
    PREDICTED_CLASS, PROXY_CANCELLED, PROXY_CAPTURE_FAILURES, PROXY_CAPTURED, PROXY_REQUESTS, PROXY_UPSTREAM_ERRORS,
    PROXY_UPSTREAM_OPEN, REQUEST_ID_HEADER, TOO_LARGE, UNROUTED, Client, content_headers, elapsed, header, read_head,
    start_proxy)  # noqa: F401

FEATURES = "[{name: x0, type: numeric}, {name: x1, type: numeric}, {name: x2, type: numeric}, {name: x3, type: numeric}]"
MODELS = f"""
models:
  - name: credit
    task: binary_classification
    versions: [default, v1, v7]
    classes: ["0", "1"]
    positive_class: "1"
    features: {FEATURES}
    collectors: [service, quality]
    capture: {{protocol: open_inference_v2}}
  - name: credit-v1
    task: binary_classification
    versions: [default]
    classes: ["0", "1"]
    positive_class: "1"
    features: {FEATURES}
    collectors: [service]
    capture: {{protocol: kserve_v1}}
  - name: credit-mlflow
    task: binary_classification
    versions: [default]
    classes: ["0", "1"]
    positive_class: "1"
    features: {FEATURES}
    collectors: [service]
    capture: {{protocol: mlflow}}
  - name: credit-load
    task: binary_classification
    versions: [v7]
    classes: ["0", "1"]
    positive_class: "1"
    features: {FEATURES}
    collectors: [service, quality]
    max_pending: 1000
    capture: {{protocol: open_inference_v2}}
"""
ROUTES = [(path, None) for path in DEFAULT_ROUTES] + [("/invocations", "credit-mlflow")]
JSON = {"Content-Type": "application/json"}
MIB = 1 << 20


@pytest.fixture
def upstream():
    u = Upstream(model_version="v7")
    yield u
    u.close()


def predict(batch):
    """The upstream's toy model, computed here independently: class 1 when the row's dot product is positive."""
    return (np.asarray(batch) @ np.array(WEIGHTS) > 0).astype(int)


def v2_body(batch, request_id=None):
    document = {"inputs": [{"name": "input-0", "shape": list(batch.shape), "datatype": "FP64",
                            "data": batch.flatten().tolist()}]}
    if request_id:
        document["id"] = request_id
    return json.dumps(document).encode()


def v1_body(batch):
    return json.dumps({"instances": batch.tolist()}).encode()


def mlflow_body(batch):
    return json.dumps({"dataframe_split": {"columns": ["x0", "x1", "x2", "x3"], "data": batch.tolist()}}).encode()


def assert_same(direct, proxied, what):
    """Status, body bytes and content headers of the proxied exchange equal the direct one's."""
    assert proxied[0] == direct[0], (what, proxied[0], direct[0], proxied[2][:200])
    assert proxied[2] == direct[2], (what, proxied[2][:200], direct[2][:200])
    assert content_headers(proxied[1]) == content_headers(direct[1]), (what, proxied[1], direct[1])


def quiet_scrape(e, interval=0.1, timeout=15):
    """The scrape once the model and proxy series stopped changing (two scrapes `interval` apart agree), polled with
    a deadline: an exchange is recorded just after the loop flushed its response, so a scrape right after the
    client's last answer may come before it."""
    def series(s):
        return {k: v for k, v in s.items() if k[0].startswith(("mlops_model_", "mlops_proxy_"))}

    last = scrape(e)
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(interval)
        now = scrape(e)
        if series(now[1]) == series(last[1]) or time.monotonic() > deadline:
            return now
        last = now


def count(s, name, expected, **labels):
    """Asserts that series `name{labels}` is `expected`; a series expected at 0 may also be absent (not yet
    created), one expected above 0 must be there."""
    value = sample(s, name, **labels)
    if expected == 0:
        assert value in (None, 0), (name, labels, value)
    else:
        assert value == expected, (name, labels, value, expected)


def one_line_text(status, headers, body, code):
    """A proxy-made failure: the status, text/plain, one line."""
    assert status == code, (status, body)
    assert (header(headers, "Content-Type") or "").startswith("text/plain"), headers
    assert body.endswith(b"\n") and body.count(b"\n") == 1 and len(body) > 1, body


def test_exchanges_through_the_proxy_equal_direct_ones_and_are_counted_per_model(start_proxy, upstream):
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    direct = Client("127.0.0.1", upstream.port)
    # A routed model whose upstream fails (5xx: an error) or refuses the request (4xx: served, ok).
    upstream.fixed["/v2/models/credit/versions/default/infer"] = Response(
        503, [("Content-Type", "application/json"), ("Retry-After", "3")], b'{"error": "model overloaded"}')
    rng = np.random.default_rng(16)
    rows = {"v7": [], "v1": [], "credit-v1": [], "credit-mlflow": []}
    calls = []
    for i in range(6):
        batch = rng.normal(size=(1 + i % 3, 4))
        # The version: the v2 response's model_version (v7), or the path's (v1) before the response's.
        calls.append(("POST", "/v2/models/credit/infer", v2_body(batch, f"r{i}"), "v7", batch))
        calls.append(("POST", "/v2/models/credit/versions/v1/infer", v2_body(batch), "v1", batch))
        calls.append(("POST", "/v1/models/credit-v1:predict", v1_body(batch), "credit-v1", batch))
        calls.append(("POST", "/invocations", mlflow_body(batch), "credit-mlflow", batch))
    calls += [("POST", "/v2/models/credit/versions/default/infer", v2_body(rng.normal(size=(2, 4))), None, None)] * 2
    calls.append(("POST", "/v1/models/credit-v1:predict", b'{"instances": "not rows"}', None, None))
    unrouted = [
        ("GET", "/metrics", None),  # the proxy port is not the exporter's: the upstream's 404
        ("GET", "/status/500", None), ("GET", "/status/404", None), ("DELETE", "/echo", None),
        ("POST", "/v2/models/ghost/infer", v2_body(rng.normal(size=(1, 4)))),  # a model that is not configured
        ("GET", "/big?bytes=300000&seed=2&chunked=1", None), ("GET", "/big?bytes=300000&seed=2", None),
    ]
    for method, path, body, key, batch in calls:
        headers = JSON if body else {}
        assert_same(direct.call(method, path, body, headers), e.proxy.call(method, path, body, headers), path)
        if key:
            rows[key].append(batch)
    for method, path, body in unrouted:
        d, p = direct.call(method, path, body), e.proxy.call(method, path, body)
        if path == "/echo":  # the echo lists the request's headers, which the proxy adds to: compare the rest
            d, p = json.loads(d[2]), json.loads(p[2])
            assert (p["method"], p["target"], p["body_length"]) == (d["method"], d["target"], d["body_length"])
        else:
            assert_same(d, p, path)
    assert e.get("/metrics")[0] == 200  # the exporter's own port still serves its metrics

    _, s = quiet_scrape(e)
    count(s, PROXY_REQUESTS, 6 + 6 + 2, model="credit")
    count(s, PROXY_REQUESTS, 6 + 1, model="credit-v1")
    count(s, PROXY_REQUESTS, 6, model="credit-mlflow")
    count(s, PROXY_REQUESTS, len(unrouted), model=UNROUTED)
    count(s, PROXY_CAPTURED, 6 + 6, model="credit")
    count(s, PROXY_CAPTURED, 6, model="credit-v1")
    count(s, PROXY_CAPTURED, 6, model="credit-mlflow")
    # Responses by status class, whatever error_statuses says (the 400 of credit-v1 counted: before, no series did).
    for model, classes in (("credit", {"2xx": 12, "5xx": 2}), ("credit-v1", {"2xx": 6, "4xx": 1}),
                           ("credit-mlflow", {"2xx": 6}), (UNROUTED, {"2xx": 4, "4xx": 2, "5xx": 1})):
        for code in ("1xx", "2xx", "3xx", "4xx", "5xx"):
            count(s, "mlops_proxy_responses_total", classes.get(code, 0), model=model, code=code)
    # One latency observation per proxied exchange; requests: the rows of a captured exchange, or one for an exchange
    # that is not (5xx: an error; the 400 is served, ok, and not captured: not a 2xx).
    n = {key: sum(len(b) for b in batches) for key, batches in rows.items()}
    for model, version, ok, error, exchanges in (
            ("credit", "v7", n["v7"], 0, 6), ("credit", "v1", n["v1"], 0, 6), ("credit", "default", 0, 2, 2),
            ("credit-v1", "default", n["credit-v1"] + 1, 0, 7), ("credit-mlflow", "default", n["credit-mlflow"], 0, 6)):
        count(s, MODEL_REQUESTS, ok, model=model, version=version, status="ok")
        count(s, MODEL_REQUESTS, error, model=model, version=version, status="error")
        count(s, MODEL_LATENCY_COUNT, exchanges, model=model, version=version)
    count(s, MODEL_ERRORS, 2, model="credit", version="default", kind=HTTP_ERROR_KIND.format(status=503))
    # One event per row, with the toy model's predictions (computed here).
    for model, version, key in (("credit", "v7", "v7"), ("credit", "v1", "v1"), ("credit-v1", "default", "credit-v1"),
                                ("credit-mlflow", "default", "credit-mlflow")):
        predicted = predict(np.vstack(rows[key]))
        for cls in (0, 1):
            count(s, PREDICTED_CLASS, int((predicted == cls).sum()), model=model, version=version, **{"class": str(cls)})
    count(s, INGEST_EVENTS, sum(len(b) for b in rows["v7"] + rows["v1"]), model="credit", kind="predictions")
    count(s, INGEST_EVENTS, sum(len(b) for b in rows["credit-v1"]), model="credit-v1", kind="predictions")
    count(s, INGEST_EVENTS, sum(len(b) for b in rows["credit-mlflow"]), model="credit-mlflow", kind="predictions")
    for reason in ("connect_refused", "connect_timeout", "reset", "response_timeout", "read_timeout", "bad_response"):
        for model in ("credit", UNROUTED):
            count(s, PROXY_UPSTREAM_ERRORS, 0, model=model, reason=reason)


def test_pointer_routes_take_the_model_and_the_version_from_the_request_body(start_proxy, upstream):
    e = start_proxy(MODELS, upstream.base, routes=[
        ("/v2/models/shared/infer", {"model_pointer": "/parameters/model"}),
        ("/v2/models/{model}/infer", {"version_pointer": "/parameters/version"})])
    rng = np.random.default_rng(5)
    sent = {"credit": [], "credit-load": []}

    def call(model, batch):
        document = json.loads(v2_body(batch))
        document["parameters"] = {"model": model}
        status, _, answer = e.proxy.call("POST", "/v2/models/shared/infer", json.dumps(document).encode(), JSON)
        assert status == 200, answer

    for i in range(8):
        model = "credit" if i % 2 else "credit-load"
        batch = rng.normal(size=(1 + i % 3, 4))
        call(model, batch)
        sent[model].append(batch)
    call("ghost", rng.normal(size=(1, 4)))  # no such model: unrouted
    # The version from the body comes before the response's model_version (v7).
    versioned = []
    for i in range(3):
        batch = rng.normal(size=(2, 4))
        document = json.loads(v2_body(batch))
        document["parameters"] = {"version": "v1"}
        status, _, answer = e.proxy.call("POST", "/v2/models/credit/infer", json.dumps(document).encode(), JSON)
        assert status == 200, answer
        versioned.append(batch)
    _, s = quiet_scrape(e)
    count(s, MODEL_LATENCY_COUNT, 3, model="credit", version="v1")
    predicted = predict(np.vstack(versioned))
    for cls in (0, 1):
        count(s, PREDICTED_CLASS, int((predicted == cls).sum()), model="credit", version="v1", **{"class": str(cls)})
    count(s, PROXY_REQUESTS, 1, model=UNROUTED)
    for model, batches in sent.items():
        more = len(versioned) if model == "credit" else 0
        count(s, PROXY_REQUESTS, len(batches) + more, model=model)
        count(s, PROXY_CAPTURED, len(batches) + more, model=model)
        count(s, MODEL_LATENCY_COUNT, len(batches), model=model, version="v7")  # the upstream's model_version
        predicted = predict(np.vstack(batches))
        for cls in (0, 1):
            count(s, PREDICTED_CLASS, int((predicted == cls).sum()), model=model, version="v7", **{"class": str(cls)})


def test_hop_by_hop_headers_are_removed_forwarded_ones_added_and_host_kept(start_proxy, upstream):
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    status, headers, body = e.proxy.call("POST", "/echo?q=1", b"hello", {
        "Host": "models.example.test", "Connection": "keep-alive, X-Hop-Secret", "X-Hop-Secret": "drop me",
        "Keep-Alive": "timeout=5", "Proxy-Connection": "keep-alive", "TE": "trailers",
        "X-Forwarded-For": "203.0.113.9", "X-Custom": "stays", "Content-Type": "text/plain"})
    assert status == 200, body
    seen = upstream.last("/echo")
    assert json.loads(body)["headers"] == [list(h) for h in seen.headers]  # the echo came back unchanged
    assert (seen.method, seen.target, seen.version) == ("POST", "/echo?q=1", "HTTP/1.1")
    assert (seen.body_length, seen.body_sha256) == (5, hashlib.sha256(b"hello").hexdigest())
    for hop in ("X-Hop-Secret", "Keep-Alive", "Proxy-Connection", "TE", "Upgrade"):
        assert seen.header(hop) == [], (hop, seen.headers)
    assert all("x-hop-secret" not in v.lower() for v in seen.header("Connection")), seen.headers
    assert seen.header("X-Custom") == ["stays"]
    assert seen.header("Host") == ["models.example.test"]
    assert seen.header("Content-Type") == ["text/plain"]
    assert ", ".join(seen.header("X-Forwarded-For")) == "203.0.113.9, 127.0.0.1", seen.headers
    assert seen.header("X-Forwarded-Proto") == ["http"]
    assert seen.header("X-Forwarded-Host") == ["models.example.test"]

    # Towards the client: the upstream's hop-by-hop headers are gone, its own custom header is kept.
    direct = Client("127.0.0.1", upstream.port).call("GET", "/hop")
    status, headers, body = e.proxy.call("GET", "/hop")
    assert (status, body) == (200, b'{"hop": true}')
    assert header(headers, "X-Up-Hop") is None and header(headers, "Keep-Alive") is None, headers
    assert all("x-up-hop" not in v.lower() for k, v in headers if k.lower() == "connection"), headers
    assert header(headers, "X-Model-Custom") == "kept as is"
    assert [h for h in content_headers(headers) if h[0] != "x-up-hop"] == \
        [h for h in content_headers(direct[1]) if h[0] != "x-up-hop"]


def curl_h2c(url, out, body=None):
    """curl with HTTP/2 prior knowledge; returns (HTTP version curl used, status, response header text)."""
    command = ["curl", "-sS", "--http2-prior-knowledge", "-o", str(out), "-D", str(out) + ".headers",
               "-w", "%{http_version} %{http_code}", "--max-time", "20"]
    if body is not None:
        command += ["-H", "Content-Type: application/json", "--data-binary", "@" + str(body)]
    result = subprocess.run(command + [url], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    version, code = result.stdout.split()
    return version, int(code), (str(out) + ".headers")


def test_an_h2c_client_is_proxied_over_http1(start_proxy, upstream, tmp_path):
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    batch = np.random.default_rng(3).normal(size=(3, 4))
    (tmp_path / "request.json").write_bytes(v2_body(batch, "h2"))
    direct = Client("127.0.0.1", upstream.port).call("POST", "/v2/models/credit/infer", v2_body(batch, "h2"), JSON)
    version, code, _ = curl_h2c(f"{e.proxy.base}/v2/models/credit/infer", tmp_path / "answer", tmp_path / "request.json")
    assert (version, code) == ("2", 200)
    assert (tmp_path / "answer").read_bytes() == direct[2]
    seen = upstream.last("/v2/models/credit/infer")
    assert seen.version == "HTTP/1.1"
    assert seen.header("Host") == [f"127.0.0.1:{e.proxy_port}"]  # h2's :authority becomes Host
    # A 2 MB chunked response streamed to an h2 client.
    version, code, _ = curl_h2c(f"{e.proxy.base}/big?bytes={2 * MIB}&seed=4&chunked=1", tmp_path / "big")
    assert (version, code) == ("2", 200)
    assert hashlib.sha256((tmp_path / "big").read_bytes()).hexdigest() == upstream.big(2 * MIB, 4)[1]
    _, s = quiet_scrape(e)
    count(s, PROXY_REQUESTS, 1, model="credit")
    count(s, MODEL_LATENCY_COUNT, 1, model="credit", version="v7")
    count(s, MODEL_REQUESTS, 3, model="credit", version="v7", status="ok")  # one per captured row
    predicted = predict(batch)
    for cls in (0, 1):
        count(s, PREDICTED_CLASS, int((predicted == cls).sum()), model="credit", version="v7", **{"class": str(cls)})


def test_a_generated_request_id_reaches_the_upstream_and_the_client_and_joins_labels(start_proxy, upstream):
    e = start_proxy(MODELS, upstream.base, "--instance.id", "proxy-a", routes=ROUTES)
    rng = np.random.default_rng(8)
    ids, predicted = [], []
    for i in range(4):
        batch = rng.normal(size=(1, 4))
        status, headers, body = e.proxy.call("POST", "/v2/models/credit/infer", v2_body(batch), JSON)
        assert status == 200, body
        rid = header(headers, REQUEST_ID_HEADER)
        assert isinstance(rid, str) and re.fullmatch(GENERATED_ID.format(instance="proxy-a"), rid), headers
        assert upstream.last("/v2/models/credit/infer").header(REQUEST_ID_HEADER) == [rid]
        ids.append(rid)
        predicted.append(int(predict(batch)[0]))
    batch = rng.normal(size=(1, 4))
    status, headers, _ = e.proxy.call("POST", "/v2/models/credit/infer", v2_body(batch),
                                      {**JSON, REQUEST_ID_HEADER: "client-chosen-7"})
    assert status == 200
    assert upstream.last("/v2/models/credit/infer").header(REQUEST_ID_HEADER) == ["client-chosen-7"]
    ids.append("client-chosen-7")
    predicted.append(int(predict(batch)[0]))
    # A batch of rows: the rows' ids are <id>/0 … <id>/n-1 (docs/proxy.md, "Request ids").
    batch = rng.normal(size=(3, 4))
    status, headers, _ = e.proxy.call("POST", "/v2/models/credit/infer", v2_body(batch), JSON)
    assert status == 200
    rid = header(headers, REQUEST_ID_HEADER)
    assert re.fullmatch(GENERATED_ID.format(instance="proxy-a"), rid), headers
    ids += [f"{rid}/{row}" for row in range(3)]
    predicted += predict(batch).tolist()
    assert len(set(ids)) == len(ids)

    # An exchange is recorded just after its answer is flushed: the last one's rows may not be pending yet.
    wait_for(lambda: sample(scrape(e)[1], INGEST_EVENTS, model="credit", kind="predictions") == len(ids),
             timeout=10, what="every row recorded before its label is sent")
    truth = [1, 0, 1, 1, 0, 0, 1, 1]
    labels = "".join(json.dumps({"id": i, "label": str(t)}) + "\n" for i, t in zip(ids, truth))
    status, _, body = e.post("/api/v1/models/credit/labels", labels.encode(),
                             headers={"Content-Type": "application/x-ndjson"})
    assert status == 202 and json.loads(body)["joined"] == len(ids), body
    _, s = quiet_scrape(e)
    count(s, LABELS_JOINED, len(ids), model="credit", source="endpoint")
    assert sample(s, "mlops_model_accuracy", model="credit", version="v7") == pytest.approx(
        accuracy_score(truth, predicted), abs=1e-12)


def test_upstream_down_is_a_502_counted_connect_refused(start_proxy):
    dead = free_port()  # nothing listens there
    e = start_proxy(MODELS, f"http://127.0.0.1:{dead}", routes=ROUTES)
    status, headers, body = e.proxy.call("POST", "/v2/models/credit/infer", v2_body(np.zeros((1, 4))), JSON)
    one_line_text(status, headers, body, 502)
    _, s = quiet_scrape(e)
    count(s, PROXY_UPSTREAM_ERRORS, 1, model="credit", reason="connect_refused")
    count(s, PROXY_REQUESTS, 1, model="credit")
    count(s, MODEL_REQUESTS, 1, model="credit", version="default", status="error")
    count(s, MODEL_ERRORS, 1, model="credit", version="default", kind="connect_refused")
    count(s, INGEST_EVENTS, 0, model="credit", kind="predictions")


@contextmanager
def black_hole():
    """A port whose SYNs go unanswered: a listener with a backlog of 0 whose one queue place is taken and never
    accepted, so that a connect waits until its own timeout (Linux drops SYNs to a full accept queue)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=2)
    probe = socket.socket()
    probe.settimeout(0.3)
    with pytest.raises(socket.timeout):
        probe.connect(("127.0.0.1", port))  # the hole holds: a connect does time out
    probe.close()
    try:
        yield port
    finally:
        filler.close()
        listener.close()


def test_an_upstream_that_never_accepts_is_a_504_counted_connect_timeout(start_proxy):
    with black_hole() as port:
        e = start_proxy(MODELS, f"http://127.0.0.1:{port}", routes=ROUTES, connect_timeout="1s")
        (status, headers, body), took = elapsed(
            lambda: e.proxy.call("POST", "/v2/models/credit/infer", v2_body(np.zeros((1, 4))), JSON))
        one_line_text(status, headers, body, 504)
        assert 0.9 <= took < 5, took
        _, s = scrape(e)
        count(s, PROXY_UPSTREAM_ERRORS, 1, model="credit", reason="connect_timeout")
        count(s, MODEL_REQUESTS, 1, model="credit", version="default", status="error")


def read_cut_body(response):
    """Reads a body the proxy must cut: returns the bytes received before the cut; fails if the body ends."""
    try:
        data = response.read()
    except http.client.IncompleteRead as cut:
        return cut.partial
    except ConnectionError:
        return None
    raise AssertionError(f"the body ended normally ({len(data)} bytes): the client cannot tell it was cut")


def test_upstream_faults_are_answered_and_counted(start_proxy, upstream):
    e = start_proxy(MODELS, upstream.base, routes=ROUTES, response_timeout="1s", read_timeout="1s")
    # Closed or reset before any response byte: 502; not HTTP: 502.
    for path in ("/close-before-head", "/reset", "/garbage"):
        status, headers, body = e.proxy.call("GET", path)
        one_line_text(status, headers, body, 502)
    # No head within response_timeout: 504, and the proxy gives the upstream connection up.
    (status, headers, body), took = elapsed(lambda: e.proxy.call("GET", "/hold-head"))
    one_line_text(status, headers, body, 504)
    assert 0.9 <= took < 5, took
    wait_for(lambda: upstream.abandoned == 1, timeout=10, what="the upstream to see the held request closed")
    # The head went out, then the upstream closed (Content-Length or chunked) or stalled beyond read_timeout:
    # the client's connection is cut, so that it sees an incomplete body.
    data = upstream.big(200000, 7)[0]
    for query in ("total=200000&sent=50000", "total=200000&sent=50000&chunked=1", "total=200000&sent=1000"):
        path = ("/stall-body?" if query.endswith("sent=1000") else "/close-mid-body?") + query
        c, r = e.proxy.open("GET", path, timeout=10)
        assert r.status == 200, path
        (partial), took = elapsed(lambda: read_cut_body(r))
        c.close()
        assert partial is None or data.startswith(partial), path
        assert took < 5, (path, took)
    wait_for(lambda: upstream.abandoned == 2, timeout=10, what="the upstream to see the stalled body closed")
    # The proxy still serves afterwards.
    batch = np.random.default_rng(1).normal(size=(2, 4))
    direct = Client("127.0.0.1", upstream.port).call("POST", "/v2/models/credit/infer", v2_body(batch, "a"), JSON)
    assert_same(direct, e.proxy.call("POST", "/v2/models/credit/infer", v2_body(batch, "a"), JSON), "after faults")

    _, s = quiet_scrape(e)
    count(s, PROXY_UPSTREAM_ERRORS, 2 + 2, model=UNROUTED, reason="reset")
    count(s, PROXY_UPSTREAM_ERRORS, 1, model=UNROUTED, reason="bad_response")
    count(s, PROXY_UPSTREAM_ERRORS, 1, model=UNROUTED, reason="response_timeout")
    count(s, PROXY_UPSTREAM_ERRORS, 1, model=UNROUTED, reason="read_timeout")
    count(s, PROXY_UPSTREAM_ERRORS, 0, model=UNROUTED, reason="connect_refused")
    count(s, PROXY_REQUESTS, 7, model=UNROUTED)
    count(s, PROXY_REQUESTS, 1, model="credit")


def test_a_response_cut_after_its_head_is_an_error_and_not_captured(start_proxy, upstream):
    """The upstream sends a 200 head and the whole JSON answer, then closes 100 bytes short of its Content-Length: the
    client's response is cut, so the request is a model error (kind `reset`) and its bodies are not decoded. Before, it
    counted `ok` in the service series (availability SLOs read a success) and the partial body was captured as a
    prediction."""
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    batch = np.random.default_rng(3).normal(size=(2, 4))
    c, r = e.proxy.open("POST", "/v2/models/credit/infer?cut=1", v2_body(batch, "a"), JSON, timeout=10)
    assert r.status == 200
    partial = read_cut_body(r)
    c.close()
    assert partial is None or partial.startswith(b'{"model_name"')
    def recorded():
        _, s = quiet_scrape(e)
        return s if sample(s, PROXY_UPSTREAM_ERRORS, model="credit", reason="reset") == 1 else None
    s = wait_for(recorded, timeout=10, what="the cut exchange recorded")
    count(s, MODEL_REQUESTS, 1, model="credit", version="default", status="error")
    count(s, MODEL_ERRORS, 1, model="credit", version="default", kind="reset")
    count(s, MODEL_REQUESTS, 0, model="credit", version="v7", status="ok")
    count(s, MODEL_REQUESTS, 0, model="credit", version="default", status="ok")
    count(s, PROXY_CAPTURED, 0, model="credit")
    count(s, INGEST_EVENTS, 0, model="credit", kind="predictions")


def read_until(response, received, expected, deadline):
    """Reads the streamed body (chunk by chunk, as it arrives) until `received` is `expected` long."""
    while len(received) < len(expected):
        assert time.monotonic() < deadline, (received, expected)
        piece = response.read1(65536)
        assert piece, ("the stream ended early", received)
        received += piece
    assert received == expected, (received, expected)
    return received


@pytest.mark.parametrize("kind", ["sse", "stream"])
def test_streamed_events_reach_the_client_before_the_next_is_written_upstream(start_proxy, upstream, kind):
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    n = 6
    s = upstream.stream(f"pace-{kind}")
    c = http.client.HTTPConnection("127.0.0.1", e.proxy_port, timeout=5)
    c.request("GET", f"/{kind}/pace-{kind}?events={n}")
    wait_for(s.started.is_set, timeout=10, what="the upstream to start the stream")
    s.release()
    r = c.getresponse()
    assert r.status == 200
    assert header(r.getheaders(), "Content-Type") == ("text/event-stream" if kind == "sse" else
                                                      "application/octet-stream")
    expected, received, arrivals = b"", b"", []
    for k in range(n):
        if k:
            s.release()  # event k is written upstream only now, after the client has read event k - 1
        expected += (f"id: {k}\ndata: {{\"k\": {k}}}\n\n" if kind == "sse" else f"chunk {k};").encode()
        received = read_until(r, received, expected, time.monotonic() + 5)
        arrivals.append(time.monotonic())
        assert len(s.written) == k + 1  # nothing more was written upstream before this event reached the client
    assert r.read() == b""  # the last chunk: the stream ended cleanly
    c.close()
    # The upstream's thread marks the stream finished after its last write, which the client may read first.
    wait_for(s.finished.is_set, timeout=5, what="the upstream to finish its stream")
    # Measured: each event was written upstream, then read by the client, before the next was written.
    for k in range(n):
        assert s.written[k] <= arrivals[k], k
        assert arrivals[k] - s.written[k] < 2.0, (k, arrivals[k] - s.written[k])
        if k + 1 < n:
            assert arrivals[k] < s.written[k + 1], k


class H2Client:
    """A minimal HTTP/2 client with prior knowledge (the h2 package) over a blocking socket: one GET whose DATA is
    read as it arrives."""

    def __init__(self, port):
        import h2.config
        import h2.connection
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.port, self.headers, self.data, self.ended = port, None, b"", False

    def get(self, path):
        self.stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(self.stream_id, [(":method", "GET"), (":path", path), (":scheme", "http"),
                                                (":authority", f"127.0.0.1:{self.port}")], end_stream=True)
        self.sock.sendall(self.conn.data_to_send())

    def read_until(self, expected, deadline):
        """Reads frames until the body received is `expected` long; asserts it equals it."""
        import h2.events
        while len(self.data) < len(expected) or self.headers is None:
            assert time.monotonic() < deadline, (self.data, expected)
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError(f"nothing more arrived in time: {len(self.data)} bytes of {len(expected)} "
                                     f"expected, the response head {'not ' if self.headers is None else ''}received")
            assert chunk, ("the connection closed", self.data)
            for event in self.conn.receive_data(chunk):
                if isinstance(event, h2.events.ResponseReceived):
                    self.headers = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    self.data += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    self.ended = True
            self.sock.sendall(self.conn.data_to_send())
        assert self.data == expected, (self.data, expected)

    def close(self):
        self.sock.close()


def test_streamed_events_reach_an_h2c_client_before_the_next_is_written_upstream(start_proxy, upstream):
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    n = 4
    s = upstream.stream("pace-h2")
    client = H2Client(e.proxy_port)
    try:
        client.get(f"/sse/pace-h2?events={n}")
        wait_for(s.started.is_set, timeout=10, what="the upstream to start the stream")
        expected, arrivals = b"", []
        for k in range(n):
            s.release()
            expected += f"id: {k}\ndata: {{\"k\": {k}}}\n\n".encode()
            client.read_until(expected, time.monotonic() + 5)
            arrivals.append(time.monotonic())
            assert len(s.written) == k + 1
        assert client.headers[":status"] == "200" and client.headers["content-type"] == "text/event-stream"
        for k in range(n - 1):
            assert s.written[k] <= arrivals[k] < s.written[k + 1], k
    finally:
        client.close()


def test_request_bodies_stream_to_the_upstream_before_they_end(start_proxy, upstream):
    """The proxy does not hold a request body whole: the upstream receives its first part while the client has not
    sent the rest (Content-Length and chunked)."""
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    payload = np.random.default_rng(9).bytes(2 * MIB)
    first = 256 * 1024
    for framing in ("length", "chunked"):
        target = f"/echo?framing={framing}"
        sock = socket.create_connection(("127.0.0.1", e.proxy_port), timeout=10)
        if framing == "length":
            sock.sendall(b"POST %s HTTP/1.1\r\nHost: stream.test\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % (target.encode(), len(payload)) + payload[:first])
        else:
            sock.sendall(b"POST %s HTTP/1.1\r\nHost: stream.test\r\nContent-Type: application/octet-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % (target.encode(), first) + payload[:first] + b"\r\n")
        wait_for(lambda: upstream.receiving.get(target, 0) >= first, timeout=5,
                 what=f"the upstream to receive the first {first} bytes ({framing}) before the rest is sent")
        rest = payload[first:]
        sock.sendall(rest if framing == "length" else b"%x\r\n" % len(rest) + rest + b"\r\n0\r\n\r\n")
        r = http.client.HTTPResponse(sock, method="POST")
        r.begin()
        answer = json.loads(r.read())
        sock.close()
        assert r.status == 200 and answer["body_length"] == len(payload), answer
        assert answer["body_sha256"] == hashlib.sha256(payload).hexdigest()


def test_a_client_that_closes_mid_stream_cancels_the_upstream_request(start_proxy, upstream):
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    s = upstream.stream("cancel")
    c = http.client.HTTPConnection("127.0.0.1", e.proxy_port, timeout=5)
    c.request("GET", "/sse/cancel?events=5")
    wait_for(s.started.is_set, timeout=10, what="the upstream to start the stream")
    s.release()
    r = c.getresponse()
    assert r.status == 200
    read_until(r, b"", b'id: 0\ndata: {"k": 0}\n\n', time.monotonic() + 5)
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    r.close()
    wait_for(s.closed.is_set, timeout=10, what="the upstream to see its request cancelled (its connection closed)")
    assert len(s.written) == 1
    wait_for(lambda: sample(scrape(e)[1], PROXY_CANCELLED, model=UNROUTED) == 1, timeout=10,
             what="the cancellation to be counted")


def test_five_megabyte_bodies_pass_intact_both_ways_and_are_too_large_to_capture(start_proxy, upstream):
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    payload = np.random.default_rng(5).bytes(5 * MIB)
    digest = hashlib.sha256(payload).hexdigest()
    # Request bodies: Content-Length, then chunked.
    status, _, answer = e.proxy.call("POST", "/echo", payload, {"Content-Type": "application/octet-stream"})
    assert status == 200 and json.loads(answer)["body_sha256"] == digest, answer
    assert json.loads(answer)["body_length"] == 5 * MIB
    c = http.client.HTTPConnection("127.0.0.1", e.proxy_port, timeout=30)
    c.request("POST", "/echo", body=(payload[i:i + 65536] for i in range(0, len(payload), 65536)),
              headers={"Content-Type": "application/octet-stream"}, encode_chunked=True)
    r = c.getresponse()
    answer = json.loads(r.read())
    c.close()
    assert (r.status, answer["body_length"], answer["body_sha256"]) == (200, 5 * MIB, digest)
    # Response bodies: Content-Length, then chunked.
    expected = hashlib.sha256(body_bytes(5 * MIB, 3)).hexdigest()
    for query in ("", "&chunked=1"):
        status, headers, data = e.proxy.call("GET", f"/big?bytes={5 * MIB}&seed=3{query}")
        assert status == 200 and hashlib.sha256(data).hexdigest() == expected == header(headers, "X-Body-Sha256")
        if not query:
            assert header(headers, "Content-Length") == str(5 * MIB)

    # Over capture.max_body_bytes (1 MiB): proxied untouched, not captured, counted too_large; the request still
    # counts for latency and status.
    big_batch = np.random.default_rng(6).normal(size=(40000, 4))
    request = v2_body(big_batch, "big")
    assert len(request) > 2 * MIB
    direct = Client("127.0.0.1", upstream.port).call("POST", "/v2/models/credit/versions/v1/infer", request, JSON)
    proxied = e.proxy.call("POST", "/v2/models/credit/versions/v1/infer", request, JSON)
    assert_same(direct, proxied, "a 3 MB request")
    assert json.loads(proxied[2])["outputs"][0]["data"] == predict(big_batch).tolist()
    upstream.fixed["/v1/models/credit-v1:predict"] = json_response(
        {"predictions": [1, 0], "parameters": {"padding": "x" * (5 * MIB)}})
    small = v1_body(np.zeros((2, 4)))
    direct = Client("127.0.0.1", upstream.port).call("POST", "/v1/models/credit-v1:predict", small, JSON)
    assert_same(direct, e.proxy.call("POST", "/v1/models/credit-v1:predict", small, JSON), "a 5 MB response")
    _, s = quiet_scrape(e)
    count(s, PROXY_CAPTURE_FAILURES, 1, model="credit", reason=TOO_LARGE)
    count(s, PROXY_CAPTURE_FAILURES, 1, model="credit-v1", reason=TOO_LARGE)
    count(s, INGEST_EVENTS, 0, model="credit", kind="predictions")
    count(s, INGEST_EVENTS, 0, model="credit-v1", kind="predictions")
    count(s, MODEL_REQUESTS, 1, model="credit", version="v1", status="ok")
    count(s, MODEL_REQUESTS, 1, model="credit-v1", version="default", status="ok")
    count(s, PROXY_REQUESTS, 4, model=UNROUTED)


def test_expect_100_continue_gets_a_continue_before_the_body_is_sent(start_proxy, upstream):
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    payload = b"z" * 300000
    sock = socket.create_connection(("127.0.0.1", e.proxy_port), timeout=5)
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: continue.test\r\nContent-Type: application/octet-stream\r\n"
                 b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(payload))
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):  # byte by byte: what follows the interim head stays in the socket
        byte = sock.recv(1)
        assert byte, interim
        interim += byte
    assert interim.startswith(b"HTTP/1.1 100 "), interim
    sock.sendall(payload)
    r = http.client.HTTPResponse(sock, method="POST")
    r.begin()
    answer = json.loads(r.read())
    sock.close()
    assert r.status == 200 and answer["body_length"] == len(payload)
    assert answer["body_sha256"] == hashlib.sha256(payload).hexdigest()


def test_capture_failures_are_counted_and_never_change_the_answer(start_proxy, upstream):
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    direct = Client("127.0.0.1", upstream.port)
    two_rows = json_response({"model_name": "credit", "model_version": "v1", "id": "x", "outputs": [
        {"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 0]}]})
    upstream.fixed["/v2/models/credit/versions/v1/infer"] = two_rows
    upstream.fixed["/invocations"] = Response(200, [("Content-Type", "text/plain")], b"OK, but not JSON\n")
    cases = [
        # (path, request body, model, reason)
        ("/v2/models/credit/versions/v1/infer", b"this is {not JSON", "credit", "invalid_json"),
        ("/invocations", mlflow_body(np.ones((2, 4))), "credit-mlflow", "invalid_json"),  # the response is not
        ("/v2/models/credit/versions/v1/infer",
         b'{"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}]}',
         "credit", "shape_mismatch"),
        ("/v1/models/credit-v1:predict", b'{"instances": [[1, 2, 3, 4], [5, 6, 7]]}', "credit-v1", "shape_mismatch"),
        ("/v2/models/credit/versions/v1/infer", v2_body(np.ones((3, 4))), "credit", "row_count_mismatch"),
    ]
    for path, body, _, _ in cases:
        d, p = direct.call("POST", path, body, JSON), e.proxy.call("POST", path, body, JSON)
        assert p[0] == 200, (path, p)
        assert_same(d, p, path)
    _, s = quiet_scrape(e)
    expected = {}
    for _, _, model, reason in cases:
        expected[(model, reason)] = expected.get((model, reason), 0) + 1
    for (model, reason), n in expected.items():
        count(s, PROXY_CAPTURE_FAILURES, n, model=model, reason=reason)
    for model in ("credit", "credit-v1", "credit-mlflow"):
        count(s, INGEST_EVENTS, 0, model=model, kind="predictions")
    # Every exchange still counts for latency and status.
    count(s, MODEL_REQUESTS, 3, model="credit", version="v1", status="ok")
    count(s, MODEL_REQUESTS, 1, model="credit-v1", version="default", status="ok")
    count(s, MODEL_REQUESTS, 1, model="credit-mlflow", version="default", status="ok")


def test_the_pool_never_opens_more_than_max_connections(start_proxy, upstream):
    e = start_proxy(MODELS, upstream.base, routes=ROUTES, max_connections=2, response_timeout="20s")
    results = [None] * 10
    start = time.monotonic()

    def call(i):
        results[i] = e.proxy.call("GET", "/slow?ms=400", timeout=30)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    took = time.monotonic() - start
    assert all(r is not None for r in results), results
    assert upstream.max_open <= 2, upstream.max_open
    served = sum(1 for r in results if r[0] == 200 and r[2] == b'{"slow": 400}')
    _, s = quiet_scrape(e)
    refused = sample(s, PROXY_UPSTREAM_ERRORS, model=UNROUTED, reason="pool_full") or 0
    print(f"pool: {served} served, {refused} refused, {upstream.max_open} upstream connections at most, {took:.2f} s")
    assert served + refused == 10, (served, refused, [r[0] for r in results])
    assert served >= 2 and upstream.requests == served
    # Two connections at once serve the others in turn: at least ceil(served / 2) rounds of 400 ms.
    assert took >= 0.4 * ((served + 1) // 2) * 0.95, (took, served)


def test_clients_that_stall_on_reused_connections_leave_the_pools_count_true(start_proxy, upstream):
    """Clients that send a head (Expect: 100-continue, a Content-Length) and never the body, on pooled connections: the
    connections' idle timers used to go on running once reused and closed them mid-request without telling the
    exchange, and the clients' leaving then counted them closed a second time: the open-connection gauge went below
    zero and the pool opened more than max_connections (audit 13: 67 upstream connections with max 64)."""
    e = start_proxy(MODELS, upstream.base, routes=ROUTES, max_connections=4, idle_timeout="1s",
                    response_timeout="20s")

    def slow_round(n):
        results = [None] * n

        def call(i):
            results[i] = e.proxy.call("GET", "/slow?ms=300", timeout=30)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        return results

    # Four connections opened, then idle in the pool.
    assert [r[0] for r in slow_round(4)] == [200] * 4
    errors = lambda: sum(v for (name, _), v in scrape(e)[1].items()  # noqa: E731
                         if name == "mlops_proxy_client_connection_errors_total")
    errors_before = errors()
    stalled = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", e.proxy_port), timeout=10)
        s.sendall(b"POST /v2/models/credit/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n")
        stalled.append(s)
    try:
        # Each gets its 100 Continue (its exchange has a connection), then the server gives up on the body: the
        # exchanges' upstream requests are dropped, their connections closed (once each); a body the server refused is
        # counted by its reason, not as a client that left.
        for s in stalled:
            assert s.recv(100).startswith(b"HTTP/1.1 100"), "no 100 Continue"
        wait_for(lambda: errors() - errors_before >= 4, timeout=30, what="the stalled clients' bodies refused")
        assert (sample(scrape(e)[1], PROXY_CANCELLED, model="credit") or 0) == 0
    finally:
        for s in stalled:
            s.close()
    seen = []

    def gauge_is_true():
        seen.append((sample(scrape(e)[1], PROXY_UPSTREAM_OPEN), upstream.open))
        return seen[-1][0] == seen[-1][1]

    try:
        wait_for(gauge_is_true, timeout=10, what="the open-connection gauge to equal the upstream's count")
    except AssertionError:
        raise AssertionError(f"(gauge, upstream's open connections) last seen: {seen[-3:]}")
    assert seen[-1][0] >= 0, seen[-5:]
    # The pool still keeps to max_connections.
    upstream.max_open = upstream.open
    assert [r[0] for r in slow_round(8)] == [200] * 8
    assert upstream.max_open <= 4, f"{upstream.max_open} upstream connections open at once with max_connections: 4"


def test_requests_beyond_max_waiting_get_503_counted_pool_full(start_proxy, upstream):
    e = start_proxy(MODELS, upstream.base, routes=ROUTES, max_connections=1, max_waiting=2, response_timeout="20s")
    results = [None] * 6

    def call(i):
        results[i] = e.proxy.call("GET", "/slow?ms=1500", timeout=30)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    # max_connections and max_waiting bound the whole proxy (docs/proxy.md: "over all event loops"), whichever loop
    # a client lands on: one request on the connection, two waiting; the other three refused at once.
    assert upstream.max_open == 1, f"{upstream.max_open} upstream connections open at once with max_connections: 1"
    assert sorted(r[0] for r in results) == [200] * 3 + [503] * 3, [r[:2] for r in results]
    for status, headers, body in results:
        if status == 503:
            one_line_text(status, headers, body, 503)
            assert header(headers, "Retry-After") == "1"
    assert upstream.requests == 3
    _, s = quiet_scrape(e)
    count(s, PROXY_UPSTREAM_ERRORS, 3, model=UNROUTED, reason="pool_full")
    count(s, PROXY_REQUESTS, 6, model=UNROUTED)


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def h2load(url, body_file, n, timeout, h2=False):
    """h2load: n POSTs on 8 connections (HTTP/1.1 keep-alive, or h2c with 10 streams each); returns the number that
    succeeded (every one with a 2xx)."""
    protocol = ["-m", "10"] if h2 else ["--h1"]
    result = subprocess.run(
        ["h2load", *protocol, "-n", str(n), "-c", "8", "-t", "1", "-d", str(body_file), "-H",
         "Content-Type: application/json", url], capture_output=True, text=True, timeout=timeout)
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", result.stdout)
    assert m, result.stdout + result.stderr
    status = re.search(r"status codes: (\d+) 2xx", result.stdout)
    assert status and int(status.group(1)) == int(m.group(4)), result.stdout
    return int(m.group(4))


def test_rss_stays_flat_over_100000_proxied_requests(start_proxy, upstream, tmp_path):
    # Every request gets a generated id and waits for its label in a store bounded at 1,000 (max_pending), full after
    # the warm-up: what the store holds stays bounded too.
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    upstream.fixed["/v2/models/credit-load/infer"] = json_response({
        "model_name": "credit-load", "model_version": "v7", "id": "load",
        "outputs": [{"name": "predict", "shape": [1], "datatype": "INT64", "data": [1]}]})
    body = tmp_path / "row.json"
    body.write_bytes(v2_body(np.array([[0.5, -1.0, 2.0, 0.25]])))
    url = f"{e.proxy.base}/v2/models/credit-load/infer"
    # Half over HTTP/1.1 (the response streamed), half over h2c (the response relayed whole): both paths, warmed up
    # first. About 250-350 µs of CPU a request in the debug build: 100,000 take 25-40 s on 2 cores.
    warm = h2load(url, body, 2500, timeout=30) + h2load(url, body, 2500, timeout=30, h2=True)
    assert warm == 5000
    before = rss_bytes(e.proc.pid)
    (done), took = elapsed(lambda: h2load(url, body, 50000, timeout=90) + h2load(url, body, 50000, timeout=90, h2=True))
    after = rss_bytes(e.proc.pid)
    print(f"RSS after the warm-up {before / MIB:.1f} MiB, after 100,000 more requests {after / MIB:.1f} MiB "
          f"({took:.1f} s, {100000 / took:.0f} requests/s)")
    assert done == 100000
    # Flat: less than 4 MiB more after 100,000 requests than after the warm-up (42 bytes a request).
    assert after - before < 4 * MIB, (before, after)
    # Exact accounting: the exporter's counts equal h2load's and the upstream's.
    assert upstream.requests == warm + done
    _, s = quiet_scrape(e)
    count(s, PROXY_REQUESTS, warm + done, model="credit-load")
    count(s, MODEL_REQUESTS, warm + done, model="credit-load", version="v7", status="ok")
    count(s, PREDICTED_CLASS, warm + done, model="credit-load", version="v7", **{"class": "1"})
    count(s, INGEST_EVENTS, warm + done, model="credit-load", kind="predictions")
    assert sample(s, "mlops_labels_pending", model="credit-load") == 1000


def test_a_reload_moves_the_proxy_to_a_new_upstream_and_new_routes(start_proxy, upstream, tmp_path):
    """Routes and the upstream change on reload (`POST /-/reload`): requests in flight are not needed for this; the
    next requests go to the new upstream, through the new routes, and the proxy port stays the same."""
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    batch = np.array([[0.5, -1.0, 2.0, 0.1]])
    status, _, _ = e.proxy.call("POST", "/v2/models/credit/infer", v2_body(batch), JSON)
    assert status == 200 and upstream.requests == 1
    second = Upstream(model_version="v1")
    try:
        config = tmp_path / "proxy-0.yaml"  # what start_proxy wrote
        text = config.read_text()
        assert upstream.base in text and '- path: "/invocations"' in text
        config.write_text(text.replace(upstream.base, second.base).replace('- path: "/invocations"', '- path: "/score"'))
        status, _, body = e.get("/-/reload", method="POST")
        assert status == 200, body
        # Said in the log (the new pool was built without a word).
        log = e.log_path.read_text()
        assert "proxy upstream settings changed" in log and f"upstream={second.base}" in log, \
            log[-2000:]
        status, _, _ = e.proxy.call("POST", "/v2/models/credit/infer", v2_body(batch), JSON)
        assert status == 200
        assert second.requests == 1 and upstream.requests == 1
        # The new route names credit-mlflow; the old one is unrouted now.
        e.proxy.call("POST", "/score", json.dumps({"inputs": [[0.5, -1.0, 2.0, 0.1]]}).encode(), JSON)
        e.proxy.call("POST", "/invocations", json.dumps({"inputs": [[0.5, -1.0, 2.0, 0.1]]}).encode(), JSON)
        _, s = scrape(e)
        count(s, PROXY_REQUESTS, 1, model="credit-mlflow")
        count(s, PROXY_REQUESTS, 1, model=UNROUTED)
        count(s, PROXY_REQUESTS, 2, model="credit")
    finally:
        second.close()


def test_the_proxy_ports_own_connection_errors_are_counted_apart_from_the_exporters(start_proxy, upstream):
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    with socket.create_connection(("127.0.0.1", e.proxy_port), timeout=5) as s:
        s.sendall(b"NOT HTTP\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 400")
    held = socket.create_connection(("127.0.0.1", e.proxy_port), timeout=5)
    try:
        def counted():
            _, s = scrape(e)
            return (sample(s, "mlops_proxy_client_connection_errors_total", reason="bad_request") == 1
                    and sample(s, "mlops_proxy_client_connections") == 1)
        wait_for(counted, timeout=5, what="the proxy port's bad request and open connection counted")
        _, s = scrape(e)
        assert sample(s, "mlops_exporter_http_errors_total", reason="bad_request") in (None, 0)
    finally:
        held.close()


def test_urllib_clients_that_close_after_their_request_are_proxied(start_proxy, upstream):
    # Python's http.client (urllib) sends `Connection: close`, then the body in a write of its own: the proxy
    # dispatched such a request before reading its body, then read nothing more (the upstream waited for the body,
    # the client got 408 after the body timeout).
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    batch = np.random.default_rng(5).normal(size=(2, 4))
    for _ in range(4):
        request = urllib.request.Request(
            f"http://127.0.0.1:{e.proxy_port}/v2/models/credit/infer", data=v2_body(batch), headers=JSON)
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
            outputs = json.loads(response.read())["outputs"]
            assert [int(x) for x in outputs[0]["data"]] == predict(batch).tolist()


def test_a_route_decodes_with_its_own_capture_protocol(start_proxy, upstream):
    """`capture_protocol` on a route decodes its exchanges with that protocol whatever the model's (an MLflow path of a
    model captured as v2); a KServe path implies its own for a model captured as KServe v1 or v2."""
    e = start_proxy(MODELS, upstream.base, routes=[(path, None) for path in DEFAULT_ROUTES] + [
        ("/invocations", {"model": "credit", "capture_protocol": "mlflow"})])
    rng = np.random.default_rng(17)
    batches = []
    for i in range(6):
        batch = rng.normal(size=(1 + i % 3, 4))
        path, body = [("/invocations", mlflow_body(batch)), ("/v1/models/credit:predict", v1_body(batch)),
                      ("/v2/models/credit/infer", v2_body(batch))][i % 3]
        status, _, answer = e.proxy.call("POST", path, body, JSON)
        assert status == 200, answer
        batches.append(batch)
    _, s = quiet_scrape(e)
    count(s, PROXY_REQUESTS, 6, model="credit")
    count(s, PROXY_CAPTURED, 6, model="credit")
    predicted = predict(np.vstack(batches))
    total = sum(v for (name, labels), v in s.items() if name == PREDICTED_CLASS and ("model", "credit") in labels)
    assert total == len(predicted)
    for cls in (0, 1):
        got = sum(v for (name, labels), v in s.items()
                  if name == PREDICTED_CLASS and ("model", "credit") in labels and ("class", str(cls)) in labels)
        assert got == int((predicted == cls).sum()), cls
    assert not [k for k in s if k[0] == PROXY_CAPTURE_FAILURES and ("model", "credit") in k[1] and s[k] > 0]


def test_an_idempotent_request_on_a_pooled_connection_the_upstream_closed_is_sent_again(start_proxy, upstream):
    """A pooled connection the upstream closes as a request goes out (its keep-alive timeout meeting the request)
    answers nothing: a GET is sent once more on a new connection and answered (it was a 502 `reset`, where nginx, Go
    and Envoy resend idempotent requests, RFC 9112 §9.3.1); a POST is not sent twice: 502 as before."""
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    conn = http.client.HTTPConnection("127.0.0.1", e.proxy_port, timeout=10)

    def call(method, path):
        conn.request(method, path, body=b"{}" if method == "POST" else None)
        r = conn.getresponse()
        return r.status, r.read()

    try:
        first = call("GET", "/close-on-reuse")
        assert first[0] == 200, first
        # The same pooled upstream connection: the upstream closes it at this request; the proxy sends it again.
        second = call("GET", "/close-on-reuse")
        assert second[0] == 200, second
        assert json.loads(second[1])["connection"] != json.loads(first[1])["connection"]
        status, body = call("POST", "/close-on-reuse")
        assert status == 502 and b"closed the connection" in body, (status, body)
    finally:
        conn.close()
    s = scrape(e)[1]
    assert sample(s, "mlops_proxy_upstream_errors_total", model=UNROUTED, reason="reset") == 1



def test_a_scrape_made_after_a_proxied_answer_counts_it(start_proxy, upstream):
    """A client that has its answer through the proxy, then scrapes, finds the exchange recorded: an exchange is
    recorded just after its loop writes the answer (a capture of up to 256 KiB decoded there), and a scrape waits for
    what was answered before it. Before, the scrape came first: here, while a 4,000-row batch was being decoded
    (every time); in a CI run, a 502 answered with its `reset` not counted yet."""
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    rng = np.random.default_rng(7)
    batch = np.round(rng.normal(size=(4000, 4)), 4)
    body = v2_body(batch)
    assert 100_000 < len(body) < 256 * 1024  # decoded on the event loop, not on a worker
    for i in range(1, 4):
        status, _, _ = e.proxy.call("POST", "/v2/models/credit/infer", body, JSON)
        assert status == 200
        s = scrape(e)[1]
        assert sample(s, PROXY_CAPTURED, model="credit") == i
        assert sample(s, INGEST_EVENTS, model="credit", kind="predictions") == i * len(batch)
    # Scrapes that overlap share their collectors' runs, so only a scrape made alone is promised this. Four clients
    # scraping one at a time after each answer find at least the answers all had read when the scrape began.
    small = v2_body(np.zeros((1, 4)))
    lock, one_scrape = threading.Lock(), threading.Lock()
    answered, behind = [0], []
    deadline = time.monotonic() + 15

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", e.proxy_port, timeout=10)
        try:
            for _ in range(50):
                if time.monotonic() > deadline:
                    return
                conn.request("POST", "/v2/models/credit/infer", body=small, headers=JSON)
                r = conn.getresponse()
                r.read()
                assert r.status == 200
                with lock:
                    answered[0] += 1
                with one_scrape:
                    with lock:
                        floor = answered[0]
                    counted = sample(scrape(e)[1], PROXY_CAPTURED, model="credit") - 3
                if counted < floor:
                    behind.append((floor, counted))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answered[0] >= 50, answered[0]
    assert not behind, (len(behind), behind[:5], answered[0])


def test_a_reload_that_builds_a_new_pool_while_a_request_is_in_flight_leaves_the_old_pool_to_finish(
        start_proxy, upstream, tmp_path):
    """A reload that changes the upstream settings builds a new pool; a request in flight finishes on the old one,
    whose connection then closes (it was kept idle, its idle timer left on the loop while the replaced proxy and its
    pool were freed 5 s after the reload: the exporter crashed reading the freed pool, seconds after any reload that
    overlapped a request of more than about a second, or with `idle_timeout` over 5 s; a review found it)."""
    e = start_proxy(MODELS, upstream.base, routes=ROUTES, idle_timeout="4s")
    result = {}

    def slow():
        result["answer"] = e.proxy.call("GET", "/slow?ms=1500", timeout=30)

    t = threading.Thread(target=slow)
    t.start()
    wait_for(lambda: upstream.open == 1, timeout=5, what="the slow request upstream")
    config = tmp_path / "proxy-0.yaml"  # what start_proxy wrote
    config.write_text(config.read_text().replace("response_timeout: 10s", "response_timeout: 9s"))
    status, _, body = e.get("/-/reload", method="POST")
    assert status == 200, body
    t.join(30)
    assert result["answer"][0] == 200, result
    reloaded = time.monotonic()
    # Done with its exchange, the old pool's connection closes at once, not after its idle timeout (4 s).
    wait_for(lambda: sample(scrape(e)[1], PROXY_UPSTREAM_OPEN) == 0, timeout=3, interval=0.05,
             what="the replaced pool's connection closed")
    assert time.monotonic() - reloaded < 3
    # Past the replaced proxy's 5 s and the idle timeout: alive, and serving through the new pool.
    deadline = time.monotonic() + 30
    while time.monotonic() - reloaded < 7 and time.monotonic() < deadline:
        assert e.proc.poll() is None, e.log_path.read_text()[-3000:]
        time.sleep(0.2)
    assert e.proc.poll() is None, e.log_path.read_text()[-3000:]
    status, _, _ = e.proxy.call("POST", "/v2/models/credit/infer", v2_body(np.zeros((1, 4))), JSON)
    assert status == 200


def test_streams_reset_in_the_same_write_as_a_new_one_free_their_places_first(start_proxy, upstream):
    """An h2c client fills the proxy's waiting places with slow requests, then in one write resets them all and opens
    a new stream: the new one must wait for a connection and be answered. Before, the resets were applied only after
    the whole input was read, the new stream found the queue full and got 503 `pool_full` (an HTTP/2 probe)."""
    import h2.config
    import h2.connection
    import h2.events
    e = start_proxy(MODELS, upstream.base, routes=ROUTES, max_connections=2, max_waiting=4, response_timeout="20s")
    sock = socket.create_connection(("127.0.0.1", e.proxy_port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())

    def request(path):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "http"),
                                (":authority", f"127.0.0.1:{e.proxy_port}")], end_stream=True)
        return sid

    statuses = {}

    def read(until, seconds):
        deadline = time.monotonic() + seconds
        while not until() and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            assert data, "the proxy closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    statuses[event.stream_id] = dict(event.headers)[":status"]
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            sock.sendall(conn.data_to_send())

    try:
        # More slow requests than the connection's loop can hold (its share of max_connections and max_waiting): the
        # first are sent upstream or wait, the rest are refused at once.
        slow = [request(f"/slow?ms=3000&i={i}") for i in range(8)]
        sock.sendall(conn.data_to_send())
        wait_for(lambda: upstream.requests >= 1, timeout=10, what="the first slow request upstream")
        # Read until the 503s received equal the refusals counted, twice in a row (a fixed wait could read too few,
        # and a count read while refusals are still being made could be too low).
        agreed = []

        def settled():
            read(lambda: False, 0.2)
            counted = sample(scrape(e)[1], PROXY_UPSTREAM_ERRORS, model=UNROUTED, reason="pool_full") or 0
            seen = sum(v == "503" for v in statuses.values())
            agreed.append(counted if counted == seen and counted > 0 else None)
            return len(agreed) >= 2 and agreed[-1] is not None and agreed[-1] == agreed[-2]

        wait_for(settled, timeout=15, what="the 503s received to equal the refusals counted")
        refused = [sid for sid in slow if statuses.get(sid) == "503"]
        assert refused and len(refused) < len(slow), statuses  # the queue was full: some refused, some held
        held = [sid for sid in slow if sid not in statuses]
        for sid in held:
            conn.reset_stream(sid)
        probe = request("/slow?ms=10&probe=1")
        sock.sendall(conn.data_to_send())  # the resets and the new stream in one write
        read(lambda: probe in statuses, 15)
        assert statuses.get(probe) == "200", (statuses.get(probe), statuses)
    finally:
        sock.close()
    _, s = quiet_scrape(e)
    count(s, PROXY_UPSTREAM_ERRORS, len(refused), model=UNROUTED, reason="pool_full")


def test_h2_requests_abandoned_mid_body_are_counted_as_cancelled(start_proxy, upstream):
    """An h2c client starts two v2 requests whose bodies never complete: it resets the first stream after part of
    its body, and closes the connection in the middle of the second. Each counts as a request for its model and as a
    cancelled one, as an HTTP/1.1 client leaving mid-body does; nothing reaches the upstream. Before, an HTTP/2
    request is handed to the proxy only once its body is whole: both counted nowhere (a proxy probe)."""
    import h2.config
    import h2.connection
    import h2.errors
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    _, before = scrape(e)
    forwarded = upstream.requests

    def open_stream(conn, sock):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "POST"), (":path", "/v2/models/credit/infer"), (":scheme", "http"),
                                (":authority", f"127.0.0.1:{e.proxy_port}"), ("content-type", "application/json"),
                                ("content-length", "100000")])
        conn.send_data(sid, b'{"inputs": [' + b" " * 1000)
        sock.sendall(conn.data_to_send())
        return sid

    def connect():
        sock = socket.create_connection(("127.0.0.1", e.proxy_port), timeout=5)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        return conn, sock

    conn, sock = connect()
    try:
        sid = open_stream(conn, sock)
        conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
        sock.sendall(conn.data_to_send())
        wait_for(lambda: (sample(scrape(e)[1], PROXY_CANCELLED, model="credit") or 0) == 1, timeout=10,
                 what="the reset stream counted as cancelled")
    finally:
        sock.close()
    conn, sock = connect()
    open_stream(conn, sock)
    conn.receive_data(sock.recv(65536))  # the proxy's SETTINGS: it has read the connection's start
    sock.close()
    wait_for(lambda: (sample(scrape(e)[1], PROXY_CANCELLED, model="credit") or 0) == 2, timeout=10,
             what="the request whose connection closed counted as cancelled")
    _, s = quiet_scrape(e)
    assert sample(s, PROXY_REQUESTS, model="credit") - (sample(before, PROXY_REQUESTS, model="credit") or 0) == 2
    assert upstream.requests == forwarded


def test_an_h2_body_longer_than_its_content_length_is_the_clients_error_not_a_cancel(start_proxy, upstream):
    """An h2c stream whose DATA runs past its `content-length`: nghttp2 resets it (PROTOCOL_ERROR), counted
    `bad_request`. The request counts for its model, not as a client that left (it did, a review found: the server's
    own reset was taken for the client's)."""
    import h2.config
    import h2.connection
    e = start_proxy(MODELS, upstream.base, routes=ROUTES)
    sock = socket.create_connection(("127.0.0.1", e.proxy_port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                                                validate_outbound_headers=False))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":path", "/v2/models/credit/infer"), (":scheme", "http"),
                            (":authority", f"127.0.0.1:{e.proxy_port}"), ("content-length", "10")])
    # The h2 package checks content-length itself: the frame is written by hand (DATA, no flags, stream `sid`).
    data = b'{"inputs": [1, 2, 3]}'
    sock.sendall(conn.data_to_send() + len(data).to_bytes(3, "big") + b"\x00\x00" + sid.to_bytes(4, "big") + data)
    try:
        wait_for(lambda: (sample(scrape(e)[1], PROXY_REQUESTS, model="credit") or 0) == 1, timeout=10,
                 what="the request counted")
    finally:
        sock.close()
    # A connection error nghttp2 finds by itself (DATA on stream 0: GOAWAY PROTOCOL_ERROR) under a stream mid-body.
    sock = socket.create_connection(("127.0.0.1", e.proxy_port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":path", "/v2/models/credit/infer"), (":scheme", "http"),
                            (":authority", f"127.0.0.1:{e.proxy_port}"), ("content-length", "100")])
    conn.send_data(sid, b'{"inputs": [')
    sock.sendall(conn.data_to_send() + (4).to_bytes(3, "big") + b"\x00\x00" + (0).to_bytes(4, "big") + b"abcd")
    try:
        wait_for(lambda: (sample(scrape(e)[1], PROXY_REQUESTS, model="credit") or 0) == 2, timeout=10,
                 what="the second request counted")
    finally:
        sock.close()
    _, s = quiet_scrape(e)
    count(s, PROXY_CANCELLED, 0, model="credit")
    assert (sample(s, "mlops_proxy_client_connection_errors_total", reason="bad_request") or 0) >= 2


class EarlyAnsweringUpstream:
    """An upstream that answers a v2 request as soon as it has the head, then reads (and drops) the body: as nginx's
    `return` does, and as HTTP allows."""

    ANSWER = json.dumps({"model_name": "credit", "outputs": [
        {"name": "predict", "shape": [1], "datatype": "INT64", "data": [1]}]}).encode()

    def __init__(self, receive_buffer=None, delay=0.0, chunked=False):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.chunked = chunked
        if receive_buffer:  # inherited by the accepted sockets: the proxy's writes fill it quickly
            self.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.delay = delay
        self.port = self.server.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.accept, daemon=True).start()

    @classmethod
    def read_answer(cls, sock):
        """The bytes `sock` receives up to the end of the upstream's answer (which comes before any of the body)."""
        answer = b""
        while not answer.endswith(cls.ANSWER):
            data = sock.recv(65536)
            assert data, answer
            answer += data
        return answer

    def accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                declared = re.search(rb"(?i)content-length: *(\d+)", head)
                if self.delay:
                    time.sleep(self.delay)  # reading nothing meanwhile (a peer's behaviour, not a synchronisation)
                if self.chunked:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 + b"%x\r\n" % len(self.ANSWER) + self.ANSWER + b"\r\n0\r\n\r\n")
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                                 % len(self.ANSWER) + self.ANSWER)
                # The body, by its length, or chunked (to its last chunk, no trailer: the tests send none).
                def complete():
                    return len(buf) >= int(declared.group(1)) if declared else b"0\r\n\r\n" in buf
                while not complete():
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf[int(declared.group(1)):] if declared else buf.split(b"0\r\n\r\n", 1)[1]

    def close(self):
        self.server.close()


def test_an_answer_before_the_whole_body_still_captures_the_whole_request(start_proxy):
    """The upstream answered (nginx's `return` does) before the proxy had the client's body, sent after its head: the
    capture decoded the body cut where it stood, and a valid exchange counted `invalid_json` (1,401 of 3,000 with
    Python requests and nginx). The record now waits for the rest of the body; a body that stops short after the
    answer (its client closed) is `incomplete_body`, not a JSON error, and is recorded at the close."""
    up = EarlyAnsweringUpstream()
    try:
        e = start_proxy(MODELS, up.base, routes=ROUTES)
        body = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                       "data": [0.5, 1.5, 2.5, 3.5]}]}).encode()
        head = (b"POST /v2/models/credit/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
        n = 20
        with socket.create_connection(("127.0.0.1", e.proxy_port), timeout=10) as s:
            for _ in range(n):
                s.sendall(head)
                answer = EarlyAnsweringUpstream.read_answer(s)  # the answer before any byte of the body
                assert answer.startswith(b"HTTP/1.1 200"), answer
                s.sendall(body)
        # The last request of a connection (`Connection: close`): the connection waits for the body (it closed at the
        # answer, and the body was lost).
        with socket.create_connection(("127.0.0.1", e.proxy_port), timeout=10) as s:
            s.sendall(head.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
            EarlyAnsweringUpstream.read_answer(s)
            s.sendall(body)
            assert s.recv(65536) == b""  # then the connection closes
        # Two more, whose bodies stop short (Content-Length, then chunked): their clients leave after the answer.
        chunked = head.replace(b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked")
        for start in (head + body[:10], chunked + b"a\r\n" + body[:10] + b"\r\n"):
            with socket.create_connection(("127.0.0.1", e.proxy_port), timeout=10) as s:
                s.sendall(start)
                EarlyAnsweringUpstream.read_answer(s)

        def recorded():
            _, samples = scrape(e)
            done = sample(samples, PROXY_CAPTURED, model="credit") == n + 1 and sample(
                samples, PROXY_CAPTURE_FAILURES, model="credit", reason="incomplete_body") == 2
            return samples if done else None
        samples = wait_for(recorded, timeout=30, what="21 captures and two incomplete bodies")
        assert sample(samples, INGEST_EVENTS, model="credit", kind="predictions") == n + 1
        assert sample(samples, PROXY_CAPTURE_FAILURES, model="credit", reason="invalid_json") == 0
        assert sample(samples, PROXY_REQUESTS, model="credit") == n + 3
        # The client's close ended its body at once, counted as such, chunked too (it waited for the minimum body
        # rate, 5 s, and was counted `body_too_slow`).
        errors = "mlops_proxy_client_connection_errors_total"
        assert sample(samples, errors, reason="incomplete_request") == 2
        assert sample(samples, errors, reason="body_too_slow") == 0
    finally:
        up.close()


def test_an_early_answer_to_a_body_paused_for_the_upstream_reads_the_rest_and_records_it(start_proxy):
    """A client body paused for an upstream that read none of it (256 KiB queued), then answered: the exchange ended
    with the body still paused, which nothing resumed. No timer runs for a body paused by its handler, so the
    connection was never read again, not even for the client's close, and (waiting for its body) the exchange was
    never recorded. The rest of the body is read now, captured, and the exchange recorded."""
    up = EarlyAnsweringUpstream(receive_buffer=4096, delay=1.0)
    try:
        e = start_proxy(MODELS, up.base, routes=ROUTES, max_body_bytes=16 << 20)
        body = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0.5, 1.5, 2.5, 3.5]}],
                           "pad": "x" * (8 << 20)}).encode()
        with socket.create_connection(("127.0.0.1", e.proxy_port), timeout=30) as s:
            s.sendall(b"POST /v2/models/credit/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body))
            sender = threading.Thread(target=s.sendall, args=(body,), daemon=True)
            sender.start()
            EarlyAnsweringUpstream.read_answer(s)
            sender.join(30)
            assert not sender.is_alive(), "the proxy stopped reading the body"

            def recorded():
                _, samples = scrape(e)
                return samples if sample(samples, PROXY_CAPTURED, model="credit") == 1 else None
            samples = wait_for(recorded, timeout=30, what="the exchange captured")
        assert sample(samples, PROXY_CAPTURE_FAILURES, model="credit", reason="incomplete_body") == 0
        assert sample(samples, INGEST_EVENTS, model="credit", kind="predictions") == 1
    finally:
        up.close()


def test_a_body_the_proxy_refuses_is_read_and_dropped_not_held(start_proxy, upstream):
    """The proxy answers some requests itself (400 for a dot segment) without taking their streamed body: its pieces
    were held, whole, up to the body limit (16 MiB a connection), outside the buffered-body budget (8 connections:
    +130 MB of RSS). They are dropped as they are read."""
    e = start_proxy(MODELS, upstream.base, "--web.max-buffered-body-bytes", str(4 * MIB), routes=ROUTES)
    piece = b"x" * 65536
    chunk = b"%x\r\n" % len(piece) + piece + b"\r\n"

    def send(s):
        s.sendall(b"POST /v2/models/../credit/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        answer = read_head(s)
        assert answer.startswith(b"HTTP/1.1 400"), answer
        for _ in range(192):  # 12 MiB
            s.sendall(chunk)
        s.sendall(b"0\r\n\r\n")

    sockets = [socket.create_connection(("127.0.0.1", e.proxy_port), timeout=30) for _ in range(4)]
    try:
        send(sockets[0])  # warm-up: the loop's own buffers
        before = rss_bytes(e.proc.pid)
        threads = [threading.Thread(target=send, args=(s,)) for s in sockets[1:]]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        # 36 MiB sent: held, RSS grew by as much (the bodies stay until their connections close).
        assert rss_bytes(e.proc.pid) - before < 16 * MIB
    finally:
        for s in sockets:
            s.close()


def test_a_response_cut_by_the_upstream_closes_the_client_connection_while_its_body_streams(start_proxy):
    """The upstream reset its response after the head while the client's body was still coming: the client's
    connection, whose response was cut, stayed open until that body ended (up to the body timeout), the close being
    the client's only sign of the cut. It closes at once now."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def upstream_once():
        conn, _ = server.accept()
        with conn:
            data = read_head(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            body = data.split(b"\r\n\r\n", 1)[1]
            while len(body) < 1000:  # some of the request body forwarded first
                body += conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
    threading.Thread(target=upstream_once, daemon=True).start()
    try:
        e = start_proxy(MODELS, f"http://127.0.0.1:{port}", routes=ROUTES)
        # The body announced is longer than the client sends (10 MB over 10 s): its end never comes.
        with socket.create_connection(("127.0.0.1", e.proxy_port), timeout=15) as s:
            s.sendall(b"POST /v2/models/credit/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 15000000\r\n\r\n")
            done = threading.Event()

            def trickle():  # 10 MB over 10 s, unless the connection goes first
                try:
                    for _ in range(100):
                        if done.is_set():
                            return
                        s.sendall(b"x" * 100_000)
                        time.sleep(0.1)  # the client's pace, not a synchronisation
                except OSError:
                    pass
            sender = threading.Thread(target=trickle, daemon=True)
            sender.start()
            received = b""
            try:
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    received += data
            except ConnectionResetError:
                pass
            still_sending = sender.is_alive()
            done.set()
            assert received.startswith(b"HTTP/1.1 200") and received.endswith(b"{"), received
            assert still_sending, "the connection closed only once the body had ended"

        # Recorded as the upstream's reset (a first attempt at the close failed the body inside the abort: the
        # exchange ended as cancelled and was counted nowhere).
        def recorded():
            _, samples = scrape(e)
            return samples if sample(samples, PROXY_UPSTREAM_ERRORS, model="credit", reason="reset") == 1 else None
        samples = wait_for(recorded, timeout=10, what="the upstream's reset counted")
        assert sample(samples, MODEL_REQUESTS, model="credit", version="default", status="error") == 1
        assert sample(samples, PROXY_CANCELLED, model="credit") == 0
    finally:
        server.close()


def test_an_http_1_0_client_answered_early_with_a_close_delimited_response_is_captured(start_proxy):
    """An HTTP/1.0 client's response to a chunked upstream answer is delimited by the connection's close: the
    connection closed when that answer ended, before the client's body was in, and the exchange was recorded nowhere
    (a first attempt at closing cut responses at once). The body is read to its end first, then the connection
    closes."""
    up = EarlyAnsweringUpstream(chunked=True)
    try:
        e = start_proxy(MODELS, up.base, routes=ROUTES)
        body = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                       "data": [0.5, 1.5, 2.5, 3.5]}]}).encode()
        with socket.create_connection(("127.0.0.1", e.proxy_port), timeout=10) as s:
            s.sendall(b"POST /v2/models/credit/infer HTTP/1.0\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body))
            answer = EarlyAnsweringUpstream.read_answer(s)
            s.sendall(body)
            while s.recv(65536):  # to the close
                pass
        assert answer.startswith(b"HTTP/1.1 200"), answer

        def recorded():
            _, samples = scrape(e)
            return samples if sample(samples, PROXY_CAPTURED, model="credit") == 1 else None
        samples = wait_for(recorded, timeout=10, what="the exchange captured")
        assert sample(samples, INGEST_EVENTS, model="credit", kind="predictions") == 1
    finally:
        up.close()
