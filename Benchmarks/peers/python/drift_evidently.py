"""What a team runs instead of the exporter's drift collector: Evidently 0.7 on one window, timed.

Usage: drift_evidently.py [--rows 100000] [--features 20] [--repeat 5] [--seed 6]
                          [--what preset,stattests] [--write-data DIR] [--json FILE]

Data (seeded numpy, the column mix of the exporter's drift benchmarks): feature i is categorical (c<i>, values
A..E with shares 30/25/20/15/10%) when i % 4 == 3, else numeric (f<i>, standard normal); a `prediction`
column (no 70% / yes 30%). Reference: --rows rows. Current window: --rows rows where the first two numeric
features have their mean shifted by 0.5 and 0.05 sd, the third its sd scaled by 1.5, the first categorical
feature's shares reversed, and the prediction is yes at 40%: some features drift, most do not.

Timed, per window (time.process_time: CPU of this process, all threads; median of --repeat runs after one
untimed warm-up):
  preset     Report([DataDriftPreset()]).run(current, reference): a fresh Report and the current window's
             Dataset.from_pandas inside the timing, the reference Dataset built once outside (as a team
             keeps its reference loaded); every column's method chosen by Evidently (auto).
  stattests  the bare per-column tests, evidently.legacy.calculations.stattests: get_stattest (auto
             selection) then the test, for every feature and the prediction, on pandas Series.

--write-data DIR writes reference.csv (for `mlops-exporter profile`), current.ndjson (prediction events for
the exporter), models.yaml (the matching model, with the drift collector) and evidently.json (Evidently's
per-column drift scores and verdicts, for comparison with the exporter's). Prints one JSON object.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import pandas as pd

CATEGORIES = ["A", "B", "C", "D", "E"]
SHARES = [0.30, 0.25, 0.20, 0.15, 0.10]


def is_categorical(i):
    return i % 4 == 3


def name(i):
    return f"c{i}" if is_categorical(i) else f"f{i}"


def frame(rng, rows, features, current):
    data = {}
    numeric_seen = 0
    categorical_seen = 0
    for i in range(features):
        if is_categorical(i):
            shares = SHARES[::-1] if current and categorical_seen == 0 else SHARES
            data[name(i)] = rng.choice(CATEGORIES, rows, p=shares)
            categorical_seen += 1
        else:
            shift, scale = 0.0, 1.0
            if current and numeric_seen == 0:
                shift = 0.5
            elif current and numeric_seen == 1:
                shift = 0.05
            elif current and numeric_seen == 2:
                scale = 1.5
            data[name(i)] = rng.normal(shift, scale, rows)
            numeric_seen += 1
    data["prediction"] = np.where(rng.random(rows) < (0.4 if current else 0.3), "yes", "no")
    return pd.DataFrame(data)


def datasets(rows, features, seed):
    rng = np.random.default_rng(seed)
    return frame(rng, rows, features, False), frame(rng, rows, features, True)


def definition(features):
    from evidently import DataDefinition
    return DataDefinition(
        numerical_columns=[name(i) for i in range(features) if not is_categorical(i)],
        categorical_columns=[name(i) for i in range(features) if is_categorical(i)] + ["prediction"])


def run_preset(ref_ds, cur, features):
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset
    report = Report([DataDriftPreset()])
    return report.run(Dataset.from_pandas(cur, data_definition=definition(features)), ref_ds)


def run_stattests(ref, cur, features):
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType
    out = {}
    for col in [name(i) for i in range(features)] + ["prediction"]:
        kind = ColumnType.Categorical if col == "prediction" or col.startswith("c") else ColumnType.Numerical
        test = get_stattest(ref[col], cur[col], kind, None)
        result = test(ref[col], cur[col], kind, None)
        out[col] = {"method": test.name, "score": float(result.drift_score), "drifted": bool(result.drifted),
                    "threshold": float(result.actual_threshold)}
    return out


def timed(fn, repeat):
    fn()  # warm-up: imports, caches
    cpu, wall = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return {"cpu_s": cpu, "wall_s": wall, "cpu_median_s": statistics.median(cpu),
            "wall_median_s": statistics.median(wall)}


def write_data(directory, ref, cur, features):
    os.makedirs(directory, exist_ok=True)
    ref.to_csv(os.path.join(directory, "reference.csv"), index=False)
    cols = [name(i) for i in range(features)]
    records = cur[cols].to_dict("records")
    predictions = cur["prediction"].tolist()
    with open(os.path.join(directory, "current.ndjson"), "w") as f:
        for rec, p in zip(records, predictions):
            f.write(json.dumps({"version": "v1", "prediction": p,
                                "features": {k: (float(v) if k.startswith("f") else v) for k, v in rec.items()}},
                               separators=(",", ":")) + "\n")
    feature_lines = "\n".join(
        f"      - {{name: {name(i)}, type: categorical, values: [{', '.join(CATEGORIES)}]}}" if is_categorical(i)
        else f"      - {{name: {name(i)}, type: numeric}}" for i in range(features))
    with open(os.path.join(directory, "models.yaml"), "w") as f:
        f.write(f"""models:
  - name: window
    task: binary_classification
    versions: [v1]
    classes: ["no", "yes"]
    positive_class: "yes"
    reference: {os.path.join(os.path.abspath(directory), "reference.json")}
    features:
{feature_lines}
    window: {{duration: 1h, slices: 12}}
    collectors:
      - name: drift
""")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--what", default="preset,stattests")
    ap.add_argument("--write-data", metavar="DIR")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()
    import evidently
    import scipy
    ref, cur = datasets(a.rows, a.features, a.seed)
    out = {"rows": a.rows, "features": a.features, "repeat": a.repeat, "seed": a.seed,
           "versions": {"evidently": evidently.__version__, "pandas": pd.__version__, "numpy": np.__version__,
                        "scipy": scipy.__version__, "python": sys.version.split()[0]}}
    if a.write_data:
        write_data(a.write_data, ref, cur, a.features)
        out["evidently_verdicts"] = run_stattests(ref, cur, a.features)
        with open(os.path.join(a.write_data, "evidently.json"), "w") as f:
            json.dump(out["evidently_verdicts"], f, indent=1, sort_keys=True)
    what = [w for w in a.what.split(",") if w]
    if "preset" in what:
        from evidently import Dataset
        ref_ds = Dataset.from_pandas(ref, data_definition=definition(a.features))
        out["preset"] = timed(lambda: run_preset(ref_ds, cur, a.features), a.repeat)
    if "stattests" in what:
        out["stattests"] = timed(lambda: run_stattests(ref, cur, a.features), a.repeat)
    text = json.dumps(out, sort_keys=True)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
