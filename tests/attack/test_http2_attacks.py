"""Attacks on the HTTP/2 server reproduced in seconds (loopback only, bounded in count and time): a client that
never opens its flow-control window and asks for one response after another. Each asserts the bound that now
holds: the exporter's RSS under a stated ceiling, a scrape served meanwhile, the refusal counted in
mlops_exporter_http_errors_total{reason}."""

import socket
import struct
import time

import hpack
import pytest

from conftest import ROOT, scrape, sample
from test_body_attacks import rss_bytes

MiB = 1 << 20
MODELS = ["--config", str(ROOT / "examples" / "models.yaml")]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, RST_STREAM, SETTINGS = 1, 3, 4
END_STREAM_AND_HEADERS, ACK = 0x5, 0x1


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def frames(buffer):
    """The complete frames at the start of `buffer` as (type, stream), and the bytes left."""
    found, offset = [], 0
    while offset + 9 <= len(buffer):
        length = int.from_bytes(buffer[offset:offset + 3], "big")
        if offset + 9 + length > len(buffer):
            break
        found.append((buffer[offset + 3], int.from_bytes(buffer[offset + 5:offset + 9], "big") & 0x7FFFFFFF))
        offset += 9 + length
    return found, buffer[offset:]


def zero_window_client(port, requests, path="/metrics"):
    """One h2c connection with SETTINGS_INITIAL_WINDOW_SIZE 0 that sends `requests` GETs one after another, each
    once the previous one was answered (its response HEADERS, which flow control does not hold back) or refused
    (RST_STREAM), so that no two are rendered together, and never reads a byte of a body. Returns (socket, answered,
    refused); the socket is left open, its responses unsent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    encoder = hpack.Encoder()
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)) + frame(SETTINGS, ACK, 0))
    answered = refused = 0
    pending = b""
    for i in range(requests):
        stream = 1 + 2 * i
        block = encoder.encode([(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "x")])
        sock.sendall(frame(HEADERS, END_STREAM_AND_HEADERS, stream, block))
        outcome = None
        while outcome is None:
            data = sock.recv(65536)
            assert data, "the exporter closed the connection"
            found, pending = frames(pending + data)
            for kind, sid in found:
                if sid == stream and kind == HEADERS:
                    outcome = "answered"
                elif sid == stream and kind == RST_STREAM:
                    outcome = "refused"
        answered += outcome == "answered"
        refused += outcome == "refused"
    return sock, answered, refused


@pytest.mark.xfail(strict=True, reason="known limit (docs/security.md): answers a zero-window peer never takes are kept")
def test_responses_a_peer_never_takes_are_bounded_per_connection(start_exporter):
    """A client that never opens its window has every answer kept whole until the idle timeout: 10 connections of
    100 sequential GET /metrics (42 KB each) hold 4.2 MB each, +45 MiB in all (1024 connections: 4 GB, and one
    request a minute keeps them). The bound this asserts (1 MiB of unsent response bodies per connection, new
    streams refused beyond it and counted stream_refused) does not exist yet: see docs/security.md."""
    exporter = start_exporter(*MODELS)
    _, _, body = exporter.get("/metrics")
    size = len(body)
    assert size > 20_000, size  # the bound below is only meaningful when each answer is big
    start = rss_bytes(exporter)
    socks, answered, refused = [], 0, 0
    deadline = time.monotonic() + 60
    for _ in range(10):
        sock, a, r = zero_window_client(exporter.port, 100)
        socks.append(sock)
        answered += a
        refused += r
        assert time.monotonic() < deadline
    grown = rss_bytes(exporter) - start
    started = time.monotonic()
    _, samples = scrape(exporter)
    assert time.monotonic() - started < 2
    for sock in socks:
        sock.close()
    # At most 1 MiB (plus the answer that crossed it) per connection.
    assert answered <= 10 * (MiB // size + 2), (answered, refused)
    assert refused >= 1000 - 10 * (MiB // size + 2), (answered, refused)
    assert grown < 25 * MiB, f"RSS grew {grown / MiB:.1f} MiB"
    assert sample(samples, "mlops_exporter_http_errors_total", reason="stream_refused") >= refused
