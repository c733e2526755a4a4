"""End to end: the ingestion API of the real binary (POST /api/v1/models/{model}/predictions|labels), its
error statuses, its accounting, concurrent writers, promtool on the output, and a user-defined collector."""

import gzip
import json
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from conftest import ROOT, Exporter, build_product, sample, scrape

NDJSON = {"Content-Type": "application/x-ndjson"}
JSON = {"Content-Type": "application/json"}
PRED = "/api/v1/models/fraud/predictions"

CONFIG = """
models:
  - name: fraud
    task: binary_classification
    versions: [v1, v2]
    classes: [legit, fraud]
    positive_class: fraud
    features:
      - {name: amount, type: numeric}
      - {name: country, type: categorical, values: [US, DE]}
    latency_buckets: [0.01, 0.1, 1]
    collectors: [service]
  - name: eta
    task: regression
    versions: ["2024.06"]
    token: s3cret
    features:
      - {name: distance_km, type: numeric}
    collectors:
      - name: service
        options: {prediction_buckets: [10, 60]}
"""






def event(i, version="v1", **extra):
    e = {"id": str(i), "version": version, "features": {"amount": i * 1.5, "country": "US"},
         "prediction": "fraud" if i % 3 == 0 else "legit", "latency_seconds": 0.005 if i % 2 else 0.05}
    e.update(extra)
    return e


def ndjson(events):
    return "".join(json.dumps(e) + "\n" for e in events).encode()


@pytest.fixture
def exporter(start_exporter, tmp_path):
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG)
    return start_exporter("--config", str(config), "--ingest.max-events", "1000", "--web.max-body-bytes", "200000")


def test_ndjson_and_json_batches_are_recorded(exporter):
    started = time.time()
    status, headers, body = exporter.post(PRED, ndjson([event(i) for i in range(10)]), NDJSON)
    assert status == 202 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"accepted": 10, "rejected": 0, "errors": []}
    status, _, body = exporter.post(PRED, json.dumps([event(i, "v2") for i in range(5)]).encode(), JSON)
    assert status == 202 and json.loads(body)["accepted"] == 5
    s = scrape(exporter)[1]
    assert sample(s, "mlops_ingest_events_total", model="fraud", kind="predictions") == 15
    assert sample(s, "mlops_model_requests_total", model="fraud", version="v1", status="ok") == 10
    assert sample(s, "mlops_model_requests_total", model="fraud", version="v2", status="ok") == 5
    assert sample(s, "mlops_model_predicted_class_total", model="fraud", version="v1", **{"class": "fraud"}) == 4
    assert sample(s, "mlops_model_latency_seconds_bucket", model="fraud", version="v1", le="0.01") == 5
    assert sample(s, "mlops_model_latency_seconds_count", model="fraud", version="v1") == 10
    assert started <= sample(s, "mlops_model_last_event_timestamp_seconds", model="fraud", version="v1") <= time.time()


def test_mixed_batch_accepts_the_good_events_and_names_the_bad(exporter):
    lines = [
        json.dumps(event(1)),
        json.dumps({"version": "v1"}),                                   # no prediction
        "{not json",
        json.dumps(event(2, latency_seconds=-3)),
        "",                                                              # blank lines are skipped
        json.dumps(event(3, "v9", status="error", error_kind="timeout")),  # unknown version -> __other__
        json.dumps(event(4, features={"amount": "many"})),               # numeric feature as a string
    ]
    status, _, body = exporter.post(PRED, "\n".join(lines).encode(), NDJSON)
    assert status == 202
    report = json.loads(body)
    assert report["accepted"] == 2 and report["rejected"] == 4
    assert [(e["index"], e["line"], e["reason"]) for e in report["errors"]] == [
        (1, 2, "missing_prediction"), (2, 3, "invalid_json"), (3, 4, "invalid_number"), (5, 7, "wrong_type")]
    assert all(e["message"] for e in report["errors"])
    s = scrape(exporter)[1]
    assert sample(s, "mlops_ingest_events_total", model="fraud", kind="predictions") == 2
    for reason, n in [("missing_prediction", 1), ("invalid_json", 1), ("invalid_number", 1), ("wrong_type", 1)]:
        assert sample(s, "mlops_ingest_rejected_total", model="fraud", reason=reason) == n
    assert sample(s, "mlops_model_errors_total", model="fraud", version="__other__", kind="timeout") == 1


def test_every_error_status_has_a_reason_and_is_counted(exporter):
    status, _, body = exporter.post(PRED, b'[{"version": "v1", "prediction": "legit"},', JSON)
    assert status == 400 and b"byte offset" in body
    status, _, body = exporter.post("/api/v1/models/nope/predictions", b"[]", JSON)
    assert status == 404 and b'unknown model "nope"' in body and b"fraud" in body
    status, _, body = exporter.post(PRED, ndjson([event(i) for i in range(1001)]), NDJSON)
    assert status == 413 and b"too many events" in body
    status, _, body = exporter.post(PRED, b"[" + b" " * 300_000 + b"]", JSON)
    assert status == 413
    status, _, body = exporter.post(PRED, b"amount=1", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and b"Content-Type" in body
    status, _, body = exporter.post(PRED, b"[]", {**JSON, "Content-Encoding": "br"})
    assert status == 415 and b"Content-Encoding" in body
    status, _, body = exporter.post(PRED, b"not gzip at all", {**JSON, "Content-Encoding": "gzip"})
    assert status == 400 and b"gzip" in body
    status, headers, body = exporter.get(PRED)
    assert status == 405 and headers["Allow"] == "POST, OPTIONS"
    # A token is configured for eta: missing or wrong -> 401 with WWW-Authenticate; right -> 202.
    eta = "/api/v1/models/eta/predictions"
    one = ndjson([{"version": "2024.06", "prediction": 12.5, "features": {"distance_km": 3}}])
    status, headers, body = exporter.post(eta, one, NDJSON)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer") and b"token" in body
    assert exporter.post(eta, one, {**NDJSON, "Authorization": "Bearer wrong"})[0] == 401
    assert exporter.post(eta, one, {**NDJSON, "Authorization": "Bearer s3cret"})[0] == 202
    s = scrape(exporter)[1]
    for reason, n in [("invalid_json", 1), ("too_many_events", 1), ("unsupported_media_type", 1),
                      ("unsupported_encoding", 1), ("invalid_gzip", 1)]:
        assert sample(s, "mlops_ingest_rejected_requests_total", model="fraud", reason=reason) == n, reason
    assert sample(s, "mlops_ingest_rejected_requests_total", model="eta", reason="unauthorized") == 2
    assert sample(s, "mlops_ingest_rejected_requests_total", model="__unknown__", reason="unknown_model") == 1
    assert sample(s, "mlops_ingest_events_total", model="fraud", kind="predictions") == 0
    assert sample(s, "mlops_model_prediction_value_bucket", model="eta", version="2024.06", le="60") == 1


def test_gzip_bodies_and_labels_a_model_cannot_use(exporter):
    body = gzip.compress(ndjson([event(i) for i in range(100)]))
    status, _, reply = exporter.post(PRED, body, {**NDJSON, "Content-Encoding": "gzip"})
    assert status == 202 and json.loads(reply)["accepted"] == 100
    # fraud has no quality or fairness collector: its labels would join nothing, so they are refused and counted
    # (they were answered 202 and dropped without a count). Label validation against a joiner: test_quality.
    labels = [{"id": str(i), "label": "fraud"} for i in range(20)] + [{"label": "legit"}, {"id": "x", "label": 3}]
    status, _, reply = exporter.post("/api/v1/models/fraud/labels", gzip.compress(json.dumps(labels).encode()),
                                     {**JSON, "Content-Encoding": "gzip"})
    assert status == 409 and b"no quality or fairness collector" in reply, reply
    s = scrape(exporter)[1]
    assert sample(s, "mlops_ingest_events_total", model="fraud", kind="predictions") == 100
    assert sample(s, "mlops_ingest_events_total", model="fraud", kind="labels") == 0
    assert sample(s, "mlops_ingest_rejected_requests_total", model="fraud", reason="labels_not_used") == 1


def test_eight_concurrent_writers_100k_events_counted_exactly(exporter):
    writers, per_writer, batch = 8, 12_500, 250
    sent = Counter()
    sent_lock = threading.Lock()
    failures = []

    def writer(w):
        local = Counter()
        for start in range(0, per_writer, batch):
            events = [event(w * per_writer + i, "v1" if (w + i) % 2 else "v2",
                            status="error" if i % 50 == 0 else "ok", error_kind="oom")
                      for i in range(start, start + batch)]
            status, _, body = exporter.post(PRED, ndjson(events), NDJSON)
            if status != 202 or json.loads(body)["accepted"] != batch:
                failures.append((status, body[:200]))
                return
            for e in events:
                local[(e["version"], e["status"])] += 1
                local[("class", e["prediction"])] += 1
        with sent_lock:
            sent.update(local)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "writers still running after 300 s"
    assert not failures, failures[:3]
    s = scrape(exporter)[1]
    assert sample(s, "mlops_ingest_events_total", model="fraud", kind="predictions") == writers * per_writer
    for version in ("v1", "v2"):
        for st in ("ok", "error"):
            got = sample(s, "mlops_model_requests_total", model="fraud", version=version, status=st)
            assert got == sent[(version, st)], (version, st)
        assert sample(s, "mlops_model_errors_total", model="fraud", version=version, kind="oom") == sent[(version, "error")]
    for cls in ("fraud", "legit"):
        got = sum(sample(s, "mlops_model_predicted_class_total", model="fraud", version=v, **{"class": cls})
                  for v in ("v1", "v2"))
        assert got == sent[("class", cls)]
    assert sample(s, "mlops_model_latency_seconds_count", model="fraud", version="v1") + sample(
        s, "mlops_model_latency_seconds_count", model="fraud", version="v2") == writers * per_writer


def test_promtool_accepts_the_output_with_models(exporter):
    status, _, _ = exporter.post(PRED, ndjson([event(i, status="error" if i % 4 == 0 else "ok") for i in range(10)]),
                                 NDJSON)
    assert status == 202
    _, _, body = exporter.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})
    assert b"mlops_model_requests_total" in body
    result = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    # promtool reads only the text format: OpenMetrics goes through prometheus_client's strict parser.
    _, _, body = exporter.get("/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"})
    families = {f.name for f in parse_om(body.decode())}
    assert {"mlops_model_requests", "mlops_model_latency_seconds", "mlops_model"} <= families  # info: no _info


def test_reload_keeps_counts_of_unchanged_models(exporter, tmp_path):
    exporter.post(PRED, ndjson([event(i) for i in range(7)]), NDJSON)
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG.replace('versions: ["2024.06"]', 'versions: ["2024.06", "2024.07"]'))
    status, _, body = exporter.post("/-/reload", b"")
    assert status == 200, body
    s = scrape(exporter)[1]
    assert sample(s, "mlops_model_requests_total", model="fraud", version="v1", status="ok") == 7
    assert sample(s, "mlops_model_info", model="eta", version="2024.07", task="regression", reference_sha256="") == 1
    config.write_text(CONFIG.replace("prediction_buckets: [10, 60]", "prediction_buckets: [60, 10]"))
    status, _, body = exporter.post("/-/reload", b"")
    # Located at the option (line 21, column 19 of CONFIG), not at 0:0.
    assert status == 500 and f"{config}:21:19: ".encode() in body and b"prediction_buckets" in body, body
    assert sample(scrape(exporter)[1], "mlops_exporter_config_last_reload_successful") == 0


def test_check_config_reports_collector_option_errors(binary, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(CONFIG.replace("prediction_buckets: [10, 60]", "prediction_bucket: [10, 60]"))
    result = subprocess.run([str(binary), "check-config", str(config)], capture_output=True, text=True)
    assert result.returncode == 1
    assert f'{config}:21:19: model "eta": collector "service": option prediction_bucket: unknown option' \
        in result.stderr, result.stderr
    # With another model's problem in the file too, both are listed (the option's was hidden until that was fixed).
    config.write_text(CONFIG.replace("prediction_buckets: [10, 60]", "prediction_bucket: [10, 60]")
                      .replace("    collectors: [service]\n", "    collectors: [service]\n    colour: red\n", 1))
    result = subprocess.run([str(binary), "check-config", str(config)], capture_output=True, text=True)
    assert result.returncode == 1
    assert f"{config}:13:5: models[0].colour: unknown field" in result.stderr, result.stderr
    assert f'{config}:22:19: model "eta": collector "service": option prediction_bucket: unknown option' \
        in result.stderr, result.stderr


def test_check_config_and_serve_resolve_aliases_in_collector_options(binary, start_exporter, tmp_path):
    # eta's prediction buckets are an alias of fraud's latency buckets: read as "" (as options once were), it
    # would fail validation.
    config = tmp_path / "aliased.yaml"
    config.write_text(CONFIG.replace("latency_buckets: [0.01, 0.1, 1]", "latency_buckets: &b [0.01, 0.1, 1]")
                      .replace("prediction_buckets: [10, 60]", "prediction_buckets: *b"))
    result = subprocess.run([str(binary), "check-config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    e = start_exporter("--config", str(config))
    status, _, body = e.post("/api/v1/models/eta/predictions",
                             ndjson([{"version": "2024.06", "prediction": 0.05}]),
                             {**NDJSON, "Authorization": "Bearer s3cret"})
    assert status == 202, body
    text = e.get("/metrics")[2].decode()
    assert 'mlops_model_prediction_value_bucket{model="eta",version="2024.06",le="0.01"} 0' in text, text
    assert 'mlops_model_prediction_value_bucket{model="eta",version="2024.06",le="0.1"} 1' in text, text


def test_example_custom_collector_appears_in_metrics(tmp_path):
    example = build_product("custom-collector-example")
    config = ROOT / "examples" / "custom-collector" / "models.yaml"
    e = Exporter(example, ["--config", str(config)], tmp_path, subcommand=())
    try:
        body = ndjson([{"version": "v1", "prediction": "fraud", "score": 0.95},
                       {"version": "v1", "prediction": "fraud", "score": 0.9},
                       {"version": "v1", "prediction": "legit", "score": 0.2},
                       {"version": "v7", "prediction": "fraud", "score": 0.99}])
        assert e.post(PRED, body, NDJSON)[0] == 202
        s = scrape(e)[1]
        assert sample(s, "mlops_model_high_score_predictions_total", model="fraud", version="v1") == 2
        assert sample(s, "mlops_model_high_score_predictions_total", model="fraud", version="__other__") == 1
        assert sample(s, "mlops_model_requests_total", model="fraud", version="v1", status="ok") == 3
    finally:
        e.stop()
    # Its options are validated like a built-in collector's.
    bad = tmp_path / "bad.yaml"
    bad.write_text(config.read_text().replace("{threshold: 0.9}", "{threshold: high}"))
    e = None
    result = subprocess.run([str(example), "--config", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "option threshold: expected a number" in result.stderr


QUALITY_CONFIG = """
models:
  - name: eta
    task: regression
    versions: [r1]
    collectors: [service, quality]
  - name: credit
    task: binary_classification
    versions: [v1]
    classes: [reject, approve]
    positive_class: approve
    sensitive_attributes:
      - {name: gender, groups: [f, m], privileged: m}
    collectors:
      - service
      - {name: quality, options: {score_bin_series: true}}
      - {name: fairness, options: {min_group_observations: 1}}
"""


def test_promtool_accepts_the_quality_and_fairness_output(start_exporter, tmp_path):
    # promtool's lint refused two regression quality gauges named `..._sum` (a suffix for histograms and summaries
    # only): every family of the service, quality and fairness collectors with series, through promtool.
    config = tmp_path / "models.yaml"
    config.write_text(QUALITY_CONFIG)
    exporter = start_exporter("--config", str(config))
    eta = [{"version": "r1", "prediction": 10.0 + i, "label": 9.0 + 2 * (i % 3), "latency_seconds": 0.02}
           for i in range(20)]
    status, _, body = exporter.post("/api/v1/models/eta/predictions", ndjson(eta), NDJSON)
    assert status == 202 and json.loads(body)["accepted"] == 20, body
    credit = [{"version": "v1", "prediction": "approve" if i % 2 else "reject", "label": "approve" if i % 3 else "reject",
               "probabilities": {"approve": (i % 10) / 10, "reject": 1 - (i % 10) / 10},
               "attributes": {"gender": "f" if i % 4 else "m"}, "latency_seconds": 0.01} for i in range(40)]
    status, _, body = exporter.post("/api/v1/models/credit/predictions", ndjson(credit), NDJSON)
    assert status == 202 and json.loads(body)["accepted"] == 40, body
    _, _, text = exporter.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})
    for family in (b"mlops_model_mae", b"mlops_model_cumulative_error", b"mlops_model_roc_auc",
                   b"mlops_fairness_metric"):
        assert family in text, family
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_a_decompressed_body_limit_under_256_kib_holds_for_small_gzip_bodies(start_exporter, tmp_path):
    """A gzip body small enough to be inflated on the event loop was inflated up to 256 KiB whatever
    --ingest.max-decompressed-bytes said: with a limit of 1000 bytes, 100 KB inflated were recorded (an ingestion
    probe). It is refused as a larger body is, 413 `body_too_large`."""
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG)
    e = start_exporter("--config", str(config), "--ingest.max-decompressed-bytes", "1000")
    small = ndjson([event(0)])
    assert len(small) <= 1000
    status, _, reply = e.post(PRED, gzip.compress(small), {**NDJSON, "Content-Encoding": "gzip"})
    assert status == 202, reply
    big = ndjson([event(i) for i in range(100)])
    assert 1000 < len(big) < 256 * 1024
    status, _, reply = e.post(PRED, gzip.compress(big), {**NDJSON, "Content-Encoding": "gzip"})
    assert status == 413, reply
    s = scrape(e)[1]
    assert sample(s, "mlops_ingest_events_total", model="fraud", kind="predictions") == 1
    assert sample(s, "mlops_ingest_rejected_requests_total", model="fraud", reason="body_too_large") == 1
