"""Quality and fairness with delayed labels, end to end: seeded predictions with a known bias sent through the
HTTP API, then their labels shuffled and in batches, some never sent, some for unknown ids, some inline; the
join counters equal what the test generated, and the scraped quality and fairness values equal scikit-learn
and fairlearn computed here on the joined subset (1e-9 where exact; ROC AUC within the exported bound)."""

import json
import warnings

import numpy as np
import pytest
from fairlearn.metrics import (MetricFrame, demographic_parity_difference, demographic_parity_ratio,
                               equalized_odds_difference, equalized_odds_ratio, false_positive_rate,
                               selection_rate, true_positive_rate)
from sklearn import metrics as skm

from conftest import sample, scrape
from test_docs import check_documented

# The credit model's classes and sensitive attribute (test_storage uses it too).
CREDIT = """  - name: credit
    task: binary_classification
    versions: [v1]
    classes: [deny, approve]
    positive_class: approve
    sensitive_attributes:
      - {name: gender, groups: [f, m], privileged: m}
"""
CONFIG = "\nmodels:\n" + CREDIT + """    join_ttl: 1h
    max_pending: 100000
    collectors:
      - service
      - quality
      - name: fairness
        options: {min_group_observations: 30}
  - name: eta
    task: regression
    versions: ["1"]
    collectors: [quality]
"""
NDJSON = {"Content-Type": "application/x-ndjson"}


def post(e, path, events):
    for start in range(0, len(events), 1000):
        body = "".join(json.dumps(ev) + "\n" for ev in events[start:start + 1000]).encode()
        status, _, reply = e.post(path, body, NDJSON)
        assert status == 202, reply
        assert json.loads(reply)["rejected"] == 0, reply


def cls(approve):
    return "approve" if approve else "deny"


def check_binary_oracles(s, model, actual, predicted, score, gender, joined):
    """The quality and fairness figures of `model` (version v1, classes deny and approve, attribute gender of
    groups f and m) in the scrape `s` equal scikit-learn's and fairlearn's: quality, TPR and FPR over the predictions
    whose label joined (indices `joined`), selection rates over every prediction. `actual` and `predicted` are
    booleans (approve) and `score`, `gender` values, one per prediction."""
    y_true = np.array([cls(b) for b in actual[joined]])
    y_pred = np.array([cls(b) for b in predicted[joined]])
    p = score[joined]
    v = dict(model=model, version="v1")
    assert sample(s, "mlops_model_accuracy", **v) == pytest.approx(skm.accuracy_score(y_true, y_pred), rel=1e-9)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=["deny", "approve"], zero_division=0)
    for k, c in enumerate(["deny", "approve"]):
        assert sample(s, "mlops_model_precision", **v, **{"class": c}) == pytest.approx(precision[k], rel=1e-9)
        assert sample(s, "mlops_model_recall", **v, **{"class": c}) == pytest.approx(recall[k], rel=1e-9)
        assert sample(s, "mlops_model_f1", **v, **{"class": c}) == pytest.approx(f1[k], rel=1e-9)
    assert sample(s, "mlops_model_macro_f1", **v) == pytest.approx(f1.mean(), rel=1e-9)
    y01 = (y_true == "approve").astype(int)
    assert sample(s, "mlops_model_log_loss", **v) == pytest.approx(skm.log_loss(y01, p, labels=[0, 1]), rel=1e-9)
    assert sample(s, "mlops_model_brier_score", **v) == pytest.approx(skm.brier_score_loss(y01, p), rel=1e-9)
    auc, bound = sample(s, "mlops_model_roc_auc", **v), sample(s, "mlops_model_roc_auc_error_bound", **v)
    assert 0 < bound < 0.01, bound  # the exported bound must itself be tight, or the check below proves little
    assert abs(auc - skm.roc_auc_score(y01, p)) <= bound + 1e-12
    confusion = skm.confusion_matrix(y_true, y_pred, labels=["deny", "approve"])
    for a, actual_class in enumerate(["deny", "approve"]):
        for b, predicted_class in enumerate(["deny", "approve"]):
            assert sample(s, "mlops_model_confusion_total", **v, actual=actual_class,
                       predicted=predicted_class) == confusion[a, b]

    # Fairness: selection rates over every prediction; TPR and FPR over the joined ones.
    g_joined = gender[joined]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred_all = predicted.astype(int)
        expected = {
            "demographic_parity_difference": demographic_parity_difference(pred_all, pred_all, sensitive_features=gender),
            "demographic_parity_ratio": demographic_parity_ratio(pred_all, pred_all, sensitive_features=gender),
            "equalized_odds_difference": equalized_odds_difference(
                y01, predicted[joined].astype(int), sensitive_features=g_joined),
            "equalized_odds_ratio": equalized_odds_ratio(y01, predicted[joined].astype(int), sensitive_features=g_joined),
        }
        frame = MetricFrame(metrics={"tpr": true_positive_rate, "fpr": false_positive_rate, "sr": selection_rate},
                            y_true=y01, y_pred=predicted[joined].astype(int), sensitive_features=g_joined)
    a = dict(model=model, attribute="gender")
    for metric, value in expected.items():
        assert sample(s, "mlops_fairness_metric", **a, metric=metric) == pytest.approx(value, rel=1e-9, abs=1e-12), metric
    for group in ("f", "m"):
        assert sample(s, "mlops_fairness_true_positive_rate", **a, group=group) == pytest.approx(
            frame.by_group["tpr"][group], rel=1e-9)
        assert sample(s, "mlops_fairness_false_positive_rate", **a, group=group) == pytest.approx(
            frame.by_group["fpr"][group], rel=1e-9)


@pytest.fixture
def exporter(start_exporter, tmp_path):
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG)
    return start_exporter("--config", str(config))


def test_delayed_labels_quality_and_fairness_match_sklearn_and_fairlearn(exporter):
    rng = np.random.default_rng(42)
    n, n_inline, n_unknown = 3000, 200, 57
    gender = rng.choice(np.array(["f", "m"], dtype=object), n + n_inline, p=[0.45, 0.55])
    # A biased scorer: the same true ability, but men get a higher score.
    ability = rng.random(n + n_inline)
    actual = rng.random(n + n_inline) < ability
    score = np.clip(ability * 0.8 + np.where(gender == "m", 0.15, 0.0) + rng.normal(0, 0.1, n + n_inline), 0, 1)
    predicted = score >= 0.5
    predictions = []
    for i in range(n + n_inline):
        ev = {"id": f"p{i}", "version": "v1", "prediction": cls(predicted[i]), "score": float(score[i]),
              "attributes": {"gender": gender[i]}, "latency_seconds": 0.01}
        if i >= n:
            ev["label"] = cls(actual[i])  # inline ground truth: joined at once
        predictions.append(ev)
    post(exporter, "/api/v1/models/credit/predictions", predictions)
    # 80% of the delayed labels arrive, shuffled, plus labels for ids that were never predicted.
    arriving = rng.permutation(n)[: int(n * 0.8)]
    labels = [{"id": f"p{i}", "label": cls(actual[i])} for i in arriving]
    labels += [{"id": f"ghost{k}", "label": "approve"} for k in range(n_unknown)]
    labels = [labels[j] for j in rng.permutation(len(labels))]
    post(exporter, "/api/v1/models/credit/labels", labels)

    text, s = scrape(exporter)
    check_documented(text)
    assert sample(s, "mlops_labels_joined_total", model="credit", source="endpoint") == len(arriving)
    assert sample(s, "mlops_labels_joined_total", model="credit", source="inline") == n_inline
    assert sample(s, "mlops_labels_unmatched_total", model="credit", reason="unknown") == n_unknown
    for reason in ("expired", "evicted", "other_instance"):
        assert sample(s, "mlops_labels_unmatched_total", model="credit", reason=reason) == 0
    assert sample(s, "mlops_labels_pending", model="credit") == n - len(arriving)
    assert sample(s, "mlops_predictions_expired_total", model="credit") == 0
    assert sample(s, "mlops_labels_join_delay_seconds_count", model="credit") == len(arriving) + n_inline

    joined = np.concatenate([np.sort(arriving), np.arange(n, n + n_inline)])
    check_binary_oracles(s, "credit", actual, predicted, score, gender, joined)
    # The built-in bias violates demographic parity (a 0.15 score bonus for one group).
    assert sample(s, "mlops_fairness_violation", model="credit", attribute="gender",
                  metric="demographic_parity_difference") == 1


def test_regression_quality_matches_sklearn(exporter):
    rng = np.random.default_rng(3)
    n = 2000
    y = rng.gamma(2.0, 10.0, n)
    y[:40] = 0.0  # zero actuals: skipped by MAPE, counted
    pred = y + rng.normal(1.0, 4.0, n)
    post(exporter, "/api/v1/models/eta/predictions",
         [{"id": str(i), "version": "1", "prediction": float(pred[i])} for i in range(n)])
    post(exporter, "/api/v1/models/eta/labels", [{"id": str(i), "label": float(y[i])} for i in range(n)])
    _, s = scrape(exporter)
    v = dict(model="eta", version="1")
    assert sample(s, "mlops_model_mae", **v) == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-9)
    assert sample(s, "mlops_model_rmse", **v) == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)), rel=1e-9)
    assert sample(s, "mlops_model_r2", **v) == pytest.approx(skm.r2_score(y, pred), rel=1e-9)
    nz = y != 0
    assert sample(s, "mlops_model_mape", **v) == pytest.approx(
        skm.mean_absolute_percentage_error(y[nz], pred[nz]), rel=1e-9)
    assert sample(s, "mlops_model_mape_skipped_total", **v) == 40
    assert sample(s, "mlops_labels_joined_total", model="eta", source="endpoint") == n
