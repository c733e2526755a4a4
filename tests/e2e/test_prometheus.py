"""A real Prometheus (Debian's 2.42) scrapes the real exporter on loopback every second."""

import gzip
import json
import subprocess
import urllib.parse
import urllib.request

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from conftest import free_port, wait_for

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.fixture
def prometheus(tmp_path):
    """Starts Prometheus with a generated config; yields (start_fn) taking the exporter's port."""
    procs = []

    def start(target_port, scrape_configs=None):
        """`scrape_configs`: the YAML list to use instead of one plain `mlops` job on `target_port`."""
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            + "scrape_configs:\n"
            + (scrape_configs or (
                "  - job_name: mlops\n"
                f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"))
        )
        log = open(tmp_path / "prometheus.log", "w")
        proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=log,
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"

        def ready():
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(ready, timeout=60, what="prometheus ready")
        return base

    yield start
    for p in procs:
        p.terminate()
        p.wait(timeout=30)


def query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def scalar(base, expr):
    result = query(base, expr)
    return float(result[0]["value"][1]) if result else None


def direct_sample_count(exporter):
    _, headers, body = exporter.get("/metrics", {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    return sum(len(f.samples) for f in parse_om(gzip.decompress(body).decode()))


def test_prometheus_scrapes_everything_over_openmetrics(start_exporter, prometheus):
    exporter = start_exporter("--bench.synthetic-series", "1000")
    base = prometheus(exporter.port)

    wait_for(lambda: scalar(base, 'up{job="mlops"}') == 1, timeout=60, what="up == 1")

    # The samples Prometheus scraped, the series it stored, and what the exporter renders now, agree
    # once the exporter's own request counters have seen every label combination (two scrapes).
    def counts():
        scraped = scalar(base, 'scrape_samples_scraped{job="mlops"}')
        stored = scalar(base, 'count({job="mlops",__name__!~"up|scrape_.*"})')
        direct = direct_sample_count(exporter)
        return (scraped, stored, direct) if scraped == stored == direct else None

    scraped, stored, direct = wait_for(counts, timeout=60, interval=0.5, what="scraped == stored == rendered")
    assert stored >= 1000 + 20

    # Prometheus asked for OpenMetrics with gzip, and got it (the exporter's own metrics say so).
    om_gzip = scalar(base, 'mlops_exporter_scrapes_total{format="openmetrics",encoding="gzip"}')
    assert om_gzip and om_gzip >= 1
    assert scalar(base, 'sum(mlops_exporter_scrapes_total{format="text"})') == 0
    # No scrape failed.
    assert scalar(base, 'count_over_time(up{job="mlops"}[1m]) - sum_over_time(up{job="mlops"}[1m])') == 0
