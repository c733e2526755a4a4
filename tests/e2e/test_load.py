"""A bounded load run (wrk, 10 s, 10 connections) against /metrics with 10,000 series."""

import re
import subprocess

from conftest import wait_for


def test_wrk_10k_series_no_errors_no_fd_growth(start_exporter):
    e = start_exporter("--bench.synthetic-series", "10000")
    status, _, body = e.get("/metrics")
    assert status == 200 and body.count(b"synthetic_requests_total{") == 10000
    baseline = e.open_sockets()
    out = subprocess.run(
        ["wrk", "-t2", "-c10", "-d10s", "--timeout", "5s", f"{e.base}/metrics"],
        capture_output=True, text=True, timeout=60,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    assert requests > 100, out
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    wait_for(lambda: e.open_sockets() <= baseline, timeout=15, what=f"sockets back to {baseline}")
    assert e.get("/-/healthy")[0] == 200
