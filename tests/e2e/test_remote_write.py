"""The exporter's own remote write (`remote_write:`, issue 19), end to end against a real Prometheus started with
`--web.enable-remote-write-receiver`: the series arrive with the values a scrape shows and the job and instance
labels a scrape would add; a receiver that stops makes the sends fail, counted, while ingestion and scrapes go on;
the receiver back on the same port gets the samples again; a 4xx is not retried."""

import json
import re
import signal
import subprocess
import time

from conftest import WriteReceiver, free_port, query, scrape, sample, wait_for

NDJSON = {"Content-Type": "application/x-ndjson"}


def config(tmp_path, port, extra=""):
    path = tmp_path / "models.yaml"
    path.write_text(f"""
models:
  - name: fraud
    task: binary_classification
    versions: [v1]
    classes: [legit, fraud]
    positive_class: fraud
remote_write:
  url: http://127.0.0.1:{port}/api/v1/write
  interval: 1s
  timeout: 2s
  max_pending_requests: 5
  min_backoff: 100ms
  max_backoff: 500ms
  external_labels: {{site: edge-1}}
{extra}""")
    return path


def receiver(tmp_path, port, name):
    """A Prometheus that only receives (no scrapes) on `port`."""
    home = tmp_path / name
    home.mkdir(exist_ok=True)
    (home / "prometheus.yml").write_text("global:\n  evaluation_interval: 1s\nscrape_configs: []\n")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver"],
        stdout=open(home / "log", "w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return query(base, "vector(1)") is not None
        except OSError:
            return False
    wait_for(ready, timeout=60, interval=0.2, what="the receiving Prometheus")
    return proc, base


def post(e, n, start=0):
    body = "".join(json.dumps({"version": "v1", "prediction": "fraud" if i % 3 == 0 else "legit",
                               "latency_seconds": 0.01 * (i % 7)}) + "\n" for i in range(start, start + n))
    status, _, reply = e.post("/api/v1/models/fraud/predictions", body.encode(), NDJSON)
    assert status == 202, reply


def value(base, expr):
    result = query(base, expr)
    return float(result[0]["value"][1]) if len(result) == 1 else None


def test_remote_write_delivers_survives_a_receiver_outage_and_resumes(start_exporter, tmp_path):
    port = free_port()
    proc, base = receiver(tmp_path, port, "first")
    try:
        e = start_exporter("--config", str(config(tmp_path, port)), "--instance.id", "edge-exporter")
        post(e, 30)
        requests = 'mlops_model_requests_total{model="fraud",version="v1",status="ok"}'
        wait_for(lambda: value(base, requests) == 30, timeout=30, interval=0.2, what="30 requests in the receiver")
        got = query(base, requests)[0]["metric"]
        assert got["job"] == "mlops-exporter" and got["instance"] == "edge-exporter" and got["site"] == "edge-1"
        # Every family a scrape shows arrives, histograms as _bucket/_sum/_count; the values are the scrape's.
        _, s = scrape(e)
        bucket = 'mlops_model_latency_seconds_bucket{model="fraud",version="v1",le="0.025"}'
        assert value(base, bucket) == sample(s, "mlops_model_latency_seconds_bucket", model="fraud", version="v1",
                                            le="0.025")
        assert value(base, 'count({__name__=~"mlops_exporter_build_info|process_cpu_seconds_total"})') >= 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    # The receiver is gone: sends fail and are counted; ingestion and scrapes are served meanwhile.
    failures = "mlops_remote_write_failures_total"
    wait_for(lambda: sample(scrape(e)[1], failures, reason="network") >= 2, timeout=20, interval=0.2,
             what="failed sends counted")
    t0 = time.monotonic()
    post(e, 30, start=30)
    _, s = scrape(e)
    assert time.monotonic() - t0 < 1.0
    assert sample(s, "mlops_model_requests_total", model="fraud", version="v1", status="ok") == 60
    # The queue is bounded: with the receiver down for a while, the oldest requests are dropped and counted.
    wait_for(lambda: sample(scrape(e)[1], "mlops_remote_write_samples_dropped_total", reason="queue_full") > 0,
             timeout=30, interval=0.2, what="queue_full drops")
    assert sample(scrape(e)[1], "mlops_remote_write_pending_requests") <= 5
    # Said in the log once per streak, not at every retry or every full render (the counters have each one).
    log = e.log_path.read_text()
    assert log.count("remote write: a send failed") == 1, log[-2000:]
    # With what happened: the reason alone said `network` for a refused connection, a timeout and a redirect loop.
    failed = next(line for line in log.splitlines() if "remote write: a send failed" in line)
    assert re.search(r'detail="[^"]*(refused|connect)', failed), failed
    assert log.count("remote write: the queue is full") == 1, log[-2000:]

    # Back on the same port (same storage): delivery resumes with the new values.
    proc, base = receiver(tmp_path, port, "second")
    try:
        wait_for(lambda: value(base, requests) == 60, timeout=30, interval=0.2, what="delivery to resume")
        sent = sample(scrape(e)[1], "mlops_remote_write_samples_total")
        assert sent > 0
        wait_for(lambda: "remote write: delivering again" in e.log_path.read_text(), timeout=10, interval=0.2,
                 what="the recovery logged")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_series_that_end_are_marked_stale_in_the_receiver(start_exporter, tmp_path):
    """The spec's MUST: a series that will no longer be appended to gets a staleness marker. A model removed by a
    reload, and at a SIGTERM every series: the receiver's instant queries stop returning them at once. Before, both
    were returned for the receiver's 5-minute lookback, so a fleet `sum by` counted a removed model or a replaced
    pod twice."""
    port = free_port()
    proc, base = receiver(tmp_path, port, "stale")
    extra = """  - name: churn
    task: binary_classification
    versions: [v1]
    classes: [a, b]
    positive_class: b
"""
    path = config(tmp_path, port)
    with_churn = path.read_text().replace("remote_write:", extra + "remote_write:")
    path.write_text(with_churn)
    try:
        e = start_exporter("--config", str(path), "--instance.id", "stale-exporter")
        post(e, 3)
        status, _, reply = e.post("/api/v1/models/churn/predictions",
                                  b'{"version": "v1", "prediction": "a"}\n', NDJSON)
        assert status == 202, reply
        churn = 'mlops_model_requests_total{model="churn",version="v1",status="ok"}'
        fraud = 'mlops_model_requests_total{model="fraud",version="v1",status="ok"}'
        wait_for(lambda: value(base, churn) == 1 and value(base, fraud) == 3, timeout=30, interval=0.2,
                 what="both models in the receiver")
        path.write_text(with_churn.replace(extra, ""))
        status, _, body = e.get("/-/reload", method="POST")
        assert status == 200, body
        wait_for(lambda: query(base, churn) == [], timeout=15, interval=0.2, what="the removed model's series to end")
        assert value(base, fraud) == 3
        assert sample(scrape(e)[1], "mlops_remote_write_stale_markers_total") > 0
        assert e.stop(signal.SIGTERM) == 0
        assert "staleness markers not delivered" not in e.log_path.read_text()
        wait_for(lambda: query(base, 'count({instance="stale-exporter"})') == [], timeout=15, interval=0.2,
                 what="every series to end at shutdown")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_refusing_receiver_is_not_retried_and_its_samples_are_counted(start_exporter, tmp_path):
    # Prometheus without the receiver flag answers 404 on /api/v1/write: a 4xx, not retried.
    port = free_port()
    home = tmp_path / "plain"
    home.mkdir()
    (home / "prometheus.yml").write_text("scrape_configs: []\n")
    proc = subprocess.Popen(["prometheus", f"--config.file={home / 'prometheus.yml'}",
                             f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=open(home / "log", "w"), stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: value(f"http://127.0.0.1:{port}", "vector(1)") == 1 if _up(port) else False, timeout=60,
                 interval=0.2, what="prometheus")
        e = start_exporter("--config", str(config(tmp_path, port)))
        wait_for(lambda: sample(scrape(e)[1], "mlops_remote_write_samples_dropped_total", reason="rejected") > 0,
                 timeout=20, interval=0.2, what="rejected samples counted")
        s = scrape(e)[1]
        assert sample(s, "mlops_remote_write_failures_total", reason="http_4xx") >= 1
        assert sample(s, "mlops_remote_write_pending_requests") <= 1
        # Said in the log once per streak, as other failures are (a receiver refusing every request logged each one).
        wait_for(lambda: sample(scrape(e)[1], "mlops_remote_write_failures_total", reason="http_4xx") >= 3,
                 timeout=20, interval=0.2, what="three refusals")
        assert e.log_path.read_text().count("remote write: the receiver refused a request") == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_100_continue_before_the_answer_is_skipped(start_exporter, tmp_path):
    """With `Expect: 100-continue` among the headers a real Prometheus answers `100 Continue`, then `204`: the 100 is
    an interim response (RFC 9110 section 15.2), not the answer. Before, it was taken for the answer: every request
    Prometheus stored was counted refused (`http_other`) and its samples dropped as `rejected`."""
    port = free_port()
    proc, base = receiver(tmp_path, port, "continue")
    try:
        e = start_exporter("--config", str(config(tmp_path, port, "  headers: {Expect: 100-continue}\n")))
        post(e, 30)
        wait_for(lambda: sample(scrape(e)[1], "mlops_remote_write_requests_total") >= 3, timeout=30, interval=0.2,
                 what="three requests sent")
        s = scrape(e)[1]
        assert sample(s, "mlops_remote_write_samples_dropped_total", reason="rejected") == 0
        assert sum(v for (name, _), v in s.items() if name == "mlops_remote_write_failures_total") == 0
        assert value(base, 'sum(mlops_model_requests_total{model="fraud",site="edge-1"})') == 30
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _up(port):
    try:
        query(f"http://127.0.0.1:{port}", "vector(1)")
        return True
    except OSError:
        return False


def test_remote_write_configuration_errors_name_the_field(binary, tmp_path):
    path = tmp_path / "bad.yaml"
    for section, field in [("remote_write: {url: https://x:1/api/v1/write}", "remote_write.url"),
                           ("remote_write: {url: 'http://x:1/w', interval: 0s}", "remote_write.interval"),
                           ("remote_write: {url: 'http://x:1/w', external_labels: {'__x': a}}",
                            "remote_write.external_labels.__x"),
                           ("remote_write: {interval: 5s}", "remote_write.url")]:
        path.write_text("models: []\n" + section + "\n")
        result = subprocess.run([str(binary), "check-config", str(path)], capture_output=True, text=True)
        assert result.returncode != 0 and field in result.stderr, (section, result.stderr)


def test_shutdown_does_not_wait_for_a_hung_receiver(start_exporter, tmp_path):
    """A receiver that takes the request and never answers, a 60 s timeout, --shutdown-timeout 2: the exporter writes
    its last checkpoint and exits within the shutdown deadline. Before, it waited for the send (up to the timeout
    plus 2 s), and wrote the checkpoint after it: past a Kubernetes grace period, the checkpoint was lost."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    held, taken = [], threading.Event()

    def hold():  # accept and read, never answer (bounded: the test's sockets close at its end)
        listener.settimeout(30)
        try:
            while len(held) < 8:
                c, _ = listener.accept()
                held.append(c)
                c.settimeout(5)
                try:
                    if c.recv(65536):
                        taken.set()
                except OSError:
                    pass
        except OSError:
            pass

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    path = config(tmp_path, port).read_text().replace("timeout: 2s", "timeout: 60s")
    (tmp_path / "hung.yaml").write_text(path)
    store = tmp_path / "state"
    e = start_exporter("--config", str(tmp_path / "hung.yaml"), "--storage.path", str(store),
                       "--shutdown-timeout", "2")
    try:
        assert taken.wait(30), "the exporter never sent to the receiver"
        began = time.monotonic()
        e.proc.terminate()
        e.proc.wait(timeout=30)
        took = time.monotonic() - began
        assert took < 8, f"exit took {took:.1f} s with --shutdown-timeout 2"
        assert (store / "checkpoint").exists(), sorted(p.name for p in store.iterdir())
    finally:
        listener.close()
        for c in held:
            c.close()


def silent_receiver(tmp_path, max_pending):
    """A listener that accepts and never answers, and a configuration sending to it with `max_pending_requests`
    and a 30 s timeout: (listener, configuration path). Close the listener at the end."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    text = config(tmp_path, listener.getsockname()[1]).read_text().replace("timeout: 2s", "timeout: 30s").replace(
        "max_pending_requests: 5", f"max_pending_requests: {max_pending}")
    path = tmp_path / f"silent-{max_pending}.yaml"
    path.write_text(text)
    return listener, path


def test_the_pending_requests_never_pass_their_limit(start_exporter, tmp_path):
    """`max_pending_requests: 1` and a receiver that never answers: the request being sent stays until its attempt
    ends, and the newest render's waits beside it: the limit gauge says 2, what is held. Before, it said 1 while 2
    were held."""
    listener, path = silent_receiver(tmp_path, 1)
    e = start_exporter("--config", str(path))
    try:
        wait_for(lambda: sample(scrape(e)[1], "mlops_remote_write_samples_dropped_total", reason="queue_full") > 0,
                 timeout=20, interval=0.2, what="a full queue")
        for _ in range(5):
            s = scrape(e)[1]
            held, limit = sample(s, "mlops_remote_write_pending_requests"), sample(
                s, "mlops_remote_write_pending_requests_limit")
            assert held <= limit, (held, limit)
        assert limit == 2
    finally:
        listener.close()


def test_the_limit_gauge_covers_a_render_of_more_requests_than_the_limit(start_exporter, tmp_path):
    """A render of more requests than `max_pending_requests` keeps them all, beside the one being sent: the limit
    gauge says so (it said 2 while 6 were held, and an alert on pending >= limit fired for nothing)."""
    listener, path = silent_receiver(tmp_path, 2)
    # 20,000 synthetic series: a render of 5 requests (at most 5,000 samples each).
    e = start_exporter("--config", str(path), "--bench.synthetic-series", "20000")
    try:
        wait_for(lambda: sample(scrape(e)[1], "mlops_remote_write_pending_requests") >= 5, timeout=20, interval=0.2,
                 what="a render's requests queued")
        for _ in range(5):
            s = scrape(e)[1]
            held, limit = sample(s, "mlops_remote_write_pending_requests"), sample(
                s, "mlops_remote_write_pending_requests_limit")
            assert held <= limit, (held, limit)
        assert limit >= 6
    finally:
        listener.close()


def test_retry_after_is_waited_for(start_exporter, tmp_path):
    """A receiver answering 429 with `Retry-After: 3` gets the next attempt after 3 s, not after the 0.1-0.5 s
    backoff: before, ten requests came in 25 s against a Retry-After of 30 (Prometheus waits it out)."""
    receiver = WriteReceiver(429, {"Retry-After": "3", "Content-Length": "0"})
    times = receiver.arrivals
    try:
        e = start_exporter("--config", str(config(tmp_path, receiver.port)))
        wait_for(lambda: len(times) >= 1, timeout=20, interval=0.05, what="the first request")
        wait_for(lambda: len(times) >= 2, timeout=20, interval=0.05, what="the retry")
        gap = times[1] - times[0]
        assert gap >= 2.5, f"retried {gap:.2f} s after a 429 with Retry-After: 3"
        assert sample(scrape(e)[1], "mlops_remote_write_failures_total", reason="http_429") >= 1
    finally:
        receiver.close()
