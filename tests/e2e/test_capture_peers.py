"""Capture against real model servers: MLServer (mlserver-sklearn, in .venv-mlserver) and KServe's Python model
server (in .venv-kserve) serve a scikit-learn model trained here; their real KServe v1 and Open Inference Protocol v2
requests and responses are handed to the exporter as KServe logger CloudEvents, and what the exporter records
equals the model's own output (docs/proxy.md)."""
import json
import urllib.request

import numpy as np
import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from sklearn.metrics import log_loss

from conftest import scrape, sample
from model_servers import WEIGHTS, kserve, mlserver, post, trained  # noqa: F401 (fixtures)

CONFIG = """
models:
  - name: credit
    task: binary_classification
    versions: ["v1"]
    classes: ["0", "1"]
    positive_class: "1"
    features: [{name: x0, type: numeric}, {name: x1, type: numeric}, {name: x2, type: numeric}, {name: x3, type: numeric}]
    collectors: [service, quality]
    capture: {protocol: open_inference_v2}
  - name: credit-v1
    task: binary_classification
    versions: ["default"]
    classes: ["0", "1"]
    positive_class: "1"
    features: [{name: x0, type: numeric}, {name: x1, type: numeric}, {name: x2, type: numeric}, {name: x3, type: numeric}]
    collectors: [service, quality]
    capture: {protocol: kserve_v1, inference_service: credit-kserve}
"""


def log_exchange(exporter, service, event_id, request, response):
    """Sends an exchange as the KServe logger does (binary content mode); returns the answer to the second half."""
    for kind, body in (("request", request), ("response", response)):
        event = CloudEvent({"type": f"org.kubeflow.serving.inference.{kind}", "source": "test", "id": event_id,
                            "inferenceservicename": service}, None)
        headers, _ = to_binary(event)
        status, _, answer = exporter.post("/api/v1/cloudevents", body, headers=headers)
        assert status == 200, answer
    return json.loads(answer)


def kserve_exchange(base, protocol, batch):
    """(request body, KServe's response body) for `batch` in `protocol` (v1: instances; v2: one FP64 tensor)."""
    if protocol == "v1":
        request = json.dumps({"instances": batch.tolist()}).encode()
        return request, post(base + "/v1/models/credit:predict", request)
    request = json.dumps({"inputs": [{"name": "x", "shape": list(batch.shape), "datatype": "FP64",
                                      "data": batch.flatten().tolist()}]}).encode()
    return request, post(base + "/v2/models/credit/infer", request)


def test_mlserver_v2_exchanges_through_the_logger_receiver_equal_the_models_output(
        start_exporter, tmp_path, mlserver):
    base, clf, rng = mlserver
    (tmp_path / "models.yaml").write_text(CONFIG)
    e = start_exporter("--config", str(tmp_path / "models.yaml"))
    ids, rows, truth = [], [], []
    for i in range(12):
        batch = rng.normal(size=(1 + i % 4, 4))
        request = json.dumps({
            "inputs": [{"name": "input-0", "shape": list(batch.shape), "datatype": "FP64",
                        "data": batch.flatten().tolist()}],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}).encode()
        # The bytes the logger would send: MLServer's own request and response, untouched.
        response = post(base + "/v2/models/credit/infer", request)
        answer = log_exchange(e, "credit", f"b{i}", request, response)
        assert answer == {"status": "paired", "accepted": len(batch), "rejected": 0}, answer
        ids += [f"b{i}" if len(batch) == 1 else f"b{i}/{r}" for r in range(len(batch))]
        rows.append(batch)
        truth += (batch @ WEIGHTS > 0).astype(int).tolist()
    # A batch whose answer MLServer gzips (500 bytes or more, for a client that accepts gzip): the logger passes the
    # bytes on as the model server wrote them, and the receiver inflates them.
    batch = rng.normal(size=(30, 4))
    request = json.dumps({
        "inputs": [{"name": "input-0", "shape": list(batch.shape), "datatype": "FP64",
                    "data": batch.flatten().tolist()}],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}).encode()
    req = urllib.request.Request(base + "/v2/models/credit/infer", data=request,
                                 headers={"Content-Type": "application/json", "Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers.get("Content-Encoding") == "gzip"
        response = r.read()
    assert response[:2] == b"\x1f\x8b"
    answer = log_exchange(e, "credit", "big", request, response)
    assert answer == {"status": "paired", "accepted": len(batch), "rejected": 0}, answer
    ids += [f"big/{r}" for r in range(len(batch))]
    rows.append(batch)
    truth += (batch @ WEIGHTS > 0).astype(int).tolist()
    # A gzip half that does not inflate is a counted capture failure.
    answer = log_exchange(e, "credit", "broken", request, b"\x1f\x8b\x08" + b"not deflate" * 8)
    assert answer == {"status": "capture_failed", "reason": "invalid_encoding"}, answer
    X = np.vstack(rows)
    predicted = clf.predict(X)
    _, s = scrape(e)
    assert sample(s, "mlops_cloudevents_capture_failures_total", model="credit", reason="invalid_encoding") == 1
    # The version is MLServer's model_version; the classes are the model's own predictions.
    for cls in (0, 1):
        assert sample(s, "mlops_model_predicted_class_total", model="credit", version="v1",
                      **{"class": str(cls)}) == int((predicted == cls).sum())
    labels = "".join(json.dumps({"id": i, "label": str(t)}) + "\n" for i, t in zip(ids, truth))
    status, _, body = e.post("/api/v1/models/credit/labels", labels.encode(),
                             headers={"Content-Type": "application/x-ndjson"})
    assert status == 202 and json.loads(body)["joined"] == len(ids), body
    _, s = scrape(e)
    # The probabilities came from MLServer's predict_proba output: log loss equals scikit-learn's.
    assert sample(s, "mlops_model_log_loss", model="credit", version="v1") == pytest.approx(
        log_loss(truth, clf.predict_proba(X)[:, 1], labels=[0, 1]), rel=1e-9)


def test_kserve_v1_and_v2_exchanges_through_the_logger_receiver_equal_the_models_output(
        start_exporter, tmp_path, kserve):
    base, clf, rng = kserve
    (tmp_path / "models.yaml").write_text(CONFIG.replace("capture: {protocol: open_inference_v2}",
                                                         "capture: {protocol: open_inference_v2, inference_service: credit-kserve-v2}"))
    e = start_exporter("--config", str(tmp_path / "models.yaml"))
    batches = [rng.normal(size=(1 + i % 3, 4)) for i in range(8)]
    for i, batch in enumerate(batches):
        request, response = kserve_exchange(base, "v1", batch)
        assert log_exchange(e, "credit-kserve", f"v1-{i}", request, response)["accepted"] == len(batch)
        request, response = kserve_exchange(base, "v2", batch)
        assert log_exchange(e, "credit-kserve-v2", f"v2-{i}", request, response)["accepted"] == len(batch)
    predicted = clf.predict(np.vstack(batches))
    _, s = scrape(e)
    for cls in (0, 1):
        expected = int((predicted == cls).sum())
        assert sample(s, "mlops_model_predicted_class_total", model="credit-v1", version="default",
                      **{"class": str(cls)}) == expected
        # KServe's v2 answer carries no model_version here: the version falls back to "default", outside the v2
        # model's configured versions, so it is counted under __other__.
        assert sample(s, "mlops_model_predicted_class_total", model="credit", version="__other__",
                      **{"class": str(cls)}) == expected


def test_one_inference_service_logging_both_kserve_protocols_is_read_by_one_model(start_exporter, tmp_path, kserve):
    """KServe serves (and its logger logs) one model under both v1 and v2; a logger event does not say which path it
    came by: a pair the model's protocol refuses is read with the other KServe protocol (before, every v1 pair of a
    v2 model failed missing_field)."""
    base, clf, rng = kserve
    (tmp_path / "models.yaml").write_text(CONFIG)
    e = start_exporter("--config", str(tmp_path / "models.yaml"))
    batches = [rng.normal(size=(1 + i % 3, 4)) for i in range(6)]
    for i, batch in enumerate(batches):
        request, response = kserve_exchange(base, "v1" if i % 2 else "v2", batch)
        # "credit-kserve" is the kserve_v1 model's service: its v2 pairs are read as v2.
        assert log_exchange(e, "credit-kserve", f"both-{i}", request, response)["accepted"] == len(batch)
    predicted = clf.predict(np.vstack(batches))
    _, s = scrape(e)
    for cls in (0, 1):
        assert sample(s, "mlops_model_predicted_class_total", model="credit-v1", version="default",
                      **{"class": str(cls)}) == int((predicted == cls).sum())
    # A pair neither protocol reads is still refused, with the model's protocol's reason.
    bad = log_exchange(e, "credit-kserve", "bad", b'{"rows": [1]}', b'{"predictions": [1]}')
    assert bad == {"status": "capture_failed", "reason": "missing_field"}, bad
