"""Labels in a fleet (docs/storage.md, "Labels in a fleet"), end to end: three exporters with the same model, each
with its own --instance.id, each sent its own predictions with ids `<instance>~<ULID>`; a label poster fans every
label out to all three. Each exporter joins exactly its own labels and counts the others' as other_instance, its
labels answer names the instances that hold them, and fleet accuracy from PromQL over the three (a real Prometheus
scraping them, the query taken from docs/storage.md) equals scikit-learn's on all joined pairs."""

import json
import re
import subprocess

import numpy as np
from sklearn import metrics as skm

from conftest import ROOT, query, sample, scrape, wait_for

CONFIG = """
models:
  - name: churn
    task: binary_classification
    versions: [v1]
    classes: ["no", "yes"]
    positive_class: "yes"
    join_ttl: 1h
    max_pending: 100000
    collectors: [quality]
"""
INSTANCES = ["pod-a", "pod-b", "pod-c"]
NDJSON = {"Content-Type": "application/x-ndjson"}
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(rng, milliseconds):
    """A ULID: 48 bits of milliseconds, 80 random bits, as 26 Crockford base-32 digits (most significant first)."""
    n = (milliseconds << 80) | int.from_bytes(rng.bytes(10), "big")
    return "".join(CROCKFORD[(n >> (5 * (25 - i))) & 31] for i in range(26))


def post(e, path, events):
    """POSTs `events` as NDJSON; returns the JSON answer (202 expected, nothing rejected)."""
    body = "".join(json.dumps(ev) + "\n" for ev in events).encode()
    status, _, reply = e.post(path, body, NDJSON)
    assert status == 202, reply
    answer = json.loads(reply)
    assert answer["rejected"] == 0, answer
    return answer


def fleet_accuracy_promql():
    """The since-start fleet accuracy of docs/storage.md."""
    doc = (ROOT / "docs" / "storage.md").read_text()
    blocks = re.findall(r"```promql\n(.*?)```", doc, re.S)
    return next(b for b in blocks if b.lstrip().startswith("sum by (model) (mlops_model_correct_predictions_total)"))


def test_labels_fanned_out_to_three_exporters_join_once_and_fleet_accuracy_matches_sklearn(
        start_exporter, prometheus, tmp_path):
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG)
    exporters = {name: start_exporter("--config", str(config), "--instance.id", name) for name in INSTANCES}
    for name, e in exporters.items():
        assert f"instance_id={name}" in e.log_path.read_text()

    rng = np.random.default_rng(15)
    n_per, n_ghost = 400, 23
    predictions = {}  # instance -> [(id, predicted, actual)]
    t0 = 1_767_225_600_000
    for k, name in enumerate(INSTANCES):
        # Each replica's model is a little different: accuracy 0.9, 0.75, 0.6.
        actual = rng.random(n_per) < 0.4
        wrong = rng.random(n_per) < [0.1, 0.25, 0.4][k]
        predicted = actual ^ wrong
        ids = [f"{name}~{ulid(rng, t0 + i)}" for i in range(n_per)]
        predictions[name] = list(zip(ids, predicted, actual))
        answer = post(exporters[name], "/api/v1/models/churn/predictions",
                      [{"id": i, "version": "v1", "prediction": "yes" if p else "no"} for i, p, _ in predictions[name]])
        assert answer == {"accepted": n_per, "rejected": 0, "errors": []}

    # 85% of each replica's predictions get a label; plus labels for ids no one holds (not of the generated shape).
    labelled = {name: [row for row in rows if rng.random() < 0.85] for name, rows in predictions.items()}
    labels = [{"id": i, "label": "yes" if a else "no"} for rows in labelled.values() for i, _, a in rows]
    labels += [{"id": f"order~{k}", "label": "no"} for k in range(n_ghost)]
    labels = [labels[j] for j in rng.permutation(len(labels))]

    # The poster fans every label out to every replica.
    for name, e in exporters.items():
        answer = post(e, "/api/v1/models/churn/labels", labels)
        others = [o for o in INSTANCES if o != name]
        assert answer["accepted"] == len(labels)
        assert answer["joined"] == len(labelled[name])
        assert answer["unmatched"] == {
            "unknown": n_ghost, "expired": 0, "evicted": 0,
            "other_instance": sum(len(labelled[o]) for o in others)}
        assert answer["other_instances"] == {o: len(labelled[o]) for o in others}
        assert "other_instances_unlisted" not in answer

    for name, e in exporters.items():
        _, s = scrape(e)
        others = sum(len(labelled[o]) for o in INSTANCES if o != name)
        assert sample(s, "mlops_labels_joined_total", model="churn", source="endpoint") == len(labelled[name])
        assert sample(s, "mlops_labels_unmatched_total", model="churn", reason="other_instance") == others
        assert sample(s, "mlops_labels_unmatched_total", model="churn", reason="unknown") == n_ghost
        assert sample(s, "mlops_labels_unmatched_total", model="churn", reason="expired") == 0
        assert sample(s, "mlops_labels_unmatched_total", model="churn", reason="evicted") == 0
        assert sample(s, "mlops_labels_pending", model="churn") == n_per - len(labelled[name])

    joined = [row for rows in labelled.values() for row in rows]
    y_true = ["yes" if a else "no" for _, _, a in joined]
    y_pred = ["yes" if p else "no" for _, p, _ in joined]
    expected = skm.accuracy_score(y_true, y_pred)
    # Not what any one replica says: the three accuracies differ.
    per_replica = [skm.accuracy_score([a for _, _, a in rows], [p for _, p, _ in rows]) for rows in labelled.values()]
    assert max(per_replica) - min(per_replica) > 0.1

    targets = ", ".join(f"'127.0.0.1:{e.port}'" for e in exporters.values())
    base = prometheus(None, scrape_configs=(
        "  - job_name: mlops\n"
        f"    static_configs:\n      - targets: [{targets}]\n"))
    expr = fleet_accuracy_promql()
    counted = "sum by (model) (mlops_model_classification_outcomes_total)"

    def all_three_scraped():
        result = query(base, f"{counted} and (count by (model) (mlops_model_classification_outcomes_total) == 3)")
        return result and float(result[0]["value"][1]) == len(joined)

    wait_for(all_three_scraped, timeout=60, interval=0.5, what="Prometheus to scrape the three exporters")
    result = query(base, expr)
    assert [r["metric"] for r in result] == [{"model": "churn"}]
    assert abs(float(result[0]["value"][1]) - expected) <= 1e-12
    joined_total = query(base, 'sum by (model) (mlops_labels_joined_total{source="endpoint"})')
    assert float(joined_total[0]["value"][1]) == len(joined)  # joined once in the fleet: no double counting


def test_an_invalid_instance_id_is_refused_with_a_clear_error(binary):
    for bad, problem in [("a~b", "[A-Za-z0-9._-]"), ("x" * 65, "more than 64"), ("", "empty")]:
        result = subprocess.run([str(binary), "serve", "--instance.id", bad, "--web.listen-address", "127.0.0.1:0"],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode != 0
        assert "--instance.id" in result.stderr and problem in result.stderr, result.stderr
