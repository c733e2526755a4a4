"""Fairness through the HTTP API: seeded predictions with a known bias and sensitive attributes (some unknown
or missing) sent to the real binary; the scraped selection rates and selection-rate metrics equal fairlearn's
`MetricFrame` and `demographic_parity_difference/ratio` and the AIF360 formulas on the same rows, and every
fairness family is in docs/metrics.md with its HELP. (TPR/FPR need joined labels: covered by the Swift
oracle test, which feeds outcomes to the collector directly.)"""

import json
import warnings

import numpy as np
from fairlearn.metrics import MetricFrame, demographic_parity_difference, demographic_parity_ratio, selection_rate

from conftest import sample, scrape
from test_docs import check_documented

CONFIG = """
models:
  - name: credit
    task: binary_classification
    versions: [v1]
    classes: [reject, approve]
    positive_class: approve
    sensitive_attributes:
      - {name: gender, groups: [f, m], privileged: m}
    collectors:
      - name: fairness
        options: {min_group_observations: 30}
"""


def test_selection_rates_through_http_match_fairlearn(start_exporter, tmp_path):
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG)
    e = start_exporter("--config", str(config))
    rng = np.random.default_rng(20261129)
    n = 3000
    gender = rng.choice(np.array(["f", "m", "x", None], dtype=object), n, p=[0.45, 0.5, 0.03, 0.02])
    approve = rng.random(n) < np.where(gender == "f", 0.25, 0.4)
    lines = []
    for g, a in zip(gender, approve):
        event = {"version": "v1", "prediction": "approve" if a else "reject"}
        if g is not None:
            event["attributes"] = {"gender": g}
        lines.append(json.dumps(event))
    status, _, _ = e.post("/api/v1/models/credit/predictions", ("\n".join(lines) + "\n").encode(),
                          {"Content-Type": "application/x-ndjson"})
    assert status == 202
    text, scraped = scrape(e)
    names = check_documented(text)
    assert {"mlops_fairness_metric", "mlops_fairness_selection_rate", "mlops_fairness_predictions_total"} <= names

    def value(name, **labels):
        return sample(scraped, name, model="credit", attribute="gender", **labels)

    groups = np.array(["__other__" if g in (None, "x") else g for g in gender], dtype=object)
    y = approve.astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = MetricFrame(metrics=selection_rate, y_true=y, y_pred=y, sensitive_features=groups)
        for g, rate in frame.by_group.items():
            assert abs(value("mlops_fairness_selection_rate", group=g) - rate) <= 1e-12, g
            assert value("mlops_fairness_predictions_total", group=g) == (groups == g).sum()
            assert value("mlops_fairness_selected_total", group=g) == y[groups == g].sum()
        # __other__ (5%, about 150 events) qualifies and is compared (include_other defaults to true).
        expected = {
            "demographic_parity_difference": demographic_parity_difference(y, y, sensitive_features=groups),
            "demographic_parity_ratio": demographic_parity_ratio(y, y, sensitive_features=groups),
        }
    privileged = groups == "m"
    sr_u, sr_p = y[~privileged].mean(), y[privileged].mean()
    expected["disparate_impact"] = sr_u / sr_p
    expected["statistical_parity_difference"] = sr_u - sr_p
    for metric, v in expected.items():
        assert abs(value("mlops_fairness_metric", metric=metric) - v) <= 1e-9, metric
    # The bias (0.25 vs 0.4) breaks the four-fifths rule.
    assert value("mlops_fairness_violation", metric="disparate_impact") == 1
    assert value("mlops_fairness_violation", metric="demographic_parity_ratio") == 1
    # No labels were joined: no label-based metric, no TPR.
    assert value("mlops_fairness_metric", metric="equal_opportunity_difference") is None
    assert value("mlops_fairness_true_positive_rate", group="f") is None
