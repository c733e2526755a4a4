"""Hostile configuration and reference files against the real binary: a YAML alias bomb at
`check-config` and through `POST /-/reload`, a list far over the maximum, and reference data that is not
UTF-8. Each must be refused quickly, with the file and line, within bounded memory (the children run
under an address-space limit, so a regression fails instead of eating the machine)."""

import resource
import subprocess
import time

from conftest import Exporter, sample, scrape, wait_for

GIB = 1 << 30
MIB = 1 << 20
ADDRESS_SPACE = 2 * GIB
RSS_CEILING = 300 * MIB
MAX_LIST_ITEMS = 10_000  # ConfigLimits.maxListItems

VALID = """\
models:
  - name: fraud
    task: regression
    versions: [v1]
    collectors: [service]
"""


def limited():
    """preexec_fn: the child may map at most ADDRESS_SPACE bytes."""
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run(binary, *args, timeout=30):
    started = time.monotonic()
    result = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout,
                            preexec_fn=limited)
    return result, time.monotonic() - started


def alias_bomb(levels=9, width=9):
    """A "billion laughs" (width^levels strings from a few hundred bytes) under a collector's options;
    returns the text and the line of the first anchor whose expansion passes a million values."""
    lines = VALID.replace("collectors: [service]", "collectors:\n      - name: service\n        options:").splitlines()
    lines.append(f"          a0: &a0 [{', '.join(['lol'] * width)}]")
    values, passing = width + 1, None
    for level in range(1, levels):
        lines.append(f"          a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
        values = 1 + width * values
        if passing is None and values > 1_000_000:
            passing = (len(lines), level)
    return "\n".join(lines) + "\n", passing


def test_check_config_refuses_an_alias_bomb_quickly_with_its_line(binary, tmp_path):
    text, (line, level) = alias_bomb()
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(text)
    assert len(text.encode()) < 1000
    result, elapsed = run(binary, "check-config", str(bomb))
    assert result.returncode == 1, result
    assert elapsed < 5, elapsed
    assert f"{bomb}:{line}:15: models[0].collectors[0].options.a{level}: more than 1000000 values" in result.stderr
    assert "YAML aliases are expanded" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def rss(pid, field):
    """`VmRSS` or `VmHWM` (the peak) of process `pid`, in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_reload_refuses_an_alias_bomb_and_keeps_serving(binary, tmp_path):
    config = tmp_path / "models.yaml"
    config.write_text(VALID)
    exporter = Exporter(binary, ["--config", str(config)], tmp_path, preexec_fn=limited)
    try:
        assert sample(scrape(exporter)[1], "mlops_model_info", model="fraud", version="v1", task="regression",
                      reference_sha256="") == 1
        text, (line, _) = alias_bomb()
        config.write_text(text)
        started = time.monotonic()
        status, _, body = exporter.post("/-/reload", b"")
        assert time.monotonic() - started < 5
        reason = body.decode()
        assert status == 500, reason
        assert reason.endswith("\n") and reason.count("\n") == 1, reason
        assert reason.startswith("configuration rejected, previous one kept: ")
        assert f"{config}:{line}:15: models[0].collectors[0].options." in reason
        # Still serving, with the previous configuration, and the failure is counted.
        _, samples = scrape(exporter)
        assert sample(samples, "mlops_exporter_config_last_reload_successful") == 0
        assert sample(samples, "mlops_exporter_config_reloads_total", result="failure") == 1
        assert sample(samples, "mlops_model_info", model="fraud", version="v1", task="regression",
                      reference_sha256="") == 1
        assert exporter.proc.poll() is None
        peak = rss(exporter.proc.pid, "VmHWM")
        assert rss(exporter.proc.pid, "VmRSS") <= peak < RSS_CEILING, peak
    finally:
        exporter.stop()


def test_check_config_refuses_200000_versions_quickly_at_the_list(binary, tmp_path):
    versions = ", ".join(f"v{i}" for i in range(200_000))
    big = tmp_path / "versions.yaml"
    big.write_text(VALID.replace("versions: [v1]", f"versions: [{versions}]"))
    result, elapsed = run(binary, "check-config", str(big))
    assert elapsed < 5, elapsed
    assert result.returncode == 1, result
    assert result.stderr.strip() == (
        f"{big}:4:15: models[0].versions: 200000 items, more than {MAX_LIST_ITEMS} (the most a list may have)")


def test_check_config_accepts_a_list_at_the_maximum(binary, tmp_path):
    versions = ", ".join(f"v{i}" for i in range(MAX_LIST_ITEMS))
    big = tmp_path / "versions.yaml"
    big.write_text(VALID.replace("versions: [v1]", f"versions: [{versions}]").replace("[service]", "[]"))
    result, elapsed = run(binary, "check-config", str(big))
    assert elapsed < 5, elapsed
    assert result.returncode == 0, result.stderr


def test_profile_refuses_csv_that_is_not_utf8_naming_line_and_column(binary, tmp_path):
    config = tmp_path / "models.yaml"
    config.write_text(VALID + "    reference: ref.json\n    features:\n      - {name: country, type: categorical}\n")
    data = tmp_path / "data.csv"
    data.write_bytes(b"country,prediction\nDE,1.5\nF\xffR,2\n")
    out = tmp_path / "ref.json"
    result, _ = run(binary, "profile", "--config", str(config), "--model", "fraud", "--input", str(data),
                    "--out", str(out))
    assert result.returncode == 1, result
    assert result.stderr.strip() == f"{data}:3:2: column \"country\": invalid UTF-8 (byte 0xFF); the input must be UTF-8 text"
    assert not out.exists()


def test_a_flood_of_reload_requests_shares_reloads(start_exporter, tmp_path):
    """200 `POST /-/reload` (no credentials, empty bodies) over 100 connections, two pipelined on each: before, each
    one re-read the file, rebuilt the models and queued a checkpoint (200 reloads, 3.6 s of CPU in a debug build);
    now the requests that arrive while a reload runs share the next one, and each is still answered by a reload that
    began after it. (A connection's pipelined POSTs are handled one after another, so the flood is spread over many
    connections: twenty connections of ten each made ten waves of twenty, 43 reloads in one CI run.)"""
    import socket

    config = tmp_path / "models.yaml"
    config.write_text(VALID)
    exporter = start_exporter("--config", str(config), "--storage.path", str(tmp_path / "state"))
    request = b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    connections = [socket.create_connection(("127.0.0.1", exporter.port), timeout=30) for _ in range(100)]
    for c in connections:
        c.sendall(request * 2)
    answers = []
    for c in connections:
        data = b""
        while data.count(b"HTTP/1.1 ") < 2 or not data.endswith(b"configuration reloaded\n"):
            chunk = c.recv(65536)
            assert chunk, data
            data += chunk
        answers += [a.split(b"\r\n", 1)[0] for a in data.split(b"HTTP/1.1 ")[1:]]
        c.close()
    assert answers == [b"200 OK"] * 200, set(answers)
    _, samples = scrape(exporter)
    reloads = sample(samples, "mlops_exporter_config_reloads_total", result="success")
    assert 1 <= reloads <= 40, reloads
    assert sample(samples, "mlops_exporter_http_requests_total", handler="reload", code="200",
                  protocol="http/1.1") == 200


def test_reload_requests_one_after_another_run_at_most_one_reload_a_second(start_exporter, tmp_path):
    """One client posting `/-/reload` again as soon as each is answered (no credentials): before, one reload after
    another, 1,500 a second in a release build (a core busy, 1.2 MB of log a second); now reloads for requests begin
    at least a second apart, and each request is answered by a reload that began after it."""
    import socket
    import time

    config = tmp_path / "models.yaml"
    config.write_text(VALID)
    exporter = start_exporter("--config", str(config))
    request = b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    c = socket.create_connection(("127.0.0.1", exporter.port), timeout=30)
    answered, started = 0, time.monotonic()
    while time.monotonic() - started < 2.5 and answered < 1000:
        c.sendall(request)
        data = b""
        while not data.endswith(b"configuration reloaded\n"):
            chunk = c.recv(65536)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 "), data
        answered += 1
    elapsed = time.monotonic() - started
    c.close()
    _, samples = scrape(exporter)
    reloads = sample(samples, "mlops_exporter_config_reloads_total", result="success")
    assert reloads == answered, (reloads, answered)
    # The first at once, then one a second: at most 1 + elapsed of them.
    assert reloads <= 1 + int(elapsed), (reloads, elapsed)

