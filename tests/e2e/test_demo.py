"""`mlops-exporter demo`, end to end against the real exporter with examples/demo/models.yaml: what it reports
sending is what the exporter counted; each phase moves the signals it should (stable: no drift, no fairness
violation on gender; drift: dataset drift on both models and accuracy down; bias: disparate impact for
gender=female; degraded: errors and latency up); a dead or refusing target is reported and counted, never a
crash; and the committed reference profiles are exactly what scripts/gen-demo-reference produces."""

import json
import os
import signal
import urllib.request
import re
import subprocess

from conftest import ROOT, free_port, sample, scrape, wait_for

CONFIG = "examples/demo/models.yaml"


def run_demo(binary, *args, timeout=60):
    proc = subprocess.run([str(binary), "demo", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return proc.returncode, proc.stderr


def summary(stderr):
    m = re.search(r"demo: done: (\d+) predictions, (\d+) labels sent; (\d+) accepted, (\d+) rejected, "
                  r"(\d+) failed requests", stderr)
    assert m, stderr
    return dict(zip(["predictions", "labels", "accepted", "rejected", "failed"], map(int, m.groups())))


def total(samples, name, **labels):
    return sum(v for (n, ls), v in samples.items() if n == name and all(dict(ls).get(k) == x
                                                                      for k, x in labels.items()))


def phase_run(binary, start_exporter, phase, seconds=3, rate=1000):
    exporter = start_exporter("--config", CONFIG)
    rc, stderr = run_demo(binary, "--target", exporter.base, "--rate", str(rate), "--phases", phase,
                          "--duration", str(seconds), "--time-scale", "30")
    assert rc == 0, stderr
    return exporter, summary(stderr), scrape(exporter)[1]


def test_what_the_demo_sends_is_what_the_exporter_counts(binary, start_exporter):
    exporter, sent, s = phase_run(binary, start_exporter, "stable:1m,degraded")
    assert sent["failed"] == 0 and sent["predictions"] > 500 and sent["labels"] > 100
    accepted = total(s, "mlops_ingest_events_total")
    rejected = total(s, "mlops_ingest_rejected_total")
    assert accepted == sent["accepted"] and rejected == sent["rejected"]
    assert accepted + rejected == sent["predictions"] + sent["labels"]
    assert total(s, "mlops_ingest_events_total", kind="labels") == sent["labels"]
    assert rejected > 0  # a buggy client sends events without a version now and then
    assert total(s, "mlops_ingest_rejected_requests_total") == 0
    # Every label the demo sends is for a prediction it sent: all join, none unmatched.
    assert total(s, "mlops_labels_joined_total") == sent["labels"]
    assert total(s, "mlops_labels_unmatched_total") == 0
    for model in ("fraud", "eta"):
        assert total(s, "mlops_model_requests_total", model=model) > 0
        assert total(s, "mlops_labels_pending", model=model) > 0  # some labels never come


def test_each_phase_moves_its_signals(binary, start_exporter):
    _, _, stable = phase_run(binary, start_exporter, "stable")
    _, _, drift = phase_run(binary, start_exporter, "drift")
    _, _, bias = phase_run(binary, start_exporter, "bias")
    _, _, degraded = phase_run(binary, start_exporter, "degraded")
    for model in ("fraud", "eta"):
        assert sample(stable, "mlops_dataset_drift_detected", model=model) == 0
        assert sample(drift, "mlops_dataset_drift_detected", model=model) == 1
        assert sample(bias, "mlops_dataset_drift_detected", model=model) == 0
    di = dict(model="fraud", attribute="gender", metric="disparate_impact")
    assert 0.8 <= sample(stable, "mlops_fairness_metric", **di) <= 1.25
    assert sample(stable, "mlops_fairness_violation", **di) == 0
    assert sample(bias, "mlops_fairness_metric", **di) > 1.5  # female (unprivileged) flagged far more often
    assert sample(bias, "mlops_fairness_violation", **di) == 1

    def accuracy(s):
        joined = total(s, "mlops_model_window_outcomes", model="fraud")
        return sum(total(s, "mlops_model_accuracy", model="fraud", version=v) *
                   total(s, "mlops_model_window_outcomes", model="fraud", version=v) for v in ("v1", "v2")) / joined

    assert accuracy(stable) > 0.8 and accuracy(drift) < accuracy(stable) - 0.05
    assert total(drift, "mlops_model_mae", model="eta") > total(stable, "mlops_model_mae", model="eta")

    def error_ratio(s):
        return (total(s, "mlops_model_requests_total", status="error")
                / total(s, "mlops_model_requests_total"))

    def mean_latency(s):
        return total(s, "mlops_model_latency_seconds_sum") / total(s, "mlops_model_latency_seconds_count")

    assert error_ratio(stable) < 0.01 and error_ratio(degraded) > 0.015  # a last phase without a duration stays at a quarter of the ramp
    assert mean_latency(degraded) > 4 * mean_latency(stable)
    assert total(degraded, "mlops_model_errors_total", kind="timeout") > 0


def test_an_unreachable_or_refusing_target_is_reported_not_fatal(binary, start_exporter, tmp_path):
    rc, stderr = run_demo(binary, "--target", f"http://127.0.0.1:{free_port()}", "--rate", "50", "--duration", "1.5")
    assert rc == 0, stderr
    assert "demo: error:" in stderr and "cannot connect" in stderr
    sent = summary(stderr)
    assert sent["failed"] > 0 and sent["accepted"] == 0
    # An exporter without the demo models: every request is refused with 404, counted, reported.
    config = tmp_path / "other.yaml"
    config.write_text("models:\n  - name: other\n    task: regression\n    versions: ['1']\n")
    exporter = start_exporter("--config", str(config))
    rc, stderr = run_demo(binary, "--target", exporter.base, "--rate", "50", "--duration", "1.5")
    assert rc == 0, stderr
    assert "HTTP 404" in stderr
    assert summary(stderr)["failed"] > 0
    assert exporter.proc.poll() is None


def test_config_limits_traffic_to_the_models_it_declares(binary, start_exporter, tmp_path):
    config = tmp_path / "eta-only.yaml"
    config.write_text("models:\n  - name: eta\n    task: regression\n    versions: ['2024.06']\n"
                      "    collectors: [service, quality]\n")
    exporter = start_exporter("--config", str(config))
    rc, stderr = run_demo(binary, "--target", exporter.base, "--config", str(config), "--rate", "200",
                          "--duration", "1.5")
    assert rc == 0, stderr
    sent = summary(stderr)
    assert sent["failed"] == 0 and sent["predictions"] > 100, stderr
    assert total(scrape(exporter)[1], "mlops_ingest_events_total", model="eta", kind="predictions") > 100
    other = tmp_path / "other.yaml"
    other.write_text("models:\n  - name: other\n    task: regression\n    versions: ['1']\n")
    rc, stderr = run_demo(binary, "--target", exporter.base, "--config", str(other), "--duration", "1")
    assert rc == 2 and "declares neither fraud nor eta" in stderr


def test_bad_arguments_are_refused(binary):
    for args, message in [(["--rate", "10"], "--target"), (["--target", "https://x:1"], "only http://"),
                          (["--target", "http://127.0.0.1:1", "--phases", "calm:1m"], "unknown phase"),
                          (["--target", "http://127.0.0.1:1", "--phases", "stable,drift:1m"], "needs a duration"),
                          (["--target", "http://127.0.0.1:1", "--time-scale", "0"], "--time-scale"),
                          # Not a number: said so (it was "must not be negative").
                          (["--target", "http://127.0.0.1:1", "--label-delay=nan"], "0 or more (got nan)"),
                          # A negative value is the value, refused by its check (it was "Missing value for '--rate'").
                          (["--target", "http://127.0.0.1:1", "--rate", "-5"], "--rate must be in (0, 100000]"),
                          (["--target", "http://127.0.0.1:1", "--label-delay", "-1"], "0 or more (got -1.0)")]:
        rc, stderr = run_demo(binary, *args)
        assert rc != 0 and message in stderr, (args, stderr)


def test_committed_reference_profiles_are_reproducible(binary, tmp_path):
    rc, stderr = run_demo(binary, "--write-reference-data", str(tmp_path), "--seed", "1", "--reference-rows", "5000")
    assert rc == 0, stderr
    for model in ("fraud", "eta"):
        out = tmp_path / f"{model}-reference.json"
        subprocess.run([str(binary), "profile", "--config", CONFIG, "--model", model, "--input",
                        str(tmp_path / f"{model}.csv"), "--out", str(out)], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        committed = json.loads((ROOT / f"examples/demo/{model}-reference.json").read_text())
        assert json.loads(out.read_text()) == committed, f"{model}: rerun scripts/gen-demo-reference and commit"


def test_scripts_run_with_arguments_passes_them_to_serve(binary):
    env = {**os.environ, "MLOPS_EXPORTER_BIN": str(binary)}
    for args in (["--help"], ["--no-demo", "--help"]):
        out = subprocess.run([str(ROOT / "scripts/run"), *args], env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "--web.listen-address" in out.stdout, out


def test_scripts_demo_refuses_an_address_already_answered_and_sends_it_nothing(binary, start_exporter):
    """An exporter already on the demo's address: the script refuses (non-zero, saying why) and the other exporter
    gets no traffic. Before, that exporter answered the readiness check, got the demo's traffic while the script's
    own exporter failed to bind, and the script exited 0."""
    other = start_exporter("--config", CONFIG)
    before = total(scrape(other)[1], "mlops_ingest_events_total")
    env = {**os.environ, "MLOPS_EXPORTER_BIN": str(binary), "DEMO_ARGS": "--rate 100 --duration 3s"}
    out = subprocess.run([str(ROOT / "scripts/demo"), "--web.listen-address", f"127.0.0.1:{other.port}"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "already answers" in out.stderr, out
    assert total(scrape(other)[1], "mlops_ingest_events_total") == before


def test_scripts_demo_exits_with_the_generators_failure(binary):
    """The generator refusing its arguments ends the demo with its status (it exited 0)."""
    env = {**os.environ, "MLOPS_EXPORTER_BIN": str(binary), "DEMO_ARGS": "--rate 0"}
    out = subprocess.run([str(ROOT / "scripts/demo"), "--web.listen-address", f"127.0.0.1:{free_port()}"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out
    assert "rate" in out.stderr, out.stderr


def test_scripts_run_reads_relative_paths_where_they_were_typed(binary, tmp_path):
    """scripts/run from another folder with a relative --config: the file is read there (the script changed to the
    repository's folder first: "mine.yaml: cannot read")."""
    (tmp_path / "mine.yaml").write_text("models:\n  - name: m\n    task: nope\n")
    env = {**os.environ, "MLOPS_EXPORTER_BIN": str(binary)}
    out = subprocess.run([str(ROOT / "scripts/run"), "--config", "mine.yaml", "--web.listen-address",
                          f"127.0.0.1:{free_port()}"], env=env, capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert out.returncode != 0, out
    assert "mine.yaml:3:11: models[0].task: unknown task" in out.stderr, out.stderr


def thread_states(pids):
    """Per process: its command, and each thread's state and kernel wait channel (for a stop that hangs)."""
    out = {}
    for pid in pids:
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()[:80]
            threads = []
            for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
                stat = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
                wchan = open(f"/proc/{pid}/task/{tid}/wchan").read()
                comm = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
                threads.append(f"{comm}:{stat[0]}:{wchan}")
            out[pid] = (cmd, threads)
        except OSError as e:
            out[pid] = str(e)
    return out


def test_scripts_demo_runs_exporter_and_generator_and_ctrl_c_stops_both(binary, tmp_path):
    port = free_port()
    log = open(tmp_path / "demo-script.log", "w")
    # Under `bash -x`: if it ever hangs again, the log shows the line it stopped at.
    script = subprocess.Popen(
        ["bash", "-x", str(ROOT / "scripts/demo"), "--web.listen-address", f"127.0.0.1:{port}"],
        env={**os.environ, "MLOPS_EXPORTER_BIN": str(binary), "DEMO_ARGS": "--rate 100 --time-scale 30"},
        stdout=log, stderr=log, cwd=ROOT, start_new_session=True)
    try:
        def traffic_counted():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                return None
            m = re.search(r'^mlops_ingest_events_total\{kind="labels",model="fraud"\} (\d+)', text, re.M)
            return m and int(m.group(1)) > 0

        wait_for(traffic_counted, timeout=30, interval=0.2, what="demo traffic counted by the exporter")
        # The exporter and the generator (the script's other child, if any, is its polling `sleep`).
        children = subprocess.run(["pgrep", "-P", str(script.pid), "-f", "mlops-exporter (serve|demo) "],
                                  capture_output=True, text=True).stdout.split()
        assert len(children) == 2, children
        # Ctrl-C in a terminal: SIGINT to the whole foreground process group (the script is the leader of its own).
        os.killpg(script.pid, signal.SIGINT)
        try:
            assert script.wait(timeout=20) == 0  # the script stops both children on INT and exits cleanly
        except subprocess.TimeoutExpired:
            # Seen in CI (2026-12-03, 3 times in 5 runs) when only the script got SIGINT: its trap never ran, its
            # children kept running. Say where the script and each child are.
            status = open(f"/proc/{script.pid}/status").read()
            raise AssertionError(
                f"demo did not stop within 20 s of SIGINT; script: "
                f"{[l for l in status.splitlines() if l.startswith(('Sig', 'Shd', 'State'))]}, "
                f"wchan {open(f'/proc/{script.pid}/wchan').read()}; children: {thread_states(children)}; "
                f"log tail: {(tmp_path / 'demo-script.log').read_text()[-3000:]}") from None
        wait_for(lambda: not any(os.path.exists(f"/proc/{c}") and
                                 open(f"/proc/{c}/stat").read().split()[2] != "Z" for c in children),
                 timeout=20, what="exporter and generator to exit")
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()
        log.close()
