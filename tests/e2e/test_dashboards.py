"""The Grafana dashboards in dashboards/: their JSON structure (unique panel ids, grid positions within 24
columns and without overlaps, the `${datasource}` variable on every panel and query, every variable used is
defined, units and descriptions set), that the committed JSON is what scripts/gen-dashboards writes, and, end
to end, that every panel query (variables substituted as Grafana's "All" does) returns data from a real
Prometheus scraping the exporter (examples/demo/models.yaml) while `mlops-exporter demo` sends traffic.

Panels that need the SLO recording rules of `mlops-exporter rules` (or the `mlops_slo_*` metrics, or firing
alerts) are listed explicitly in NEEDS_SLO_RULES (the structure test checks that the list is exactly the panels
reading those series); the end-to-end test loads the rules generated for the demo configuration, so those panels
must return data too. The panels reading mlops_llm_* (NEEDS_LLM_TRAFFIC, again checked to be exactly those) are
left out: tests/e2e/test_llm_dashboards.py sends LLM traffic through the proxy and queries them."""

import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from conftest import ROOT, wait_for

DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
BUILTINS = {"__rate_interval", "__interval", "__range", "__all"}
# Grafana's values for the built-in variables, at the test's 1 s scrape interval.
BUILTIN_VALUES = {"__rate_interval": "20s", "__interval": "2s", "__range": "5m"}
SLO_SERIES = re.compile(r"\bslo:|mlops_slo_|\bALERTS\b")
# (dashboard uid, panel title) of every panel whose queries read SLO recording rules, mlops_slo_* or ALERTS.
NEEDS_SLO_RULES = {
    ("mlops-overview", "Error budget remaining"),
    ("mlops-overview", "Alerts firing"),
    ("mlops-slos", "Error budget remaining"),
    ("mlops-slos", "Objectives"),
    ("mlops-slos", "Error budget remaining over time"),
    ("mlops-slos", "Current burn rate (5m)"),
    ("mlops-slos", "Period burn rate"),
    ("mlops-slos", "Error ratio by alert window"),
    ("mlops-slos", "Alerts firing and pending"),
    ("mlops-slos", "Alerts firing over time"),
}

LLM_SERIES = re.compile(r"\bmlops_llm_")
# (dashboard uid, panel title) of every panel whose queries read the llm collector's series (mlops_llm_*): the demo
# sends no LLM traffic, so the data test leaves them out (they need requests on the proxy's OpenAI routes);
# tests/e2e/test_llm_dashboards.py checks them with LLM traffic through the proxy.
NEEDS_LLM_TRAFFIC = {
    ("mlops-model", "LLM requests per second by outcome"),
    ("mlops-model", "Goodput ratio"),
    ("mlops-model", "LLM requests in flight"),
    ("mlops-model", "Time to first token p50 and p99"),
    ("mlops-model", "Time per output token p99"),
    ("mlops-model", "Inter-token latency p99"),
    ("mlops-model", "Tokens per second by type"),
    ("mlops-model", "LLM errors by reason"),
}


def load(path):
    return json.loads(path.read_text())


def panels(dashboard):
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def variables_used(text):
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))


def test_three_dashboards_with_the_expected_variables():
    assert [p.name for p in DASHBOARDS] == ["mlops-model.json", "mlops-overview.json", "mlops-slos.json"]
    for path in DASHBOARDS:
        d = load(path)
        names = [v["name"] for v in d["templating"]["list"]]
        assert {"datasource", "job", "model", "version", "instance"} <= set(names), path
        ds = next(v for v in d["templating"]["list"] if v["name"] == "datasource")
        assert ds["type"] == "datasource" and ds["query"] == "prometheus"
        assert d["uid"] and d["title"] and d["schemaVersion"] >= 36 and d.get("id") is None


def test_committed_json_and_panel_list_are_what_the_generator_writes():
    files = [*DASHBOARDS, ROOT / "docs/dashboards.md"]
    before = {p.name: p.read_text() for p in files}
    subprocess.run([sys.executable, str(ROOT / "scripts/gen-dashboards")], check=True, stdout=subprocess.DEVNULL)
    after = {p.name: p.read_text() for p in [*sorted((ROOT / "dashboards").glob("*.json")), files[-1]]}
    assert before == after, "dashboards/ or docs/dashboards.md differ from scripts/gen-dashboards' output: rerun it"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_structure(path):
    d = load(path)
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    cells = {}
    for p in d["panels"]:
        g = p["gridPos"]
        assert all(isinstance(g[k], int) for k in "xywh"), p["title"]
        assert g["x"] >= 0 and g["y"] >= 0 and g["w"] >= 1 and g["h"] >= 1, p["title"]
        assert g["x"] + g["w"] <= 24, f"{p['title']}: beyond 24 columns"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]
    defined = {v["name"] for v in d["templating"]["list"]}
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            assert v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, v["name"]
            assert variables_used(v["definition"]) - BUILTINS <= defined, v["name"]
    titles = [p["title"] for p in panels(d)]
    assert len(titles) == len(set(titles)), "panel titles are unique within a dashboard (the tests name them)"
    for p in panels(d):
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p.get("description"), f"{p['title']}: no description"
        defaults = p["fieldConfig"]["defaults"]
        assert defaults.get("unit"), f"{p['title']}: no unit"
        assert defaults.get("thresholds", {}).get("steps"), f"{p['title']}: no thresholds"
        assert defaults.get("noValue"), f"{p['title']}: nothing to show without data"
        assert p["targets"], p["title"]
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            used = variables_used(t["expr"]) - BUILTINS
            assert used <= defined, f"{p['title']}: undefined variables {used - defined}"
        for t in p["targets"]:
            if "ALERTS{" in t["expr"]:
                # The chosen models' (and SLOs') alerts and the job's own, which carry neither label (review: the
                # alert panels showed every model's alerts whatever was chosen).
                assert 'model=~"$model|"' in t["expr"], p["title"]
                assert "slo" not in defined or 'slo=~"$slo|"' in t["expr"], p["title"]
        reads_slo = any(SLO_SERIES.search(t["expr"]) for t in p["targets"])
        assert reads_slo == ((d["uid"], p["title"]) in NEEDS_SLO_RULES), (
            f"{p['title']}: NEEDS_SLO_RULES must list exactly the panels reading slo:*, mlops_slo_* or ALERTS")
        reads_llm = any(LLM_SERIES.search(t["expr"]) for t in p["targets"])
        assert reads_llm == ((d["uid"], p["title"]) in NEEDS_LLM_TRAFFIC), (
            f"{p['title']}: NEEDS_LLM_TRAFFIC must list exactly the panels reading mlops_llm_*")
        if reads_llm:
            # An LLM panel reads LLM series only (else the data test would skip a query it could check).
            assert all(LLM_SERIES.search(t["expr"]) for t in p["targets"]), p["title"]


def test_needs_slo_rules_names_existing_panels():
    existing = {(load(p)["uid"], q["title"]) for p in DASHBOARDS for q in panels(load(p))}
    assert NEEDS_SLO_RULES <= existing, NEEDS_SLO_RULES - existing
    assert NEEDS_LLM_TRAFFIC <= existing, NEEDS_LLM_TRAFFIC - existing


# The spec's families (docs/metrics.md, issue 17); the LLM panels name no other mlops_llm_ series.
LLM_FAMILIES = {
    "mlops_llm_requests_total", "mlops_llm_requests_in_flight", "mlops_llm_request_duration_seconds",
    "mlops_llm_time_to_first_token_seconds", "mlops_llm_inter_token_latency_seconds",
    "mlops_llm_time_per_output_token_seconds", "mlops_llm_tokens_total", "mlops_llm_finish_reasons_total",
    "mlops_llm_errors_total", "mlops_llm_requests_within_objective_total", "mlops_llm_stream_malformed_events_total",
}


def test_llm_panels_read_only_the_llm_collectors_families():
    d = load(ROOT / "dashboards/mlops-model.json")
    used = {re.sub(r"_(bucket|count|sum)$", "", name) for p in panels(d) for t in p["targets"]
            for name in re.findall(r"\bmlops_llm_\w+", t["expr"])}
    assert used and used <= LLM_FAMILIES, used - LLM_FAMILIES


def substitute(expr, values):
    def repl(m):
        name = m.group(1) or m.group(2)
        return values.get(name, BUILTIN_VALUES.get(name, m.group(0)))
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def prom_query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        raise AssertionError(f"Prometheus refused {expr!r}: {e.read()!r}") from e
    assert body["status"] == "success", body
    return body["data"]["result"]


def label_values(base, definition, values):
    """Evaluates a Grafana `label_values(selector, label)` variable query against Prometheus."""
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", definition)
    assert m, definition
    selector, label = substitute(m.group(1), values), m.group(2)
    url = f"{base}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": selector})
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)["data"]


def slo_rules(binary, tmp_path):
    """The rule file of `mlops-exporter rules` for the demo configuration (which has SLOs)."""
    out = tmp_path / "mlops-rules.yml"
    subprocess.run([str(binary), "rules", "--config", str(ROOT / "examples/demo/models.yaml"), "--out", str(out),
                    "--job", "mlops"], check=True, cwd=ROOT)
    assert "slo:objective:ratio" in out.read_text()
    return out


def test_every_panel_query_returns_data(binary, start_exporter, prometheus, tmp_path):
    exporter = start_exporter("--config", "examples/demo/models.yaml")
    demo_log = open(tmp_path / "demo.log", "w")
    demo = subprocess.Popen(
        [str(binary), "demo", "--target", exporter.base, "--rate", "200", "--time-scale", "30", "--duration", "120",
         "--phases", "stable:2m,drift:2m,bias:2m,degraded:2m,incident"],
        stdout=demo_log, stderr=demo_log, cwd=ROOT)
    try:
        rules = slo_rules(binary, tmp_path)
        base = prometheus(exporter.port, rule_files=[rules])
        all_values = {"datasource": "", "job": ".*", "model": ".*", "version": ".*", "instance": ".*",
                      "feature": ".*", "slo": ".*"}
        queries = []
        for path in DASHBOARDS:
            d = load(path)
            for p in panels(d):
                if (d["uid"], p["title"]) in NEEDS_LLM_TRAFFIC:
                    continue
                for t in p["targets"]:
                    queries.append(((d["uid"], p["title"]), t["refId"], substitute(t["expr"], all_values), t["expr"]))
                missing = {}

        def all_have_data():
            missing.clear()
            for key, ref, expr, _ in queries:
                if not prom_query(base, expr):
                    missing[(key, ref)] = expr
            return not missing

        # Bounded: the demo passes through every phase in 10 s; rates need two scrapes, the window a few.
        try:
            wait_for(all_have_data, timeout=90, interval=1, what="every panel query to return data")
        except AssertionError:
            raise AssertionError("panel queries without data:\n" + "\n".join(
                f"{k[0][0]} / {k[0][1]} / {k[1]}: {e}" for k, e in missing.items()))
        assert len(queries) >= 50, len(queries)
        # The job variable filters every raw series (a batch gate's pushes, another environment): with another job
        # chosen, the panels that read them show nothing of this one.
        other = {**all_values, "job": "model-gate"}
        filtered = [(key, ref, raw) for key, ref, _, raw in queries if "$job" in raw]
        assert len(filtered) >= 40, len(filtered)
        leaking = [(key, ref) for key, ref, raw in filtered if prom_query(base, substitute(raw, other))]
        assert not leaking, leaking
        # The variables' queries find the demo's models, versions, instance and features.
        d = load(ROOT / "dashboards/mlops-model.json")
        found = {}
        for v in d["templating"]["list"]:
            if v["type"] == "query":
                found[v["name"]] = label_values(base, v["definition"], all_values)
        assert found["model"] == ["eta", "fraud"]
        assert set(found["version"]) == {"2024.06", "v1", "v2"}
        assert found["instance"] == [f"127.0.0.1:{exporter.port}"]
        assert found["job"] == ["mlops"]
        assert set(found["feature"]) == {"amount", "account_age_days", "country", "channel", "distance_km", "hour",
                                         "weather"}
    finally:
        demo.terminate()
        demo.wait(timeout=15)
        demo_log.close()
