"""The command line: version, help, argument errors, bind errors and log formats."""

import json
import socket
import subprocess

from conftest import wait_for


def run(binary, *args, timeout=30):
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)


def test_version_and_help(binary):
    r = run(binary, "--version")
    assert r.returncode == 0 and r.stdout.strip() == "0.1.0"
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
    assert r.returncode == 1 and "nonsense" in r.stderr


def test_busy_port_is_a_clear_error(binary):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run(binary, "serve", "--web.listen-address", f"127.0.0.1:{port}")
    assert r.returncode == 1
    assert f"127.0.0.1:{port}" in r.stderr and "in use" in r.stderr.lower()


def test_json_logs(start_exporter):
    e = start_exporter("--log.format", "json")
    e.get("/-/healthy")
    lines = [l for l in e.log_path.read_text().splitlines() if l.strip()]
    records = [json.loads(l) for l in lines]
    assert any(r.get("msg") == "listening" and "addresses" in r for r in records)
    assert all({"ts", "level", "msg"} <= r.keys() for r in records)
