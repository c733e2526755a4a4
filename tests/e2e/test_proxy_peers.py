"""Real model servers behind the reverse proxy (issue 16): MLServer (mlserver-sklearn) and KServe's Python model server
serve a scikit-learn model trained here (tests/e2e/model_servers.py); clients are tritonclient.http (Open Inference
Protocol v2) and requests (KServe v1 and v2). For each exchange, what the client receives through the proxy equals
what it receives directly (status, body bytes, content headers); the exporter's request and latency counts equal the
requests sent, its drift window observations the rows sent, and its predicted classes scikit-learn's `clf.predict`
on the same rows, computed here."""
import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import requests
import tritonclient.http as triton
from sklearn.metrics import accuracy_score

from conftest import sample, scrape, wait_for
from model_servers import kserve, mlserver, trained  # noqa: F401 (fixtures)
from proxy_support import (
    DEFAULT_VERSION, MODEL_LATENCY_COUNT, MODEL_REQUESTS, PREDICTED_CLASS, PROXY_CAPTURE_FAILURES, PROXY_CAPTURED,
    PROXY_REQUESTS,
    WINDOW_OBSERVATIONS, content_headers, start_proxy)  # noqa: F401

FEATURE_NAMES = ["x0", "x1", "x2", "x3"]
FEATURES = "[" + ", ".join(f"{{name: {f}, type: numeric}}" for f in FEATURE_NAMES) + "]"
MODEL = """
  - name: {name}
    task: binary_classification
    versions: [{versions}]
    classes: ["0", "1"]
    positive_class: "1"
    reference: {reference}
    features: {features}
    collectors: [service, drift]
    capture: {{protocol: {protocol}}}
"""
JSON = {"Content-Type": "application/json"}


def models_yaml(binary, tmp_path, models):
    """The models section for `models` ((name, versions, protocol) triples), each with a drift reference profile
    built by `mlops-exporter profile` from seeded reference rows."""
    reference = pd.DataFrame(np.random.default_rng(99).normal(size=(1000, 4)), columns=FEATURE_NAMES)
    (tmp_path / "reference.csv").write_text(reference.to_csv(index=False))
    text = "models:\n" + "".join(
        MODEL.format(name=name, versions=versions, protocol=protocol, features=FEATURES,
                     reference=tmp_path / f"{name}.profile.json") for name, versions, protocol in models)
    (tmp_path / "models.yaml").write_text(text)
    for name, _, _ in models:
        result = subprocess.run(
            [str(binary), "profile", "--config", str(tmp_path / "models.yaml"), "--model", name, "--input",
             str(tmp_path / "reference.csv"), "--out", str(tmp_path / f"{name}.profile.json")],
            capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    return text


def same_through_both(path, body, direct, proxy, headers=JSON):
    """POSTs `body` directly and through the proxy with requests; asserts equal answers; returns the proxied one."""
    d = requests.post(direct + path, data=body, headers=headers, timeout=30)
    p = requests.post(proxy + path, data=body, headers=headers, timeout=30)
    assert (p.status_code, p.content) == (d.status_code, d.content), (path, p.status_code, p.content[:300])
    assert p.headers.get("Content-Type") == d.headers.get("Content-Type")
    assert content_headers(p.headers.items()) == content_headers(d.headers.items()), (p.headers, d.headers)
    return p


def v2_request(batch, request_id, outputs=("predict",)):
    # An explicit id: MLServer's answer carries the request's id, or a random one without it.
    return json.dumps({"id": request_id, "inputs": [{"name": "input-0", "shape": list(batch.shape), "datatype": "FP64",
                                                     "data": batch.flatten().tolist()}],
                       "outputs": [{"name": o} for o in outputs]}).encode()


def triton_infer(client, batch, request_id, binary=False, datatype="FP64", **options):
    """tritonclient's infer: JSON tensors, or with `binary` the binary tensor extension for the input and the output
    (tritonclient's default)."""
    inputs = [triton.InferInput("input-0", list(batch.shape), datatype)]
    inputs[0].set_data_from_numpy(batch, binary_data=binary)
    return client.infer("credit", inputs, outputs=[triton.InferRequestedOutput("predict", binary_data=binary)],
                        request_id=request_id, **options)


def settled(e, sent):
    """The scrape once every exchange of every model in `sent` ({model: requests}) has been decoded or counted as a
    capture failure: an exchange is decoded after its response has left (a compressed one on a worker), so a scrape
    right after the client's last answer may come before it (polled, with a deadline). The scrape returned is one
    taken after that: an exchange is counted captured once its rows are recorded, but one render reads the collectors
    one after another, so the scrape that first showed the count could hold the model's series from before a worker
    recorded the last rows (a CI run: 379 rows of 467, with every exchange counted captured)."""
    def done():
        _, s = scrape(e)
        for model, n in sent.items():
            ended = (sample(s, PROXY_CAPTURED, model=model) or 0) + sum(
                v for (name, labels), v in s.items() if name == PROXY_CAPTURE_FAILURES and ("model", model) in labels)
            if ended < n:
                return None
        return s
    wait_for(done, timeout=15, what=f"every exchange decoded or counted ({sent})")
    return scrape(e)[1]


def assert_recorded(s, model, version, requests_sent, rows, clf):
    """The exporter's counts for `model`/`version` against what was sent and scikit-learn's predictions."""
    X = np.vstack(rows)
    assert sample(s, PROXY_REQUESTS, model=model) == requests_sent
    assert sample(s, PROXY_CAPTURED, model=model) == requests_sent
    assert sample(s, MODEL_LATENCY_COUNT, model=model, version=version) == requests_sent
    # Every exchange was captured: one request per row (docs/proxy.md, "What is recorded").
    assert sample(s, MODEL_REQUESTS, model=model, version=version, status="ok") == len(X)
    assert sample(s, MODEL_REQUESTS, model=model, version=version, status="error") == 0
    for feature in FEATURE_NAMES:
        assert sample(s, WINDOW_OBSERVATIONS, model=model, feature=feature) == len(X), feature
    predicted = clf.predict(X)
    for cls in (0, 1):
        assert sample(s, PREDICTED_CLASS, model=model, version=version, **{"class": str(cls)}) == \
            int((predicted == cls).sum()), cls
    for reason in ("invalid_json", "shape_mismatch", "missing_field", "unsupported", "invalid_value", "too_large",
                   "unsupported_encoding", "invalid_encoding"):
        assert sample(s, PROXY_CAPTURE_FAILURES, model=model, reason=reason) in (None, 0), reason


def test_mlserver_behind_the_proxy_answers_as_directly_and_is_recorded_as_sklearn_predicts(
        start_proxy, binary, tmp_path, mlserver):
    base, clf, rng = mlserver
    models = models_yaml(binary, tmp_path, [("credit", "v1, default", "open_inference_v2")])
    e = start_proxy(models.replace("collectors: [service, drift]", "collectors: [service, drift, quality]"), base)
    rows, sent, ids = [], 0, []

    def named(request_id, batch):
        """The event ids of a request's rows: its v2 body's id (docs/proxy.md), `<id>/<row>` for a batch."""
        return [request_id] if len(batch) == 1 else [f"{request_id}/{r}" for r in range(len(batch))]

    # requests: v2, with and without the version in the path (MLServer's model_version is v1 either way).
    for i in range(8):
        batch = rng.normal(size=(1 + i % 4, 4))
        path = "/v2/models/credit/infer" if i % 2 else "/v2/models/credit/versions/v1/infer"
        answer = same_through_both(path, v2_request(batch, f"req-{i}", ("predict", "predict_proba")), base,
                                   e.proxy.base).json()
        assert answer["model_version"] == "v1"
        assert np.ravel(answer["outputs"][0]["data"]).tolist() == clf.predict(batch).tolist()
        rows.append(batch)
        ids += named(f"req-{i}", batch)
        sent += 1
    # A batch whose answer passes 500 bytes: MLServer gzips it (its default gzip_enabled, for requests' default
    # Accept-Encoding); the capture inflates it.
    batch = rng.normal(size=(40, 4))
    answer = same_through_both("/v2/models/credit/infer", v2_request(batch, "req-big", ("predict", "predict_proba")),
                               base, e.proxy.base)
    assert answer.headers.get("Content-Encoding") == "gzip"
    assert np.ravel(answer.json()["outputs"][0]["data"]).tolist() == clf.predict(batch).tolist()
    rows.append(batch)
    ids += named("req-big", batch)
    sent += 1
    # tritonclient (keep-alive connections of its own), directly and through the proxy; every other request and
    # answer gzip-compressed (MLServer inflates the request itself).
    direct = triton.InferenceServerClient(url=base.removeprefix("http://"))
    proxied = triton.InferenceServerClient(url=e.proxy.base.removeprefix("http://"))
    try:
        for i in range(6):
            batch = rng.normal(size=(1 + i % 3, 4) if i < 4 else (200, 4))
            options = {"model_version": "v1"} if i % 2 else {}
            if i >= 3:
                options.update(request_compression_algorithm="gzip", response_compression_algorithm="gzip")
            p = triton_infer(proxied, batch, f"triton-{i}", **options)
            d = triton_infer(direct, batch, f"triton-{i}", **options)
            assert p.get_response() == d.get_response()
            assert p.as_numpy("predict").ravel().tolist() == clf.predict(batch).tolist()
            rows.append(batch)
            ids += named(f"triton-{i}", batch)
            sent += 1
    finally:
        direct.close()
        proxied.close()
    s = settled(e, {"credit": sent})
    assert_recorded(s, "credit", "v1", sent, rows, clf)
    # Labels name the requests' own v2 ids (tritonclient's request_id), no header sent: every row joins, and the
    # accuracy is scikit-learn's on the same rows (the body's id was ignored: none joined).
    truth = rng.integers(0, 2, size=len(ids)).tolist()
    labels = "".join(json.dumps({"id": i, "label": str(t)}) + "\n" for i, t in zip(ids, truth))
    answer = requests.post(e.base + "/api/v1/models/credit/labels", data=labels,
                           headers={"Content-Type": "application/x-ndjson"}, timeout=10)
    assert answer.status_code == 202 and answer.json()["joined"] == len(ids), answer.text
    _, s = scrape(e)
    assert sample(s, "mlops_model_accuracy", model="credit", version="v1") == pytest.approx(
        accuracy_score(truth, clf.predict(np.vstack(rows))), abs=1e-12)


def test_kserve_behind_the_proxy_answers_as_directly_and_is_recorded_as_sklearn_predicts(
        start_proxy, binary, tmp_path, kserve):
    base, clf, rng = kserve
    models = models_yaml(binary, tmp_path, [("credit", DEFAULT_VERSION, "open_inference_v2"),
                                            ("credit-v1", DEFAULT_VERSION, "kserve_v1")])
    # KServe serves the model as "credit" in both protocols: the v1 path is routed to the kserve_v1 model by name.
    e = start_proxy(models, base, routes=[("/v1/models/credit:predict", "credit-v1"),
                                          ("/v2/models/{model}/infer", None)])
    v1_rows, v2_rows, v2_sent = [], [], 0
    for i in range(8):
        batch = rng.normal(size=(1 + i % 3, 4))
        answer = same_through_both("/v1/models/credit:predict", json.dumps({"instances": batch.tolist()}).encode(),
                                   base, e.proxy.base).json()
        assert answer["predictions"] == clf.predict(batch).tolist()
        v1_rows.append(batch)
        batch = rng.normal(size=(1 + i % 2, 4))
        answer = same_through_both("/v2/models/credit/infer", v2_request(batch, f"v2-{i}"), base, e.proxy.base).json()
        assert answer["outputs"][0]["data"] == clf.predict(batch).tolist()
        v2_rows.append(batch)
        v2_sent += 1
    direct = triton.InferenceServerClient(url=base.removeprefix("http://"))
    proxied = triton.InferenceServerClient(url=e.proxy.base.removeprefix("http://"))
    try:
        for i in range(4):
            batch = rng.normal(size=(2, 4))
            # KServe reads a body without Content-Type as the binary extension: tritonclient's JSON needs the header.
            p = triton_infer(proxied, batch, f"triton-{i}", headers=JSON)
            d = triton_infer(direct, batch, f"triton-{i}", headers=JSON)
            assert p.get_response() == d.get_response()
            assert p.as_numpy("predict").ravel().tolist() == clf.predict(batch).tolist()
            v2_rows.append(batch)
            v2_sent += 1
        # tritonclient's default, the binary tensor extension (input bytes after a JSON header; the output too, as
        # asked), FP64 and FP32: captured as the JSON form is.
        for i in range(4):
            datatype = "FP64" if i % 2 else "FP32"
            batch = rng.normal(size=(1 + i, 4)).astype(np.float64 if i % 2 else np.float32)
            p = triton_infer(proxied, batch, f"binary-{i}", binary=True, datatype=datatype)
            d = triton_infer(direct, batch, f"binary-{i}", binary=True, datatype=datatype)
            assert p.get_response() == d.get_response()
            assert p.get_response()["outputs"][0]["parameters"]["binary_data_size"] == 8 * len(batch)
            assert p.as_numpy("predict").ravel().tolist() == clf.predict(batch.astype(float)).tolist()
            v2_rows.append(batch.astype(float))
            v2_sent += 1
    finally:
        direct.close()
        proxied.close()
    s = settled(e, {"credit": v2_sent, "credit-v1": len(v1_rows)})
    # KServe's v2 answer has no model_version: the version is the default one.
    assert_recorded(s, "credit", DEFAULT_VERSION, v2_sent, v2_rows, clf)
    assert_recorded(s, "credit-v1", DEFAULT_VERSION, len(v1_rows), v1_rows, clf)


def test_kserve_v2_requests_with_nan_tokens_are_captured_as_missing_values(start_proxy, binary, tmp_path, kserve):
    """Python's json.dumps writes NaN for a missing float; KServe's v2 endpoint reads it (200), as Triton does: the
    capture reads the token as a missing value (it counted the exchange invalid_json, and lost it, before)."""
    base, clf, rng = kserve
    e = start_proxy(models_yaml(binary, tmp_path, [("credit", DEFAULT_VERSION, "open_inference_v2")]), base)
    rows = []
    for i in range(3):
        batch = rng.normal(size=(2, 4))
        batch[i % 2, i] = np.nan
        body = json.dumps({"id": f"nan-{i}", "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64",
                                                         "data": batch.tolist()}]}).encode()
        assert b"NaN" in body
        answer = same_through_both("/v2/models/credit/infer", body, base, e.proxy.base).json()
        assert answer["outputs"][0]["data"] == clf.predict(np.nan_to_num(batch, nan=0.0)).tolist()
        rows.append(batch)
    s = settled(e, {"credit": 3})
    X = np.vstack(rows)
    assert sample(s, PROXY_CAPTURED, model="credit") == 3
    assert sample(s, PROXY_CAPTURE_FAILURES, model="credit", reason="invalid_json") in (None, 0)
    assert sample(s, MODEL_REQUESTS, model="credit", version=DEFAULT_VERSION, status="ok") == len(X)
    predicted = clf.predict(np.nan_to_num(X, nan=0.0))
    for cls in (0, 1):
        assert sample(s, PREDICTED_CLASS, model="credit", version=DEFAULT_VERSION, **{"class": str(cls)}) == \
            int((predicted == cls).sum()), cls
    # A missing value is no observation of its feature's window.
    for j, feature in enumerate(FEATURE_NAMES):
        assert sample(s, WINDOW_OBSERVATIONS, model="credit", feature=feature) == int((~np.isnan(X[:, j])).sum())


def test_one_kserve_model_is_captured_in_both_protocols_by_the_default_routes(start_proxy, binary, tmp_path, kserve):
    """KServe serves one model under both its v1 and v2 paths: with the default routes, a model captured with either
    protocol decodes each exchange with the protocol its path implies (v1 bodies were refused missing_field or
    invalid_json by the model's v2 decoder; a second model and a route were needed)."""
    base, clf, rng = kserve
    e = start_proxy(models_yaml(binary, tmp_path, [("credit", DEFAULT_VERSION, "open_inference_v2")]), base)
    rows = []
    for i in range(6):
        batch = rng.normal(size=(1 + i % 3, 4))
        if i % 2:
            answer = same_through_both("/v1/models/credit:predict", json.dumps({"instances": batch.tolist()}).encode(),
                                       base, e.proxy.base).json()
            assert answer["predictions"] == clf.predict(batch).tolist()
        else:
            answer = same_through_both("/v2/models/credit/infer", v2_request(batch, f"v2-{i}"), base,
                                       e.proxy.base).json()
            assert answer["outputs"][0]["data"] == clf.predict(batch).tolist()
        rows.append(batch)
    s = settled(e, {"credit": 6})
    assert_recorded(s, "credit", DEFAULT_VERSION, 6, rows, clf)
