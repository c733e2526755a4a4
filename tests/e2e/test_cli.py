"""The command line: version, help, argument errors, bind errors and log formats."""

import datetime
import json
import os
import re
import socket
import subprocess
import time
import urllib.request

from conftest import free_port, wait_for


def run(binary, *args, timeout=30):
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)


def test_version_and_help(binary):
    r = run(binary, "--version")
    # As Go exporters' version.Print: name, version and revision first, then the platform (was `0.1.0` alone).
    first, platform = r.stdout.strip().split("\n")
    assert r.returncode == 0 and re.fullmatch(r"mlops-exporter, version 0\.1\.0 \(revision: ([0-9a-f]{40}|unknown)\)",
                                              first), r.stdout
    assert platform.split() == ["platform:", f"linux/{'amd64' if os.uname().machine == 'x86_64' else 'arm64'}"]
    r = run(binary, "serve", "--help")
    assert r.returncode == 0
    for flag in ["--web.listen-address", "--web.telemetry-path", "--web.max-requests", "--process.pid",
                 "--process.pidfile", "--log.level", "--log.format"]:
        assert flag in r.stdout, flag


def test_bad_arguments_are_named(binary):
    r = run(binary, "serve", "--log.format", "xml")
    assert r.returncode != 0 and "--log.format" in r.stderr and "xml" in r.stderr
    r = run(binary, "serve", "--web.max-requests", "-1")
    assert r.returncode != 0 and "--web.max-requests" in r.stderr
    r = run(binary, "serve", "--web.listen-address", "nonsense")
    assert r.returncode == 64 and "nonsense" in r.stderr


def test_a_model_that_cannot_be_built_stops_serve_with_its_place_in_the_file(binary, tmp_path):
    """The models are built once at start (a check built them all first and threw them away: half of the start); a
    problem building one (a reference profile of other features) is still named by file, line and column."""
    config = tmp_path / "m.yaml"
    base = ("models:\n  - name: m\n    task: regression\n    versions: [v1]\n    features: [{name: a, type: numeric}]\n"
            f"    reference: {tmp_path / 'r.json'}\n    collectors: [service, drift]\n")
    config.write_text(base)
    (tmp_path / "r.csv").write_text("a,prediction\n1,2\n2,3\n3,4\n")
    r = subprocess.run([str(binary), "profile", "--config", str(config), "--model", "m", "--input",
                        str(tmp_path / "r.csv"), "--out", str(tmp_path / "r.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    config.write_text(base.replace("name: a,", "name: b,"))
    r = run(binary, "serve", "--config", str(config), "--web.listen-address", "127.0.0.1:0")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "invalid configuration:",
        f'{config}:6:16: model "m": reference: {tmp_path / "r.json"}: features: no profile for feature "b"'], r.stderr


def test_an_option_given_twice_is_refused(binary, tmp_path):
    """`serve --config a --config b` served b without a word (ArgumentParser keeps the last): refused, as Prometheus
    refuses a repeated flag; --web.listen-address is meant to be repeated."""
    for args in (["serve", "--config", "a.yaml", "--config=b.yaml"],
                 ["batch", "--config", "m.yaml", "--model", "a", "--model", "b", "--input", "x.csv"],
                 ["serve", "--log.level", "info", "--log.level", "debug"]):
        r = run(binary, *args)
        name = "--config" if "--config=b.yaml" in args else "--model" if "batch" in args else "--log.level"
        assert (r.returncode, r.stderr.strip()) == (64, f"mlops-exporter: {name} is given more than once; give it once")
    r = run(binary, "serve", "--web.listen-address", "127.0.0.1:0", "--web.listen-address", "nonsense2")
    assert r.returncode == 64 and "nonsense2" in r.stderr  # repeated as meant: each address is read


def test_listen_addresses_and_demo_arguments_are_usage_errors(binary, tmp_path):
    """A listen address given twice started, then failed on its own port ("address already in use", exit 1), and an
    unparsable one exited 1 after logging; the demo's bad --target or --phases exited 2 (its run-time failure): all
    are usage errors now, exit 64 with the reason, as every other bad flag (a docs review's findings)."""
    port = free_port()
    cases = [
        (["serve", "--web.listen-address", f"127.0.0.1:{port}", "--web.listen-address", f"127.0.0.1:{port}"],
         f'--web.listen-address: "127.0.0.1:{port}" is given twice (the same address as an earlier one); give it once'),
        (["serve", "--web.listen-address", "127.0.0.1:99999"],
         '--web.listen-address: invalid listen address "127.0.0.1:99999": port must be a number in 0...65535'),
        # A pid is positive (-1 started, its target forever `process_target_up 0`: a probe).
        (["serve", "--process.pid", "-1"], "--process.pid must be a process id (> 0)"),
        (["demo", "--target", "https://127.0.0.1:1"],
         '--target: only http:// URLs are supported (got "https://127.0.0.1:1")'),
        (["demo", "--target", "http://127.0.0.1:1", "--phases", "stable:1m,drif"], "--phases"),
    ]
    for args, message in cases:
        r = run(binary, *args, timeout=10)
        assert r.returncode == 64, (args, r.returncode, r.stderr)
        assert message in r.stderr, (args, r.stderr)
    # Writing the reference data only uses neither: they are not checked then (as before).
    r = run(binary, "demo", "--write-reference-data", str(tmp_path), "--reference-rows", "10", "--target",
            "https://127.0.0.1:1", "--phases", "stable:1m,drif", timeout=30)
    assert r.returncode == 0 and any(tmp_path.iterdir()), r.stderr


def test_overlapping_listen_addresses_are_named(binary, tmp_path):
    """Addresses that cannot all be bound: a flag's overlapping another (`:P` with `127.0.0.1:P`) is a usage error,
    and the proxy's listen address overlapping the exporter's own or another of its own stops the start naming both
    (both failed at bind with "address already in use", the process's own port, unsaid)."""
    port = free_port()
    r = run(binary, "serve", "--web.listen-address", f":{port}", "--web.listen-address", f"127.0.0.1:{port}",
            timeout=10)
    assert r.returncode == 64, r.stderr
    assert f'"127.0.0.1:{port}" overlaps ":{port}"' in r.stderr, r.stderr
    model = ("models:\n  - name: m\n    task: regression\n    versions: [default]\n"
             "    features: [{name: a, type: numeric}]\n")
    config = tmp_path / "c.yaml"
    config.write_text(model + f"proxy:\n  listen: {[f'127.0.0.1:{port}']}\n  upstream: http://127.0.0.1:{free_port()}\n")
    r = run(binary, "serve", "--config", str(config), "--web.listen-address", f":{port}", timeout=10)
    assert r.returncode == 1, r.stderr
    assert f'proxy.listen \\"127.0.0.1:{port}\\" overlaps --web.listen-address \\":{port}\\"' in r.stderr, r.stderr
    # Two of proxy.listen overlapping: the file's own problem, located, by check-config as by serve (check-config
    # passed it, and serve stopped without file or line: a probe).
    config.write_text(model + f"proxy:\n  listen: [':{port}', '127.0.0.1:{port}']\n"
                      f"  upstream: http://127.0.0.1:{free_port()}\n")
    column = config.read_text().splitlines()[6].index("'127") + 1
    located = (f'{config}:7:{column}: proxy.listen[1]: "127.0.0.1:{port}" overlaps ":{port}" (the same port, and one of '
               f'them listens on every address of the other): give one of them another port')
    r = run(binary, "check-config", str(config), timeout=10)
    assert r.returncode == 1 and located in r.stdout + r.stderr, r.stdout + r.stderr
    r = run(binary, "serve", "--config", str(config), "--web.listen-address", f"127.0.0.1:{free_port()}", timeout=10)
    assert r.returncode == 1 and located in r.stderr, r.stderr


def test_busy_port_is_a_clear_error(binary):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run(binary, "serve", "--web.listen-address", f"127.0.0.1:{port}")
    assert r.returncode == 1
    assert f"127.0.0.1:{port}" in r.stderr and "in use" in r.stderr.lower()


def test_a_busy_proxy_port_is_named_the_proxys(binary, tmp_path):
    """The proxy's listen address taken, the web port free: exit 1 naming the proxy (before, "bind to … Address
    already in use" left which of the process's ports it was unsaid)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        config = tmp_path / "c.yaml"
        config.write_text("models:\n  - name: m\n    task: regression\n    versions: [default]\n"
                          "    features: [{name: a, type: numeric}]\n"
                          f"proxy:\n  listen: [\"127.0.0.1:{port}\"]\n  upstream: http://127.0.0.1:{free_port()}\n")
        r = run(binary, "serve", "--config", str(config), "--web.listen-address", f"127.0.0.1:{free_port()}",
                timeout=10)
    assert r.returncode == 1, r.stderr
    assert "proxy (proxy.listen)" in r.stderr and f"127.0.0.1:{port}" in r.stderr and "in use" in r.stderr.lower()


def test_json_logs(start_exporter):
    e = start_exporter("--log.format", "json")
    e.get("/-/healthy")
    lines = [l for l in e.log_path.read_text().splitlines() if l.strip()]
    records = [json.loads(l) for l in lines]
    assert any(r.get("msg") == "listening" and "addresses" in r for r in records)
    assert all({"ts", "level", "msg"} <= r.keys() for r in records)


def test_logs_name_levels_and_time_as_go_exporters_do(binary, tmp_path):
    """`--log.level warn` is taken (Go's exporters' name: it was refused, and a unit file shared with them failed to
    start); a warning says `level=warn` (was `warning`) and every timestamp is RFC 3339 with its zone (was none)."""
    port = free_port()
    log = tmp_path / "log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(binary), "serve", "--web.listen-address", f"127.0.0.1:{port}", "--log.level",
                                 "warn", "--storage.lock-wait", "5s"], stdout=out, stderr=subprocess.STDOUT)
    try:
        def healthy():
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/-/healthy", timeout=2).status == 200
            except OSError:
                return proc.poll() is not None
        wait_for(healthy, timeout=30, interval=0.1, what="the exporter to answer")
        assert proc.poll() is None, log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = [l for l in log.read_text().splitlines() if l.strip()]
    assert lines and all(" level=warn " in l for l in lines), lines  # info lines left out at warn
    assert any("--storage.lock-wait is ignored" in l for l in lines), lines
    for line in lines:
        stamp = line.split(" ")[0].removeprefix("ts=")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), line
        parsed = datetime.datetime.fromisoformat(stamp)
        assert parsed.tzinfo is not None and abs(parsed.timestamp() - time.time()) < 600


def test_check_config_accepts_the_example_and_locates_errors(binary, tmp_path):
    r = run(binary, "check-config", "examples/models.yaml")
    assert r.returncode == 0, r.stderr
    assert "2 model(s): fraud, eta" in r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: m\n    task: regression\n    versions: [v]\n    colour: blue\n")
    r = run(binary, "check-config", str(bad))
    assert r.returncode == 1
    assert f"{bad}:5:5: models[0].colour: unknown field" in r.stderr
    r = run(binary, "check-config", str(tmp_path / "missing.yaml"))
    assert r.returncode == 1 and "missing.yaml" in r.stderr and "cannot read" in r.stderr
    # A model without a collectors list over its max_series: at the model's entry (it had no line; for a moment it
    # had a code-built configuration's field path instead).
    over = tmp_path / "over.yaml"
    over.write_text("models:\n  - name: m\n    task: regression\n    versions: [v]\n    max_series: 1\n")
    r = run(binary, "check-config", str(over))
    assert r.returncode == 1
    assert f'{over}:2:5: model "m": its collectors may create up to' in r.stderr, r.stderr


def test_a_negative_number_is_named_as_out_of_range(binary):
    """`--web.max-requests -3` was read as a missing value followed by a flag `-3`; now the number is read and
    refused with its range, as `--web.max-requests=-3` already was."""
    for args, said in [(["--web.max-requests", "-3"], "--web.max-requests must be >= 0"),
                       (["--shutdown-timeout", "-1"], "--shutdown-timeout: -1.0 is not between 0.001 and 86400")]:
        r = run(binary, "serve", *args)
        assert r.returncode != 0 and said in r.stderr and "Missing value" not in r.stderr, r.stderr


def test_reserved_model_names_are_refused(binary, tmp_path):
    """`__unknown__` counts requests to models that are not configured: a model of that name shared its series (and
    its collector-duration series) with them. Refused as `__service__` already was."""
    for name, why in [("__unknown__", "reserved for requests to models that are not configured"),
                      ("__service__", "reserved for service-wide SLOs")]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(f"models:\n  - name: {name}\n    task: regression\n    versions: [v]\n")
        r = run(binary, "check-config", str(bad))
        assert r.returncode == 1 and f'{bad}:2:11: models[0].name: "{name}" is {why}' in r.stderr, r.stderr


def test_zero_models_are_valid(binary, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("models: []\n")
    r = run(binary, "check-config", str(empty))
    assert r.returncode == 0 and r.stdout == f"{empty}: valid, no models\n", r.stdout + r.stderr
    rules = tmp_path / "rules.yaml"
    r = run(binary, "rules", "--config", str(empty), "--out", str(rules))
    assert r.returncode == 0, r.stderr
    check = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_serve_without_config_monitors_no_models_and_says_so_once(start_exporter):
    e = start_exporter()
    status, _, body = e.post("/api/v1/models/fraud/predictions", b'{"version":"v1","prediction":"fraud"}\n',
                             {"Content-Type": "application/x-ndjson"})
    assert status == 404 and body == b'unknown model "fraud" (no models are configured)\n'
    status, _, metrics = e.get("/metrics")
    assert status == 200 and b'model="fraud"' not in metrics and b"mlops_exporter_build_info" in metrics
    assert e.get("/")[0] == 200
    said = [line for line in e.log_path.read_text().splitlines() if "no models" in line]
    assert len(said) == 1 and "level=info" in said[0], said


def test_invalid_config_at_start_is_a_json_line_with_json_logs(binary, tmp_path):
    """With `--log.format json` the refusal of a configuration is a JSON log line like every later error (it was
    plain text, and JSON log collectors lost the most important start failure)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: m\n    task: nope\n    versions: [v]\n")
    r = run(binary, "serve", "--config", str(bad), "--web.listen-address", "127.0.0.1:0", "--log.format", "json")
    assert r.returncode == 1
    records = [json.loads(line) for line in r.stderr.splitlines() if line.strip()]
    assert [x["level"] for x in records] == ["error"], r.stderr
    assert records[0]["msg"] == "cannot start: invalid configuration"
    assert f"{bad}:3:11: models[0].task: unknown task" in records[0]["error"]


def test_invalid_config_at_start_stops_with_the_location(binary, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: m\n    task: nope\n    versions: [v]\n")
    r = run(binary, "serve", "--config", str(bad), "--web.listen-address", "127.0.0.1:0")
    assert r.returncode == 1
    assert f"{bad}:3:11: models[0].task: unknown task" in r.stderr


def test_reload_keeps_the_old_configuration_when_the_new_one_is_bad(start_exporter, tmp_path):
    import signal
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  - {name: a, task: regression, versions: [v]}\n")
    e = start_exporter("--config", str(config))

    def gauge(name):
        for line in e.get("/metrics")[2].decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])

    assert gauge("mlops_exporter_config_last_reload_successful") == 1
    config.write_text("models:\n  - {name: a, task: regression}\n")
    status, _, body = e.get("/-/reload", method="POST")
    assert status == 500 and b"models[0].versions: required" in body and body.count(b"\n") == 1
    assert gauge("mlops_exporter_config_last_reload_successful") == 0
    assert e.get("/-/reload")[0] == 405
    plain = start_exporter()
    status, _, body = plain.get("/-/reload", method="POST")
    assert status == 409 and b"no --config" in body
    config.write_text("models:\n  - {name: a, task: regression, versions: [v2]}\n")
    e.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: gauge("mlops_exporter_config_last_reload_successful") == 1, what="SIGHUP reload")
    # The gauge is set just before the line is logged: a scrape in between sees one without the other.
    wait_for(lambda: "configuration reloaded" in e.log_path.read_text(), what="the reload logged")


def test_a_reload_with_an_overlong_duration_is_refused_and_the_exporter_keeps_serving(start_exporter, tmp_path):
    # 10^16 years is more milliseconds than an Int64 holds: converting it trapped, and the reload killed the process.
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  - {name: a, task: regression, versions: [v]}\n")
    e = start_exporter("--config", str(config))
    config.write_text(
        "models:\n  - {name: a, task: regression, versions: [v], window: {duration: 10000000000000000y}}\n")
    status, _, body = e.post("/-/reload", b"")
    assert status == 500 and b'models[0].window.duration: "10000000000000000y" is not a duration' in body, body
    assert e.proc.poll() is None
    assert e.get("/-/healthy")[0] == 200
    status, _, _ = e.post(
        "/api/v1/models/a/predictions", b'{"version": "v", "prediction": 1}\n',
        headers={"Content-Type": "application/x-ndjson"})
    assert status == 202


def test_a_reload_with_thousands_of_problems_answers_and_logs_a_bounded_amount(start_exporter, tmp_path):
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  - {name: a, task: regression, versions: [v]}\n")
    e = start_exporter("--config", str(config))
    # 3,000 models without versions: 3,000 problems.
    config.write_text("models:\n" + "".join(f"  - {{name: m{i}, task: regression}}\n" for i in range(3000)))
    status, _, body = e.get("/-/reload", method="POST")
    assert status == 500 and body.count(b"\n") == 1, body[:200]
    assert body.count(b"versions: required") == 20 and b"and 2980 more (see the log)" in body
    assert len(body) < 4096
    wait_for(lambda: "more problems not logged" in e.log_path.read_text(), what="the summary log line")
    log = e.log_path.read_text()
    assert log.count("configuration reload rejected; keeping") == 100 and "not_logged=2900" in log


def test_out_of_range_timeouts_are_refused(binary):
    for flag, value in [("--web.idle-timeout", "inf"), ("--shutdown-timeout", "1e300"),
                        ("--web.header-timeout", "0.0001"), ("--web.write-timeout", "nan")]:
        r = run(binary, "serve", flag, value, "--web.listen-address", "127.0.0.1:0")
        assert r.returncode not in (0, 132) and flag in r.stderr, (flag, r.returncode, r.stderr)


def test_many_listen_addresses_all_answer(start_exporter):
    import re
    import urllib.request
    e = start_exporter(*sum([["--web.listen-address", "127.0.0.1:0"] for _ in range(19)], []))

    # The fixture returns once the log holds a first address: the line of twenty may still be being written (ci20
    # read it cut short). Wait for the whole line.
    def listening_line():
        for line in e.log_path.read_text().splitlines(keepends=True):
            if "msg=listening" in line and line.endswith("\n"):
                return line
        return None

    line = wait_for(listening_line, timeout=10, interval=0.05, what="the whole listening line")
    ports = set(re.findall(r"127\.0\.0\.1:(\d+)", line))
    assert len(ports) == 20
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/healthy", timeout=5) as r:
            assert r.status == 200


def test_demo_rates_and_durations_out_of_range_are_usage_errors(binary):
    """`demo --rate -1`, `--time-scale 0`, `--duration 0` were checked when the demo ran and exited 2 (the demo's
    run-time failure, and batch's "drift detected"); usage errors exit 64, as the demo's bad --target does."""
    for args, message in [(["--rate", "-1"], "--rate must be in (0, 100000]"),
                          (["--rate", "nan"], "--rate must be in (0, 100000]"),
                          (["--time-scale", "0"], "--time-scale must be in (0, 100000]"),
                          (["--duration", "0"], "--duration must be positive")]:
        r = run(binary, "demo", "--target", "http://127.0.0.1:1", *args, timeout=10)
        assert r.returncode == 64 and message in r.stderr, (args, r.returncode, r.stderr)


def test_results_that_cannot_be_written_to_standard_output_fail_the_command(binary, tmp_path):
    """`rules > /dev/full` and `check-config FILE > /dev/full` printed into a full disk and exited 0 (a CI step writing
    its rule file so got an empty file and a green step); `batch` already failed so. Now each exits 1 and says why."""
    config = tmp_path / "m.yaml"
    config.write_text("models:\n  - name: m\n    task: regression\n    versions: [v]\n"
                      "    slos:\n      - {type: availability, objective: 99.9, period: 28d}\n")
    for args in (["rules", "--config", str(config)], ["check-config", str(config)]):
        with open("/dev/full", "w") as full:
            r = subprocess.run([str(binary), *args], stdout=full, stderr=subprocess.PIPE, text=True, timeout=30)
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        assert "cannot write to standard output: No space left on device" in r.stderr, (args, r.stderr)


def test_rules_are_not_written_over_the_configuration(binary, tmp_path):
    """`rules --config m.yaml --out m.yaml` replaced the configuration with the rules and exited 0 (profile refused
    the same); refused now, through a link too, and the configuration is left as it was."""
    config = tmp_path / "m.yaml"
    text = ("models:\n  - name: m\n    task: regression\n    versions: [v]\n"
            "    slos:\n      - {type: availability, objective: 99.9, period: 28d}\n")
    config.write_text(text)
    link = tmp_path / "link.yaml"
    link.symlink_to("m.yaml")
    for out in (config, link):
        r = run(binary, "rules", "--config", str(config), "--out", str(out))
        assert r.returncode == 1, (out, r.stderr)
        assert f"{out}: cannot write: this is the configuration ({config})" in r.stderr, r.stderr
        assert config.read_text() == text
