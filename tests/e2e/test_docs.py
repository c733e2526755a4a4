"""The metrics reference (docs/metrics.md) lists every family the exporter exposes."""

import json
import os
import re

from conftest import ROOT

DOC = (ROOT / "docs" / "metrics.md").read_text()


def check_documented(text: str):
    """Every family in a text-format scrape is listed in docs/metrics.md, with its HELP where the row has it."""
    names = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    missing = sorted(n for n in names if f"`{n}`" not in DOC)
    assert not missing, f"not in docs/metrics.md: {missing}"
    for name, help_text in re.findall(r"^# HELP (\S+) (.*)$", text, re.M):
        row = next((line for line in DOC.splitlines() if line.startswith(f"| `{name}` |")), None)
        if row is not None:
            # A `|` in a help text is written `\|` in the table (a bare one ends the cell).
            assert help_text.split(" Buckets:")[0] in row.replace("\\|", "|"), (name, help_text)
    return names


def test_every_exposed_family_is_in_the_metrics_reference(start_exporter):
    e = start_exporter("--config", str(ROOT / "examples" / "models.yaml"), "--process.pid", str(os.getpid()))
    body = "".join(json.dumps({"version": "v1", "prediction": "fraud", "latency_seconds": 0.01}) + "\n" for _ in range(3))
    assert e.post("/api/v1/models/fraud/predictions", body.encode(), {"Content-Type": "application/x-ndjson"})[0] == 202
    _, _, text = e.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})
    names = check_documented(text.decode())
    assert len(names) > 30 and "mlops_model_requests_total" in names


def test_the_families_of_every_optional_section_are_in_the_metrics_reference_with_their_help(start_exporter, tmp_path):
    """The families that only storage, remote write, the proxy, the KServe logger receiver, the quality option
    `score_bin_series` and an LLM model bring, checked as the default ones are: examples/models.yaml with those
    sections added. Before, their HELP was never compared: three storage rows and one quality row had drifted."""
    import yaml
    from conftest import free_port

    config = yaml.safe_load((ROOT / "examples" / "models.yaml").read_text())
    for model in config["models"]:
        if "reference" in model:
            model["reference"] = str(ROOT / "examples" / model["reference"])
    fraud = config["models"][0]
    fraud["collectors"] = ["service", "drift", {"name": "quality", "options": {"score_bin_series": True}}, "fairness"]
    fraud["capture"] = {"protocol": "open_inference_v2", "inference_service": "fraud-isvc"}
    config["models"].append({"name": "chat", "task": "text_generation", "versions": ["base"],
                             "llm": {"objectives": {"ttft_seconds": 0.5}, "catch_all": True}})
    config["storage"] = {"path": str(tmp_path / "store"), "checkpoint_interval": "1s"}
    config["remote_write"] = {"url": f"http://127.0.0.1:{free_port()}/api/v1/write", "interval": "1s"}
    config["proxy"] = {"listen": [f"127.0.0.1:{free_port()}"], "upstream": f"http://127.0.0.1:{free_port()}"}
    (tmp_path / "full.yaml").write_text(yaml.safe_dump(config))
    e = start_exporter("--config", str(tmp_path / "full.yaml"))
    _, _, text = e.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})
    names = check_documented(text.decode())
    assert {"mlops_storage_checkpoint_failures_total", "mlops_storage_restore_failures_total",
            "mlops_remote_write_samples_total", "mlops_proxy_requests_total", "mlops_llm_requests_total",
            "mlops_cloudevents_pending", "mlops_model_score_bin_total"} <= names, sorted(names)
    # A second start restores the first one's last checkpoint: the restore's families appear.
    e.stop()
    again = start_exporter("--config", str(tmp_path / "full.yaml"))
    _, _, text = again.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})
    assert "mlops_storage_restore_total" in check_documented(text.decode())


def test_every_generated_rule_is_in_the_slo_reference(binary, tmp_path):
    """docs/slos.md (which the README says holds every rule) names every recording rule and alert that `rules`
    writes for examples/models.yaml and examples/llm.yaml. Before, the fleet group's three fairness records were
    documented only in docs/fleet.md."""
    import subprocess

    import yaml

    names = set()
    for example in ("models.yaml", "llm.yaml"):
        out = tmp_path / f"rules-{example}"
        r = subprocess.run([str(binary), "rules", "--config", str(ROOT / "examples" / example), "--out", str(out)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        names |= {rule.get("record") or rule.get("alert")
                  for group in yaml.safe_load(out.read_text())["groups"] for rule in group["rules"]}
    assert {"mlops:fairness_selection_rate:ratio_rate1h", "slo:sli_error:ratio_rate5m"} <= names
    slos = (ROOT / "docs" / "slos.md").read_text()
    # A row may list one family's windows as `slo:sli_error:ratio_rate5m`, `…30m`: a suffix after the first name.
    shorthand = {first.rstrip("0123456789dhms") + suffix
                 for row in slos.splitlines() if "`…" in row
                 for first in re.findall(r"`([a-z_:]+[0-9]+[dhms])`", row)[:1]
                 for suffix in re.findall(r"`…([0-9]+[dhms])`", row)}
    missing = sorted(n for n in names if f"`{n}`" not in slos and n not in shorthand)
    assert not missing, f"not in docs/slos.md: {missing}"
