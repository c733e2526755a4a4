"""Connection slots held by clients that never finish a request head or a TLS handshake, and how long a new client
waits meanwhile: shared by test_slot_eviction.py and usable by hand to measure:

    python tests/attack/slot_hold.py --port PORT --pid PID --holders 1024 [--kind silent|partial_head|h2_preface|tls]

Loopback only; every loop is bounded in count and time."""

import argparse
import os
import socket
import ssl
import time

KINDS = ("silent", "partial_head", "h2_preface", "tls", "kept_alive")


def open_connections(pid):
    """The exporter's open TCP sockets (its descriptors that are sockets, less the listener): the connections it
    accepted, without asking it over HTTP (every slot may be held)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def hold(port, kind):
    """One connection that holds a slot: it connects and sends nothing, half a request head, only the HTTP/2
    preface and SETTINGS, half a TLS ClientHello, or one whole request whose answer it reads (kept alive idle)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if kind == "kept_alive":
        renew(sock)
    elif kind == "partial_head":
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    elif kind == "h2_preface":
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    elif kind == "tls":
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello
    return sock


def renew(sock):
    """One request on the kept-alive connection `sock`, its answer read whole (`/-/healthy`: a short fixed body);
    False when the server has closed the connection."""
    try:
        sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                return False
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(body) < length:
            chunk = sock.recv(4096)
            if not chunk:
                return False
            body += chunk
        return True
    except OSError:
        return False


def time_new_client(port, tls=False, timeout=30.0):
    """Seconds a new client takes to get an answer to GET /-/healthy (connect, send, first byte of the answer)."""
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock)
        sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        first = sock.recv(64)
        assert first.startswith(b"HTTP/1.1 200"), first
    finally:
        sock.close()
    return time.monotonic() - started


def hold_all(port, pid, holders, kind, baseline, deadline_seconds=30.0):
    """Opens `holders` slot-holding connections and waits (polling, bounded) until the exporter has accepted them
    all (`baseline` + `holders` sockets, or as many as it will take). Returns the sockets."""
    sockets = [hold(port, kind) for _ in range(holders)]
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline and open_connections(pid) < baseline + holders:
        time.sleep(0.02)
    return sockets


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--holders", type=int, default=1024)
    parser.add_argument("--kind", choices=KINDS, default="silent")
    parser.add_argument("--clients", type=int, default=3, help="new clients timed one after another")
    parser.add_argument("--timeout", type=float, default=30.0, help="longest wait of a new client")
    args = parser.parse_args()
    baseline = open_connections(args.pid)
    held = hold_all(args.port, args.pid, args.holders, args.kind, baseline)
    print(f"holding {len(held)} ({args.kind}); exporter sockets {open_connections(args.pid)}")
    time.sleep(1.5)  # older than the eviction age: what an attacker's held slots are
    for _ in range(args.clients):
        print(f"new client answered after {time_new_client(args.port, tls=args.kind == 'tls', timeout=args.timeout):.3f} s")
    for sock in held:
        sock.close()
