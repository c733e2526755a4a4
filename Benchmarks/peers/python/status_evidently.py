"""What a user runs instead of the exporter's status page to look at drift: Evidently 0.7's DataDriftPreset
report, rendered to HTML, timed (the peer of scripts/bench-status).

Usage: status_evidently.py --spec FILE [--model m0] [--repeat 3] [--overview 1] [--html-out FILE]

--spec: a JSON file written by scripts/bench-status:
  {"numerical": [...], "categorical": [...],
   "models": [{"name": "m0", "reference": "m0.csv", "current": "m0-current.ndjson"}, ...]}
Each model's reference rows are its CSV (the very file `mlops-exporter profile` made the profile from); its
current window is the NDJSON of the prediction events the exporter was sent (features, prediction, score).
Columns compared: the features, plus `prediction` (categorical) and `score` (numerical), the columns the
status page shows charts for. Methods: Evidently's own choice (auto).

One "report" = what a user runs to look at one model's drift, from data already in memory:
  run   Dataset.from_pandas(current) + Report([DataDriftPreset()]).run(current, reference) (the reference
        Dataset is built once, outside the timing, as bench-drift does)
  html  snapshot.get_html_str(as_iframe=False) (what save_html writes)
Timed per report: wall (time.perf_counter) and CPU of this process (time.process_time, all threads), each
part apart, after one untimed warm-up: --repeat reports of --model, then --overview runs of one "overview" = a
report of every model in turn. Prints one JSON object: "model" and "overview", each with its runs and medians,
the HTML sizes and --model's per-column verdicts.
"""
import argparse
import json
import statistics
import sys
import time

import pandas as pd


def load(spec, model):
    ref = pd.read_csv(model["reference"])
    rows = []
    with open(model["current"]) as f:
        for line in f:
            e = json.loads(line)
            row = dict(e["features"])
            row["prediction"] = e["prediction"]
            row["score"] = e.get("score")
            rows.append(row)
    cols = spec["numerical"] + spec["categorical"] + ["prediction", "score"]
    cur = pd.DataFrame(rows, columns=cols)
    return ref[cols], cur


def definition(spec):
    from evidently import DataDefinition
    return DataDefinition(numerical_columns=spec["numerical"] + ["score"],
                          categorical_columns=spec["categorical"] + ["prediction"])


def report(spec, ref_ds, cur):
    """(seconds wall run, wall html, cpu run, cpu html, html text, snapshot)."""
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset
    w0, c0 = time.perf_counter(), time.process_time()
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition(spec)), ref_ds)
    w1, c1 = time.perf_counter(), time.process_time()
    html = snapshot.get_html_str(as_iframe=False)
    w2, c2 = time.perf_counter(), time.process_time()
    return w1 - w0, w2 - w1, c1 - c0, c2 - c1, html, snapshot


def drifted_columns(snapshot):
    """Column names Evidently marks as drifted, from the snapshot's per-column ValueDrift results (best effort:
    the dict layout is Evidently's)."""
    out = {}
    try:
        d = snapshot.dict()
        for m in d.get("metrics", []):
            cfg = m.get("config", {})
            if cfg.get("type", "").endswith("ValueDrift"):
                column = cfg.get("column")
                value = m.get("value")
                threshold = cfg.get("threshold")
                method = cfg.get("method")
                if column is not None and isinstance(value, (int, float)):
                    # Evidently: distance methods drift above the threshold, p-value methods below it.
                    pvalue = method is not None and ("p_value" in method or "test" in method.lower())
                    drifted = value < threshold if pvalue else value >= threshold
                    out[column] = {"score": float(value), "threshold": threshold, "method": method,
                                   "drifted": bool(drifted)}
    except Exception as e:  # noqa: BLE001 -- verdicts are informative only
        out["_error"] = str(e)
    return out


def timed_runs(spec, data, repeat, html_out=None):
    """repeat runs, each a report of every model in `data` in turn; per run the sums over the models."""
    runs, html_bytes, verdicts = [], {}, {}
    for _ in range(repeat):
        per = {"wall_run_s": 0.0, "wall_html_s": 0.0, "cpu_run_s": 0.0, "cpu_html_s": 0.0}
        for name, ref_ds, cur, _rows in data:
            wr, wh, cr, ch, html, snapshot = report(spec, ref_ds, cur)
            per["wall_run_s"] += wr
            per["wall_html_s"] += wh
            per["cpu_run_s"] += cr
            per["cpu_html_s"] += ch
            html_bytes[name] = len(html.encode())
            if name == data[0][0]:
                verdicts = drifted_columns(snapshot)
                if html_out:
                    with open(html_out, "w") as f:
                        f.write(html)
        per["wall_s"] = per["wall_run_s"] + per["wall_html_s"]
        per["cpu_s"] = per["cpu_run_s"] + per["cpu_html_s"]
        runs.append(per)
    return {"models": [d[0] for d in data], "reference_rows": [d[3] for d in data],
            "current_rows": [len(d[2]) for d in data],
            "columns": len(spec["numerical"]) + len(spec["categorical"]) + 2, "repeat": repeat, "runs": runs,
            "html_bytes": html_bytes, "verdicts": verdicts,
            "wall_median_s": statistics.median(r["wall_s"] for r in runs),
            "cpu_median_s": statistics.median(r["cpu_s"] for r in runs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--model", default="m0", help="the model timed alone")
    ap.add_argument("--repeat", type=int, default=3, help="timed reports of --model")
    ap.add_argument("--overview", type=int, default=1, help="timed runs over every model (0: none)")
    ap.add_argument("--html-out", help="write --model's last HTML report here")
    a = ap.parse_args()
    import evidently
    import numpy
    from evidently import Dataset
    with open(a.spec) as f:
        spec = json.load(f)
    models = [m for m in spec["models"] if a.overview > 0 or m["name"] == a.model]
    models.sort(key=lambda m: m["name"] != a.model)  # --model first
    if not models or models[0]["name"] != a.model:
        sys.exit(f"no model {a.model} in {a.spec}")
    data = []
    for m in models:
        ref, cur = load(spec, m)
        data.append((m["name"], Dataset.from_pandas(ref, data_definition=definition(spec)), cur, len(ref)))
    report(spec, data[0][1], data[0][2])  # warm-up: imports, caches
    out = {"model": timed_runs(spec, data[:1], a.repeat, a.html_out),
           "versions": {"evidently": evidently.__version__, "pandas": pd.__version__, "numpy": numpy.__version__,
                        "python": sys.version.split()[0]}}
    if a.overview > 0:
        out["overview"] = timed_runs(spec, data, a.overview)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
