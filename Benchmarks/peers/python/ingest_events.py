#!/usr/bin/env python3
"""The ingestion benchmark's model and events, shared by scripts/bench-ingest, the Python peer
(ingest_peer.py) and the Swift benchmarks (through the committed fixtures Benchmarks/Fixtures/ingest-batch.ndjson and ingest-models.yaml).

One binary classifier, `scoring`, with 20 features (15 numeric, 5 categorical), two versions, two sensitive
attributes and the example's latency buckets. `body(seed)` is one NDJSON batch of 100 events drawn from a
seeded RNG (only `random.random()` is used, so the bytes are the same on every Python 3):
version v1 (80%) or v2, every feature present, prediction + score + probabilities, latency_seconds
(log-uniform 0.5 ms .. 400 ms), status ok (98%) or error with an error_kind, attributes gender and age_band,
an id and a timestamp.

    ingest_events.py config            # the YAML configuration
    ingest_events.py body [SEED]       # one batch
    ingest_events.py fixture           # rewrite Benchmarks/Fixtures/ingest-batch.ndjson (seed 1) and ingest-models.yaml
"""
import json
import math
import os
import random
import sys

MODEL = "scoring"
VERSIONS = ["v1", "v2"]
CLASSES = ["legit", "fraud"]
POSITIVE = "fraud"
NUMERIC = [
    "amount", "account_age_days", "txn_count_24h", "txn_count_7d", "avg_amount_30d", "distance_from_home_km",
    "hour_of_day", "merchant_risk", "device_age_days", "failed_logins_24h", "ip_risk_score", "velocity_1h",
    "balance", "credit_limit", "days_since_last_txn",
]
CATEGORICAL = {
    "country": ["US", "DE", "FR", "GB", "IN", "BR", "JP"],
    "channel": ["web", "app", "pos"],
    "card_type": ["visa", "mastercard", "amex", "discover"],
    "merchant_category": ["grocery", "travel", "electronics", "fuel", "restaurants", "online"],
    "device_os": ["ios", "android", "windows", "macos", "linux"],
}
ATTRIBUTES = {"gender": ["female", "male"], "age_band": ["18-25", "26-40", "41-65", "65+"]}
LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]
ERROR_KINDS = ["timeout", "oom", "bad_input"]
EVENTS_PER_BODY = 100
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Fixtures")


def config_yaml():
    feats = [f"      - {{name: {n}, type: numeric}}" for n in NUMERIC]
    feats += [f"      - {{name: {n}, type: categorical, values: [{', '.join(v)}]}}" for n, v in CATEGORICAL.items()]
    return "\n".join([
        "models:",
        f"  - name: {MODEL}",
        "    task: binary_classification",
        f"    versions: [{', '.join(VERSIONS)}]",
        f"    classes: [{', '.join(CLASSES)}]",
        f"    positive_class: {POSITIVE}",
        "    features:",
        *feats,
        "    sensitive_attributes:",
        "      - {name: gender, groups: [female, male], privileged: male}",
        '      - {name: age_band, groups: ["18-25", "26-40", "41-65", "65+"]}',
        f"    latency_buckets: [{', '.join(repr(b) for b in LATENCY_BUCKETS)}]",
        "    collectors: [service]",
        "",
    ])


def _pick(r, values):
    return values[min(len(values) - 1, int(r.random() * len(values)))]


def event(r, seed, i):
    u = r.random
    amount = round(math.exp(u() * 8), 2)  # 1 .. 3000
    numeric = {
        "amount": amount,
        "account_age_days": int(u() * 3650),
        "txn_count_24h": int(u() * 20),
        "txn_count_7d": int(u() * 90),
        "avg_amount_30d": round(math.exp(u() * 7), 2),
        "distance_from_home_km": round(u() * 500, 1),
        "hour_of_day": int(u() * 24),
        "merchant_risk": round(u(), 4),
        "device_age_days": int(u() * 1000),
        "failed_logins_24h": int(u() * u() * 6),
        "ip_risk_score": round(u(), 3),
        "velocity_1h": round(u() * 12, 2),
        "balance": round(u() * 25000 - 2000, 2),
        "credit_limit": float(_pick(r, [1000, 2500, 5000, 10000, 20000])),
        "days_since_last_txn": round(u() * 30, 3),
    }
    features = dict(numeric)
    for name, values in CATEGORICAL.items():
        features[name] = _pick(r, values)
    p = round(u() ** 3, 4)  # mostly legit
    e = {
        "id": f"evt-{seed}-{i:05d}",
        "timestamp": round(1764410000 + i * 0.0137 + u() * 0.01, 3),
        "version": "v1" if u() < 0.8 else "v2",
        "features": features,
        "prediction": "fraud" if p >= 0.5 else "legit",
        "score": p,
        "probabilities": {"legit": round(1 - p, 4), "fraud": p},
        "latency_seconds": round(0.0005 * math.exp(u() * math.log(800)), 6),
        "status": "ok",
        "attributes": {name: _pick(r, values) for name, values in ATTRIBUTES.items()},
    }
    if u() < 0.02:
        e["status"] = "error"
        e["error_kind"] = _pick(r, ERROR_KINDS)
    return e


def events(seed):
    r = random.Random(seed)
    return [event(r, seed, i) for i in range(EVENTS_PER_BODY)]


def body(seed):
    return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events(seed)).encode()


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "body"
    if cmd == "config":
        sys.stdout.write(config_yaml())
    elif cmd == "body":
        sys.stdout.buffer.write(body(int(sys.argv[2]) if len(sys.argv) > 2 else 1))
    elif cmd == "fixture":
        os.makedirs(FIXTURES, exist_ok=True)
        for name, data in (("ingest-batch.ndjson", body(1)), ("ingest-models.yaml", config_yaml().encode())):
            with open(os.path.join(FIXTURES, name), "wb") as f:
                f.write(data)
            print(os.path.normpath(os.path.join(FIXTURES, name)))
    else:
        sys.exit(__doc__)
