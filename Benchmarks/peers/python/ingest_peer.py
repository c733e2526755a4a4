#!/usr/bin/env python3
"""Ingestion-benchmark peer: what a user would write without mlops-exporter, a Python service that takes the
same NDJSON prediction batches and keeps the same families with prometheus_client.

    ingest_peer.py --listen 127.0.0.1:0

- Server: the standard library's `http.server.ThreadingHTTPServer` (a thread per connection) with
  `protocol_version = "HTTP/1.1"` so that connections are kept alive like the exporter's; pure stdlib, no
  framework; `disable_nagle_algorithm = True` (a StreamRequestHandler switch), without which every answer
  waits ~40 ms for a delayed ACK. (asyncio with a hand-written HTTP parser could be somewhat faster; a user reaching for the
  stdlib writes this.)
- Model: the `scoring` model of ingest_events.py, hardcoded (PyYAML is not a dependency of the test venv;
  ingest_events.config_yaml() is the same model as YAML for the exporter).
- `POST /api/v1/models/scoring/predictions` with `Content-Type: application/x-ndjson`: every line goes through
  `json.loads` and the same checks as the exporter's decoder (version string; features typed per schema,
  numeric finite, categorical string/number/bool, unknown feature keys counted; prediction a class label;
  score/timestamp finite numbers; probabilities an object or array over exactly the classes in [0, 1];
  latency_seconds a finite number >= 0; status ok/error; error_kind string; attributes string/number/bool;
  id string/integer; inline label), then updates the same families as the exporter's `service` collector
  and ingestion accounting, with the same label values (versions and classes outside the configured sets
  become `__other__`, error kinds learned up to 10 then `__other__`):
  mlops_model_requests_total{model,version,status}, mlops_model_errors_total{model,version,kind},
  mlops_model_latency_seconds{model,version} (same buckets), mlops_model_predicted_class_total{model,version,class},
  mlops_model_last_event_timestamp_seconds{model,version}, mlops_ingest_events_total{model,kind},
  mlops_ingest_rejected_total{model,reason}, mlops_ingest_unknown_features_total{model}.
  Answers 202 with {"accepted": n, "rejected": m, "errors": [first 20 {"index","line","reason","message"}]}.
  Not implemented (not exercised by the benchmark): gzip bodies, JSON-array bodies, tokens, /labels.
- `GET /metrics`: prometheus_client.generate_latest (text format).

    ingest_peer.py --measure 200       # CPU per event of ingest() without HTTP, and of its parts
"""
import argparse
import json
import math
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ingest_events as M  # noqa: E402

OTHER = "__other__"
MAX_ERRORS = 20
MAX_EVENTS = 10_000
MAX_LEARNED_ERROR_KINDS = 10

prometheus_client.disable_created_metrics()
REG = CollectorRegistry()
REQUESTS = Counter("mlops_model_requests", "Predictions served, by model, version and status (ok, error).",
                   ["model", "version", "status"], registry=REG)
ERRORS = Counter("mlops_model_errors", "Failed predictions, by model, version and error kind.",
                 ["model", "version", "kind"], registry=REG)
LATENCY = Histogram("mlops_model_latency_seconds", "Prediction latency reported by the model server.",
                    ["model", "version"], buckets=M.LATENCY_BUCKETS, registry=REG)
PREDICTED = Counter("mlops_model_predicted_class", "Predictions of classification models, by predicted class.",
                    ["model", "version", "class"], registry=REG)
LAST_EVENT = Gauge("mlops_model_last_event_timestamp_seconds",
                   "Unix time the last prediction of this model and version was received.",
                   ["model", "version"], registry=REG)
INGESTED = Counter("mlops_ingest_events", "Events accepted through the ingestion API, by model and kind.",
                   ["model", "kind"], registry=REG)
REJECTED = Counter("mlops_ingest_rejected", "Events rejected one by one, by model and reason.",
                   ["model", "reason"], registry=REG)
UNKNOWN_FEATURES = Counter("mlops_ingest_unknown_features", "Feature keys the model does not declare (ignored).",
                           ["model"], registry=REG)

VERSIONS = set(M.VERSIONS)
CLASSES = set(M.CLASSES)
FEATURE_IS_NUMERIC = {**{n: True for n in M.NUMERIC}, **{n: False for n in M.CATEGORICAL}}
ATTRIBUTES = set(M.ATTRIBUTES)
ERROR_KINDS = {"unspecified"}
ERROR_KIND_LIMIT = len(ERROR_KINDS) + MAX_LEARNED_ERROR_KINDS


class Reject(Exception):
    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def is_number(x):
    return (isinstance(x, (int, float))) and not isinstance(x, bool)


def finite(x, name, allow_none=True):
    if x is None and allow_none:
        return None
    if not is_number(x):
        raise Reject("wrong_type", f"'{name}' must be a number, found {type(x).__name__}")
    if not math.isfinite(x):
        raise Reject("invalid_number", f"'{name}' is out of range")
    return float(x)


def class_label(x, name):
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    raise Reject("wrong_type", f"'{name}' must be a class label (string, integer or boolean)")


def validate(e):
    """The exporter's checks; returns (version, status, error_kind, latency, predicted class, unknown features)."""
    if not isinstance(e, dict):
        raise Reject("not_an_object", "expected an event object")
    i = e.get("id")
    if i is not None and not isinstance(i, str) and not (isinstance(i, int) and not isinstance(i, bool)):
        raise Reject("wrong_type", "'id' must be a string or an integer")
    finite(e.get("timestamp"), "timestamp")
    version = e.get("version")
    if version is not None and not isinstance(version, str):
        raise Reject("wrong_type", "'version' must be a string")
    unknown = 0
    features = e.get("features")
    if features is not None:
        if not isinstance(features, dict):
            raise Reject("wrong_type", "'features' must be an object")
        for k, v in features.items():
            numeric = FEATURE_IS_NUMERIC.get(k)
            if numeric is None:
                unknown += 1
            elif v is None:
                pass
            elif numeric:
                if isinstance(v, bool):
                    continue
                if not is_number(v):
                    raise Reject("wrong_type", f"numeric feature '{k}' must be a number")
                if not math.isfinite(v):
                    raise Reject("invalid_number", f"feature '{k}' is out of range")
            elif not isinstance(v, (str, int, float)):
                raise Reject("wrong_type", f"categorical feature '{k}' must be a string, number or boolean")
    prediction = e.get("prediction")
    if prediction is not None:
        prediction = class_label(prediction, "prediction")
    finite(e.get("score"), "score")
    probs = e.get("probabilities")
    if probs is not None:
        if isinstance(probs, dict):
            for k, p in probs.items():
                if k not in CLASSES:
                    raise Reject("invalid_probabilities", f"'probabilities' has unknown class '{k}'")
                check_probability(p)
            if len(probs) != len(CLASSES):
                raise Reject("invalid_probabilities", "'probabilities' lacks a class")
        elif isinstance(probs, list):
            for p in probs:
                check_probability(p)
            if len(probs) != len(CLASSES):
                raise Reject("invalid_probabilities", f"'probabilities' has {len(probs)} values")
        else:
            raise Reject("wrong_type", "'probabilities' must be an object or an array")
    latency = finite(e.get("latency_seconds"), "latency_seconds")
    if latency is not None and latency < 0:
        raise Reject("invalid_number", "'latency_seconds' must not be negative")
    status = e.get("status")
    if status is None:
        status = "ok"
    elif status not in ("ok", "error"):
        raise Reject("invalid_status", "'status' must be \"ok\" or \"error\"")
    kind = e.get("error_kind")
    if kind is not None and not isinstance(kind, str):
        raise Reject("wrong_type", "'error_kind' must be a string")
    attributes = e.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, dict):
            raise Reject("wrong_type", "'attributes' must be an object")
        for k, v in attributes.items():
            if k in ATTRIBUTES and v is not None and not isinstance(v, (str, int, float)):
                raise Reject("wrong_type", f"attribute '{k}' must be a string, number or boolean")
    label = e.get("label")
    if label is not None:
        class_label(label, "label")
    if version is None:
        raise Reject("missing_version", "missing 'version'")
    if prediction is None:
        raise Reject("missing_prediction", "missing 'prediction'")
    return version, status, kind, latency, prediction, unknown


def check_probability(p):
    if not is_number(p):
        raise Reject("wrong_type", "probabilities must be numbers")
    if not 0 <= p <= 1:
        raise Reject("invalid_probabilities", f"probability {p} is outside [0, 1]")


def error_kind_label(kind):
    kind = kind or "unspecified"
    if kind in ERROR_KINDS:
        return kind
    if len(ERROR_KINDS) < ERROR_KIND_LIMIT and len(kind.encode()) <= 128:
        ERROR_KINDS.add(kind)
        return kind
    return OTHER


def ingest(model, body):
    """Decodes and records one NDJSON body; returns the report."""
    lines = body.split(b"\n")
    accepted = rejected = unknown_total = 0
    errors = []
    received_at = time.time()
    index = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            try:
                e = json.loads(line)
            except ValueError as err:
                raise Reject("invalid_json", f"malformed JSON: {err}") from None
            version, status, kind, latency, prediction, unknown = validate(e)
        except Reject as r:
            rejected += 1
            REJECTED.labels(model, r.reason).inc()
            if len(errors) < MAX_ERRORS:
                errors.append({"index": index, "line": number, "reason": r.reason, "message": str(r)})
            index += 1
            continue
        v = version if version in VERSIONS else OTHER
        REQUESTS.labels(model, v, status).inc()
        if status == "error":
            ERRORS.labels(model, v, error_kind_label(kind)).inc()
        if latency is not None:
            LATENCY.labels(model, v).observe(latency)
        PREDICTED.labels(model, v, prediction if prediction in CLASSES else OTHER).inc()
        LAST_EVENT.labels(model, v).set(received_at)
        unknown_total += unknown
        accepted += 1
        index += 1
    if accepted:
        INGESTED.labels(model, "predictions").inc(accepted)
    if unknown_total:
        UNKNOWN_FEATURES.labels(model).inc(unknown_total)
    return {"accepted": accepted, "rejected": rejected, "errors": errors}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server writes the header block and the body with separate send()s; with Nagle's algorithm on, the
    # body then waits for the client's delayed ACK (~40 ms per request). The stdlib's own switch turns it off.
    disable_nagle_algorithm = True

    def log_message(self, *args):  # no access log (the exporter has none either)
        pass

    def reply(self, status, body, content_type="text/plain; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.split("?")[0] == "/metrics":
            self.reply(200, prometheus_client.generate_latest(REG), prometheus_client.CONTENT_TYPE_LATEST)
        else:
            self.reply(404, b"not found\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        parts = self.path.split("/")
        # /api/v1/models/{model}/predictions
        if len(parts) != 6 or parts[1:4] != ["api", "v1", "models"] or parts[5] != "predictions":
            return self.reply(404, b"not found\n")
        model = parts[4]
        if model != M.MODEL:
            return self.reply(404, f'unknown model "{model}"\n'.encode())
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype not in ("application/x-ndjson", "application/ndjson"):
            return self.reply(415, b"send application/x-ndjson\n")
        if body.count(b"\n") > MAX_EVENTS:
            return self.reply(413, b"too many events\n")
        report = ingest(model, body)
        self.reply(202, json.dumps(report, separators=(",", ":")).encode() + b"\n", "application/json")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A load generator closing its connections at the end of a run is not an error worth a traceback.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def measure(batches):
    """Prints the CPU time per event of ingest() without HTTP, and of its parts, over `batches` batches."""
    bodies = [M.body(seed) for seed in range(1, 9)]
    events = [[json.loads(line) for line in b.split(b"\n") if line] for b in bodies]
    n = batches * M.EVENTS_PER_BODY

    def per_event(work):
        t = time.process_time()
        for i in range(batches):
            work(i % len(bodies))
        return (time.process_time() - t) / n * 1e6

    def parse(i):
        for line in bodies[i].split(b"\n"):
            if line:
                json.loads(line)

    def check(i):
        for e in events[i]:
            validate(e)

    def update(i):
        for e in events[i]:
            v = e["version"]
            REQUESTS.labels(M.MODEL, v, e["status"]).inc()
            LATENCY.labels(M.MODEL, v).observe(e["latency_seconds"])
            PREDICTED.labels(M.MODEL, v, e["prediction"]).inc()
            LAST_EVENT.labels(M.MODEL, v).set(1.0)

    per_event(lambda i: ingest(M.MODEL, bodies[i]))  # warm-up
    print(f"ingest() without HTTP: {per_event(lambda i: ingest(M.MODEL, bodies[i])):.2f} us CPU/event; parts: "
          f"json.loads {per_event(parse):.2f}, checks {per_event(check):.2f}, "
          f"metric updates {per_event(update):.2f} us/event ({n} events each)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:0", help="host:port (port 0 = any free port)")
    ap.add_argument("--measure", type=int, metavar="BATCHES",
                    help="instead of serving, print the CPU cost per event of ingest() and its parts")
    a = ap.parse_args()
    if a.measure:
        return measure(min(a.measure, 100_000))
    host, _, port = a.listen.rpartition(":")
    server = Server((host, int(port)), Handler)
    bound_host, bound_port = server.server_address[:2]
    print(f"listening on {bound_host}:{bound_port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
