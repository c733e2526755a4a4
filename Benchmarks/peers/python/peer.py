#!/usr/bin/env python3
"""Scrape-benchmark peer: the synthetic series set of `mlops-exporter --bench.synthetic-series N`,
served by prometheus_client.

One counter family synthetic_requests_total{series="i",shard="i mod 10"} with value i for i in
0..<N, on a fresh CollectorRegistry, served by prometheus_client.start_http_server (which
negotiates gzip from Accept-Encoding). `_created` samples are disabled so the sample set matches
the other servers exactly.

    peer.py --listen 127.0.0.1:0 --series 10000
"""
import argparse
import sys
import threading

import prometheus_client
from prometheus_client import CollectorRegistry, Counter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port (port 0 = any free port)")
    parser.add_argument("--series", type=int, default=1000)
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")

    prometheus_client.disable_created_metrics()
    reg = CollectorRegistry()
    counter = Counter(
        "synthetic_requests",
        "Synthetic series for load tests and benchmarks.",
        labelnames=["series", "shard"],
        registry=reg,
    )
    for i in range(args.series):
        counter.labels(str(i), str(i % 10)).inc(i)

    server, _thread = prometheus_client.start_http_server(int(port), addr=host, registry=reg)
    bound_host, bound_port = server.server_address[:2]
    print(f"listening on {bound_host}:{bound_port}", file=sys.stderr, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
