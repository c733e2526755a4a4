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
            assert help_text.split(" Buckets:")[0] in row, (name, help_text)
    return names


def test_every_exposed_family_is_in_the_metrics_reference(start_exporter):
    e = start_exporter("--config", str(ROOT / "examples" / "models.yaml"), "--process.pid", str(os.getpid()))
    body = "".join(json.dumps({"version": "v1", "prediction": "fraud", "latency_seconds": 0.01}) + "\n" for _ in range(3))
    assert e.post("/api/v1/models/fraud/predictions", body.encode(), {"Content-Type": "application/x-ndjson"})[0] == 202
    _, _, text = e.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})
    names = check_documented(text.decode())
    assert len(names) > 30 and "mlops_model_requests_total" in names
