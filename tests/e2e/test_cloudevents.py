"""KServe's inference logger into the exporter: request and response CloudEvents (binary and structured content
modes, produced by the CloudEvents Python SDK) for a scikit-learn model trained here, in the KServe v1 and Open
Inference Protocol v2 shapes; pairs, orphans, refusals and capture failures counted (docs/proxy.md)."""
import datetime
import http.client
import json

import numpy as np
import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from conftest import scrape, sample, wait_for

FEATURES = ["x0", "x1", "x2", "x3"]

CONFIG = """
cloudevents: {ttl: 1s}
models:
  - name: credit
    task: binary_classification
    versions: [default, canary]
    classes: ["0", "1"]
    positive_class: "1"
    features: [{name: x0, type: numeric}, {name: x1, type: numeric}, {name: x2, type: numeric}, {name: x3, type: numeric}]
    collectors: [service, quality]
    capture: {protocol: kserve_v1, inference_service: credit-isvc}
  - name: scorer
    task: binary_classification
    versions: ["1"]
    classes: ["0", "1"]
    positive_class: "1"
    features: [{name: x0, type: numeric}, {name: x1, type: numeric}, {name: x2, type: numeric}, {name: x3, type: numeric}]
    collectors: [service]
    capture: {protocol: open_inference_v2}
"""

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def send(exporter, attributes, data, structured=False):
    event = CloudEvent({"source": "kserve-logger-test", **attributes}, data)
    headers, body = (to_structured if structured else to_binary)(event)
    return exporter.post("/api/v1/cloudevents", body, headers=headers)


@pytest.fixture
def model():
    rng = np.random.default_rng(15)
    X = rng.normal(size=(400, 4))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(scale=0.5, size=400) > 0).astype(int)
    return LogisticRegression().fit(X, y), rng


def test_logger_events_pair_decode_and_count_like_the_ingestion_api(start_exporter, tmp_path, model):
    clf, rng = model
    (tmp_path / "models.yaml").write_text(CONFIG)
    e = start_exporter("--config", str(tmp_path / "models.yaml"))
    rows_sent, ids, truth, predicted = 0, [], [], []
    by_version = {"default": [], "canary": []}
    pairs_by_version = {"default": 0, "canary": 0}
    t0 = 1_790_000_000.0
    for i in range(30):
        batch = rng.normal(size=(1 + i % 3, 4))
        predictions = clf.predict(batch)
        y = (batch @ np.array([1.0, -2.0, 0.5, 0.0]) > 0).astype(int)
        # ce-endpoint (KServe's predictor or canary) becomes the version when the protocol carries none.
        endpoint = "canary" if i % 5 == 0 else "default"
        by_version[endpoint] += predictions.tolist()
        pairs_by_version[endpoint] += 1
        attributes = {"id": f"req-{i}", "inferenceservicename": "credit-isvc", "endpoint": endpoint}
        status, _, body = send(e, {**attributes, "type": REQUEST, "time": rfc3339(t0 + i)},
                               {"instances": batch.tolist()}, structured=i % 2 == 1)
        assert status == 200 and json.loads(body) == {"status": "waiting"}, body
        status, _, body = send(e, {**attributes, "type": RESPONSE, "time": rfc3339(t0 + i + 0.25)},
                               {"predictions": predictions.tolist()}, structured=i % 3 == 0)
        assert status == 200, body
        assert json.loads(body) == {"status": "paired", "accepted": len(batch), "rejected": 0}, body
        for r in range(len(batch)):
            ids.append(f"req-{i}" if len(batch) == 1 else f"req-{i}/{r}")
        truth += y.tolist()
        predicted += predictions.tolist()
        rows_sent += len(batch)

    _, s = scrape(e)
    assert sample(s, "mlops_cloudevents_received_total", type="request") == 30
    assert sample(s, "mlops_cloudevents_received_total", type="response") == 30
    assert sample(s, "mlops_cloudevents_paired_total", model="credit") == 30
    assert sample(s, "mlops_cloudevents_pending") == 0
    assert sample(s, "mlops_ingest_events_total", model="credit", kind="predictions") == rows_sent
    for version, rows in by_version.items():
        for cls in (0, 1):
            assert sample(s, "mlops_model_predicted_class_total", model="credit", version=version,
                          **{"class": str(cls)}) == rows.count(cls)
        # Latency from the two events' ce-time: 0.25 s, observed once per exchange (with its first row), as the
        # proxy observes it once per request (it was once per row: a batch weighed its rows' count in the quantiles).
        assert sample(s, "mlops_model_latency_seconds_count", model="credit", version=version) == \
            pairs_by_version[version]
        assert sample(s, "mlops_model_latency_seconds_sum", model="credit", version=version) == pytest.approx(
            0.25 * pairs_by_version[version], abs=1e-6)

    # Labels for the logged ids join: accuracy equals scikit-learn's on the same rows.
    labels = "".join(json.dumps({"id": i, "label": str(t)}) + "\n" for i, t in zip(ids, truth))
    status, _, body = e.post("/api/v1/models/credit/labels", labels.encode(),
                             headers={"Content-Type": "application/x-ndjson"})
    assert status == 202 and json.loads(body)["joined"] == rows_sent, body
    _, s = scrape(e)
    window = sample(s, "mlops_model_window_outcomes", model="credit", version="default")
    canary = sample(s, "mlops_model_window_outcomes", model="credit", version="canary")
    assert window + canary == rows_sent
    correct = sum(sample(s, "mlops_model_accuracy", model="credit", version=v) *
                  sample(s, "mlops_model_window_outcomes", model="credit", version=v) for v in by_version)
    assert correct / rows_sent == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)


def test_open_inference_v2_pairs_take_the_model_version(start_exporter, tmp_path, model):
    clf, rng = model
    (tmp_path / "models.yaml").write_text(CONFIG)
    e = start_exporter("--config", str(tmp_path / "models.yaml"))
    batch = rng.normal(size=(5, 4))
    predictions = clf.predict(batch)
    request = {"inputs": [{"name": "input-0", "shape": [5, 4], "datatype": "FP64", "data": batch.flatten().tolist()}]}
    response = {"model_name": "scorer", "model_version": "1", "id": "v2-1",
                "outputs": [{"name": "predict", "shape": [5], "datatype": "INT64", "data": predictions.tolist()}]}
    attributes = {"id": "v2-1", "inferenceservicename": "scorer"}
    assert send(e, {**attributes, "type": RESPONSE}, response)[0] == 200
    status, _, body = send(e, {**attributes, "type": REQUEST}, request)
    assert status == 200 and json.loads(body)["accepted"] == 5, body
    _, s = scrape(e)
    for cls in (0, 1):
        assert sample(s, "mlops_model_predicted_class_total", model="scorer", version="1",
                      **{"class": str(cls)}) == list(predictions).count(cls)

    # A tensor whose shape does not match its data: counted, answered 200, nothing recorded.
    bad = {"inputs": [{"name": "input-0", "shape": [5, 4], "datatype": "FP64", "data": [1.0, 2.0]}]}
    attributes = {"id": "v2-bad", "inferenceservicename": "scorer"}
    send(e, {**attributes, "type": REQUEST}, bad)
    status, _, body = send(e, {**attributes, "type": RESPONSE}, response)
    assert status == 200 and json.loads(body) == {"status": "capture_failed", "reason": "shape_mismatch"}, body
    _, s = scrape(e)
    assert sample(s, "mlops_cloudevents_capture_failures_total", model="scorer", reason="shape_mismatch") == 1
    assert sample(s, "mlops_ingest_events_total", model="scorer", kind="predictions") == 5


def test_refusals_and_orphans_are_counted(start_exporter, tmp_path):
    (tmp_path / "models.yaml").write_text(CONFIG)
    e = start_exporter("--config", str(tmp_path / "models.yaml"))
    status, _, body = send(e, {"id": "a", "type": REQUEST, "inferenceservicename": "nobody"}, {"instances": []})
    assert status == 404 and b"nobody" in body
    status, _, body = e.post("/api/v1/cloudevents", b'{"instances": []}', headers={"Content-Type": "application/json"})
    assert status == 400 and b"ce-id" in body
    status, _, body = send(e, {"id": "a", "type": "com.example.other", "inferenceservicename": "credit-isvc"}, {})
    assert status == 400 and b"ce-type" in body
    status, _, _ = e.get("/api/v1/cloudevents")
    assert status == 405
    # A context attribute sent twice has no one value: refused, not paired by the first (before, `ce-id: a` and
    # `ce-id: b` waited as `a`).
    conn = http.client.HTTPConnection("127.0.0.1", e.port, timeout=10)
    conn.putrequest("POST", "/api/v1/cloudevents")
    for name, value in [("Content-Type", "application/json"), ("ce-specversion", "1.0"), ("ce-source", "t"),
                        ("ce-id", "dup-a"), ("ce-id", "dup-b"), ("ce-type", REQUEST),
                        ("ce-inferenceservicename", "credit-isvc"), ("Content-Length", "2")]:
        conn.putheader(name, value)
    conn.endheaders(b"{}")
    answer = conn.getresponse()
    assert answer.status == 400 and b"ce-id appears twice" in answer.read()
    conn.close()
    # The same in structured mode (the pair was made under the last id, the prediction recorded under the first).
    status, _, body = e.post(
        "/api/v1/cloudevents",
        b'{"specversion":"1.0","source":"t","id":"s-a","id":"s-b","type":"' + REQUEST.encode()
        + b'","inferenceservicename":"credit-isvc","data":{"instances":[[0,0,0,0]]}}',
        headers={"Content-Type": "application/cloudevents+json"})
    assert status == 400 and b"id appears twice" in body, body
    # A `time` that is not RFC 3339 (the spec's MUST): refused, in both modes (it was taken as absent, and the pair's
    # latency went unrecorded without a word).
    for bad in ("2026-02-30T10:00:00Z", "2026-12-02T10:00:00", "2026-12-02T10:00:00+24:00"):
        status, _, body = send(e, {"id": "t-" + bad, "type": REQUEST, "inferenceservicename": "credit-isvc",
                                   "time": bad}, {"instances": [[0, 0, 0, 0]]})
        assert status == 400 and b"ce-time" in body and b"RFC 3339" in body, (bad, status, body)
    status, _, body = send(e, {"id": "t-s", "type": REQUEST, "inferenceservicename": "credit-isvc",
                               "time": "yesterday"}, {"instances": [[0, 0, 0, 0]]}, structured=True)
    assert status == 400 and b"RFC 3339" in body, (status, body)
    # A request whose response never comes expires after cloudevents.ttl (1 s), counted as an orphan.
    assert send(e, {"id": "lonely", "type": REQUEST, "inferenceservicename": "credit-isvc"},
                {"instances": [[0, 0, 0, 0]]})[0] == 200
    wait_for(lambda: sample(scrape(e)[1], "mlops_cloudevents_orphans_total", type="request", reason="expired") == 1,
             timeout=10, what="the lonely request to expire")
    _, s = scrape(e)
    assert sample(s, "mlops_cloudevents_pending") == 0
    assert sample(s, "mlops_cloudevents_rejected_total", reason="invalid_event") == 7
    assert sample(s, "mlops_cloudevents_rejected_total", reason="unknown_type") == 1


def test_halves_waiting_at_shutdown_are_said_dropped(start_exporter, tmp_path):
    """A half still waiting for its pair when the exporter stops is dropped (halves are not kept across restarts) and
    said so in the last log lines, counted `orphans_total{reason="shutdown"}`. Before, it went without a count or a
    word, and its pair arriving after the restart expired as an orphan."""
    (tmp_path / "models.yaml").write_text(CONFIG.replace("ttl: 1s", "ttl: 10m"))
    e = start_exporter("--config", str(tmp_path / "models.yaml"))
    for i in range(2):
        assert send(e, {"id": f"at-stop-{i}", "type": REQUEST, "inferenceservicename": "credit-isvc"},
                    {"instances": [[0, 0, 0, 0]]})[0] == 200
    assert sample(scrape(e)[1], "mlops_cloudevents_pending") == 2
    e.stop()
    log = e.log_path.read_text()
    assert "events waiting for their other half dropped at shutdown" in log and "events=2" in log, log


HEADER_CONFIG = """
models:
  - name: tagged
    task: binary_classification
    versions: ["7", "8"]
    classes: ["0", "1"]
    positive_class: "1"
    features: [{name: x0, type: numeric}, {name: kind, type: categorical, values: ["1.0", "2"]}]
    collectors: [service, quality]
    capture:
      protocol: custom
      fields: {prediction: "response:/labels/*", version: "header:ce-modelversion", id: "header:ce-ticket"}
      features: {x0: "request:/rows/*/x0", kind: "request:/rows/*/kind"}
"""


def test_custom_header_sources_read_the_events_attributes(start_exporter, tmp_path):
    """Over the logger, a custom mapping's header: sources see the events' ce- attributes (an extension attribute
    here), in both content modes; structured data reaches the decoder as sent."""
    (tmp_path / "models.yaml").write_text(HEADER_CONFIG)
    e = start_exporter("--config", str(tmp_path / "models.yaml"))
    for i, structured in enumerate([False, True, True]):
        version = "8" if i == 2 else "7"
        attributes = {"id": f"t-{i}", "inferenceservicename": "tagged", "modelversion": version, "ticket": f"k{i}"}
        status, _, body = send(e, {**attributes, "type": REQUEST}, {"rows": [{"x0": 0.5, "kind": 1.0}]},
                               structured=structured)
        assert status == 200, body
        status, _, body = send(e, {**attributes, "type": RESPONSE}, {"labels": [1]}, structured=structured)
        assert status == 200 and json.loads(body) == {"status": "paired", "accepted": 1, "rejected": 0}, body
    _, s = scrape(e)
    assert sample(s, "mlops_model_predicted_class_total", model="tagged", version="7", **{"class": "1"}) == 2
    assert sample(s, "mlops_model_predicted_class_total", model="tagged", version="8", **{"class": "1"}) == 1
    # The id came from ce-ticket: a label for k2 joins.
    status, _, body = e.post("/api/v1/models/tagged/labels", b'{"id": "k2", "label": "1"}\n',
                             headers={"Content-Type": "application/x-ndjson"})
    assert status == 202 and json.loads(body)["joined"] == 1, body
