"""Attacks on the HTTP/2 server reproduced in seconds (loopback only, bounded in count and time): a client that
never opens its flow-control window and asks for one response after another. Each asserts the bound that now
holds: the exporter's RSS under a stated ceiling, a scrape served meanwhile, and the waiting requests answered once
the peer reads."""

import socket
import struct
import time

import hpack

from conftest import ROOT, sample, scrape
from test_body_attacks import rss_bytes

MiB = 1 << 20
MODELS = ["--config", str(ROOT / "examples" / "models.yaml")]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, RST_STREAM, SETTINGS, CONTINUATION = 1, 3, 4, 9
END_HEADERS = 0x4
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


def burst_client(port, requests, window=0):
    """One h2c connection with SETTINGS_INITIAL_WINDOW_SIZE `window` that sends `requests` GET /metrics in one
    write, each with its own scrape timeout (so that each is rendered on its own, not shared)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    encoder = hpack.Encoder()
    out = PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, window)) + frame(SETTINGS, ACK, 0)
    for i in range(requests):
        block = encoder.encode([(":method", "GET"), (":path", "/metrics"), (":scheme", "http"), (":authority", "x"),
                                ("x-prometheus-scrape-timeout-seconds", str(200 - i))])
        out += frame(HEADERS, END_STREAM_AND_HEADERS, 1 + 2 * i, block)
    sock.sendall(out)
    return sock


def read_heads(sock, streams, seconds, pending=b""):
    """Reads frames for up to `seconds` (or until every stream in `streams` has its HEADERS): (heads, resets, rest)."""
    heads, resets = set(), set()
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while not streams <= heads | resets and time.monotonic() < deadline:
        try:
            data = sock.recv(1 << 20)
        except socket.timeout:
            continue
        assert data, "the exporter closed the connection"
        found, pending = frames(pending + data)
        heads.update(sid for kind, sid in found if kind == HEADERS)
        resets.update(sid for kind, sid in found if kind == RST_STREAM)
    return heads, resets, pending


def test_requests_sent_together_start_only_as_far_as_their_answers_fit(start_exporter):
    """20 scrapes sent in one write by a peer whose windows are shut all started before any answer existed (the
    bound on held answers was checked only against answers already held): all 20 answers were kept, 20 x 190 KB per
    connection (the hardening review held 7.5 MiB per connection with 40). Now a GET starts only while the answers
    held, plus one as large as the largest answer so far for it and each GET under way, stay within 1 MiB: the rest
    wait, none refused, and are answered once the peer opens its windows."""
    exporter = start_exporter(*MODELS, "--bench.synthetic-series", "3000")
    warm = burst_client(exporter.port, 1, window=65535)  # one answer over HTTP/2: its size is the estimate
    assert 1 in read_heads(warm, {1}, 10)[0]
    warm.close()
    _, _, body = exporter.get("/metrics")
    size = len(body)
    assert size > 150_000, size
    start = rss_bytes(exporter)
    sock = burst_client(exporter.port, 20)
    streams = {1 + 2 * i for i in range(20)}
    heads, resets, pending = read_heads(sock, streams, 3)
    assert not resets, resets
    assert 1 <= len(heads) <= MiB // size + 1, len(heads)
    assert rss_bytes(exporter) - start < 16 * MiB
    # The peer opens its windows and reads: every request is answered.
    sock.sendall(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, (1 << 31) - 1))
                 + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", (1 << 31) - 1 - 65535)))
    more, resets, _ = read_heads(sock, streams - heads, 30, pending)
    assert heads | more == streams and not resets, (len(heads), len(more), resets)
    sock.close()


def test_a_window_opened_a_byte_at_a_time_is_no_progress(start_exporter):
    """A peer that opens its windows one byte every 0.3 s kept a stalled answer, and its connection, past any write
    timeout: each byte framed counted as progress (hardening review: 10 connections held for 42 s with a 30 s
    timeout). Progress is now 4 KiB within the timeout (or all that is held): the connection is closed as a write
    stall."""
    exporter = start_exporter(*MODELS, "--bench.synthetic-series", "3000", "--web.write-timeout", "2")
    sock = burst_client(exporter.port, 1)
    started = last = time.monotonic()
    sock.settimeout(0.05)
    closed_at = None
    while closed_at is None and time.monotonic() - started < 10:
        if time.monotonic() - last >= 0.3:  # one byte of window every 0.3 s, however fast the answer's bytes come
            last = time.monotonic()
            sock.sendall(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1))
                         + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1)))
        try:
            if sock.recv(65536) == b"":
                closed_at = time.monotonic()
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed_at = time.monotonic()
    assert closed_at is not None, "the trickling peer still holds its connection after 10 s"
    assert closed_at - started < 5, closed_at - started
    _, samples = scrape(exporter)
    assert sum(v for (name, labels), v in samples.items()
               if name == "mlops_exporter_http_errors_total" and ("reason", "write_stall") in labels) == 1
    sock.close()


def read_until_closed_or_stream(sock, stream, seconds):
    """Reads until the exporter closes the connection ("closed"), sends HEADERS on `stream` ("answered") or resets it
    ("reset"), or `seconds` pass (None)."""
    pending, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return "closed"
        if not data:
            return "closed"
        found, pending = frames(pending + data)
        for kind, sid in found:
            if sid == stream and kind == HEADERS:
                return "answered"
            if sid == stream and kind == RST_STREAM:
                return "reset"
    return None


def test_a_header_block_of_references_to_one_large_entry_is_reset_at_once(start_exporter):
    """HPACK lets one byte stand for a whole dynamic-table entry: a HEADERS frame of 16,000 references to a 4,000-byte
    field decodes to 64 MB, and nghttp2 checks every field it decodes. Before, the block was decoded to its end on the
    event loop (~0.2 s of CPU per block with 140,000 references; a reviewer's two connections timed scrapes out) and
    the stream answered 431 only then. Now a block 4 times over the header limits has its stream reset at once
    (ENHANCE_YOUR_CALM), counted `too_large`; the rest of the block is decoded without checks, and the connection
    serves its next request."""
    exporter = start_exporter(*MODELS)
    _, before = scrape(exporter)
    sock = socket.create_connection(("127.0.0.1", exporter.port), timeout=5)
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
    encoder = hpack.Encoder()
    head = [(":method", "GET"), (":path", "/-/healthy"), (":scheme", "http"), (":authority", "x")]
    # Stream 1 puts the large field in the dynamic table (the newest entry: index 62), and is answered.
    sock.sendall(frame(HEADERS, END_STREAM_AND_HEADERS, 1, encoder.encode(head + [("x-big", "y" * 4000)])))
    assert read_until_closed_or_stream(sock, 1, 5) == "answered"
    # Stream 3: a head that adds nothing to the table (static indices and literals without indexing), then 16,000
    # one-byte references to the entry, in each of 9 frames (HEADERS and 8 CONTINUATIONs): 144,000 references.
    literal = lambda index, text: bytes([index, len(text)]) + text.encode()  # noqa: E731
    block = b"\x82\x86" + literal(4, "/-/healthy") + literal(1, "x") + b"\xbe" * 16_000
    started = time.monotonic()
    sock.sendall(frame(HEADERS, 0, 3, block) + b"".join(frame(CONTINUATION, 0 if i < 7 else END_HEADERS, 3,
                                                              b"\xbe" * 16_000) for i in range(8)))
    assert read_until_closed_or_stream(sock, 3, 5) == "reset"
    assert time.monotonic() - started < 1
    # The connection goes on: stream 5 is answered.
    sock.sendall(frame(HEADERS, END_STREAM_AND_HEADERS, 5, b"\x82\x86" + literal(4, "/-/healthy") + literal(1, "x")))
    assert read_until_closed_or_stream(sock, 5, 5) == "answered"
    sock.close()
    _, after = scrape(exporter)
    key = ("mlops_exporter_http_errors_total", (("reason", "too_large"),))
    assert after.get(key, 0) == before.get(key, 0) + 1, (before.get(key), after.get(key))
    # Counted once: the reset is not a protocol error of the peer's as well.
    bad = ("mlops_exporter_http_errors_total", (("reason", "bad_request"),))
    assert after.get(bad, 0) == before.get(bad, 0), (before.get(bad), after.get(bad))


def test_a_rapid_reset_flood_is_told_to_calm_down(start_exporter):
    """CVE-2023-44487: streams opened and reset at once. Past 1,000 resets (then 33 a second) the connection ends with
    GOAWAY(ENHANCE_YOUR_CALM), as the other floods do, counted `bad_request`: nghttp2's own limit ended it with
    INTERNAL_ERROR, which tells the client the server failed."""
    exporter = start_exporter(*MODELS)
    sock = socket.create_connection(("127.0.0.1", exporter.port), timeout=5)
    encoder = hpack.Encoder()
    out = PREFACE + frame(SETTINGS, 0, 0)
    for i in range(1200):
        block = encoder.encode([(":method", "GET"), (":path", "/-/healthy"), (":scheme", "http"), (":authority", "x")])
        out += frame(HEADERS, END_STREAM_AND_HEADERS, 1 + 2 * i, block) + frame(RST_STREAM, 0, 1 + 2 * i,
                                                                               struct.pack(">I", 8))
    try:
        sock.sendall(out)
    except (BrokenPipeError, ConnectionResetError):
        pass
    pending, goaway, deadline = b"", None, time.monotonic() + 10
    while goaway is None and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not data:
            break
        pending += data
        offset = 0
        while offset + 9 <= len(pending):
            length = int.from_bytes(pending[offset:offset + 3], "big")
            if offset + 9 + length > len(pending):
                break
            if pending[offset + 3] == 7:  # GOAWAY: last stream id, then the error code
                goaway = int.from_bytes(pending[offset + 13:offset + 17], "big")
            offset += 9 + length
        pending = pending[offset:]
    sock.close()
    assert goaway == 0xB, f"GOAWAY error code {goaway}"  # ENHANCE_YOUR_CALM
    assert sample(scrape(exporter)[1], "mlops_exporter_http_errors_total", reason="bad_request") == 1
