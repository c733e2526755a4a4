"""A fleet, end to end (issue 19): three exporters with the same model and disjoint traffic, a real Prometheus
scraping them with the recording rules of `mlops-exporter rules`, a second Prometheus that receives the raw series
through Prometheus remote write and evaluates the same rules (the Mimir / Thanos topology of docs/fleet.md), and a
third that receives the exporters' own remote write (`remote_write:`, no scraper) with the same rules.
Fleet PSI per feature, fleet accuracy and fleet demographic parity from the rules of both equal what one exporter
computes on the union of the data, and numpy (PSI on the profile's bins with Evidently's zero rule), scikit-learn
and fairlearn on the same rows, within what PromQL's extrapolation of `increase()` over scrapes allows."""

import json
import re
import subprocess
import time
import urllib.request

import numpy as np
import yaml
import pandas as pd
from fairlearn.metrics import demographic_parity_difference
from sklearn import metrics as skm

from conftest import query, scrape, wait_for

CONFIG = """
models:
  - name: churn
    task: binary_classification
    versions: [v1]
    classes: ["no", "yes"]
    positive_class: "yes"
    reference: {reference}
    features:
      - {{name: x, type: numeric}}
      - {{name: c, type: categorical, values: [A, B, C]}}
    sensitive_attributes:
      - {{name: group, groups: [a, b]}}
    window: {{duration: 1h, slices: 12}}
    collectors:
      - service
      - name: drift
        options:
          min_observations: 50
          features: {{x: {{method: psi}}, c: {{method: psi}}}}
      - quality
      - name: fairness
        options: {{min_group_observations: 30}}
"""
INSTANCES = ["pod-a", "pod-b", "pod-c"]
JOB = "mlops-exporter"
NDJSON = {"Content-Type": "application/x-ndjson"}


def rows(rng, n, drift):
    """Features, group, prediction and actual label of `n` rows; `drift` shifts x and c and the groups' rates."""
    x = rng.normal(0.4 if drift else 0.0, 1.0, n)
    c = rng.choice(["A", "B", "C"], n, p=[0.3, 0.3, 0.4] if drift else [0.5, 0.3, 0.2])
    group = rng.choice(["a", "b"], n, p=[0.6, 0.4])
    score = rng.random(n) + np.where(group == "a", 0.1, -0.1) + 0.2 * x
    predicted = np.where(score > 0.6, "yes", "no")
    flip = rng.random(n) < 0.2
    actual = np.where(flip, np.where(predicted == "yes", "no", "yes"), predicted)
    return pd.DataFrame({"x": x, "c": c, "group": group, "prediction": predicted, "label": actual})


def post(e, frame):
    lines = [json.dumps({"version": "v1", "features": {"x": float(r.x), "c": r.c}, "attributes": {"group": r.group},
                         "prediction": r.prediction, "label": r.label}) for r in frame.itertuples()]
    for start in range(0, len(lines), 1000):
        status, _, reply = e.post("/api/v1/models/churn/predictions",
                                  ("\n".join(lines[start:start + 1000]) + "\n").encode(), NDJSON)
        assert status == 202 and json.loads(reply)["rejected"] == 0, reply


def profile_bins(values, column):
    """Counts on the profile's bins (underflow, quantile bins, overflow; categorical: values then __other__)."""
    if "edges" in column:
        edges = np.array(column["edges"])
        inside = values[(values >= column["min"]) & (values <= column["max"])]
        counts = [np.sum(values < column["min"])]
        counts += list(np.bincount(np.searchsorted(edges, inside, side="left"), minlength=len(edges) + 1))
        counts += [np.sum(values > column["max"])]
        return np.array(counts, dtype=float)
    known = column["values"]
    return np.array([np.sum(values == v) for v in known] + [np.sum(~np.isin(values, known))], dtype=float)


def psi(reference_counts, current_counts):
    """PSI with Evidently's zero rule, written out here (empty shares get 0.0001)."""
    def fixed(counts):
        shares = counts / counts.sum()
        return np.where(shares == 0, 0.0001, shares)
    p, q = fixed(reference_counts), fixed(current_counts)
    return float(np.sum((q - p) * np.log(q / p)))


def values(base, expr):
    """{labels (without __name__) as a frozenset: value} of an instant query."""
    return {frozenset((k, v) for k, v in r["metric"].items() if k != "__name__"): float(r["value"][1])
            for r in query(base, expr)}


def one(base, expr):
    result = values(base, expr)
    assert len(result) == 1, (expr, result)
    return next(iter(result.values()))


def test_fleet_rules_over_three_exporters_and_through_remote_write_equal_the_union(
        binary, start_exporter, prometheus, tmp_path):
    rng = np.random.default_rng(19)
    reference = rows(rng, 3000, drift=False)
    config = tmp_path / "models.yaml"
    profile_path = tmp_path / "reference.json"
    config.write_text(CONFIG.format(reference=profile_path))
    csv = tmp_path / "reference.csv"
    reference[["x", "c", "group", "prediction"]].to_csv(csv, index=False)
    result = subprocess.run([str(binary), "profile", "--config", str(config), "--model", "churn", "--input", str(csv),
                             "--out", str(profile_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    profile = json.loads(profile_path.read_text())
    rules = tmp_path / "rules.yml"
    result = subprocess.run([str(binary), "rules", "--config", str(config), "--job", JOB, "--out", str(rules)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # With no scraper there is no `up`: the liveness alerts read the series that arrive.
    pushed_rules = tmp_path / "pushed-rules.yml"
    result = subprocess.run([str(binary), "rules", "--config", str(config), "--job", JOB, "--source", "remote_write",
                             "--out", str(pushed_rules)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

    # The exporters' own remote write (`remote_write:`, for sites with no scraper) into a third Prometheus.
    direct = prometheus(None, name="direct", rule_files=[pushed_rules], flags=["--web.enable-remote-write-receiver"],
                        scrape_configs="  []\n")
    replica_config = tmp_path / "replica.yaml"
    replica_config.write_text(config.read_text() + (
        f"remote_write: {{url: '{direct}/api/v1/write', interval: 1s, external_labels: {{job: {JOB}}}}}\n"))
    replicas = {name: start_exporter("--config", str(replica_config), "--instance.id", name) for name in INSTANCES}
    union = start_exporter("--config", str(config), "--instance.id", "union")

    # The central Prometheus (Mimir, Thanos receive in production): receives raw series, evaluates the rules.
    central = prometheus(None, name="central", rule_files=[rules],
                         flags=["--web.enable-remote-write-receiver"],
                         scrape_configs="  []\n")
    targets = ", ".join(f"'127.0.0.1:{e.port}'" for e in replicas.values())
    edge = prometheus(None, name="edge", rule_files=[rules], scrape_configs=(
        f"  - job_name: {JOB}\n    static_configs:\n      - targets: [{targets}]\n"),
        extra=(f"remote_write:\n  - url: {central}/api/v1/write\n"
               "    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}\n"
               "    write_relabel_configs:\n"
               # The alert states too: central evaluates the same alerts, writes the same ALERTS_FOR_STATE series at the
               # same timestamps, and refused every request holding one of the edge's (400, duplicate sample), raw
               # samples and all (a PSI off by 0.0064 in CI, read on series that had lost scattered samples).
               "      - {source_labels: [__name__], regex: 'mlops:.*|slo:.*|ALERTS|ALERTS_FOR_STATE', action: drop}\n"))

    # The counters must be scraped at zero before the traffic, so that increase() sees all of it.
    fleet_predictions = f'sum(mlops_fairness_predictions_total{{job="{JOB}",model="churn"}})'
    for base in (edge, central, direct):
        zeros = f'count(count by (instance) (mlops_fairness_predictions_total{{job="{JOB}"}} == 0))'
        wait_for(lambda: one_or_none(base, zeros) == 3, timeout=60, interval=0.5,
                 what=f"the three exporters' counters at zero in {base}")

    current = rows(rng, 2400, drift=True)
    shuffled = current.sample(frac=1, random_state=7)
    parts = [shuffled.iloc[k::3] for k in range(3)]
    for e, part in zip(replicas.values(), parts):
        post(e, part)
    post(union, current)
    n = len(current)
    for base in (edge, central, direct):
        wait_for(lambda: one_or_none(base, fleet_predictions) == n, timeout=60, interval=0.5,
                 what=f"the fleet's {n} predictions in {base}")
    # From here every Prometheus holds all of the traffic: a rule evaluated later sees it whole (one evaluated before,
    # still the latest for up to an interval, saw part of it: CI once read a PSI 0.0085 off so).
    settled = time.time()

    # The union exporter, and the independent implementations on the same rows.
    _, s = scrape(union)
    y_true, y_pred = current["label"].to_numpy(), current["prediction"].to_numpy()
    accuracy = skm.accuracy_score(y_true, y_pred)
    parity = demographic_parity_difference(y_true == "yes", y_pred == "yes", sensitive_features=current["group"])
    features = {f["name"]: f.get("numeric") or f.get("categorical") for f in profile["features"]}
    expected_psi = {}
    for name, column in features.items():
        ref_values = reference[name].to_numpy()
        cur_values = current[name].to_numpy()
        expected_psi[name] = psi(profile_bins(ref_values, column), profile_bins(cur_values, column))
        union_psi = s[("mlops_feature_drift_statistic", (("feature", name), ("method", "psi"), ("model", "churn")))]
        assert abs(union_psi - expected_psi[name]) <= 1e-9 * max(1, expected_psi[name]), name
    assert abs(s[("mlops_model_accuracy", (("model", "churn"), ("version", "v1")))] - accuracy) <= 1e-12
    union_parity = s[("mlops_fairness_metric", (("attribute", "group"), ("metric", "demographic_parity_difference"),
                                                ("model", "churn")))]
    assert abs(union_parity - parity) <= 1e-12
    assert expected_psi["x"] > 0.05 and parity > 0.05  # not trivially zero

    # The fleet rules, on the edge Prometheus and on the central one fed by remote write. increase() extrapolates a
    # counter whose first sample is 0 only at the end of the range, by at most 1.1 scrape intervals (1 s) over the
    # time since that sample: each replica's counts are scaled by a factor in [1, 1 + eps]. A ratio pooled over the
    # replicas then moves by at most eps times the largest distance of a replica's own ratio from the pooled one:
    # that is the tolerance, computed here from the replicas' rows.
    # With n samples in the range, that is 1.1 intervals over n - 1 of them: eps = 1.1 / (n - 1), n counted in each
    # Prometheus (a loaded machine scrapes or remote-writes less often than every second), one sample spared.
    samples = f'min(count_over_time(mlops_fairness_predictions_total{{job="{JOB}",model="churn"}}[1h]))'

    def fewest_samples():
        counts = [one_or_none(base, samples) for base in (edge, central, direct)]
        return None if None in counts or min(counts) < 14 else min(counts)

    fewest = wait_for(fewest_samples, timeout=60, interval=0.5, what="14 samples of every series in each Prometheus")
    eps = 1.1 / (fewest - 2)

    def pooled_bound(ratio_of):
        pooled = ratio_of(current)
        return eps * max(abs(ratio_of(p) - pooled) for p in parts) + 1e-9

    def selection(frame, group):
        g = frame[frame["group"] == group]
        return float(np.mean(g["prediction"] == "yes"))

    accuracy_tol = pooled_bound(lambda f: skm.accuracy_score(f["label"], f["prediction"]))
    parity_tol = pooled_bound(lambda f: selection(f, "a")) + pooled_bound(lambda f: selection(f, "b"))
    psi_tol = {}
    for name, column in features.items():
        ref = profile_bins(reference[name].to_numpy(), column)
        p = np.where(ref == 0, 0.0001, ref / ref.sum())
        shares = [profile_bins(part[name].to_numpy(), column) for part in parts]
        q = profile_bins(current[name].to_numpy(), column) / len(current)
        moved = eps * np.max([np.abs(sh / sh.sum() - q) for sh in shares], axis=0)
        qf = np.where(q == 0, 0.0001, q)
        psi_tol[name] = float(np.sum(np.abs(np.log(qf / p) + 1 - p / qf) * moved)) + 1e-9
    for base in (edge, central, direct):
        def rules_ready():
            got = values(base, 'mlops:feature_psi:increase1h{model="churn"}')
            # The fleet group's rules are evaluated together, at one timestamp.
            evaluated = one_or_none(base, 'min(timestamp(mlops:feature_psi:increase1h{model="churn"}))')
            return (len(got) == 2 and evaluated is not None and evaluated > settled
                    and one_or_none(base, 'mlops:fairness_demographic_parity_difference:ratio_rate1h'))
        wait_for(rules_ready, timeout=60, interval=0.5, what=f"the fleet rules in {base}")
        for name in features:
            fleet_psi = one(base, f'mlops:feature_psi:increase1h{{model="churn",feature="{name}"}}')
            assert abs(fleet_psi - expected_psi[name]) <= psi_tol[name], (base, name, fleet_psi, psi_tol[name])
        fleet_accuracy = one(base, 'mlops:model_accuracy:ratio_rate1h{model="churn"}')
        assert abs(fleet_accuracy - accuracy) <= accuracy_tol, (base, fleet_accuracy, accuracy, accuracy_tol)
        fleet_parity = one(base, 'mlops:fairness_demographic_parity_difference:ratio_rate1h{model="churn"}')
        assert abs(fleet_parity - parity) <= parity_tol, (base, fleet_parity, parity, parity_tol)
        ratio = one(base, 'mlops:fairness_demographic_parity_ratio:ratio_rate1h{model="churn"}')
        low, high = sorted([selection(current, "a"), selection(current, "b")])
        assert abs(ratio - low / high) <= parity_tol * 2 / high, (base, ratio)
    assert max(accuracy_tol, parity_tol) < 0.02 and max(psi_tol.values()) < 0.2 * min(expected_psi.values())
    # The central Prometheus got raw series only, and computed the fleet figures itself.
    assert values(central, f'count(up{{job="{JOB}"}})') == values(edge, f'count(up{{job="{JOB}"}})')
    # Every sample the edge sent was taken: a refused request is dropped whole (this is what made central's PSI
    # drift, rarely: it shows here at once).
    with urllib.request.urlopen(edge + "/metrics", timeout=5) as r:
        failed = re.findall(r"^prometheus_remote_storage_samples_failed_total\{.*\} (\S+)$", r.read().decode(), re.M)
    assert failed and sum(map(float, failed)) == 0, failed

    # The liveness alerts where nothing is scraped: none pending while the three send (the rules for a scrape job
    # had MLOpsExporterAbsent pending from the start and firing for good: no `up` there), and a replica that stops
    # is down (its series end with staleness markers at once).
    assert values(direct, 'ALERTS{alertname=~"MLOpsExporter.*"}') == {}
    assert values(direct, f'absent(up{{job="{JOB}"}})') != {}  # what the scrape rules would read
    down = next(r["expr"] for g in yaml.safe_load(pushed_rules.read_text())["groups"] for r in g["rules"]
                if r.get("alert") == "MLOpsExporterDown")
    assert values(direct, down) == {}
    replicas["pod-a"].proc.terminate()
    replicas["pod-a"].proc.wait(timeout=30)
    wait_for(lambda: values(direct, down) != {}, timeout=30, interval=0.5, what="pod-a seen down")
    assert list(values(direct, down)) == [frozenset({("job", JOB), ("instance", "pod-a")})]


def one_or_none(base, expr):
    result = values(base, expr)
    return next(iter(result.values())) if len(result) == 1 else None
