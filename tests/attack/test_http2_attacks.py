"""Attacks on the HTTP/2 server reproduced in seconds (loopback only, bounded in count and time): a client that
never opens its flow-control window and asks for one response after another. Each asserts the bound that now
holds: the exporter's RSS under a stated ceiling, a scrape served meanwhile, and the waiting requests answered once
the peer reads."""

import socket
import struct
import time

import hpack

from conftest import ROOT, scrape
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


WINDOW_UPDATE = 8


def zero_window_client(port, requests, path="/metrics"):
    """One h2c connection with SETTINGS_INITIAL_WINDOW_SIZE 0 that sends `requests` GETs one after another, each
    once the previous one was answered (its response HEADERS, which flow control does not hold back) or refused
    (RST_STREAM), so that no two are rendered together, and never reads a byte of a body. A request that gets
    neither within a second waits in the exporter (the answers held for this peer are at their bound): the rest are
    sent without waiting. Returns (socket, answered, refused, unanswered, leftover bytes); the socket is left open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    encoder = hpack.Encoder()
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)) + frame(SETTINGS, ACK, 0))
    answered = refused = 0
    pending = b""
    waiting = False
    for i in range(requests):
        stream = 1 + 2 * i
        block = encoder.encode([(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "x")])
        sock.sendall(frame(HEADERS, END_STREAM_AND_HEADERS, stream, block))
        if waiting:
            continue
        outcome = None
        sock.settimeout(1.0)
        while outcome is None:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                waiting = True
                break
            assert data, "the exporter closed the connection"
            found, pending = frames(pending + data)
            for kind, sid in found:
                if sid == stream and kind == HEADERS:
                    outcome = "answered"
                elif sid == stream and kind == RST_STREAM:
                    outcome = "refused"
        answered += outcome == "answered"
        refused += outcome == "refused"
    sock.settimeout(5)
    return sock, answered, refused, requests - answered - refused, pending


def test_responses_a_peer_never_takes_are_bounded_per_connection(start_exporter):
    """A client that never opens its window had every answer kept whole until the idle timeout: 10 connections of
    100 sequential GET /metrics (42 KB each) held 4.2 MB each, +45 MiB in all (1024 connections: 4 GB, and one
    request a minute keeps them). Now at most 1 MiB of answers (and the one that crossed it) is held per
    connection; later requests wait, unanswered, and are answered once the peer opens its window."""
    exporter = start_exporter(*MODELS)
    _, _, body = exporter.get("/metrics")
    size = len(body)
    assert size > 20_000, size  # the bound below is only meaningful when each answer is big
    start = rss_bytes(exporter)
    clients, answered, refused, unanswered = [], 0, 0, 0
    deadline = time.monotonic() + 60
    for _ in range(10):
        sock, a, r, u, pending = zero_window_client(exporter.port, 100)
        clients.append((sock, a, pending))
        answered += a
        refused += r
        unanswered += u
        assert time.monotonic() < deadline
    grown = rss_bytes(exporter) - start
    started = time.monotonic()
    _, samples = scrape(exporter)
    assert time.monotonic() - started < 2
    # At most 1 MiB (plus the answer that crossed it) per connection; the rest wait, none refused.
    assert answered <= 10 * (MiB // size + 2), (answered, refused, unanswered)
    assert refused == 0 and answered + unanswered == 1000, (answered, refused, unanswered)
    assert grown < 25 * MiB, f"RSS grew {grown / MiB:.1f} MiB"

    # The waiting requests are answered once the peer takes its answers: open one connection's windows, read it all.
    sock, got, pending = clients[0]
    sock.sendall(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, (1 << 31) - 1))
                 + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", (1 << 31) - 1 - 65535)))
    heads = set()
    read_until = time.monotonic() + 20
    while len(heads) < 100 - got and time.monotonic() < read_until:
        data = sock.recv(1 << 20)
        assert data, "the exporter closed the connection"
        found, pending = frames(pending + data)
        heads.update(sid for kind, sid in found if kind == HEADERS)
    assert len(heads) >= 100 - got, f"{got} answered before, {len(heads)} after the window opened"
    for sock, _, _ in clients:
        sock.close()
