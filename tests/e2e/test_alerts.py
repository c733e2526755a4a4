"""SLO and model-health alerts end to end: the exporter with the demo configuration, the rules `mlops-exporter rules`
generates for it loaded into a real Prometheus, a real Alertmanager, a webhook receiver run by this test, and the
demo traffic generator. After the generator injects drift, MLOpsDatasetDrift reaches the webhook within a
deadline, with its labels and annotations."""

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml

from conftest import ROOT, free_port, scalar, wait_for


class Webhook:
    """Collects the JSON bodies Alertmanager POSTs."""

    def __init__(self):
        self.bodies = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                outer.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alerts(self, name):
        return [a for body in self.bodies for a in body.get("alerts", []) if a["labels"].get("alertname") == name]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def alertmanager(tmp_path):
    hook = Webhook()
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: test\n  group_by: [alertname, model]\n"
        "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        f"receivers:\n  - name: test\n    webhook_configs:\n      - url: http://127.0.0.1:{hook.port}/\n"
    )
    log = open(tmp_path / "alertmanager.log", "w")
    proc = subprocess.Popen(
        ["prometheus-alertmanager", f"--config.file={config}", f"--storage.path={tmp_path / 'am'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=log, stderr=log)
    yield port, hook
    proc.terminate()
    proc.wait(timeout=30)
    hook.close()


def test_drift_alert_reaches_alertmanager_with_annotations(binary, tmp_path, start_exporter, prometheus,
                                                          alertmanager):
    config = ROOT / "examples" / "demo" / "models.yaml"   # SLOs, drift collector, alerting: drift_for 1m (cut below)
    rules = tmp_path / "rules.yml"
    result = subprocess.run([str(binary), "rules", "--config", str(config), "--out", str(rules), "--job", "mlops"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # The drift alert's `for` (the demo's 1m, the configuration's minimum) cut to 10s in the generated file: the test
    # proves the path to the webhook, not the wait, which promtool's unit tests in test_rules.py cover.
    doc = yaml.safe_load(rules.read_text())
    drift = [r for g in doc["groups"] for r in g["rules"] if r.get("alert") == "MLOpsDatasetDrift"]
    assert drift and all(r["for"] == "1m" for r in drift), drift
    for r in drift:
        r["for"] = "10s"
    rules.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    assert subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True).returncode == 0

    am_port, hook = alertmanager
    exporter = start_exporter("--config", str(config))
    base = prometheus(exporter.port, rule_files=[rules], extra=(
        f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n"))
    wait_for(lambda: scalar(base, 'up{job="mlops"}') == 1, timeout=60, what="Prometheus scraping the exporter")
    # The demo generator: a stable phase, then drift injected and kept.
    log = open(tmp_path / "demo.log", "w")
    demo = subprocess.Popen(
        [str(binary), "demo", "--target", exporter.base, "--phases", "stable:20s,drift", "--duration", "240",
         "--seed", "5"], stdout=log, stderr=log)
    try:
        wait_for(lambda: scalar(base, 'mlops_dataset_drift_detected{model="fraud"}') == 0, timeout=60,
                 what="a verdict of no drift in the stable phase")
        assert not hook.alerts("MLOpsDatasetDrift")
        wait_for(lambda: scalar(base, 'mlops_dataset_drift_detected{model="fraud"}') == 1, timeout=90,
                 what="drift detected after the drift phase starts")
        # drift_for is 1m: the alert fires about a minute later and Alertmanager delivers it.
        alerts = wait_for(lambda: [a for a in hook.alerts("MLOpsDatasetDrift") if a["labels"]["model"] == "fraud"],
                          timeout=180, interval=0.5, what="MLOpsDatasetDrift for fraud at the webhook")
    finally:
        demo.terminate()
        demo.wait(timeout=30)
    alert = alerts[0]
    assert alert["status"] == "firing"
    assert alert["labels"]["severity"]
    annotations = alert["annotations"]
    assert annotations["summary"] and annotations["description"] and annotations["runbook_url"]
