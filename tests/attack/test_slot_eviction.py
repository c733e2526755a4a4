"""Connection slots held by clients that never send a request: connecting and sending nothing, half a request head,
only the HTTP/2 preface, or half a TLS ClientHello. Before, with every slot held that way, a new client waited in the
kernel backlog until the first holder's 10 s header (or handshake) timeout, the HTTP/2 preface-only ones even for the
60 s idle timeout; an attacker renewing its connections every 10 s kept new clients out for good. Now, at the cap, a
waiting client makes the server close the oldest connection that has had no request yet, once it is 1 s old
(`HTTPServer.Configuration.capacityEvictionAge`), counted `evicted`: new clients are answered within the second.
Connections kept alive idle after a request, renewed every 0.3 s (an attacker's way around any idle age): before,
never evicted, so every new client waited for as long as the renewals went on (a probe: 1024 connections renewed
every 2.5 s kept every scrape out); now, when no connection awaits its first request, the one idle the longest is
closed (`evicted_idle`). Each case: 50 slots, loopback, < 10 s."""

import threading
import time

import subprocess

import pytest

from conftest import scrape, sample
from slot_hold import hold_all, open_connections, renew, time_new_client

SLOTS = 50


def self_signed(tmp_path):
    """A web configuration serving TLS with a fresh self-signed certificate."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", "server.key", "-out", "server.crt", "-days", "1", "-subj", "/CN=localhost"],
                   cwd=tmp_path, check=True, capture_output=True)
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {tmp_path}/server.crt\n  key_file: {tmp_path}/server.key\n")
    return web


@pytest.mark.parametrize("kind", ["silent", "partial_head", "h2_preface", "tls", "kept_alive"])
def test_slots_held_without_a_request_make_room_for_new_clients(start_exporter, tmp_path, kind):
    tls = ["--web.config.file", str(self_signed(tmp_path))] if kind == "tls" else []
    exporter = start_exporter("--web.max-connections", str(SLOTS), *tls)
    baseline = open_connections(exporter.proc.pid)
    held = hold_all(exporter.port, exporter.proc.pid, SLOTS, kind, baseline, deadline_seconds=10)
    stop = threading.Event()

    def renewing():  # each kept-alive holder asks again every 0.3 s, bounded in time
        deadline = time.monotonic() + 15
        live = list(held)
        while live and not stop.is_set() and time.monotonic() < deadline:
            live = [sock for sock in live if renew(sock)]
            stop.wait(0.3)

    renewer = threading.Thread(target=renewing, daemon=True)
    if kind == "kept_alive":
        renewer.start()
    try:
        assert open_connections(exporter.proc.pid) == baseline + SLOTS
        # The holders are at least 1 s old once the first new client has waited that long: each of three new
        # clients (one after another, each taking a slot for its own exchange) is answered well before any holder's
        # 10 s timeout.
        waits = [time_new_client(exporter.port, tls=kind == "tls", timeout=8) for _ in range(3)]
        assert max(waits) < 3.0, waits
    finally:
        stop.set()
        if renewer.is_alive():
            renewer.join(timeout=20)
        for sock in held:
            sock.close()
    # Counted, and only as many as were needed (a slot freed by a client that left needs no eviction).
    reason = "evicted_idle" if kind == "kept_alive" else "evicted"
    evicted = sample(scrape(exporter)[1], "mlops_exporter_http_errors_total", reason=reason) if kind != "tls" \
        else None
    if evicted is not None:
        assert 1 <= evicted <= 3
    assert exporter.proc.poll() is None
