"""`mlops-exporter rules`: the generated rule file for the example configuration passes `promtool check rules`,
and `promtool test rules` proves on synthetic series that every burn-rate alert (page and ticket, every SLO of
the example) and every model-health alert fires when it should and stays silent when it should not.

The promtool unit tests are generated here from the configuration and the rule file: for each SLO a series
of scenarios with a constant SLI error ratio (request-based SLIs: counters growing at a fixed error share;
time-based SLIs: a 0/1 gauge on for an evenly spread share of the minutes), and the expected alerts computed
from the SRE Workbook thresholds (ratio > factor x budget over both windows of a pair). The scenario file
is written next to the rules (tmp) and kept in the test's output on failure."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

EXAMPLE = ROOT / "examples" / "models.yaml"
JOB = "mlops-exporter"
T = 70  # minutes of synthetic data in the request-based burn-rate scenarios; eval at the end
T_TIME = 200  # the same for time-based SLIs: 0/1 shares need enough minutes to sit clear of the thresholds
WINDOW_MINUTES = {"5m": 5, "30m": 30, "1h": 60, "2h": 120, "6h": 360, "1d": 1440, "3d": 4320}


SERVICE = "__service__"  # the `model` label of service-wide SLOs (`service_slos:`)
REQUEST_BASED = ("availability", "latency", "ttft", "tpot", "goodput")  # error ratios of counters, not time shares
LLM_HISTOGRAMS = {"ttft": "mlops_llm_time_to_first_token_seconds", "tpot": "mlops_llm_time_per_output_token_seconds"}


def slo_owners(config):
    """(model, slo) for every SLO: each model's, then the service-wide ones (owned by a pseudo-model
    named __service__ whose requests are those of every model)."""
    return ([(m, s) for m in config["models"] for s in m.get("slos", [])]
            + [({"name": SERVICE, "models": config["models"]}, s) for s in config.get("service_slos", [])])


def run(binary, *args):
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def rules(binary, tmp_path_factory):
    out = tmp_path_factory.mktemp("rules") / "rules.yml"
    r = run(binary, "rules", "--config", str(EXAMPLE), "--out", str(out), "--job", JOB)
    assert r.returncode == 0, r.stderr
    return out


def test_promtool_check_rules_passes(rules):
    r = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_rules_of_several_models_pass_promtool_lint(binary, tmp_path):
    """Two classifiers with quality and fairness: their per-model fleet records (accuracy, selection rate, parity)
    share names, and each carries its model as a static label so that `promtool check rules --lint-fatal` finds no
    duplicate (before: "duplicate rule(s) found", exit 3; the example has one classifier)."""
    model = """\
  - name: {name}
    task: binary_classification
    versions: [v1]
    classes: ["0", "1"]
    positive_class: "1"
    features: [{{name: x, type: numeric}}]
    sensitive_attributes: [{{name: gender, groups: [f, m]}}]
    collectors: [service, quality, fairness]
"""
    config = tmp_path / "models.yaml"
    config.write_text("models:\n" + model.format(name="a") + model.format(name="b"))
    out = tmp_path / "rules.yml"
    r = run(binary, "rules", "--config", str(config), "--out", str(out))
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["promtool", "check", "rules", "--lint-fatal", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    records = [rule for g in yaml.safe_load(out.read_text())["groups"] for rule in g["rules"]
               if rule.get("record") == "mlops:model_accuracy:ratio_rate1h"]
    assert [rule["labels"]["model"] for rule in records] == ["a", "b"]


def test_output_is_deterministic_and_stdout_equals_file(binary, rules):
    r = run(binary, "rules", "--config", str(EXAMPLE))
    assert r.returncode == 0 and r.stdout == rules.read_text()


def test_out_is_written_through_a_link_and_names_a_missing_folder(binary, rules, tmp_path):
    """`rules --out` writes as `profile --out` does: through a symbolic link to its target (the atomic rename put a
    file in the link's place), and a missing folder is an error naming the file."""
    target = tmp_path / "real.yml"
    target.write_text("old\n")
    link = tmp_path / "link.yml"
    link.symlink_to("real.yml")
    r = run(binary, "rules", "--config", str(EXAMPLE), "--out", str(link), "--job", JOB)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and target.read_text() == rules.read_text()
    missing = tmp_path / "no" / "rules.yml"
    r = run(binary, "rules", "--config", str(EXAMPLE), "--out", str(missing))
    assert r.returncode == 1 and f"{missing}: cannot write: no such folder" in r.stderr, r.stderr


def test_rule_names_and_labels(rules):
    doc = yaml.safe_load(rules.read_text())
    groups = {g["name"]: g["rules"] for g in doc["groups"]}
    config = yaml.safe_load(EXAMPLE.read_text())
    assert config.get("service_slos"), "the example configures service-wide SLOs"
    for model, slo in slo_owners(config):
        name = slo.get("name", slo["type"])
        group = groups[f"mlops-slo-{model['name']}-{name}"]
        records = [r["record"] for r in group if "record" in r]
        period = slo["period"]
        want = [f"slo:sli_error:ratio_rate{w}" for w in [*WINDOW_MINUTES, period]] + [
            "slo:objective:ratio", "slo:error_budget:ratio", "slo:time_period:days",
            "slo:current_burn_rate:ratio", "slo:period_burn_rate:ratio",
            "slo:period_error_budget_remaining:ratio"]
        if slo["type"] in ("quality", "drift", "fairness"):
            want.insert(0, "slo:sli_violation:bool")
        assert records == want
        for r in group:
            assert r["labels"]["model"] == model["name"] and r["labels"]["slo"] == name
            # Records carry the job (the burn-rate alerts get it from them): two jobs' files record apart.
            if "record" in r:
                assert r["labels"]["job"] == JOB
        if model["name"] == SERVICE:
            # Service-wide SLIs sum the requests of every model of the job: no model matcher.
            sli = next(r for r in group if r.get("record") == "slo:sli_error:ratio_rate5m")
            assert 'job="mlops-exporter"' in sli["expr"] and "model=" not in sli["expr"]
        alerts = [r for r in group if "alert" in r]
        assert [(a["labels"]["severity"], a["labels"]["long_window"], a["labels"]["short_window"])
                for a in alerts] == [("page", "1h", "5m"), ("page", "6h", "30m"), ("ticket", "1d", "2h"),
                                     ("ticket", "3d", "6h")]
        factors = [float(re.search(r"> \(([\d.]+) \*", a["expr"]).group(1)) for a in alerts]
        days = int(period[:-1])
        assert factors == pytest.approx([0.02 * days * 24, 0.05 * days * 4, 0.1 * days, 0.1 * days / 3])
        for a in alerts:
            assert {"summary", "description", "runbook_url"} <= set(a["annotations"])
    health = groups["mlops-model-health"]
    assert sorted({r["alert"] for r in health}) == [
        "MLOpsDatasetDrift", "MLOpsExporterAbsent", "MLOpsExporterDown", "MLOpsFairnessViolation", "MLOpsIngestRejects",
        "MLOpsIngestRequestsRefused", "MLOpsIngestUnknownModel", "MLOpsLabelsNotArriving",
        "MLOpsModelQualityBelowTarget"]
    for r in health:
        assert r["labels"]["severity"] in ("page", "ticket", "warning")
        assert r["annotations"]["runbook_url"].startswith("https://runbooks.example.com/mlops-exporter/")
    fleet = [r["record"] for r in groups["mlops-fleet"]]
    # The example runs the fairness collector (its fairness SLO reads it): the fleet's fairness rules follow.
    assert fleet == ["mlops:feature_bin_share:increase1h", "mlops:feature_psi:increase1h",
                     "mlops:model_accuracy:ratio_rate1h", "mlops:fairness_selection_rate:ratio_rate1h",
                     "mlops:fairness_demographic_parity_difference:ratio_rate1h",
                     "mlops:fairness_demographic_parity_ratio:ratio_rate1h"]


# ---- promtool test rules --------------------------------------------------------------------------------


def series(name, labels, values):
    body = ",".join(f'{k}="{v}"' for k, v in {"job": JOB, **labels}.items())
    return {"series": f"{name}{{{body}}}", "values": values}


def spread(share, minutes):
    """0/1 values at each minute 0..minutes, on for `share` of them, evenly spread."""
    return [1 if int((i + 1) * share + 1e-9) > int(i * share + 1e-9) else 0 for i in range(minutes + 1)]


def expand(values):
    return " ".join(str(v) for v in values)


def expected_alert(rule, extra_labels=None):
    labels = dict(rule["labels"])
    labels.update(extra_labels or {})
    annotations = {k: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], v)
                   for k, v in rule.get("annotations", {}).items()}
    return {"exp_labels": labels, "exp_annotations": annotations}


def burn_scenarios(model, slo, alerts):
    """Scenarios for one SLO: (description, input series, expected firing burn-rate alerts at T)."""
    thresholds = []
    for a in alerts:
        factor, budget = map(float, re.search(r"> \(([\d.e-]+) \* ([\d.e-]+)\)", a["expr"]).groups())
        thresholds.append((a, factor * budget))
    budget = thresholds[0][1] / float(re.search(r"> \(([\d.]+) \*", alerts[0]["expr"]).group(1))
    name, kind = model["name"], slo["type"]
    m = {"model": name}
    # Service-wide SLOs count the requests of every model; the errors (or slow requests) all go to the first
    # model, so that only the sum over the models gives the scenario's error ratio.
    owners = [o["name"] for o in model.get("models", [model])]
    out = []
    if kind == "quality":
        classes = model["classes"]
        for accuracy in (0.8, 0.95):
            correct = round(100 * accuracy)
            inputs = [series("mlops_model_confusion_total",
                             {**m, "version": "v1", "actual": classes[0], "predicted": classes[0]}, f"0+{correct}x{T}"),
                      series("mlops_model_confusion_total",
                             {**m, "version": "v1", "actual": classes[0], "predicted": classes[1]},
                             f"0+{100 - correct}x{T}")]
            violated = accuracy < slo["target"]
            out.append((f"accuracy {accuracy}", inputs, [a for a, _ in thresholds] if violated else [], T))
        # The confusion counters absent (no labelled outcome yet, no replica scraped) for most of the period, then
        # accuracy 0.5 for the last minutes: absence records 0, as a window without outcomes does, so the windows
        # see 6 bad minutes of 61 (1h) or 201, not 6 of 6. Before, nothing was recorded while the counters were
        # absent, and the 1h/5m page fired after 5 minutes (review). The rate has a value from the second sample.
        gap = ["_"] * (T_TIME - 6)
        inputs = [series("mlops_model_confusion_total",
                         {**m, "version": "v1", "actual": classes[0], "predicted": predicted},
                         " ".join(gap + [str(50 * i) for i in range(7)]))
                  for predicted in classes[:2]]
        on = [0] * (T_TIME - 5) + [1] * 6
        ratios = {w: sum(on[max(0, T_TIME - n):]) / len(on[max(0, T_TIME - n):]) for w, n in WINDOW_MINUTES.items()}
        firing = [a for a, threshold in thresholds
                  if ratios[a["labels"]["long_window"]] > threshold and ratios[a["labels"]["short_window"]] > threshold]
        out.append(("confusion counters absent, then accuracy 0.5 for 6 minutes", inputs, firing, T_TIME))
        return out
    for multiple in (20, 8, 4, 1.5, 0.5):
        ratio = min(1.0, multiple * budget)
        if kind in REQUEST_BASED:
            total = 1000
            errors = ratio * total
            share = total / len(owners)
            inputs = []
            for i, owner in enumerate(owners):
                bad = errors if i == 0 else 0
                mv = {"model": owner, "version": "v1"}
                if kind == "availability":
                    inputs += [series("mlops_model_requests_total", {**mv, "status": "error"}, f"0+{bad:g}x{T}"),
                               series("mlops_model_requests_total", {**mv, "status": "ok"},
                                      f"0+{share - bad:g}x{T}")]
                elif kind in LLM_HISTOGRAMS:
                    # Two versions (a LoRA adapter is one): the SLI sums them. `le` as OpenMetrics writes it.
                    for version, part in (("base", 0.75), ("sql", 0.25)):
                        family, mv = LLM_HISTOGRAMS[kind], {"model": owner, "version": version}
                        inputs += [series(f"{family}_count", mv, f"0+{share * part:g}x{T}"),
                                   series(f"{family}_bucket", {**mv, "le": str(float(slo["threshold_seconds"]))},
                                          f"0+{(share - bad) * part:g}x{T}")]
                elif kind == "goodput":
                    inputs += goodput_series(owner, share, bad)
                else:
                    # `le` as OpenMetrics writes it ("1.0"; the rules also match the text format's "1").
                    inputs += [series("mlops_model_latency_seconds_count", mv, f"0+{share:g}x{T}"),
                               series("mlops_model_latency_seconds_bucket",
                                      {**mv, "le": str(float(slo["threshold_seconds"]))},
                                      f"0+{share - bad:g}x{T}")]
            ratios = {w: ratio for w in WINDOW_MINUTES}
        else:
            on = spread(ratio, T_TIME)
            metric = "mlops_dataset_drift_detected" if kind == "drift" else "mlops_fairness_violation"
            labels = m if kind == "drift" else {**m, "attribute": "gender", "metric": "demographic_parity"}
            inputs = [series(metric, labels, expand(on))]
            # avg_over_time over [T-w, T], both ends included (Prometheus 2.x), of the recorded 0/1 indicator.
            ratios = {w: sum(on[max(0, T_TIME - n):]) / len(on[max(0, T_TIME - n):])
                      for w, n in WINDOW_MINUTES.items()}
        firing = []
        for a, threshold in thresholds:
            long_, short = a["labels"]["long_window"], a["labels"]["short_window"]
            for w in (long_, short):
                assert abs(ratios[w] / threshold - 1) > 0.05, f"scenario too close to the threshold: {name} {slo} {w}"
            if ratios[long_] > threshold and ratios[short] > threshold:
                firing.append(a)
        minutes = T if kind in REQUEST_BASED else T_TIME
        out.append((f"error ratio {ratio:g} ({multiple}x budget)", inputs, firing, minutes))
    if kind in ("drift", "fairness"):
        # The gauge absent (no verdict yet: too few observations, or fewer than two groups) for most of the period,
        # then in violation for the last 6 minutes: absence counts as good, so the windows see 7 bad minutes of 61
        # (1h) or 201, not 7 of 7. Before, nothing was recorded while it was absent and the 1h page fired.
        on = [0] * (T_TIME - 6) + [1] * 7
        metric = "mlops_dataset_drift_detected" if kind == "drift" else "mlops_fairness_violation"
        labels = m if kind == "drift" else {**m, "attribute": "gender", "metric": "demographic_parity"}
        inputs = [series(metric, labels, " ".join(["_"] * (T_TIME - 6) + ["1"] * 7))]
        ratios = {w: sum(on[max(0, T_TIME - n):]) / len(on[max(0, T_TIME - n):]) for w, n in WINDOW_MINUTES.items()}
        firing = [a for a, threshold in thresholds
                  if ratios[a["labels"]["long_window"]] > threshold and ratios[a["labels"]["short_window"]] > threshold]
        out.append(("absent, then 6 minutes in violation", inputs, firing, T_TIME))
    return out


def goodput_series(model, total, bad):
    """LLM request counters of `model` per minute: `total` requests that ended ok or in error, `bad` of them not
    good (half failed, half ok but slower than an objective), spread over endpoints; cancelled requests on top
    (not counted either way), and per-objective counters that the SLI must not read (only objective="all")."""
    failed = bad / 2
    ok = total - failed
    good = total - bad

    def counter(name, labels, per_minute):
        return series(name, {"model": model, "version": "base", **labels}, f"0+{per_minute:g}x{T}")

    return [counter("mlops_llm_requests_total", {"endpoint": "chat_completions", "outcome": "ok"}, ok * 0.8),
            counter("mlops_llm_requests_total", {"endpoint": "completions", "outcome": "ok"}, ok * 0.2),
            counter("mlops_llm_requests_total", {"endpoint": "chat_completions", "outcome": "error"}, failed),
            counter("mlops_llm_requests_total", {"endpoint": "chat_completions", "outcome": "cancelled"}, 300),
            counter("mlops_llm_requests_within_objective_total", {"objective": "all"}, good),
            counter("mlops_llm_requests_within_objective_total", {"objective": "ttft"}, ok),
            counter("mlops_llm_requests_within_objective_total", {"objective": "duration"}, ok)]


def burn_rate_tests(config, groups):
    """promtool tests of every SLO's burn-rate alerts, by the rule group they run against: each SLO's scenarios
    against that SLO's group alone, and (key None) the scenario in which all of an SLO's alerts fire against every
    group of its scope, which proves that no other SLO's alert fires on its inputs. The scopes are "models"
    (per-model SLOs) and "service" (service-wide SLOs, whose requests are those of every model: a per-model
    scenario's requests would also burn the service's budget and the other way round). Evaluating every group in
    every scenario took promtool ~70 s of CPU; this way ~4x less, and each alert is still proven both ways."""
    tests = {}  # (scope, group name or None) -> tests
    seen = {}  # (model, slo, long window) -> {fired, silent}
    for model, slo in slo_owners(config):
        name = slo.get("name", slo["type"])
        group = f"mlops-slo-{model['name']}-{name}"
        alerts = [r for r in groups[group] if "alert" in r]
        scope = "service" if model["name"] == SERVICE else "models"
        scenarios = burn_scenarios(model, slo, alerts)
        every = next(i for i, (_, _, firing, _) in enumerate(scenarios) if len(firing) == len(alerts))
        for i, (what, inputs, firing, minutes) in enumerate(scenarios):
            for a in alerts:
                key = (model["name"], name, a["labels"]["long_window"])
                seen.setdefault(key, set()).add("fired" if a in firing else "silent")
            tests.setdefault((scope, None if i == every else group), []).append({
                "name": f"{model['name']}/{name}: {what}",
                "interval": "1m",
                "input_series": inputs,
                "alert_rule_test": [{"eval_time": f"{minutes}m", "alertname": "MLOpsSLOErrorBudgetBurn",
                                     "exp_alerts": [expected_alert(a, {"job": JOB}) for a in firing]}],
            })
    return tests, seen


def health_tests(config, groups):
    health = {}
    for r in groups["mlops-model-health"]:
        health.setdefault(r["alert"], []).append(r)

    def rule(alert, model=None):
        return next(r for r in health[alert] if model is None or r["labels"].get("model") == model)

    def case(name, inputs, checks, interval="1m"):
        return {"name": name, "interval": interval, "input_series": inputs, "alert_rule_test": checks}

    def check(alert, minutes, firing):
        return {"eval_time": f"{minutes}m", "alertname": alert, "exp_alerts": firing}

    down = rule("MLOpsExporterDown")
    fraud = {"model": "fraud"}
    drift, fairness = rule("MLOpsDatasetDrift", "fraud"), rule("MLOpsFairnessViolation", "fraud")
    quality, rejects = rule("MLOpsModelQualityBelowTarget", "fraud"), rule("MLOpsIngestRejects", "fraud")
    labels = rule("MLOpsLabelsNotArriving", "fraud")
    refused = rule("MLOpsIngestRequestsRefused", "fraud")
    attr = {"attribute": "gender", "metric": "demographic_parity"}
    return [
        case("exporter down fires after scrape_for, not before, not for another job",
             [series("up", {"instance": "a:9747"}, "0x20"),
              {"series": 'up{job="other",instance="b:1"}', "values": "0x20"},
              series("up", {"instance": "c:9747"}, "1x20")],
             [check("MLOpsExporterDown", 3, []),
              check("MLOpsExporterDown", 10, [expected_alert(down, {"instance": "a:9747", "job": JOB})])]),
        case("exporter up: silent", [series("up", {"instance": "a:9747"}, "1x20")],
             [check("MLOpsExporterDown", 10, []), check("MLOpsExporterAbsent", 10, [])]),
        # No target of the job (the scrape job named otherwise): every other alert is silent, this one fires.
        case("no target of the job fires after scrape_for, not before",
             [{"series": 'up{job="mlops",instance="a:9747"}', "values": "1x20"}],
             [check("MLOpsExporterAbsent", 3, []),
              check("MLOpsExporterAbsent", 10, [expected_alert(rule("MLOpsExporterAbsent"), {"job": JOB})])]),
        case("drift for 40m fires after drift_for (30m); a 20m drift does not",
             [series("mlops_dataset_drift_detected", fraud, "1x60"),
              series("mlops_dataset_drift_detected", {"model": "eta"}, "1x20 0x40")],
             [check("MLOpsDatasetDrift", 20, []), check("MLOpsDatasetDrift", 40, [expected_alert(drift)])]),
        case("no drift: silent", [series("mlops_dataset_drift_detected", fraud, "0x60")],
             [check("MLOpsDatasetDrift", 40, [])]),
        case("fairness violation fires per attribute and metric",
             [series("mlops_fairness_violation", {**fraud, **attr}, "1x60"),
              series("mlops_fairness_violation", {**fraud, "attribute": "age_band", "metric": "demographic_parity"},
                     "0x60")],
             [check("MLOpsFairnessViolation", 20, []),
              check("MLOpsFairnessViolation", 40, [expected_alert(fairness, attr)])]),
        case("fair: silent", [series("mlops_fairness_violation", {**fraud, **attr}, "0x60")],
             [check("MLOpsFairnessViolation", 40, [])]),
        case("accuracy 0.8 below target 0.9 fires after quality_for",
             [series("mlops_model_confusion_total", {**fraud, "version": "v1", "actual": "legit",
                                                     "predicted": "legit"}, "0+70x60"),
              series("mlops_model_confusion_total", {**fraud, "version": "v1", "actual": "fraud",
                                                     "predicted": "fraud"}, "0+10x60"),
              series("mlops_model_confusion_total", {**fraud, "version": "v1", "actual": "legit",
                                                     "predicted": "fraud"}, "0+20x60")],
             [check("MLOpsModelQualityBelowTarget", 10, []),
              check("MLOpsModelQualityBelowTarget", 30, [expected_alert(quality)])]),
        case("accuracy 0.94: silent",
             [series("mlops_model_confusion_total", {**fraud, "version": "v1", "actual": "legit",
                                                     "predicted": "legit"}, "0+80x60"),
              series("mlops_model_confusion_total", {**fraud, "version": "v1", "actual": "legit",
                                                     "predicted": "fraud"}, "0+5x60")],
             [check("MLOpsModelQualityBelowTarget", 30, [])]),
        case("10% of events rejected fires after reject_for",
             [series("mlops_ingest_events_total", {**fraud, "kind": "predictions"}, "0+90x30"),
              series("mlops_ingest_rejected_total", {**fraud, "reason": "missing_id"}, "0+10x30")],
             [check("MLOpsIngestRejects", 5, []), check("MLOpsIngestRejects", 20, [expected_alert(rejects)])]),
        case("0.5% rejected: silent",
             [series("mlops_ingest_events_total", {**fraud, "kind": "predictions"}, "0+995x30"),
              series("mlops_ingest_rejected_total", {**fraud, "reason": "missing_id"}, "0+5x30")],
             [check("MLOpsIngestRejects", 20, [])]),
        case("requests refused whole (a rotated token: 401) fire after reject_for, though no event is counted",
             [series("mlops_ingest_rejected_requests_total", {**fraud, "reason": "unauthorized"}, "0+3x30"),
              series("mlops_ingest_events_total", {**fraud, "kind": "predictions"}, "0x30")],
             [check("MLOpsIngestRequestsRefused", 5, []),
              check("MLOpsIngestRequestsRefused", 20, [expected_alert(refused)])]),
        case("no request refused: silent",
             [series("mlops_ingest_rejected_requests_total", {**fraud, "reason": "unauthorized"}, "0x30")],
             [check("MLOpsIngestRequestsRefused", 20, [])]),
        # A misspelt model name: counted under __unknown__, which no model's rules select (a probe: nothing fired).
        case("requests for a model not configured fire after reject_for",
             [series("mlops_ingest_rejected_requests_total", {"model": "__unknown__", "reason": "unknown_model"},
                     "0+3x30")],
             [check("MLOpsIngestUnknownModel", 5, []),
              check("MLOpsIngestUnknownModel", 20, [expected_alert(rule("MLOpsIngestUnknownModel"))]),
              check("MLOpsIngestRequestsRefused", 20, [])]),
        case("no request for an unknown model: silent",
             [series("mlops_ingest_rejected_requests_total", {"model": "__unknown__", "reason": "unknown_model"},
                     "0x30")],
             [check("MLOpsIngestUnknownModel", 20, [])]),
        # Hours of history at a 5m resolution (a separate test file with a 5m evaluation interval).
        case("labels stop while predictions go on: fires",
             [series("mlops_labels_joined_total", {**fraud, "source": "api"}, "0+50x72 3600+0x18"),
              series("mlops_model_requests_total", {**fraud, "version": "v1", "status": "ok"}, "0+500x90")],
             [check("MLOpsLabelsNotArriving", 380, []),
              check("MLOpsLabelsNotArriving", 420, [expected_alert(labels)])], interval="5m"),
        case("labels keep arriving: silent",
             [series("mlops_labels_joined_total", {**fraud, "source": "api"}, "0+50x90"),
              series("mlops_model_requests_total", {**fraud, "version": "v1", "status": "ok"}, "0+500x90")],
             [check("MLOpsLabelsNotArriving", 420, [])], interval="5m"),
        case("labels and predictions both stop: silent (no traffic is not a label problem)",
             [series("mlops_labels_joined_total", {**fraud, "source": "api"}, "0+50x72 3600+0x18"),
              series("mlops_model_requests_total", {**fraud, "version": "v1", "status": "ok"},
                     "0+500x72 36000+0x18")],
             [check("MLOpsLabelsNotArriving", 420, [])], interval="5m"),
    ]


def test_promtool_unit_tests_prove_every_alert_fires_and_stays_silent(rules):
    doc = yaml.safe_load(rules.read_text())
    groups = {g["name"]: g["rules"] for g in doc["groups"]}
    config = yaml.safe_load(EXAMPLE.read_text())
    burn, seen = burn_rate_tests(config, groups)
    # Every burn-rate alert of every SLO both fires in some scenario and stays silent in another.
    assert len(seen) == 4 * len(slo_owners(config))
    assert any(key[0] == SERVICE for key in seen)
    for key, outcomes in seen.items():
        assert outcomes == {"fired", "silent"}, key
    health = health_tests(config, groups)
    fired = {c["alertname"] for t in health for c in t["alert_rule_test"] if c["exp_alerts"]}
    silent = {c["alertname"] for t in health for c in t["alert_rule_test"] if not c["exp_alerts"]}
    every = {r["alert"] for r in groups["mlops-model-health"]}
    assert fired == silent == every
    # The generated rule file split in two: everything but the service-wide SLOs, and those alone; and a file
    # of each SLO group alone, and of the health alerts alone.
    service = [g for g in doc["groups"] if g["name"].startswith(f"mlops-slo-{SERVICE}-")]
    scoped = {("models", None): [g for g in doc["groups"] if g not in service], ("service", None): service}
    scoped |= {(scope, g["name"]): [g] for (scope, name) in burn for g in doc["groups"] if g["name"] == name}
    scoped[("health", None)] = [g for g in doc["groups"] if g["name"] == "mlops-model-health"]
    suites = [(key, "1m", tests) for key, tests in burn.items()]
    suites += [(("health", None), interval, [t for t in health if t["interval"] == interval])
               for interval in ("1m", "5m")]
    files = []
    for (scope, group), interval, tests in suites:
        assert tests and scoped[(scope, group)]
        stem = f"rules-{scope}" + (f"-{group}" if group else "")
        rule_file = rules.parent / f"{stem}.yml"
        rule_file.write_text(yaml.safe_dump({"groups": scoped[(scope, group)]}, sort_keys=False, width=1000))
        test_file = rules.parent / f"{stem}-{interval}.test.yml"
        test_file.write_text(yaml.safe_dump({"rule_files": [rule_file.name], "evaluation_interval": interval,
                                             "tests": tests}, sort_keys=False, width=1000))
        files.append(test_file.name)
    # Every SLO proven against its group alone and against its whole scope; both scopes; every health alert.
    assert {scope for scope, _ in burn} == {"models", "service"} and len(burn) == len(slo_owners(config)) + 2
    # One promtool per file, two at a time (each runs its tests one after the other, on one core).
    for batch in (files[i:i + 2] for i in range(0, len(files), 2)):
        runs = [subprocess.Popen(["promtool", "test", "rules", f], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, cwd=rules.parent) for f in batch]
        for f, r in zip(batch, runs):
            out, err = r.communicate(timeout=900)
            assert r.returncode == 0, f"{rules.parent}/{f}\n{out[-20000:]}\n{err[-5000:]}"


def test_two_jobs_rule_files_record_apart_in_one_prometheus(binary, tmp_path):
    """Rules generated for two exporter jobs (prod and staging, the same models) loaded into one Prometheus: each
    job's SLO records and fleet records are its own (the job label), so prod burning its availability budget alerts
    for prod alone, with job="prod". Before, the records of both files had the same labels: promtool failed with
    "duplicate sample for timestamp" and one job's SLOs went unmeasured (SRE review)."""
    config = tmp_path / "models.yaml"
    config.write_text("""\
models:
  - name: m
    task: regression
    versions: [v1]
    features: [{name: x, type: numeric}]
    slos:
      - {type: availability, objective: 99, period: 30d}
""")
    for job in ("prod", "staging"):
        r = run(binary, "rules", "--config", str(config), "--out", str(tmp_path / f"{job}.yml"), "--job", job)
        assert r.returncode == 0, r.stderr
    inputs = []
    for job, errors in (("prod", 500), ("staging", 0)):
        labels = f'job="{job}",instance="{job}:9747",model="m",version="v1"'
        inputs += [{"series": f'mlops_model_requests_total{{{labels},status="error"}}', "values": f"0+{errors}x70"},
                   {"series": f'mlops_model_requests_total{{{labels},status="ok"}}',
                    "values": f"0+{1000 - errors}x70"},
                   {"series": f'mlops_feature_bin_observations_total{{{labels},feature="x",bin="0"}}',
                    "values": "0+10x70"},
                   {"series": f'mlops_ingest_rejected_requests_total{{job="{job}",instance="{job}:9747",model="m",'
                              f'reason="unauthorized"}}', "values": "0+1x70"}]
    doc = yaml.safe_load((tmp_path / "prod.yml").read_text())
    # 50 % errors over every window: all four burn-rate alerts of prod fire, none of staging.
    burning = [r for g in doc["groups"] for r in g["rules"] if r.get("alert") == "MLOpsSLOErrorBudgetBurn"]
    assert len(burning) == 4
    refused = {job: next(r for g in yaml.safe_load((tmp_path / f"{job}.yml").read_text())["groups"]
                         for r in g["rules"] if r.get("alert") == "MLOpsIngestRequestsRefused")
               for job in ("prod", "staging")}
    test = {"rule_files": ["prod.yml", "staging.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": inputs,
        "promql_expr_test": [
            {"expr": 'slo:sli_error:ratio_rate5m{model="m",slo="availability"}', "eval_time": "70m",
             "exp_samples": [{"labels": 'slo:sli_error:ratio_rate5m{job="prod",model="m",slo="availability"}',
                              "value": 0.5},
                             {"labels": 'slo:sli_error:ratio_rate5m{job="staging",model="m",slo="availability"}',
                              "value": 0}]},
            {"expr": 'count by (job) (mlops:feature_bin_share:increase1h)', "eval_time": "70m",
             "exp_samples": [{"labels": '{job="prod"}', "value": 1}, {"labels": '{job="staging"}', "value": 1}]}],
        "alert_rule_test": [{"eval_time": "70m", "alertname": "MLOpsSLOErrorBudgetBurn",
                             "exp_alerts": [expected_alert(a, {"job": "prod"}) for a in burning]},
                            # A health alert of each job, told apart by its job (before, two identical alerts).
                            {"eval_time": "70m", "alertname": "MLOpsIngestRequestsRefused",
                             "exp_alerts": [expected_alert(refused[job]) for job in ("prod", "staging")]}]}]}
    (tmp_path / "two-jobs.test.yml").write_text(yaml.safe_dump(test, sort_keys=False, width=1000))
    r = subprocess.run(["promtool", "test", "rules", "two-jobs.test.yml"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout[-10000:] + r.stderr[-3000:]


# ---- LLM SLOs: ttft, tpot, goodput ------------------------------------------------------------------------

LLM_CONFIG = """\
models:
  - name: chat
    task: text_generation
    versions: [base, sql]
    llm:
      adapters: {sql-lora: sql}
      objectives: {ttft_seconds: 1, tpot_seconds: 0.05, duration_seconds: 30}
    slos:
      - {type: ttft, objective: 99, threshold_seconds: 1, period: 30d}
      - {name: tokens, type: tpot, objective: 99.5, threshold_seconds: 0.05, period: 28d}
      - {type: goodput, objective: 95, period: 30d}
"""


@pytest.fixture(scope="module")
def llm_rules(binary, tmp_path_factory):
    directory = tmp_path_factory.mktemp("llm-rules")
    (directory / "llm.yaml").write_text(LLM_CONFIG)
    out = directory / "rules.yml"
    r = run(binary, "rules", "--config", str(directory / "llm.yaml"), "--out", str(out), "--job", JOB)
    assert r.returncode == 0, r.stderr
    return out


def test_llm_slo_rules_pass_promtool_check(llm_rules):
    r = subprocess.run(["promtool", "check", "rules", str(llm_rules)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    groups = {g["name"]: g["rules"] for g in yaml.safe_load(llm_rules.read_text())["groups"]}
    assert list(groups) == ["mlops-slo-chat-ttft", "mlops-slo-chat-tokens", "mlops-slo-chat-goodput",
                            "mlops-model-health"]
    sli = {name: next(r["expr"] for r in rules if r.get("record") == "slo:sli_error:ratio_rate5m")
           for name, rules in groups.items() if name != "mlops-model-health"}
    # The integral threshold matches both renderings of the bucket bound; 0.05 only one.
    assert 'mlops_llm_time_to_first_token_seconds_bucket{job="mlops-exporter",model="chat",le=~"1|1\\\\.0"}' \
        in sli["mlops-slo-chat-ttft"]
    assert 'mlops_llm_time_per_output_token_seconds_bucket{job="mlops-exporter",model="chat",le="0.05"}' \
        in sli["mlops-slo-chat-tokens"]
    assert 'mlops_llm_requests_within_objective_total{job="mlops-exporter",model="chat",objective="all"}' \
        in sli["mlops-slo-chat-goodput"]


def test_llm_slo_alerts_fire_when_burnt_and_stay_silent_when_healthy(llm_rules):
    """promtool test rules: ttft, tpot and goodput SLOs each burnt at 20, 8, 4, 1.5 and 0.5 times the budget
    (ttft and tpot over two versions, goodput with errors, slow ok requests and cancelled ones that do not count);
    every one of their burn-rate alerts fires in some scenario and stays silent in another. Goodput also pages
    when every request fails before any `objective="all"` series exists."""
    doc = yaml.safe_load(llm_rules.read_text())
    groups = {g["name"]: g["rules"] for g in doc["groups"]}
    config = yaml.safe_load(LLM_CONFIG)
    by_group, seen = burn_rate_tests(config, groups)
    assert {scope for scope, _ in by_group} == {"models"} and len(seen) == 4 * 3
    # Three SLOs in a small file: every scenario against the whole file.
    tests = {"models": [t for group_tests in by_group.values() for t in group_tests]}
    for key, outcomes in seen.items():
        assert outcomes == {"fired", "silent"}, key
    goodput = [r for r in groups["mlops-slo-chat-goodput"] if "alert" in r]
    failing = [series("mlops_llm_requests_total",
                      {"model": "chat", "version": "base", "endpoint": "chat_completions", "outcome": "error"},
                      f"0+100x{T}")]
    tests["models"].append({"name": "chat/goodput: every request fails, no good request ever", "interval": "1m",
                            "input_series": failing,
                            "alert_rule_test": [{"eval_time": f"{T}m", "alertname": "MLOpsSLOErrorBudgetBurn",
                                                 "exp_alerts": [expected_alert(a, {"job": JOB}) for a in goodput]}]})
    # Healthy traffic on every SLO at once: nothing fires.
    healthy = (goodput_series("chat", 1000, 0)
               + [series(f"{family}_{suffix}", {"model": "chat", "version": "base", **le}, f"0+500x{T}")
                  for family, bound in ((LLM_HISTOGRAMS["ttft"], "1.0"), (LLM_HISTOGRAMS["tpot"], "0.05"))
                  for suffix, le in (("count", {}), ("bucket", {"le": bound}))])
    tests["models"].append({"name": "chat: healthy", "interval": "1m", "input_series": healthy,
                            "alert_rule_test": [{"eval_time": f"{T}m", "alertname": "MLOpsSLOErrorBudgetBurn",
                                                 "exp_alerts": []}]})
    test_file = llm_rules.parent / "llm.test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [llm_rules.name], "evaluation_interval": "1m",
                                         "tests": tests["models"]}, sort_keys=False, width=1000))
    r = subprocess.run(["promtool", "test", "rules", test_file.name], capture_output=True, text=True,
                       cwd=llm_rules.parent, timeout=600)
    assert r.returncode == 0, f"{llm_rules.parent}\n{r.stdout[-20000:]}\n{r.stderr[-5000:]}"


def test_llm_slo_wrong_expectation_fails(llm_rules):
    """The LLM harness can fail: a healthy goodput with a page expected is reported by promtool."""
    test_file = llm_rules.parent / "llm-wrong.test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [llm_rules.name], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": goodput_series("chat", 1000, 0),
        "alert_rule_test": [{"eval_time": f"{T}m", "alertname": "MLOpsSLOErrorBudgetBurn",
                             "exp_alerts": [{"exp_labels": {"severity": "page"}}]}]}]}))
    r = subprocess.run(["promtool", "test", "rules", test_file.name], capture_output=True, text=True,
                       cwd=llm_rules.parent, timeout=120)
    assert r.returncode != 0


def test_a_wrong_expectation_fails(rules):
    """The harness can fail: a burn-rate alert expected where none fires is reported by promtool."""
    test_file = rules.parent / "wrong.test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": [series("mlops_model_requests_total",
                                                  {"model": "fraud", "version": "v1", "status": "ok"}, f"0+10x{T}")],
        "alert_rule_test": [{"eval_time": f"{T}m", "alertname": "MLOpsSLOErrorBudgetBurn",
                             "exp_alerts": [{"exp_labels": {"severity": "page"}}]}]}]}))
    r = subprocess.run(["promtool", "test", "rules", str(test_file)], capture_output=True, text=True,
                       cwd=rules.parent, timeout=120)
    assert r.returncode != 0


def test_sloth_spec_structure(binary, tmp_path):
    out = tmp_path / "sloth.yml"
    r = run(binary, "rules", "--config", str(EXAMPLE), "--format", "sloth", "--out", str(out))
    assert r.returncode == 0, r.stderr
    docs = list(yaml.safe_load_all(out.read_text()))
    # The example has 28d and 30d SLOs: each document says to save it alone before running Sloth on it (Sloth reads
    # every document of a file; the hint said to run it on the whole file, giving both periods one period).
    hints = [line for line in out.read_text().splitlines() if line.startswith("# Period ")]
    assert len(hints) == len(docs) == 2 and all("save this document alone as FILE" in h for h in hints), hints
    config = yaml.safe_load(EXAMPLE.read_text())
    want = {(m["name"], s.get("name", s["type"])): s for m, s in slo_owners(config)}
    got = {}
    for doc in docs:
        assert doc["version"] == "prometheus/v1" and doc["service"] == JOB
        for slo in doc["slos"]:
            assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", slo["name"])
            if slo["labels"]["model"] == SERVICE:
                assert slo["name"] == f"service-{slo['labels']['slo']}"
            key = (slo["labels"]["model"], slo["labels"]["slo"])
            spec = want[key]
            got[key] = slo
            assert slo["objective"] == spec["objective"] and 0 < slo["objective"] <= 100
            sli = slo["sli"]
            if spec["type"] in REQUEST_BASED:
                assert set(sli) == {"events"}
                assert "{{.window}}" in sli["events"]["error_query"] and "{{.window}}" in sli["events"]["total_query"]
            else:
                assert set(sli) == {"raw"} and "{{.window}}" in sli["raw"]["error_ratio_query"]
            alerting = slo["alerting"]
            assert alerting["name"] == "MLOpsSLOErrorBudgetBurn"
            assert alerting["page_alert"]["labels"]["severity"] == "page"
            assert alerting["ticket_alert"]["labels"]["severity"] == "ticket"
            assert alerting["annotations"]["runbook_url"].startswith("https://")
    assert set(got) == set(want)
    # Every query parses as PromQL once Sloth fills in the window (as Sloth's own validation does).
    queries = [q.replace("{{.window}}", "5m") for slo in got.values()
               for q in [*slo["sli"].get("events", {}).values(), *slo["sli"].get("raw", {}).values()]]
    check = tmp_path / "sloth-queries.yml"
    check.write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": [
        {"record": f"sloth:query_{i}", "expr": q} for i, q in enumerate(queries)]}]}))
    r = subprocess.run(["promtool", "check", "rules", str(check)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # One document per period, all SLOs of a document share it (Sloth takes the period from its command line).
    assert len(docs) == len({s["period"] for s in want.values()})


def test_invalid_slo_config_is_reported_with_file_line_and_field(binary, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: m\n    task: regression\n    versions: [v1]\n"
                   "    slos:\n      - {type: latency, objective: 99, threshold_seconds: 0.3}\n")
    r = run(binary, "rules", "--config", str(bad))
    assert r.returncode == 1
    assert f"{bad}:6:59: models[0].slos[0].threshold_seconds: 0.3 is not one of the model's latency_buckets" \
        in r.stderr
    r = run(binary, "rules", "--config", str(EXAMPLE), "--format", "grafana")
    assert r.returncode != 0 and "--format" in r.stderr


def test_slo_metrics_are_exported_and_follow_reloads(start_exporter, tmp_path):
    config = tmp_path / "models.yaml"
    text = EXAMPLE.read_text()
    config.write_text(text)
    # The example's drift references, beside it as they are beside the example.
    shutil.copytree(EXAMPLE.parent / "demo", tmp_path / "demo")
    e = start_exporter("--config", str(config))

    def scrape():
        _, _, body = e.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})
        return [line for line in body.decode().splitlines() if line.startswith("mlops_slo_")]

    lines = scrape()
    assert 'mlops_slo_objective_ratio{model="fraud",slo="availability"} 0.999' in lines
    assert 'mlops_slo_objective_ratio{model="eta",slo="fast"} 0.99' in lines
    assert ('mlops_slo_info{metric="",model="fraud",objective="99",period="28d",slo="latency",threshold="0.25",'
            'type="latency"} 1') in lines
    assert ('mlops_slo_info{metric="accuracy",model="fraud",objective="95",period="28d",slo="quality",'
            'threshold="0.9",type="quality"} 1') in lines
    assert 'mlops_slo_objective_ratio{model="__service__",slo="availability"} 0.995' in lines
    assert ('mlops_slo_info{metric="",model="__service__",objective="99",period="30d",slo="fast",threshold="0.5",'
            'type="latency"} 1') in lines
    assert len([x for x in lines if x.startswith("mlops_slo_info{")]) == 10
    config.write_text(text.replace("{type: availability, objective: 99.9, period: 28d}",
                                   "{type: availability, objective: 99.5, period: 30d}"))
    assert e.post("/-/reload", b"")[0] == 200
    lines = scrape()
    assert 'mlops_slo_objective_ratio{model="fraud",slo="availability"} 0.995' in lines
    assert any('model="fraud",objective="99.5",period="30d",slo="availability"' in x for x in lines)


def test_remote_write_liveness_alerts_follow_the_send_interval(binary, tmp_path):
    """`--source remote_write` with `remote_write.interval: 15m`: samples every 15 minutes keep both liveness alerts
    silent (a plain selector found nothing 5 minutes after each send, and both fired against a healthy exporter); the
    exporter that stops sending is down 30 minutes after its last sample and `scrape_for` (5m) later. promtool test
    rules, on synthetic series."""
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  - name: m\n    task: regression\n    versions: [v1]\n"
                      "remote_write: {url: 'http://receiver:9090/api/v1/write', interval: 15m}\n")
    out = tmp_path / "rules.yml"
    r = subprocess.run([str(binary), "rules", "--config", str(config), "--source", "remote_write", "--job", "edge",
                        "--out", str(out)], capture_output=True, text=True)
    # The other rules keep their windows: said, as they cannot fire with sends this sparse.
    assert r.returncode == 0 and "warning: remote_write.interval 15m sends less often than every 2m30s" in r.stderr
    # The alert's annotations as the generated file writes them, rendered for instance b (promtool compares them whole).
    down = next(r for g in yaml.safe_load(out.read_text())["groups"] for r in g["rules"]
                if r.get("alert") == "MLOpsExporterDown")
    annotations = json.dumps({k: v.replace("{{ $labels.instance }}", "b") for k, v in down["annotations"].items()})
    healthy = 'mlops_exporter_build_info{job="edge",instance="a",version="0.1.0",revision="x"}'
    stopped = 'mlops_exporter_build_info{job="edge",instance="b",version="0.1.0",revision="x"}'
    test = tmp_path / "test.yml"
    test.write_text(f"""rule_files: [{out}]
evaluation_interval: 1m
tests:
  - interval: 15m
    input_series:
      - series: '{healthy}'
        values: '1x8'
      - series: '{stopped}'
        values: '1x2'
    alert_rule_test:
      - eval_time: 44m
        alertname: MLOpsExporterAbsent
        exp_alerts: []
      - eval_time: 44m
        alertname: MLOpsExporterDown
        exp_alerts: []
      - eval_time: 70m
        alertname: MLOpsExporterDown
        exp_alerts:
          - exp_labels: {{severity: ticket, job: edge, instance: b}}
            exp_annotations: {annotations}
""")
    r = subprocess.run(["promtool", "test", "rules", str(test)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_sloth_spec_names_sloth_refuses_are_refused(binary, tmp_path):
    """An SLO named `lat_` (the file allows it) and `--job monitoring/mlops-exporter` made a Sloth spec that only
    `sloth generate` refused (its names: letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit);
    now `rules --format sloth` names each and exits 1, and the Prometheus format, which takes any job, still works."""
    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n"
        "  - name: clf\n"
        "    task: regression\n"
        "    versions: [v1]\n"
        "    slos: [{name: lat_, type: availability, objective: 99}]\n")
    r = run(binary, "rules", "--config", str(config), "--format", "sloth", "--job", "monitoring/mlops-exporter")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert any(line.startswith(f"{config}: --job \"monitoring/mlops-exporter\" cannot be the Sloth spec's service")
               for line in lines), r.stderr
    assert any(f"{config}: SLO \"lat_\" of model clf: its Sloth name \"clf-lat_\" is none" in line
               for line in lines), r.stderr
    r = run(binary, "rules", "--config", str(config), "--job", "monitoring/mlops-exporter")
    assert r.returncode == 0, r.stderr
    config.write_text(config.read_text().replace("lat_", "lat"))
    r = run(binary, "rules", "--config", str(config), "--format", "sloth")
    assert r.returncode == 0, r.stderr
    assert 'name: "clf-lat"' in r.stdout
