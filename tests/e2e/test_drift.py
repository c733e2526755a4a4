"""Drift, end to end and against independent implementations computed here: a reference profile built with
`mlops-exporter profile` from seeded data, live data sent through the HTTP API, the scrape compared with
numpy/scipy on the same bins (1e-9), with scipy on the raw samples within the documented bounds (KS and
Wasserstein from fine bins), and with Evidently's own stattests (categorical features, KS, Wasserstein),
verdicts included, for six datasets."""

import json
import math
import re
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from conftest import ROOT, sample, scalar, scrape, wait_for
from test_docs import check_documented

N_REF, N_CUR = 5000, 2000
NUMERIC = {"f_psi": "psi", "f_kl": "kl_div", "f_js": "jensenshannon", "f_ks": "ks", "f_w": "wasserstein"}
CATEGORICAL = {"c_chi": "chisquare", "c_js": "jensenshannon", "c_psi": "psi"}
CATEGORIES = ["A", "B", "C"]
THRESHOLDS = {"psi": 0.1, "kl_div": 0.1, "jensenshannon": 0.1, "wasserstein": 0.1, "ks": 0.05, "chisquare": 0.05}

CONFIG = """
models:
  - name: m
    task: binary_classification
    versions: [v1]
    classes: ["no", "yes"]
    positive_class: "yes"
    reference: {reference}
    features:
{features}
    window: {{duration: 1h, slices: 12}}
    collectors:
      - service
      - name: drift
        options:
          min_observations: 100
          features:
{methods}
"""


def config_text(reference):
    features = "\n".join(f"      - {{name: {f}, type: numeric}}" for f in NUMERIC) + "\n" + "\n".join(
        f"      - {{name: {c}, type: categorical, values: [A, B, C]}}" for c in CATEGORICAL)
    methods = "\n".join(f"            {f}: {{method: {m}}}" for f, m in {**NUMERIC, **CATEGORICAL}.items())
    return CONFIG.format(reference=reference, features=features, methods=methods)


def dataset(rng, n, shift=0.0, scale=1.0, probs=(0.5, 0.3, 0.2), new_category=0.0, missing=0.0, yes=0.3):
    data = {}
    for f in NUMERIC:
        data[f] = rng.normal(shift, scale, n)
    for c in CATEGORICAL:
        values = rng.choice(CATEGORIES, n, p=probs).astype(object)
        if new_category:
            values[rng.random(n) < new_category] = "D"
        data[c] = values
    if missing:
        for col in list(NUMERIC)[:2] + list(CATEGORICAL)[:1]:
            data[col] = data[col].astype(object)
            data[col][rng.random(n) < missing] = None
    data["prediction"] = np.where(rng.random(n) < yes, "yes", "no")
    return data


SCENARIOS = {
    "no_drift": {},
    "mean_shift": {"shift": 0.5},
    "variance_shift": {"scale": 2.0},
    "categorical_shift": {"probs": (0.2, 0.3, 0.5), "yes": 0.6},
    "new_category": {"new_category": 0.15},
    "missing_values": {"missing": 0.1},
}


@pytest.fixture(scope="module")
def reference(binary, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("drift")
    rng = np.random.default_rng(20261129)
    ref = dataset(rng, N_REF)
    config = tmp / "models.yaml"
    config.write_text(config_text(tmp / "reference.json"))
    profile = build_profile(binary, config, "m", ref, tmp / "reference.json")
    return {"data": ref, "config": config, "profile": profile}


def build_profile(binary, config, model, data, out):
    """`mlops-exporter profile` of `model` (in the file `config`) from `data` (columns, written as CSV beside
    `out`) into `out`; returns the profile."""
    csv = out.with_suffix(".csv")
    pd.DataFrame(data).to_csv(csv, index=False)
    result = subprocess.run(
        [str(binary), "profile", "--config", str(config), "--model", model, "--input", str(csv), "--out", str(out)],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())






def send(exporter, data):
    n = len(data["prediction"])
    lines = []
    for i in range(n):
        features = {}
        for col in list(NUMERIC) + list(CATEGORICAL):
            v = data[col][i]
            features[col] = None if v is None else (float(v) if col in NUMERIC else v)
        lines.append(json.dumps({"version": "v1", "features": features, "prediction": data["prediction"][i]}))
    for start in range(0, n, 1000):
        body = ("\n".join(lines[start:start + 1000]) + "\n").encode()
        status, _, reply = exporter.post("/api/v1/models/m/predictions", body, {"Content-Type": "application/x-ndjson"})
        assert status == 202 and json.loads(reply)["rejected"] == 0, reply


def shares_fixed(counts):
    """Evidently's zero fix (stattests/utils.py), written out here independently of the exporter's."""
    shares = counts / counts.sum()
    nonzero = shares[shares > 0]
    eps = 0.0001 if nonzero.min() > 0.0001 else nonzero.min() / 1e6
    return np.where(shares == 0, eps, shares)


def numeric_bins(values, column):
    """Counts on the profile's bins: underflow, [min, e0], (e0, e1], ..., (e_last, max], overflow."""
    edges = np.array(column["edges"])
    values = np.array([v for v in values if v is not None], dtype=float)
    inside = values[(values >= column["min"]) & (values <= column["max"])]
    counts = [np.sum(values < column["min"])]
    counts += list(np.bincount(np.searchsorted(edges, inside, side="left"), minlength=len(edges) + 1))
    counts += [np.sum(values > column["max"])]
    return np.array(counts, dtype=float)


def evidently_tests():
    from evidently.legacy.calculations.stattests import (chisquare_stattest, jensenshannon, ks_stattest, psi,
                                                         wasserstein_distance_norm)
    from evidently.legacy.core import ColumnType
    return {
        "psi": psi._psi, "jensenshannon": jensenshannon._jensenshannon, "chisquare": chisquare_stattest._chi_stat_test,
        "ks": ks_stattest._ks_stat_test, "wasserstein": wasserstein_distance_norm._wasserstein_distance_norm,
        "cat": ColumnType.Categorical, "num": ColumnType.Numerical,
    }


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_drift_matches_scipy_and_evidently(scenario, reference, start_exporter):
    rng = np.random.default_rng(list(SCENARIOS).index(scenario) + 1)
    cur = dataset(rng, N_CUR, **SCENARIOS[scenario])
    e = start_exporter("--config", str(reference["config"]))
    send(e, cur)
    s = scrape(e)[1]
    if scenario == "mean_shift":
        _, _, text = e.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})
        assert "mlops_feature_drift_detected" in check_documented(text.decode())
    ref = reference["data"]
    ev = evidently_tests()
    verdicts = {}

    def non_missing(values):
        return np.array([v for v in values if v is not None], dtype=float)

    for f, method in NUMERIC.items():
        labels = dict(model="m", feature=f, method=method)
        score = sample(s, "mlops_feature_drift_score", **labels)
        assert score is not None, (f, scenario)
        column = next(c for c in reference["profile"]["features"] if c["name"] == f)["numeric"]
        r_all, c_all = non_missing(ref[f]), non_missing(cur[f])
        assert sample(s, "mlops_feature_window_observations", model="m", feature=f) == len(c_all)
        rb, cb = numeric_bins(ref[f], column), numeric_bins(cur[f], column)
        assert list(rb) == column["counts"]
        keep = (rb > 0) | (cb > 0)
        p, q = shares_fixed(rb[keep]), shares_fixed(cb[keep])
        if method == "psi":
            expected = float(np.sum((p - q) * np.log(p / q)))
        elif method == "kl_div":
            expected = float(stats.entropy(p, q))
        elif method == "jensenshannon":
            expected = float(distance.jensenshannon(rb, cb))
        if method in ("psi", "kl_div", "jensenshannon"):
            assert score == pytest.approx(expected, rel=1e-9, abs=1e-12), (f, scenario)
            verdicts[f] = expected >= THRESHOLDS[method]
        width = (column["max"] - column["min"]) / len(column["fine"])
        if method == "ks":
            d_exact = stats.ks_2samp(r_all, c_all).statistic
            d = sample(s, "mlops_feature_drift_statistic", **labels)
            fine_r = np.histogram(r_all, bins=len(column["fine"]), range=(column["min"], column["max"]))[0]
            fine_c = np.histogram(c_all, bins=len(column["fine"]), range=(column["min"], column["max"]))[0]
            bound = max(fine_r.max() / len(r_all), fine_c.max() / len(c_all)) + 1e-12
            assert 0 <= d_exact - d <= bound, (scenario, d_exact, d, bound)
            en = round(len(r_all) * len(c_all) / (len(r_all) + len(c_all)))
            assert score == pytest.approx(stats.kstwo.sf(d, en), rel=1e-6, abs=1e-15)
            _, drift = ev["ks"](pd.Series(r_all), pd.Series(c_all), ev["num"], 0.05)
            assert (score <= 0.05) == bool(drift), (scenario, score)
            verdicts[f] = bool(drift)
        if method == "wasserstein":
            std = max(np.std(r_all), 0.001)
            expected = stats.wasserstein_distance(r_all, c_all) / std
            assert abs(score - expected) <= width / std + 1e-12, (scenario, score, expected)
            value, drift = ev["wasserstein"](pd.Series(r_all), pd.Series(c_all), ev["num"], 0.1)
            assert value == pytest.approx(expected, rel=1e-9)
            assert (score >= 0.1) == bool(drift), (scenario, score, value)
            verdicts[f] = bool(drift)
        detected = sample(s, "mlops_feature_drift_detected", **labels)
        assert detected == float(verdicts[f]), (f, scenario)

    for c, method in CATEGORICAL.items():
        labels = dict(model="m", feature=c, method=method)
        score = sample(s, "mlops_feature_drift_score", **labels)
        r = pd.Series([v for v in ref[c] if v is not None], dtype=object)
        k = pd.Series([v if v in CATEGORIES else "__other__" for v in cur[c] if v is not None], dtype=object)
        value, drift = ev[method](r, k, ev["cat"], THRESHOLDS[method])
        assert score == pytest.approx(float(value), rel=1e-9, abs=1e-12), (c, scenario, score, value)
        assert sample(s, "mlops_feature_drift_detected", **labels) == float(bool(drift)), (c, scenario)
        verdicts[c] = bool(drift)

    share = sum(verdicts.values()) / len(verdicts)
    assert sample(s, "mlops_dataset_drift_share", model="m") == pytest.approx(share)
    assert sample(s, "mlops_dataset_drift_detected", model="m") == float(share >= 0.5)
    # Prediction drift: categorical over the classes, Evidently's jensenshannon on the same values (auto
    # for a categorical column with more than 1000 reference rows).
    value, drift = ev["jensenshannon"](pd.Series(ref["prediction"], dtype=object), pd.Series(cur["prediction"], dtype=object),
                                       ev["cat"], 0.1)
    labels = dict(model="m", output="prediction", method="jensenshannon")
    assert sample(s, "mlops_prediction_drift_score", **labels) == pytest.approx(float(value), rel=1e-9, abs=1e-12)
    assert sample(s, "mlops_prediction_drift_detected", **labels) == float(bool(drift))
    # The scenarios do what they say.
    expected_drift = {"no_drift": False, "mean_shift": True, "variance_shift": True, "categorical_shift": True,
                      "new_category": True, "missing_values": False}[scenario]
    if scenario in ("categorical_shift", "new_category"):
        # Only the three categorical features move: they drift, the numeric ones do not (3 of 8 < 0.5).
        assert all(verdicts[c] for c in CATEGORICAL) and not any(verdicts[f] for f in NUMERIC), verdicts
    else:
        assert bool(sample(s, "mlops_dataset_drift_detected", model="m")) == expected_drift, (scenario, verdicts)
    if scenario == "missing_values":
        assert sample(s, "mlops_feature_window_missing", model="m", feature="f_psi") == sum(v is None for v in cur["f_psi"])


def test_fleet_psi_in_promql_equals_the_exporters(reference, start_exporter, prometheus):
    """The PromQL in docs/drift.md, over the raw bin counters and reference ratios, gives the exporter's PSI
    when one replica sees all the data."""
    rng = np.random.default_rng(7)
    e = start_exporter("--config", str(reference["config"]))
    send(e, dataset(rng, N_CUR, shift=0.3))
    own = sample(scrape(e)[1], "mlops_feature_drift_score", model="m", feature="f_psi", method="psi")
    base = prometheus(e.port)
    q = ('sum by (model, feature, bin) (mlops_feature_bin_observations_total{feature="f_psi"})'
         ' / on (model, feature) group_left sum by (model, feature) (mlops_feature_bin_observations_total{feature="f_psi"})')
    p = 'max by (model, feature, bin) (mlops_feature_reference_ratio{feature="f_psi"})'
    expr = FLEET_PSI.format(q=q, p=p)
    fleet = wait_for(lambda: scalar(base, expr), timeout=60, interval=0.5, what="fleet PSI from Prometheus")
    assert fleet == pytest.approx(own, rel=1e-9)


# Kept in step with docs/drift.md ("Fleet-wide drift in PromQL").
FLEET_PSI = """sum by (model, feature) (
    (
        ((({q}) > 0) or on (model, feature, bin) (({q}) == bool 0) * 0.0001)
      - ((({p}) > 0) or on (model, feature, bin) (({p}) == bool 0) * 0.0001)
    )
  * ln(
        ((({q}) > 0) or on (model, feature, bin) (({q}) == bool 0) * 0.0001)
      / ((({p}) > 0) or on (model, feature, bin) (({p}) == bool 0) * 0.0001)
    )
)"""


FEW_CONFIG = """
models:
  - name: f
    task: regression
    versions: [v1]
    reference: {reference}
    features:
      - {{name: flag_psi, type: numeric}}
      - {{name: flag_kl, type: numeric}}
      - {{name: flag_js, type: numeric}}
      - {{name: flag_auto, type: numeric}}
      - {{name: three, type: numeric}}
      - {{name: cz, type: categorical, values: [x, y]}}
    collectors:
      - name: drift
        options:
          min_observations: 10
          features:
            flag_psi: {{method: psi}}
            flag_kl: {{method: kl_div}}
            flag_js: {{method: jensenshannon}}
            three: {{method: psi}}
            cz: {{method: z}}
"""

FEW_FEATURES = ["flag_psi", "flag_kl", "flag_js", "flag_auto", "three", "cz"]


def test_few_valued_numeric_columns_and_the_z_test_match_evidently(binary, tmp_path, start_exporter):
    """A 0/1 flag and a 0/1/2 column, compared value by value as Evidently bins them (per value up to 20 distinct
    values): before, the profile's quantile bins merged the value at the minimum with the next, so a flag was one bin
    and PSI, KL and Jensen-Shannon (what `auto` picks past 1,000 reference rows) read 0 whatever the shift. And the z
    test with one unknown value in the window: Evidently's first category in sorted order is a known one (`x`), not
    `__other__` (which sorted first and hid a fall of `x` from 50 % to 42 %)."""
    ev = evidently_tests()
    from evidently.legacy.calculations.stattests import kl_div, z_stattest
    rng = np.random.default_rng(28)
    n_ref, n_cur = 2000, 500
    ref = {f: (rng.random(n_ref) < 0.3).astype(float) for f in ["flag_psi", "flag_kl", "flag_js", "flag_auto"]}
    ref["three"] = rng.choice([0.0, 1.0, 2.0], n_ref, p=[0.6, 0.25, 0.15])
    ref["cz"] = np.where(rng.random(n_ref) < 0.5, "x", "y").astype(object)
    ref["prediction"] = rng.random(n_ref)
    cur = {f: (rng.random(n_cur) < 0.6).astype(float) for f in ["flag_psi", "flag_kl", "flag_js", "flag_auto"]}
    cur["three"] = rng.choice([0.0, 1.0, 2.0], n_cur, p=[0.3, 0.55, 0.15])
    cz = np.where(rng.random(n_cur) < 0.42, "x", "y").astype(object)
    cz[0] = "zz"  # one value the reference never had: __other__
    cur["cz"] = cz
    config = tmp_path / "models.yaml"
    config.write_text(FEW_CONFIG.format(reference=tmp_path / "reference.json"))
    build_profile(binary, config, "f", ref, tmp_path / "reference.json")
    e = start_exporter("--config", str(config))
    lines = [json.dumps({"version": "v1", "prediction": float(rng.random()),
                         "features": {f: (float(cur[f][i]) if f != "cz" else cur[f][i]) for f in FEW_FEATURES}})
             for i in range(n_cur)]
    status, _, reply = e.post("/api/v1/models/f/predictions", ("\n".join(lines) + "\n").encode(),
                              {"Content-Type": "application/x-ndjson"})
    assert status == 202 and json.loads(reply)["rejected"] == 0, reply
    s = scrape(e)[1]
    expected = {
        "flag_psi": ("psi", ev["psi"]), "flag_kl": ("kl_div", kl_div._kl_div),
        "flag_js": ("jensenshannon", ev["jensenshannon"]), "flag_auto": ("jensenshannon", ev["jensenshannon"]),
        "three": ("psi", ev["psi"]),
    }
    for feature, (method, test) in expected.items():
        value, drifted = test(pd.Series(ref[feature]), pd.Series(cur[feature]), ev["num"], THRESHOLDS[method])
        score = sample(s, "mlops_feature_drift_score", model="f", feature=feature, method=method)
        assert score == pytest.approx(value, rel=1e-9), (feature, score, value)
        assert sample(s, "mlops_feature_drift_detected", model="f", feature=feature, method=method) == float(drifted)
        assert drifted, feature  # the shift is real: 30 % to 60 % ones
    p, drifted = z_stattest._z_stat_test(pd.Series(ref["cz"]), pd.Series(cur["cz"]), ev["cat"], 0.05)
    # Evidently's 2·(1 − Φ(|z|)) is 0 below ~1e-16 where the exporter's tail is exact: equal to 1e-15 absolute.
    assert sample(s, "mlops_feature_drift_score", model="f", feature="cz", method="z") == pytest.approx(p, rel=1e-6,
                                                                                                       abs=1e-15)
    assert sample(s, "mlops_feature_drift_detected", model="f", feature="cz", method="z") == float(drifted) == 1.0



AUTO_Z_CONFIG = """
models:
  - name: g
    task: binary_classification
    versions: [v1]
    classes: ["no", "yes"]
    positive_class: "yes"
    reference: {reference}
    features:
      - {{name: cat, type: categorical, values: [x, y]}}
    collectors:
      - name: drift
        options:
          min_observations: 10
"""


@pytest.mark.parametrize("window", ["known values", "a third value"])
def test_auto_z_follows_evidentlys_choice_over_reference_and_window(binary, tmp_path, start_exporter, window):
    """A categorical column of two values (a feature, a binary classifier's prediction) with at most 1,000 reference
    rows: `auto` runs the z test, as Evidently does, while the window holds those values; Evidently picks its test
    from reference and window together, so a value the reference never had (`__other__`) makes it `chisquare`, and
    the exporter scores the column so (method label `chisquare`). Before, the z test pooled the new value with `y`, so
    `y` replaced by a new value (30 % of the window) read p = 1: no drift."""
    ev = evidently_tests()
    from evidently.legacy.calculations.stattests.registry import get_stattest
    rng = np.random.default_rng(43)
    n_ref, n_cur = 800, 500
    ref = {"cat": np.where(rng.random(n_ref) < 0.7, "x", "y").astype(object),
           "prediction": np.where(rng.random(n_ref) < 0.7, "no", "yes").astype(object)}
    if window == "known values":
        cur = {"cat": np.where(rng.random(n_cur) < 0.5, "x", "y").astype(object),
               "prediction": np.where(rng.random(n_cur) < 0.5, "no", "yes").astype(object)}
    else:
        cur = {"cat": np.where(rng.random(n_cur) < 0.7, "x", "new").astype(object),
               "prediction": np.where(rng.random(n_cur) < 0.7, "no", "maybe").astype(object)}
    config = tmp_path / "models.yaml"
    config.write_text(AUTO_Z_CONFIG.format(reference=tmp_path / "reference.json"))
    build_profile(binary, config, "g", ref, tmp_path / "reference.json")
    e = start_exporter("--config", str(config))
    lines = [json.dumps({"version": "v1", "prediction": cur["prediction"][i], "features": {"cat": cur["cat"][i]}})
             for i in range(n_cur)]
    status, _, reply = e.post("/api/v1/models/g/predictions", ("\n".join(lines) + "\n").encode(),
                              {"Content-Type": "application/x-ndjson"})
    assert status == 202 and json.loads(reply)["rejected"] == 0, reply
    s = scrape(e)[1]
    for family, labels, column in [("mlops_feature_drift", {"feature": "cat"}, "cat"),
                                   ("mlops_prediction_drift", {"output": "prediction"}, "prediction")]:
        test = get_stattest(pd.Series(ref[column]), pd.Series(cur[column]), ev["cat"], None)
        p, drifted = test.func(pd.Series(ref[column]), pd.Series(cur[column]), ev["cat"], test.default_threshold)
        assert test.name == ("z" if window == "known values" else "chisquare")
        score = sample(s, f"{family}_score", model="g", method=test.name, **labels)
        assert score == pytest.approx(p, rel=1e-6, abs=1e-15), (column, score, p)
        assert sample(s, f"{family}_detected", model="g", method=test.name, **labels) == float(drifted) == 1.0
        other = "chisquare" if test.name == "z" else "z"
        assert sample(s, f"{family}_score", model="g", method=other, **labels) is None, column
        assert sample(s, f"{family}_threshold", model="g", method=test.name, **labels) == test.default_threshold
    # The status page names the method the scores are of (it said `z` beside a chisquare score).
    status, _, page = e.get("/models/g")
    assert status == 200
    methods = re.findall(rb"\n<p>(\w+) ", page)
    assert methods and set(methods) == {test.name.encode()}, methods


FAR_CONFIG = """
models:
  - name: far
    task: regression
    versions: [v1]
    reference: {reference}
    features:
      - {{name: amount, type: numeric}}
    collectors:
      - name: drift
        options:
          min_observations: 100
          features:
            amount: {{method: ks}}
"""


@pytest.mark.parametrize("far", [1e6, 1e300])
def test_ks_with_a_far_reference_value_stays_within_the_quantile_bins_bound(binary, tmp_path, start_exporter, far):
    """799 reference values near 100 and one far value, against a shift of 3 sigma: the fine bins over [min, max]
    hold nearly everything in one bin, so D from them alone read 0.001 and p = 1 (no drift) where scipy's exact D is
    0.87. D is now also read at the quantile bins' edges: a lower bound of scipy's D within the largest quantile-bin
    share, and the drift detected."""
    rng = np.random.default_rng(33)
    ref = np.concatenate([rng.normal(100, 10, 799), [far]])
    cur = rng.normal(130, 10, 500)
    config = tmp_path / "models.yaml"
    config.write_text(FAR_CONFIG.format(reference=tmp_path / "reference.json"))
    profile = build_profile(binary, config, "far", {"amount": ref, "prediction": rng.random(800)},
                            tmp_path / "reference.json")
    e = start_exporter("--config", str(config))
    body = "".join(json.dumps({"version": "v1", "prediction": 1.0, "features": {"amount": float(v)}}) + "\n"
                   for v in cur)
    status, _, reply = e.post("/api/v1/models/far/predictions", body.encode(), {"Content-Type": "application/x-ndjson"})
    assert status == 202 and json.loads(reply)["rejected"] == 0, reply
    s = scrape(e)[1]
    labels = {"model": "far", "feature": "amount", "method": "ks"}
    d = sample(s, "mlops_feature_drift_statistic", **labels)
    d_exact = stats.ks_2samp(ref, cur).statistic
    column = profile["features"][0]["numeric"]
    edges = column["edges"]
    # The quantile bins of both samples, a value on an edge in the bin below (as the profile bins it).
    shares = [np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1).max() / len(x)
              for x in (ref, cur)]
    assert 0 <= d_exact - d <= max(shares) + 1e-12, (d, d_exact, shares)
    assert d > 0.5 and sample(s, "mlops_feature_drift_detected", **labels) == 1
