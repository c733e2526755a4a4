"""A real Prometheus (Debian's 2.42) scrapes the real exporter on loopback every second."""

import gzip

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from conftest import query, scalar, wait_for

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


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
