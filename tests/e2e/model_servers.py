"""The real model servers of the capture tests (tests/e2e/test_capture_peers.py, through the KServe logger receiver)
and the proxy tests (tests/e2e/test_proxy_peers.py, behind the reverse proxy): MLServer (mlserver-sklearn, in
.venv-mlserver) and KServe's Python model server (in .venv-kserve) serving a scikit-learn logistic regression trained
at test time. Import the fixtures into a test module to use them."""
import json
import subprocess
import urllib.request

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from conftest import ROOT, free_port, wait_for

MLSERVER = ROOT / ".venv-mlserver" / "bin" / "mlserver"
KSERVE = ROOT / ".venv-kserve" / "bin" / "python"
WEIGHTS = np.array([1.0, -1.5, 0.5, 0.2])


@pytest.fixture
def trained(tmp_path):
    """A logistic regression trained here, saved with joblib; (model, path, rng)."""
    rng = np.random.default_rng(21)
    X = rng.normal(size=(500, 4))
    y = (X @ WEIGHTS + rng.normal(scale=0.7, size=500) > 0).astype(int)
    clf = LogisticRegression().fit(X, y)
    path = tmp_path / "model.joblib"
    joblib.dump(clf, path)
    return clf, path, rng


def serve(command, cwd, log_path, url):
    """Starts a model server and waits until `url` answers 200; returns the process."""
    log = open(log_path, "w")
    proc = subprocess.Popen(command, stdout=log, stderr=log, cwd=cwd)

    def ready():
        assert proc.poll() is None, log_path.read_text()
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for(ready, timeout=90, interval=0.2, what=f"{command[0]} to load the model")
    return proc


def post(url, body):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


@pytest.fixture
def mlserver(tmp_path, trained):
    """MLServer serving the trained model; yields (base URL, model, rng)."""
    assert MLSERVER.exists(), f"{MLSERVER} is missing: run scripts/install-deps --python (the README test command does)"
    clf, path, rng = trained
    repo = tmp_path / "repo"
    (repo / "credit").mkdir(parents=True)
    (repo / "credit" / "model.joblib").write_bytes(path.read_bytes())
    (repo / "credit" / "model-settings.json").write_text(json.dumps({
        "name": "credit", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"}}))
    port = free_port()
    (repo / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
        "parallel_workers": 0, "metrics_endpoint": None}))
    base = f"http://127.0.0.1:{port}"
    proc = serve([str(MLSERVER), "start", str(repo)], repo, tmp_path / "mlserver.log", base + "/v2/models/credit/ready")
    yield base, clf, rng
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def kserve(tmp_path, trained):
    """KServe's model server serving the trained model; yields (base URL, model, rng)."""
    assert KSERVE.exists(), f"{KSERVE} is missing: run scripts/install-deps --python (the README test command does)"
    clf, path, rng = trained
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    script = ROOT / "tests" / "e2e" / "peers" / "kserve_credit.py"
    proc = serve([str(KSERVE), str(script), str(path), str(port), str(free_port())], tmp_path,
                 tmp_path / "kserve.log", base + "/v1/models/credit")
    yield base, clf, rng
    proc.terminate()
    proc.wait(timeout=20)
