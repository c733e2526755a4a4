#!/usr/bin/env python3
"""Quality-benchmark peer: what a team runs instead of the exporter's streaming quality and fairness, i.e.
scikit-learn + fairlearn over one window of joined predictions and labels, in batch.

    quality_batch.py generate --rows 100000 --out DIR [--seed 7]   # DIR/predictions.csv, DIR/labels.csv
    quality_batch.py run --data DIR [--runs 7]                      # JSON on stdout

`generate` writes a seeded window: predictions (id, score, prediction, gender, age) in prediction order, with
a known bias (men and older applicants score higher), and their labels (id, label) shuffled, as delayed labels
arrive. The exporter side (`quality-bench window`) reads the same two files.

`run` loads both files into pandas once (not timed; a batch job would read them from a warehouse), then times,
with time.process_time (CPU of the whole process, all threads), each of --runs repetitions of:
  - the join: predictions.merge(labels, on="id") (inner: the joined subset);
  - scikit-learn: confusion_matrix, accuracy_score, precision_recall_fscore_support (per class and macro),
    log_loss, brier_score_loss, roc_auc_score, calibration_curve (10 bins, for the expected calibration error);
  - fairlearn, for each of the two sensitive attributes: MetricFrame(selection_rate, true_positive_rate,
    false_positive_rate, count) with .difference() and .ratio(), demographic_parity_difference/_ratio,
    equalized_odds_difference/_ratio, and the AIF360-style disparate impact and statistical parity
    difference against the privileged group (m, old) from the MetricFrame's by_group.
Each run also times its three sections (join, scikit-learn, fairlearn). fairlearn dominates: its MetricFrame
(0.15) calls np.stack on every metric argument column, element by element, for every group and metric.
One untimed run first (imports and caches warm). Prints the CPU seconds of each run, their median, and the
metric values of the last run (for the cross-check against the exporter's scrape).
"""
import argparse
import json
import os
import statistics
import sys
import time
import warnings

import numpy as np
import pandas as pd

ATTRIBUTES = {"gender": (["f", "m"], "m"), "age": (["young", "old"], "old")}


def generate(rows, out, seed):
    rng = np.random.default_rng(seed)
    gender = rng.choice(np.array(["f", "m"], dtype=object), rows, p=[0.45, 0.55])
    age = rng.choice(np.array(["young", "old"], dtype=object), rows, p=[0.3, 0.7])
    ability = rng.random(rows)
    actual = rng.random(rows) < ability
    bias = np.where(gender == "m", 0.12, 0.0) + np.where(age == "old", 0.05, 0.0)
    score = np.clip(ability * 0.8 + bias + rng.normal(0, 0.1, rows), 0.001, 0.999).round(6)
    ids = np.array([f"p{i}" for i in range(rows)], dtype=object)
    preds = pd.DataFrame({"id": ids, "score": score, "gender": gender, "age": age})
    preds["prediction"] = np.where(score >= 0.5, "approve", "deny")
    order = rng.permutation(rows)
    labels = pd.DataFrame({"id": ids[order], "label": np.where(actual[order], "approve", "deny")})
    os.makedirs(out, exist_ok=True)
    preds[["id", "score", "gender", "age", "prediction"]].to_csv(os.path.join(out, "predictions.csv"), index=False)
    labels.to_csv(os.path.join(out, "labels.csv"), index=False)


def window_metrics(preds, labels):
    from fairlearn.metrics import (MetricFrame, count, demographic_parity_difference, demographic_parity_ratio,
                                   equalized_odds_difference, equalized_odds_ratio, false_positive_rate,
                                   selection_rate, true_positive_rate)
    from sklearn import metrics as skm
    from sklearn.calibration import calibration_curve

    sections = {}
    c0 = time.process_time()
    df = preds.merge(labels, on="id", how="inner")
    c1 = time.process_time()
    sections["join"] = c1 - c0
    y = (df["label"] == "approve").to_numpy()
    yhat = (df["prediction"] == "approve").to_numpy()
    p = df["score"].to_numpy()
    out = {"joined": len(df)}
    out["confusion"] = skm.confusion_matrix(y, yhat, labels=[False, True]).tolist()
    out["accuracy"] = skm.accuracy_score(y, yhat)
    prec, rec, f1, _ = skm.precision_recall_fscore_support(y, yhat, labels=[False, True], zero_division=0)
    macro = skm.precision_recall_fscore_support(y, yhat, labels=[False, True], average="macro", zero_division=0)
    out["f1"] = f1.tolist()
    out["f1_macro"] = macro[2]
    out["log_loss"] = skm.log_loss(y, p, labels=[False, True])
    out["brier"] = skm.brier_score_loss(y, p)
    out["roc_auc"] = skm.roc_auc_score(y, p)
    frac_pos, mean_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    out["calibration_bins"] = len(frac_pos)
    c2 = time.process_time()
    sections["scikit-learn"] = c2 - c1
    for attribute, (groups, privileged) in ATTRIBUTES.items():
        a = df[attribute]
        mf = MetricFrame(
            metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate,
                     "count": count},
            y_true=y, y_pred=yhat, sensitive_features=a)
        diff, ratio = mf.difference(), mf.ratio()
        rates = mf.by_group["selection_rate"]
        unprivileged = [g for g in groups if g != privileged][0]
        out[attribute] = {
            "demographic_parity_difference": demographic_parity_difference(y, yhat, sensitive_features=a),
            "demographic_parity_ratio": demographic_parity_ratio(y, yhat, sensitive_features=a),
            "equalized_odds_difference": equalized_odds_difference(y, yhat, sensitive_features=a),
            "equalized_odds_ratio": equalized_odds_ratio(y, yhat, sensitive_features=a),
            "equal_opportunity_difference": float(diff["tpr"]),
            "selection_rate_ratio": float(ratio["selection_rate"]),
            "disparate_impact": float(rates[unprivileged] / rates[privileged]),
            "statistical_parity_difference": float(rates[unprivileged] - rates[privileged]),
        }
    sections["fairlearn"] = time.process_time() - c2
    return out, sections


def run(data, runs):
    preds = pd.read_csv(os.path.join(data, "predictions.csv"))
    labels = pd.read_csv(os.path.join(data, "labels.csv"))
    warnings.simplefilter("ignore")
    window_metrics(preds, labels)  # untimed warm-up
    cpu, wall, parts = [], [], []
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        values, sections = window_metrics(preds, labels)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        parts.append(sections)
    import fairlearn
    import sklearn
    print(json.dumps({
        "predictions": len(preds), "labels": len(labels), "runs": runs, "cpu_seconds": cpu, "wall_seconds": wall,
        "cpu_median": statistics.median(cpu), "values": values,
        "section_medians": {k: statistics.median(p[k] for p in parts) for k in parts[0]},
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "pandas": pd.__version__,
                     "scikit-learn": sklearn.__version__, "fairlearn": fairlearn.__version__},
    }))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--rows", type=int, default=100_000)
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=7)
    r = sub.add_parser("run")
    r.add_argument("--data", required=True)
    r.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    if args.command == "generate":
        generate(args.rows, args.out, args.seed)
    else:
        run(args.data, args.runs)


if __name__ == "__main__":
    main()
