"""`mlops-exporter batch` end to end: the real binary on seeded CSV / NDJSON files, its report compared with
scikit-learn (quality), fairlearn (fairness) and Evidently's DataDriftPreset (drift verdicts per feature, scores
within the bounds of docs/drift.md) computed here on the same rows; --fail-on-drift exit codes; bad input named
by file:line:column; and --push into a real prometheus-pushgateway, scraped by a real Prometheus and queried
back, with retries while nothing listens (a deadline, then a non-zero exit) and a Pushgateway started late."""

import gzip
import json
import os
import shutil
import subprocess
import time
import urllib.request
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import free_port, scalar, wait_for
from test_docs import check_documented

N_REF, N_CUR = 5000, 4000
NUMERIC = ["f_a", "f_b", "f_c"]
CATEGORICAL = ["c_a"]
CATEGORIES = ["A", "B", "C"]

CONFIG = """
models:
  - name: m
    task: binary_classification
    versions: [v1]
    classes: ["no", "yes"]
    positive_class: "yes"
    reference: {reference}
    features:
      - {{name: f_a, type: numeric}}
      - {{name: f_b, type: numeric}}
      - {{name: f_c, type: numeric}}
      - {{name: c_a, type: categorical, values: [A, B, C]}}
    sensitive_attributes:
      - {{name: gender, groups: [f, m], privileged: m}}
    window: {{duration: 1h, slices: 12}}
    collectors:
      - service
      - name: drift
        options: {{method: auto, min_observations: 100}}
      - quality
      - name: fairness
        options: {{min_group_observations: 30}}
"""


def dataset(rng, n, shift=0.0, probs=(0.5, 0.3, 0.2), bias=0.0):
    data = {f: rng.normal(shift if f == "f_a" else 0.0, 1.0, n) for f in NUMERIC}
    data["c_a"] = rng.choice(CATEGORIES, n, p=probs).astype(object)
    gender = rng.choice(np.array(["f", "m"], dtype=object), n, p=[0.45, 0.55])
    score = 1 / (1 + np.exp(-(data["f_b"] + 0.5 * data["f_c"])))
    score = np.clip(score - np.where(gender == "f", bias, 0.0), 0, 1)
    data["score"] = score
    data["prediction"] = np.where(score >= 0.5, "yes", "no").astype(object)
    data["gender"] = gender
    truth = rng.random(n) < 1 / (1 + np.exp(-(data["f_b"] + 0.5 * data["f_c"] + rng.normal(0, 1, n))))
    data["label"] = np.where(truth, "yes", "no").astype(object)
    data["id"] = np.array([f"r-{i}" for i in range(n)], dtype=object)
    return data


def run(binary, *args, timeout=120):
    return subprocess.run([str(binary), "batch", *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def setup(binary, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batch")
    rng = np.random.default_rng(20261203)
    ref = dataset(rng, N_REF)
    config = tmp / "models.yaml"
    config.write_text(CONFIG.format(reference=tmp / "reference.json"))
    csv = tmp / "reference.csv"
    pd.DataFrame({k: ref[k] for k in NUMERIC + CATEGORICAL + ["prediction", "score"]}).to_csv(csv, index=False)
    r = subprocess.run([str(binary), "profile", "--config", str(config), "--model", "m", "--input", str(csv),
                        "--out", str(tmp / "reference.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return {"tmp": tmp, "config": config, "ref": ref, "profile": json.loads((tmp / "reference.json").read_text())}


def write_batch(tmp, name, data):
    """The predictions as CSV (without labels) and the labels as CSV id,label; returns both paths."""
    predictions, labels = tmp / f"{name}.csv", tmp / f"{name}-labels.csv"
    pd.DataFrame({k: data[k] for k in ["id"] + NUMERIC + CATEGORICAL + ["gender", "prediction", "score"]}).to_csv(
        predictions, index=False)
    pd.DataFrame({"id": data["id"], "label": data["label"]}).to_csv(labels, index=False)
    return predictions, labels


def evidently_drift(ref, cur):
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    frame = lambda d: Dataset.from_pandas(pd.DataFrame({k: d[k] for k in NUMERIC + CATEGORICAL}),
                                          data_definition=definition)
    snapshot = Report([DataDriftPreset()]).run(frame(cur), frame(ref)).dict()
    columns, share = {}, None
    for m in snapshot["metrics"]:
        config = m["config"]
        if config["type"].endswith("ValueDrift"):
            columns[config["column"]] = (config["method"], m["value"], config["threshold"])
        elif config["type"].endswith("DriftedColumnsCount"):
            share = m["value"]["share"]
    return columns, share


@pytest.mark.parametrize("scenario", ["no_drift", "drift"])
def test_report_matches_sklearn_fairlearn_and_evidently(scenario, setup, binary):
    from fairlearn.metrics import (demographic_parity_difference, demographic_parity_ratio,
                                   equalized_odds_difference, equalized_odds_ratio)
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    rng = np.random.default_rng(7 if scenario == "no_drift" else 8)
    cur = dataset(rng, N_CUR, **({} if scenario == "no_drift" else
                                 {"shift": 0.6, "probs": (0.2, 0.3, 0.5), "bias": 0.15}))
    predictions, labels = write_batch(setup["tmp"], scenario, cur)
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", predictions, "--labels", labels,
            "--format", "json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    c = report["counts"]
    assert c["rows"] == N_CUR and c["accepted"] == N_CUR and c["rejected"] == {}
    assert c["labelRows"] == N_CUR and c["labelsJoined"] == N_CUR and c["labelsUnmatched"] == {}

    # Quality: scikit-learn on the same rows.
    y, p = cur["label"], cur["prediction"]
    (q,) = report["quality"]
    assert q["version"] == "v1" and q["outcomes"] == N_CUR
    assert q["figures"]["accuracy"] == pytest.approx(accuracy_score(y, p), rel=1e-12)
    precision, recall, f1, _ = precision_recall_fscore_support(y, p, labels=["no", "yes"], zero_division=0)
    for i, cls in enumerate(["no", "yes"]):
        assert q["figures"][f"precision{{{cls}}}"] == pytest.approx(precision[i], rel=1e-12)
        assert q["figures"][f"recall{{{cls}}}"] == pytest.approx(recall[i], rel=1e-12)
    assert q["figures"]["macro_f1"] == pytest.approx(np.mean(f1), rel=1e-12)

    # Fairness: fairlearn on the same rows (binary: yes is positive).
    yt, yp = (y == "yes").astype(int), (p == "yes").astype(int)
    fair = {(f["attribute"], f["metric"]): f for f in report["fairness"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = {
            "demographic_parity_difference": demographic_parity_difference(yt, yp, sensitive_features=cur["gender"]),
            "demographic_parity_ratio": demographic_parity_ratio(yt, yp, sensitive_features=cur["gender"]),
            "equalized_odds_difference": equalized_odds_difference(yt, yp, sensitive_features=cur["gender"]),
            "equalized_odds_ratio": equalized_odds_ratio(yt, yp, sensitive_features=cur["gender"]),
        }
    for metric, value in expected.items():
        f = fair[("gender", metric)]
        assert f["value"] == pytest.approx(value, abs=1e-9), metric
        if metric.endswith("difference"):
            assert f["violation"] == (value > f["upper"]), metric
        else:
            assert f["violation"] == (value < f["lower"]), metric

    # Drift: Evidently's DataDriftPreset on the same rows. Auto picks the same methods (Wasserstein normed and
    # Jensen-Shannon above 1000 rows); verdicts are equal, scores within docs/drift.md's bounds.
    columns, share = evidently_drift(setup["ref"], cur)
    features = {f["name"]: f for f in report["drift"]["features"]}
    for name in NUMERIC:
        method, value, threshold = columns[name]
        f = features[name]
        assert method.startswith("Wasserstein") and f["method"] == "wasserstein", (method, f)
        column = next(x for x in setup["profile"]["features"] if x["name"] == name)["numeric"]
        std = max(np.std(setup["ref"][name]), 0.001)
        width = (column["max"] - column["min"]) / len(column["fine"])
        assert abs(f["score"] - value) <= width / std + 1e-9, (name, f["score"], value)
        assert stats.wasserstein_distance(setup["ref"][name], cur[name]) / std == pytest.approx(value, rel=1e-9)
        assert f["threshold"] == threshold
        assert f["detected"] == (value >= threshold), (name, f["score"], value)
    for name in CATEGORICAL:
        method, value, threshold = columns[name]
        f = features[name]
        assert method.startswith("Jensen-Shannon") and f["method"] == "jensenshannon"
        assert f["score"] == pytest.approx(value, rel=1e-9, abs=1e-12)
        assert f["detected"] == (value >= threshold)
    drifted = sum(f["detected"] for f in features.values())
    assert report["drift"]["share"] == pytest.approx(drifted / len(features))
    assert report["drift"]["share"] == pytest.approx(share)
    assert report["drift"]["detected"] == (share >= 0.5) == (scenario == "drift")

    # --fail-on-drift: 2 exactly when dataset drift is detected; the text report says which.
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", predictions, "--fail-on-drift")
    assert r.returncode == (2 if scenario == "drift" else 0), r.stderr
    assert ("DRIFT DETECTED" in r.stdout) == (scenario == "drift")
    assert "f_a" in r.stdout and "wasserstein" in r.stdout


def test_ndjson_events_and_flat_ndjson_give_the_same_report(setup, binary):
    rng = np.random.default_rng(9)
    cur = dataset(rng, 1500, shift=0.3)
    predictions, labels = write_batch(setup["tmp"], "nd", cur)
    events = setup["tmp"] / "nd.ndjson"
    label_events = setup["tmp"] / "nd-labels.ndjson"
    with open(events, "w") as out, open(label_events, "w") as lab:
        for i in range(len(cur["id"])):
            out.write(json.dumps({
                "id": cur["id"][i], "version": "v1", "prediction": cur["prediction"][i], "score": cur["score"][i],
                "features": {**{f: cur[f][i] for f in NUMERIC}, "c_a": cur["c_a"][i]},
                "attributes": {"gender": cur["gender"][i]}}) + "\n")
            lab.write(json.dumps({"id": cur["id"][i], "label": cur["label"][i]}) + "\n")
    flat = setup["tmp"] / "nd-flat.ndjson"
    with open(flat, "w") as out:  # json.dumps writes floats exactly (pandas' to_json rounds to 10 digits)
        for i in range(len(cur["id"])):
            out.write(json.dumps({k: (float(cur[k][i]) if k in NUMERIC + ["score"] else cur[k][i])
                                  for k in ["id"] + NUMERIC + CATEGORICAL + ["gender", "prediction", "score"]}) + "\n")
    reports = []
    for source, label_source in [(predictions, labels), (events, label_events), (flat, labels)]:
        r = run(binary, "--config", setup["config"], "--model", "m", "--input", source, "--labels", label_source,
                "--format", "json")
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        report.pop("input"), report.pop("labels")
        reports.append(report)
    assert reports[0] == reports[1] == reports[2]


def test_versionless_events_take_model_version_and_a_batch_of_nothing_accepted_fails(setup, binary, tmp_path):
    """Ingestion events without `version` get --model-version, as CSV rows do (the flag was ignored and every event
    rejected missing_version); without it they are rejected, and a batch of which no prediction was accepted exits 1
    naming the reasons (it exited 0, --fail-on-drift too: a CI gate passed a batch in which nothing was scored)."""
    rng = np.random.default_rng(31)
    cur = dataset(rng, 400, shift=2.0)
    events = tmp_path / "noversion.ndjson"
    with open(events, "w") as out:
        for i in range(len(cur["id"])):
            out.write(json.dumps({
                "id": cur["id"][i], "prediction": cur["prediction"][i], "score": cur["score"][i],
                "features": {**{f: cur[f][i] for f in NUMERIC}, "c_a": cur["c_a"][i]}}) + "\n")
    base = ["--config", setup["config"], "--model", "m", "--input", events, "--format", "json"]
    r = run(binary, *base, "--model-version", "v1", "--fail-on-drift")
    assert r.returncode == 2, r.stderr  # f_a shifted by two standard deviations: drift
    report = json.loads(r.stdout)
    assert report["counts"]["accepted"] == len(cur["id"]) and report["counts"]["rejected"] == {}, report["counts"]
    for flags in ([], ["--fail-on-drift"]):
        r = run(binary, *base, *flags)
        assert r.returncode == 1, (flags, r.returncode, r.stderr)
        assert json.loads(r.stdout)["counts"]["rejected"] == {"missing_version": len(cur["id"])}
        assert r.stderr.strip() == (f"mlops-exporter batch: {events}: none of the {len(cur['id'])} predictions was "
                                    f"accepted (rejected: missing_version {len(cur['id'])})"), r.stderr


def test_push_flags_without_a_push_are_said_to_be_ignored(setup, binary, tmp_path):
    """--job, --run-id and --push-timeout without --push or --remote-write do nothing: said on standard error (they
    were ignored without a word), the run itself unchanged."""
    predictions, _ = write_batch(tmp_path, "nopush", dataset(np.random.default_rng(34), 200))
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", predictions, "--job", "nightly",
            "--run-id=r1", "--push-timeout", "5")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [f"mlops-exporter batch: {flag} is ignored without --push or --remote-write"
                                     for flag in ("--job", "--run-id", "--push-timeout")], r.stderr


def test_labels_for_a_model_that_uses_none_are_refused(setup, binary, tmp_path):
    """--labels for a model without quality or fairness: refused naming the file (they were read, counted as neither
    accepted nor rejected, and the run exited 0; the ingestion API refuses them 409 labels_not_used)."""
    config = tmp_path / "drift-only.yaml"
    config.write_text(setup["config"].read_text().replace("      - quality\n", "").replace(
        "      - name: fairness\n        options: {min_group_observations: 30}\n", ""))
    predictions, labels = write_batch(tmp_path, "unused", dataset(np.random.default_rng(32), 200))
    r = run(binary, "--config", config, "--model", "m", "--input", predictions, "--labels", labels)
    assert r.returncode == 1 and r.stdout == "", (r.returncode, r.stdout)
    assert r.stderr.strip() == (f"{labels}: --labels: model m has no quality or fairness collector, so nothing would "
                                "use its labels (add one to its collectors)"), r.stderr
    r = run(binary, "--config", config, "--model", "m", "--input", predictions)
    assert r.returncode == 0, r.stderr


def test_flat_ndjson_whose_first_rows_have_every_feature_null_is_read_as_flat(setup, binary, tmp_path):
    """Spark's JSON writer drops a row's null columns: a first row with every feature and attribute null has none of
    them as keys. The shape is told by the first line that tells (it was the first line alone: the file was read as
    events, and failed on line 3 with "key f_a is not a field of an ingestion event")."""
    cur = dataset(np.random.default_rng(33), 60)
    flat = tmp_path / "spark.ndjson"
    with open(flat, "w") as out:
        for i in range(len(cur["id"])):
            row = {k: (float(cur[k][i]) if k in NUMERIC + ["score"] else cur[k][i])
                   for k in ["id"] + NUMERIC + CATEGORICAL + ["gender", "prediction", "score"]}
            if i < 2:
                row = {k: row[k] for k in ["id", "prediction", "score"]}
            out.write(json.dumps(row) + "\n")
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", flat, "--format", "json")
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)["counts"]
    assert counts["rows"] == counts["accepted"] == len(cur["id"]), counts


def test_bad_input_is_named_by_file_line_and_column(setup, binary):
    tmp = setup["tmp"]
    bad = tmp / "bad.csv"
    bad.write_text("id,f_a,f_b,f_c,c_a,prediction\n1,0.5,1,2,A,yes\n2,0.1,abc,2,B,no\n")
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", bad)
    assert r.returncode == 1
    assert r.stderr.strip() == f'{bad}:3:7: column "f_b": "abc" is not a number', r.stderr
    # pandas writes a float infinity as `inf`: said as one (it was "is not a number"), by batch and by profile.
    bad.write_text("id,f_a,f_b,f_c,c_a,prediction\n1,0.5,1,2,A,yes\n2,-inf,1,2,B,no\n")
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", bad)
    assert r.returncode == 1
    assert r.stderr.strip() == f'{bad}:3:3: column "f_a": "-inf" is an infinity: a value must be finite or missing', \
        r.stderr
    p = subprocess.run([str(binary), "profile", "--config", str(setup["config"]), "--model", "m", "--input", str(bad),
                        "--out", str(tmp / "inf.json")], capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.strip() == f'{bad}:3:3: column "f_a": "-inf" is an infinity: a value must be finite or missing', \
        p.stderr
    bad.write_text("id,f_a,f_b,f_c,c_a,prediction,colour\n1,0.5,1,2,A,yes,red\n")
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", bad)
    assert r.returncode == 1 and r.stderr.startswith(f"{bad}:1: ") and '"colour"' in r.stderr
    bad.write_text("id,f_a,f_b,f_c,c_a,prediction\n1,0.5,1,2,A,yes\n2,0.5,1\n")
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", bad)
    assert r.returncode == 1 and r.stderr.startswith(f"{bad}:3: 3 fields, the header has 6"), r.stderr
    nd = tmp / "bad.ndjson"
    nd.write_text('{"version":"v1","prediction":"yes","features":{"f_a":1}}\n\n{"version":"v1","prediction":}\n')
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", nd)
    assert r.returncode == 1 and r.stderr.startswith(f"{nd}:3:"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", tmp / "missing.csv")
    assert r.returncode == 1 and "missing.csv: cannot read: no such file" in r.stderr
    # A gzip file is said to be one (read as text it was "a quote inside an unquoted field" at line 1).
    packed = tmp / "bad.csv.gz"
    packed.write_bytes(gzip.compress(b"id,f_a,f_b,f_c,c_a,prediction\n1,0.5,1,2,A,yes\n"))
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", packed, "--input-format", "csv")
    assert r.returncode == 1 and r.stderr.strip() == f"{packed}: gzip-compressed: decompress it first (gunzip)", \
        r.stderr
    # Without --input-format too (it said it could not tell the format from the extension).
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", packed)
    assert r.returncode == 1 and r.stderr.strip() == f"{packed}: gzip-compressed: decompress it first (gunzip)", \
        r.stderr
    # A configuration that cannot be read is named once, in the batch files' words (it was named twice, and said
    # "The file doesn’t exist." in Foundation's).
    missing = tmp / "nowhere.yaml"
    r = run(binary, "--config", missing, "--model", "m", "--input", nd)
    assert r.returncode == 1 and r.stderr.strip() == f"{missing}: invalid configuration: cannot read: no such file", \
        r.stderr


def test_a_pipe_input_is_refused_and_an_unwritable_report_fails_the_run(setup, binary):
    """A batch reads its input more than once: a pipe (process substitution, here /dev/fd of a pipe) would give each
    reader another part of it (rows lost without a word): refused. A report that cannot be written (standard output
    on a full disk, /dev/full) fails the run, so that a CI gate reading it does not pass on an empty file."""
    tmp = setup["tmp"]
    good = tmp / "good.csv"
    good.write_text("id,f_a,f_b,f_c,c_a,prediction\n1,0.5,1,2,A,yes\n2,0.1,1,2,B,no\n")
    r = subprocess.run(["bash", "-c", f'"$0" batch --config "$1" --model m --input-format csv --input <(cat "$2")',
                        str(binary), str(setup["config"]), str(good)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "not a regular file" in r.stderr, (r.returncode, r.stderr)
    with open("/dev/full", "w") as full:
        r = subprocess.run([str(binary), "batch", "--config", str(setup["config"]), "--model", "m", "--input",
                            str(good)], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 1 and "cannot write the report" in r.stderr, (r.returncode, r.stderr)


class Pushgateway:
    def __init__(self, tmp, port=None):
        if not shutil.which("prometheus-pushgateway"):
            pytest.skip("prometheus-pushgateway is not installed (scripts/install-deps)")
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp / f"pushgateway-{self.port}.log", "w")
        self.proc = subprocess.Popen(
            ["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{self.port}", "--persistence.file="],
            stdout=self.log, stderr=self.log)
        wait_for(self.ready, timeout=30, interval=0.05, what="pushgateway ready")

    def ready(self):
        try:
            with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def metrics(self):
        with urllib.request.urlopen(self.base + "/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture
def pushgateways(tmp_path):
    started = []

    def start(port=None):
        p = Pushgateway(tmp_path, port)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def test_push_reaches_prometheus_through_the_pushgateway(setup, binary, pushgateways, prometheus):
    rng = np.random.default_rng(11)
    cur = dataset(rng, 2000, shift=0.6)
    predictions, labels = write_batch(setup["tmp"], "push", cur)
    gateway = pushgateways()
    args = ["--config", setup["config"], "--model", "m", "--input", predictions, "--labels", labels,
            "--format", "json", "--push", gateway.base, "--job", "nightly", "--run-id", "2026-12-03/a"]
    before = time.time()
    r = run(binary, *args)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    # A run id with "/" travels base64url-encoded; the Pushgateway decodes it.
    assert "run_id@base64/" in r.stderr
    text = gateway.metrics()
    assert 'mlops_batch_rows{instance="",job="nightly",kind="predictions",model="m",run_id="2026-12-03/a"} 2000' in text
    # Every pushed family of ours is in docs/metrics.md, with its HELP (the Pushgateway keeps both).
    ours = "\n".join(line for line in text.splitlines() if line.startswith(("# HELP mlops_", "# TYPE mlops_")))
    assert {"mlops_batch_last_success_timestamp_seconds", "mlops_batch_rows", "mlops_model_accuracy",
            "mlops_feature_drift_score", "mlops_fairness_metric"} <= check_documented(ours)
    # Pushing the same run again (a retry) replaces its group rather than adding one.
    assert run(binary, *args).returncode == 0
    text = gateway.metrics()
    assert text.count('mlops_batch_rows{instance="",job="nightly",kind="predictions"') == 1

    base = prometheus(gateway.port, scrape_configs=(
        "  - job_name: pushgateway\n    honor_labels: true\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{gateway.port}']\n"))
    sel = '{job="nightly",model="m",run_id="2026-12-03/a"}'
    accuracy = wait_for(lambda: scalar(base, f'mlops_model_accuracy{sel}'), timeout=60, interval=0.5,
                        what="accuracy in Prometheus")
    assert accuracy == pytest.approx(report["quality"][0]["figures"]["accuracy"], rel=1e-12)
    assert scalar(base, f"mlops_dataset_drift_share{sel}") == pytest.approx(report["drift"]["share"], rel=1e-12)
    assert scalar(base, f'mlops_feature_drift_score{{run_id="2026-12-03/a",feature="f_a"}}') == pytest.approx(
        next(f["score"] for f in report["drift"]["features"] if f["name"] == "f_a"), rel=1e-12)
    assert scalar(base, f'mlops_ingest_events_total{{run_id="2026-12-03/a",kind="predictions"}}') == 2000
    success = scalar(base, f"mlops_batch_last_success_timestamp_seconds{sel}")
    assert before <= success <= time.time()


def test_push_to_nothing_retries_then_fails_within_the_deadline(setup, binary):
    predictions, _ = write_batch(setup["tmp"], "nowhere", dataset(np.random.default_rng(12), 300))
    port = free_port()
    start = time.monotonic()
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", predictions,
            "--push", f"http://127.0.0.1:{port}", "--push-timeout", "3")
    elapsed = time.monotonic() - start
    assert r.returncode == 1, r.stderr
    assert "push failed after" in r.stderr and "connect" in r.stderr, r.stderr
    assert r.stderr.count("retrying in") >= 2
    assert 2.5 <= elapsed <= 15, elapsed


def test_the_documented_stopped_job_alert_reads_the_newest_run(tmp_path):
    """docs/batch.md's alert, taken from the page, under promtool: a nightly job whose runs each push a group of their
    own (a new run id every night, the old groups kept by the Pushgateway) does not page while it runs, and pages once
    it stopped. Before, the expression had no `max by` and paged every day on the previous night's group."""
    if not shutil.which("promtool"):
        pytest.skip("promtool is not installed (scripts/install-deps)")
    import re
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "batch.md")).read()
    expr = re.search(r"an alert on `([^`]*mlops_batch_last_success_timestamp_seconds[^`]*)`", doc).group(1)
    assert "max by" in expr
    (tmp_path / "rules.yml").write_text(
        "groups:\n  - name: batch\n    rules:\n      - alert: NightlyStopped\n"
        f"        expr: {json.dumps(expr)}\n")
    day = 86400
    # Run r1 at t=0, r2 at t=24 h (each its own group, both kept); then nothing. The series carry the time of their
    # push, as the gauge does. One sample per hour over 60 hours.
    hours = 60
    r1 = " ".join(["0"] * (hours + 1))
    r2 = " ".join(["_"] * 24 + [str(day)] * (hours + 1 - 24))
    labels = 'job="nightly-scoring",model="fraud",instance=""'
    test = f"""rule_files: [rules.yml]
evaluation_interval: 1h
tests:
  - interval: 1h
    input_series:
      - series: 'mlops_batch_last_success_timestamp_seconds{{{labels},run_id="r1"}}'
        values: '{r1}'
      - series: 'mlops_batch_last_success_timestamp_seconds{{{labels},run_id="r2"}}'
        values: '{r2}'
    alert_rule_test:
      - eval_time: 27h
        alertname: NightlyStopped
        exp_alerts: []
      - eval_time: 51h
        alertname: NightlyStopped
        exp_alerts:
          - exp_labels: {{job: nightly-scoring, model: fraud}}
"""
    (tmp_path / "test.yml").write_text(test)
    r = subprocess.run(["promtool", "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_push_urls_the_push_cannot_use_are_refused_before_the_run(setup, binary):
    predictions, _ = write_batch(setup["tmp"], "badurl", dataset(np.random.default_rng(14), 50))
    for option, url in [("--push", "http://user:pw@127.0.0.1:9"), ("--push", "http://127.0.0.1:9/?x=1"),
                        ("--push", "http://127.0.0.1:9/#f"), ("--remote-write", "http://127.0.0.1:9/api?x=1"),
                        ("--remote-write", "http://127.0.0.1:9"),
                        # A host no resolver takes: retried as a network failure for the whole --push-timeout before.
                        ("--push", "http://[::1"), ("--push", "http://[::1:9091"), ("--push", "http://::1:9091"),
                        ("--push", "http://a b:9091"), ("--remote-write", "http://[nope]:9/api/v1/write")]:
        start = time.monotonic()
        r = run(binary, "--config", setup["config"], "--model", "m", "--input", predictions, option, url,
                "--push-timeout", "30")
        # Before: the batch ran, then retried for the whole --push-timeout ("cannot resolve user:pw@127.0.0.1"), or
        # the query went before /metrics/job/... (404/405); a --remote-write problem was blamed on --push.
        assert r.returncode == 64, (url, r.returncode, r.stderr)
        assert f"{option}: " in r.stderr and r.stdout == "", (url, r.stderr)
        assert time.monotonic() - start < 10


def test_push_under_a_path_prefix_prints_the_url_it_used(setup, binary):
    import http.server
    import threading
    paths = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        predictions, _ = write_batch(setup["tmp"], "prefix", dataset(np.random.default_rng(15), 50))
        port = server.server_address[1]
        r = run(binary, "--config", setup["config"], "--model", "m", "--input", predictions,
                "--push", f"http://127.0.0.1:{port}/pg/", "--job", "a%b c", "--run-id", "r1", "--push-timeout", "10")
        assert r.returncode == 0, r.stderr
        assert paths == ["/pg/metrics/job/a%25b%20c/model/m/run_id/r1"], paths
        # Before: "pushed to http://127.0.0.1:PORT/pg//pg/metrics/...".
        assert f"pushed to http://127.0.0.1:{port}{paths[0]}: 200" in r.stderr, r.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_a_pushgateway_started_late_receives_the_push(setup, binary, pushgateways, tmp_path):
    predictions, _ = write_batch(setup["tmp"], "late", dataset(np.random.default_rng(13), 300))
    port = free_port()
    err = open(tmp_path / "late.err", "w+")
    proc = subprocess.Popen(
        [str(binary), "batch", "--config", str(setup["config"]), "--model", "m", "--input", str(predictions),
         "--push", f"http://127.0.0.1:{port}", "--push-timeout", "60", "--run-id", "late"],
        stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for(lambda: "retrying in" in (tmp_path / "late.err").read_text(), timeout=30, interval=0.05,
                 what="the batch to retry")
        gateway = pushgateways(port)
        assert proc.wait(timeout=60) == 0, (tmp_path / "late.err").read_text()
        assert 'mlops_batch_rows{instance="",job="mlops-batch",kind="predictions",model="m",run_id="late"} 300' in gateway.metrics()
    finally:
        if proc.poll() is None:
            proc.kill()
        err.close()


def test_reference_flag_replaces_the_configured_one(setup, binary, tmp_path):
    predictions, _ = write_batch(setup["tmp"], "ref", dataset(np.random.default_rng(14), 1000, shift=0.6,
                                                                  probs=(0.2, 0.3, 0.5)))
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG.format(reference=tmp_path / "nowhere.json"))
    r = run(binary, "--config", config, "--model", "m", "--input", predictions)
    assert r.returncode == 1 and "nowhere.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    a = run(binary, "--config", config, "--model", "m", "--input", predictions,
            "--reference", setup["tmp"] / "reference.json", "--format", "json")
    b = run(binary, "--config", setup["config"], "--model", "m", "--input", predictions, "--format", "json")
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    assert json.loads(a.stdout)["drift"] == json.loads(b.stdout)["drift"]
    assert json.loads(a.stdout)["drift"]["detected"] is True


def test_remote_write_reaches_a_prometheus_receiver(setup, binary, prometheus):
    """`--remote-write`: the same series as the push, through Prometheus remote write 1.0 into a real Prometheus
    (`--web.enable-remote-write-receiver`), queried back; a receiver that is not there fails within the deadline."""
    rng = np.random.default_rng(14)
    cur = dataset(rng, 1500, shift=0.6)
    predictions, labels = write_batch(setup["tmp"], "remote", cur)
    base = prometheus(None, name="receiver", scrape_configs="  []\n", flags=["--web.enable-remote-write-receiver"])
    before = time.time()
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", predictions, "--labels", labels,
            "--format", "json", "--job", "nightly", "--remote-write", f"{base}/api/v1/write")
    assert r.returncode == 0, r.stderr
    assert "samples to" in r.stderr
    report = json.loads(r.stdout)
    sel = '{job="nightly",model="m"}'
    accuracy = wait_for(lambda: scalar(base, f"mlops_model_accuracy{sel}"), timeout=30, interval=0.2,
                        what="accuracy in the receiver")
    assert accuracy == pytest.approx(report["quality"][0]["figures"]["accuracy"], rel=1e-12)
    assert scalar(base, f"mlops_dataset_drift_share{sel}") == pytest.approx(report["drift"]["share"], rel=1e-12)
    assert scalar(base, 'mlops_batch_rows{job="nightly",kind="predictions"}') == 1500
    # run_id too, as the push's grouping key has it (the derived one: 16 hex digits).
    assert scalar(base, 'count(mlops_batch_rows{job="nightly",kind="predictions",run_id=~"[0-9a-f]{16}"})') == 1
    assert before <= scalar(base, 'mlops_batch_last_success_timestamp_seconds{job="nightly"}') <= time.time()

    port = free_port()
    start = time.monotonic()
    r = run(binary, "--config", setup["config"], "--model", "m", "--input", predictions,
            "--remote-write", f"http://127.0.0.1:{port}/api/v1/write", "--push-timeout", "2")
    assert r.returncode == 1 and f"remote write to http://127.0.0.1:{port}/api/v1/write" in r.stderr, r.stderr
    assert time.monotonic() - start < 15
