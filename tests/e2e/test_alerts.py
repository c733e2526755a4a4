"""SLO and model-health alerts end to end: the exporter with a drift collector, the rules `mlops-exporter rules`
generates for its configuration loaded into a real Prometheus, a real Alertmanager, and a webhook receiver run by
this test. After drift is injected through the ingestion API, MLOpsDatasetDrift reaches the webhook within a
deadline, with its labels and annotations."""

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pandas as pd
import pytest

from conftest import free_port, scalar, wait_for
from test_drift import N_CUR, N_REF, config_text, dataset, send


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
    rng = np.random.default_rng(11)
    pd.DataFrame(dataset(rng, N_REF)).to_csv(tmp_path / "ref.csv", index=False)
    config = tmp_path / "models.yaml"
    config.write_text(config_text(tmp_path / "reference.json")
                      + "alerting:\n  drift_for: 1m\n  runbook_base_url: https://runbooks.example.com/mlops\n")
    result = subprocess.run(
        [str(binary), "profile", "--config", str(config), "--model", "m", "--input", str(tmp_path / "ref.csv"),
         "--out", str(tmp_path / "reference.json")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rules = tmp_path / "rules.yml"
    result = subprocess.run([str(binary), "rules", "--config", str(config), "--out", str(rules), "--job", "mlops"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True).returncode == 0

    am_port, hook = alertmanager
    exporter = start_exporter("--config", str(config))
    base = prometheus(exporter.port, extra=(
        f"rule_files: ['{rules}']\n"
        f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n"))
    wait_for(lambda: scalar(base, 'up{job="mlops"}') == 1, timeout=60, what="Prometheus scraping the exporter")
    # Healthy traffic first: no drift, no alert.
    send(exporter, dataset(rng, N_CUR))
    wait_for(lambda: scalar(base, 'mlops_dataset_drift_detected{model="m"}') == 0, timeout=60, what="no drift")
    assert not hook.alerts("MLOpsDatasetDrift")
    # Inject drift: the window now holds shifted data too, and the dataset drifts.
    send(exporter, dataset(rng, 3 * N_CUR, shift=1.0, probs=(0.1, 0.2, 0.7)))
    wait_for(lambda: scalar(base, 'mlops_dataset_drift_detected{model="m"}') == 1, timeout=60, what="drift detected")
    wait_for(lambda: scalar(base, 'ALERTS{alertname="MLOpsDatasetDrift",alertstate="pending"}') == 1, timeout=60,
             what="the drift alert pending")
    # drift_for is 1m: the alert fires about a minute later and Alertmanager delivers it.
    alerts = wait_for(lambda: hook.alerts("MLOpsDatasetDrift"), timeout=180, interval=0.5,
                      what="MLOpsDatasetDrift at the webhook")
    alert = alerts[0]
    assert alert["status"] == "firing"
    assert alert["labels"]["model"] == "m" and alert["labels"]["severity"]
    annotations = alert["annotations"]
    assert annotations["summary"] and annotations["description"]
    assert annotations["runbook_url"].startswith("https://runbooks.example.com/mlops")
