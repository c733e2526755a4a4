"""The fleet-wide PromQL of docs/fairness.md, run by promtool on two replicas' raw fairness counters: the
selection rates per group, the selection-rate ratio (minimum sample and __other__ applied) and the pooled
disparate impact equal the values computed here from the same counts."""

import json
import re
import subprocess

from conftest import ROOT

# (replica, group, selected per minute, predictions per minute) over one hour.
COUNTS = [
    ("a", "f", 5, 20), ("b", "f", 3, 10),
    ("a", "m", 10, 20), ("b", "m", 6, 10),
    ("a", "__other__", 1, 1),        # rate 1: would be the maximum if __other__ were not left out
    ("a", "d", 0, 0.4),              # 24 predictions in the hour, below 30: would be the minimum otherwise
]


def promql_blocks():
    doc = (ROOT / "docs" / "fairness.md").read_text()
    blocks = re.findall(r"```promql\n(.*?)```", doc, re.S)
    rates = next(b for b in blocks if b.lstrip().startswith("sum by (model, attribute, group)"))
    ratio = next(b for b in blocks if b.lstrip().startswith("min by (model, attribute)"))
    impact = next(b for b in blocks if 'group="m"' in b)
    return rates, ratio, impact


def test_fleet_promql_in_the_docs(tmp_path):
    rates, ratio, impact = promql_blocks()
    series = []
    for replica, group, selected, predictions in COUNTS:
        labels = f'instance="{replica}",model="credit",attribute="gender",group="{group}"'
        series.append({"series": f"mlops_fairness_selected_total{{{labels}}}", "values": f"0+{selected}x60"})
        series.append({"series": f"mlops_fairness_predictions_total{{{labels}}}", "values": f"0+{predictions}x60"})

    def total(group, i):
        return sum(c[i] for c in COUNTS if c[1] == group)

    rate = {g: total(g, 2) / total(g, 3) for g in ("f", "m", "__other__", "d")}
    unprivileged = sum(c[2] for c in COUNTS if c[1] != "m") / sum(c[3] for c in COUNTS if c[1] != "m")
    attribute = '{model="credit",attribute="gender"}'
    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {"expr": rates, "eval_time": "60m", "exp_samples": [
                    {"labels": f'{{model="credit",attribute="gender",group="{g}"}}', "value": v}
                    for g, v in rate.items()]},
                {"expr": ratio, "eval_time": "60m",
                 "exp_samples": [{"labels": attribute, "value": rate["f"] / rate["m"]}]},
                {"expr": impact, "eval_time": "60m",
                 "exp_samples": [{"labels": attribute, "value": unprivileged / rate["m"]}]},
            ],
        }],
    }
    path = tmp_path / "fairness_promql_test.yaml"
    path.write_text(json.dumps(tests))  # JSON is YAML
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
