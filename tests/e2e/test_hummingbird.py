"""End to end: examples/hummingbird-app, a Hummingbird 2 service that mounts the exporter's endpoints beside its own
route (docs/embedding.md). scripts/test builds it (`swift build --package-path examples/hummingbird-app`); this test
starts the real binary on a kernel-chosen port, posts predictions and labels to it, scrapes it (promtool, gzip,
OpenMetrics) and checks that its own route still answers."""

import gzip
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import ROOT, Exporter, sample, scrape, wait_for

BINARY = ROOT / "examples" / "hummingbird-app" / ".build" / "debug" / "hummingbird-example"

CONFIG = """
models:
  - name: fraud
    task: binary_classification
    versions: [v1]
    classes: [legit, fraud]
    positive_class: fraud
    collectors: [service, quality]
  - name: eta
    task: regression
    versions: [v1]
    token: s3cret
"""

NDJSON = {"Content-Type": "application/x-ndjson"}


def ndjson(events):
    return "".join(json.dumps(e) + "\n" for e in events).encode()


@pytest.fixture
def app_binary():
    if not BINARY.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{BINARY} is missing: scripts/test builds it (swift build --package-path examples/hummingbird-app)")
        pytest.skip(f"{BINARY} is not built: swift build --package-path examples/hummingbird-app")
    return BINARY


@pytest.fixture
def app(app_binary, tmp_path):
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG)
    # --port 0: the kernel picks a free port, which the app prints as "listening on 127.0.0.1:PORT".
    e = Exporter(app_binary, ["--port", "0", "--config", str(config)], tmp_path, subcommand=(), serve_flags=False)
    yield e
    e.stop()


def test_ingested_events_show_up_in_the_scrape_beside_the_apps_own_route(app):
    status, _, body = app.get("/hello")
    assert (status, body) == (200, b"hello\n")

    predictions = [{"id": f"tx-{i}", "version": "v1", "prediction": "fraud" if i % 2 else "legit",
                    "latency_seconds": 0.01} for i in range(5)]
    status, _, body = app.post("/api/v1/models/fraud/predictions", ndjson(predictions), NDJSON)
    assert status == 202, body
    assert json.loads(body) == {"accepted": 5, "rejected": 0, "errors": []}
    labels = [{"id": f"tx-{i}", "label": "fraud"} for i in range(3)]
    status, _, body = app.post("/api/v1/models/fraud/labels", ndjson(labels), NDJSON)
    assert status == 202 and json.loads(body)["accepted"] == 3, body
    # A gzip body, as the exporter's own server takes it.
    status, _, body = app.post("/api/v1/models/eta/predictions", gzip.compress(ndjson([{"version": "v1", "prediction": 3.5}])),
                               {**NDJSON, "Content-Encoding": "gzip", "Authorization": "Bearer s3cret"})
    assert status == 202, body

    text, samples = scrape(app)
    assert sample(samples, "mlops_ingest_events_total", model="fraud", kind="predictions") == 5
    assert sample(samples, "mlops_ingest_events_total", model="fraud", kind="labels") == 3
    assert sample(samples, "mlops_labels_joined_total", model="fraud", source="endpoint") == 3
    assert sample(samples, "mlops_ingest_events_total", model="eta", kind="predictions") == 1
    assert sample(samples, "hello_requests_total") == 1  # the app's own metric, in the same registry
    result = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr

    status, headers, body = app.get("/hello")
    assert (status, body) == (200, b"hello\n")


def test_the_mounted_metrics_endpoint_negotiates_and_compresses(app):
    status, headers, body = app.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b"mlops_exporter_build_info" in gzip.decompress(body)
    status, headers, body = app.get("/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"})
    assert status == 200 and headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")


def test_the_mounted_ingestion_api_refuses_with_reasons(app):
    status, _, body = app.post("/api/v1/models/nope/predictions", b'{"version":"v1","prediction":1}\n', NDJSON)
    assert status == 404 and body == b'unknown model "nope" (configured: fraud, eta)\n'
    status, headers, body = app.post("/api/v1/models/eta/predictions", b'{"version":"v1","prediction":1}\n', NDJSON)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    status, _, body = app.post("/api/v1/models/fraud/predictions", b"a,b\n", {"Content-Type": "text/csv"})
    assert status == 415 and body.startswith(b"unsupported Content-Type")


def test_models_built_in_code(app_binary, tmp_path):
    e = Exporter(app_binary, ["--port", "0"], tmp_path, subcommand=(), serve_flags=False)
    try:
        status, _, body = e.post("/api/v1/models/churn/predictions",
                                 b'{"version":"v1","prediction":"churn"}\n', NDJSON)
        assert status == 202, body
        assert sample(scrape(e)[1], "mlops_ingest_events_total", model="churn", kind="predictions") == 1
    finally:
        e.stop()


def test_a_body_past_the_limit_gets_the_exporters_answer_and_is_counted(app):
    # Hummingbird's collect(upTo:) stops at the limit (16 MiB): the example answers with the exporter's 413, counted as
    # the exporter's own server counts one. Before: Hummingbird's own 413, counted nowhere.
    # Announced by Content-Length: answered from the head, the connection closed (curl stops sending at the answer).
    big = app.log_path.parent / "big.ndjson"
    big.write_bytes(b"x" * (16 * 1024 * 1024 + 1))
    r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "-H", "Content-Type: application/x-ndjson",
                        "--data-binary", f"@{big}", f"{app.base}/api/v1/models/fraud/predictions"],
                       capture_output=True, timeout=60)
    assert r.stdout == b"request body larger than 16777216 bytes\n\n413", (r.stdout, r.stderr)
    assert sample(scrape(app)[1], "mlops_exporter_http_errors_total", reason="too_large") == 1


def test_storage_is_restored_at_start_and_written_at_shutdown(app_binary, tmp_path):
    # `storage:` in the models file: the example restores before it serves and checkpoints at SIGTERM, as
    # docs/embedding.md asks of a mounting host. Before, the section was ignored without a word.
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG + "storage:\n  path: state\n")
    first = Exporter(app_binary, ["--port", "0", "--config", str(config)], tmp_path, subcommand=(), serve_flags=False)
    try:
        status, _, body = first.post("/api/v1/models/fraud/predictions",
                                     ndjson([{"version": "v1", "prediction": "fraud"}] * 4), NDJSON)
        assert status == 202, body
    finally:
        assert first.stop() == 0
    assert any((tmp_path / "state").iterdir()), "no checkpoint written at shutdown"
    second = Exporter(app_binary, ["--port", "0", "--config", str(config)], tmp_path, subcommand=(), serve_flags=False)
    try:
        samples = scrape(second)[1]
        assert sample(samples, "mlops_model_requests_total", model="fraud", version="v1", status="ok") == 4
    finally:
        second.stop()


def test_the_mounting_code_shown_in_the_docs_is_the_examples():
    # README.md and docs/embedding.md show the example's mounting lines: they must be the lines that are built and
    # tested here, not a copy that drifts.
    source = (ROOT / "examples" / "hummingbird-app" / "Sources" / "hummingbird-example" / "main.swift").read_text()
    start, end = "let endpoints = exporter.endpoints\n", 'router.on("/api/v1/models/**", method: method, use: mount)\n}\n'
    shown = source[source.index(start):source.index(end) + len(end)]
    for page in ["README.md", "docs/embedding.md"]:
        assert shown in (ROOT / page).read_text(), page


def test_a_body_is_screened_from_its_head_before_it_is_read(app):
    """A client without the model's token gets 401 from the head, its 15 MiB body never read (the example read the
    whole body first: 16 such clients took the service from 129 to 407 MB); an announced size past the limit gets
    the exporter's 413 the same way."""
    for headers, expected in [(b"Content-Length: 15728640\r\n", b"HTTP/1.1 401"),
                              (b"Content-Length: 17000000\r\nAuthorization: Bearer s3cret\r\n", b"HTTP/1.1 413")]:
        with socket.create_connection(("127.0.0.1", app.port), timeout=10) as s:
            s.sendall(b"POST /api/v1/models/eta/predictions HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/x-ndjson\r\n" + headers + b"\r\n")
            answer = s.recv(4096)  # no byte of the body sent: the answer comes from the head alone
            assert answer.startswith(expected), answer
    assert sample(scrape(app)[1], "mlops_ingest_rejected_requests_total", model="eta", reason="unauthorized") == 1


def test_methods_are_answered_as_the_exporter_answers_them(app):
    """HEAD of /metrics is a GET without body (it was Hummingbird's 404); a wrong method gets the exporter's 405 with
    Allow and its reason (it was a bare 404)."""
    status, headers, body = app.get("/metrics", method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    status, headers, body = app.get("/metrics", method="DELETE")
    assert status == 405 and headers["Allow"] == "GET, HEAD, OPTIONS" and body.startswith(b"method DELETE not allowed"), body
    status, headers, body = app.get("/metrics", method="OPTIONS")
    assert status == 200 and headers["Allow"] == "GET, HEAD, OPTIONS" and body == b"", (status, headers, body)
    status, headers, body = app.get("/api/v1/models/fraud/predictions")
    assert status == 405 and headers["Allow"] == "POST, OPTIONS", (status, headers)
    status, _, body = app.post("/api/v1/models/fraud/predictions/x", b"{}\n", NDJSON)
    assert status == 404 and body, body


def test_sighup_reloads_the_models_file(app_binary, tmp_path):
    """SIGHUP reloads the models file as it does for `mlops-exporter serve`; before, its default action ended the
    service without its last checkpoint."""
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG)
    e = Exporter(app_binary, ["--port", "0", "--config", str(config)], tmp_path, subcommand=(), serve_flags=False)
    try:
        config.write_text(CONFIG + "  - name: added\n    task: regression\n    versions: [v1]\n")
        e.proc.send_signal(signal.SIGHUP)
        body = b'{"version":"v1","prediction":2.5}\n'
        wait_for(lambda: e.post("/api/v1/models/added/predictions", body, NDJSON)[0] == 202, timeout=20,
                 what="the added model")
        assert e.proc.poll() is None
    finally:
        assert e.stop() == 0


def test_bad_arguments_are_refused(app_binary):
    """An unknown argument, a missing value or a port that is none is an error with the usage (exit 2); before, each
    was ignored and the service started on 8080 with the built-in model."""
    for args, said in [(["--confg", "x.yaml"], "unknown argument --confg"), (["--config"], "--config needs a value"),
                       (["--port", "abc"], "--port: abc is not a port")]:
        r = subprocess.run([str(app_binary), *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and said in r.stderr and "usage: hummingbird-example" in r.stderr, (args, r.stderr)
    r = subprocess.run([str(app_binary), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("usage: hummingbird-example")
