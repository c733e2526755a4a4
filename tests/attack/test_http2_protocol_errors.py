"""HTTP/2 protocol errors that nghttp2 answers by itself (GOAWAY or RST_STREAM inside `nghttp2_session_mem_recv`, with
no error returned to the exporter) are counted like the ones the exporter sees: a connection closed for a peer's
protocol error counts `bad_request`, a stream nghttp2 refuses beyond SETTINGS_MAX_CONCURRENT_STREAMS counts
`stream_refused`. Before, none of them reached `mlops_exporter_http_errors_total`: a client could have every one of
its connections or streams dropped without a trace in the metrics. Each case is one connection, loopback, < 1 s."""

import socket
import struct
import time

import hpack

from conftest import scrape, sample
from test_http2_attacks import MODELS, PREFACE, HEADERS, RST_STREAM, SETTINGS, frame

DATA, PING, GOAWAY, WINDOW_UPDATE = 0, 6, 7, 8
END_HEADERS, END_STREAM_AND_HEADERS, ACK = 0x4, 0x5, 0x1
PROTOCOL_ERROR, FRAME_SIZE_ERROR, REFUSED_STREAM = 1, 6, 7


def errors(exporter, reason):
    return sample(scrape(exporter)[1], "mlops_exporter_http_errors_total", reason=reason) or 0


def exchange(port, payload, seconds=2.0):
    """Sends the preface, an empty SETTINGS and `payload`; reads until the exporter closes or `seconds` pass.
    Returns ([(type, stream, payload)], closed)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=seconds)
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0) + payload)
    received, closed = b"", False
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                closed = True
                break
            received += data
    except (socket.timeout, ConnectionResetError):
        pass
    finally:
        sock.close()
    parsed, offset = [], 0
    while offset + 9 <= len(received):
        length = int.from_bytes(received[offset:offset + 3], "big")
        stream = int.from_bytes(received[offset + 5:offset + 9], "big") & 0x7FFFFFFF
        parsed.append((received[offset + 3], stream, received[offset + 9:offset + 9 + length]))
        offset += 9 + length
    return parsed, closed


def goaway_code(parsed):
    codes = [int.from_bytes(p[4:8], "big") for kind, _, p in parsed if kind == GOAWAY]
    return codes[0] if codes else None


def request(encoder, method="GET", path="/-/healthy", extra=()):
    return encoder.encode([(":method", method), (":path", path), (":scheme", "http"), (":authority", "x"), *extra])


def test_connection_errors_nghttp2_answers_itself_count_bad_request(start_exporter):
    exporter = start_exporter(*MODELS)
    cases = {
        "DATA on an idle stream": frame(DATA, 0, 1),
        "WINDOW_UPDATE of 0 on the connection": frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)),
        "RST_STREAM on an idle stream": frame(RST_STREAM, 0, 7, struct.pack(">I", 0)),
        "HEADERS on an even stream": frame(HEADERS, END_STREAM_AND_HEADERS, 2, request(hpack.Encoder())),
        "PING of 9 bytes": frame(PING, 0, 0, b"123456789"),
        # RFC 9113 §5.1.1: opening stream 5 closed the idle stream 3; nghttp2 ignored its HEADERS (never answered).
        "HEADERS on a stream id the client skipped": frame(HEADERS, END_STREAM_AND_HEADERS, 5, request(hpack.Encoder()))
        + frame(HEADERS, END_STREAM_AND_HEADERS, 3, request(hpack.Encoder())),
    }
    for name, payload in cases.items():
        before = errors(exporter, "bad_request")
        parsed, closed = exchange(exporter.port, payload)
        assert closed and goaway_code(parsed) in (PROTOCOL_ERROR, FRAME_SIZE_ERROR), (name, parsed)
        # Counted once: the GOAWAY, not also the close that follows it.
        assert errors(exporter, "bad_request") - before == 1, name
    # A flood nghttp2 reports as an error (PING replies over its bound) is counted once too, by the session.
    before = errors(exporter, "bad_request")
    exchange(exporter.port, frame(PING, 0, 0, b"12345678") * 2000)
    assert errors(exporter, "bad_request") - before == 1
    assert exporter.proc.poll() is None
    assert exporter.get("/-/healthy")[0] == 200


def test_streams_nghttp2_refuses_count_stream_refused(start_exporter):
    """Streams beyond our SETTINGS_MAX_CONCURRENT_STREAMS (100) before the client acknowledged our SETTINGS: nghttp2
    refuses each with RST_STREAM(REFUSED_STREAM), the other 100 are answered."""
    exporter = start_exporter(*MODELS)
    encoder = hpack.Encoder()
    before = errors(exporter, "stream_refused")
    payload = b"".join(frame(HEADERS, END_STREAM_AND_HEADERS, 1 + 2 * i, request(encoder)) for i in range(150))
    parsed, closed = exchange(exporter.port, payload)
    refused = [s for kind, s, p in parsed if kind == RST_STREAM and int.from_bytes(p[:4], "big") == REFUSED_STREAM]
    assert not closed and len(refused) == 50, (closed, len(refused))
    assert len({s for kind, s, _ in parsed if kind == HEADERS}) == 100
    assert errors(exporter, "stream_refused") - before == 50


def test_trailers_on_a_stream_the_server_refused_are_ignored(start_exporter):
    """A stream nghttp2 refuses over the concurrent-stream limit (before the client has our SETTINGS) is never begun,
    but it is no skipped id: the client's trailers on it, sent before it saw the RST_STREAM, are ignored (RFC 9113
    §5.1). With the skipped-id check first written, they ended the connection with GOAWAY(PROTOCOL_ERROR)."""
    exporter = start_exporter(*MODELS)
    encoder = hpack.Encoder()
    sock = socket.create_connection(("127.0.0.1", exporter.port), timeout=5)

    def post(stream, ends):
        return frame(HEADERS, END_STREAM_AND_HEADERS if ends else 0x4, stream,
                     encoder.encode([(":method", "POST"), (":path", "/-/healthy"), (":scheme", "http"),
                                     (":authority", "x")]))

    out = PREFACE + frame(SETTINGS, 0, 0) + b"".join(post(s, False) for s in range(1, 203, 2))
    sock.sendall(out)
    received, deadline = b"", time.monotonic() + 10

    def read_until(predicate):
        nonlocal received
        while time.monotonic() < deadline:
            found, offset = [], 0
            while offset + 9 <= len(received):
                length = int.from_bytes(received[offset:offset + 3], "big")
                if offset + 9 + length > len(received):
                    break
                found.append((received[offset + 3], int.from_bytes(received[offset + 5:offset + 9], "big"),
                              received[offset + 9:offset + 9 + length]))
                offset += 9 + length
            if predicate(found):
                return found
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            received += data
        return None

    refused = read_until(lambda f: any(kind == RST_STREAM and sid == 201 for kind, sid, _ in f))
    assert refused is not None, "stream 201 was not refused"
    # A new stream, then trailers on the refused one; then stream 205 must still be answered on this connection.
    sock.sendall(post(203, True) + frame(HEADERS, END_STREAM_AND_HEADERS, 201, encoder.encode([("x-sum", "1")]))
                 + post(205, True))
    answered = read_until(lambda f: any(kind == HEADERS and sid == 205 for kind, sid, _ in f))
    sock.close()
    assert answered is not None and goaway_code(answered) is None, answered
