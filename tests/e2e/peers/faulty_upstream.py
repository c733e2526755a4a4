"""A small HTTP/1.1 upstream that the proxy tests control (tests/e2e/test_proxy.py): an asyncio server on 127.0.0.1
at a kernel-chosen port, run on its own thread inside the test process, so that the test can read what it saw
(request heads and body hashes, connections open at once, closes) and pace what it writes (a streamed response
writes its next event only when the test releases it).

Paths (a path that is none of these answers 404, unless `fixed` has it):
- `/v2/models/{m}[/versions/{v}]/infer`, `/v1/models/{m}:predict`, `/invocations`: a toy binary classifier
  (prediction 1 when the row's dot product with `WEIGHTS` is positive) answering in the protocol's JSON
  (Open Inference v2 with `model_version` = `Upstream.model_version`, KServe v1, MLflow); 400 for a body it cannot
  read. v2 with `?cut=1`: the whole answer under a head announcing 100 bytes more, then a close.
- `/echo`: a JSON document of what arrived: method, target, version, header lines, body length and SHA-256.
- `/status/{code}`: that status, a text body and a custom header.
- `/hop`: a response with hop-by-hop headers (`Connection: X-Up-Hop`, `X-Up-Hop`, `Keep-Alive`) and a custom one.
- `/slow?ms=N`: answers after N ms (for the pool test).
- `/hold-head`: never answers; waits for the peer to close (30 s at most).
- `/close-before-head`: closes the connection after reading the request; `/reset`: the same with an RST;
  `/close-on-reuse`: answers the first request of a connection, closes at a later one without answering.
- `/garbage`: bytes that are not an HTTP response, then a close.
- `/close-mid-body?total=N&sent=M[&chunked=1]`: a head announcing N bytes (or chunked), M bytes, then a close.
- `/stall-body?total=N&sent=M`: the same, then silence until the peer closes.
- `/big?bytes=N&seed=S[&chunked=1]`: N pseudo-random bytes (`body_bytes(N, S)`), Content-Length or chunked in
  64 KiB chunks, with their SHA-256 in `X-Body-Sha256`.
- Any request whose body is still arriving: the bytes received so far are in `receiving[target]`.
- `/sse/{name}?events=N` (`text/event-stream`) and `/stream/{name}?events=N` (`application/octet-stream`): chunked;
  event k is written only after the test's k-th `release(name)`; the write times are in `stream(name).written`,
  and `stream(name).closed` is set when the peer closes the connection before the last event.
"""
import asyncio
import collections
import hashlib
import json
import random
import socket
import struct
import threading
import time
import urllib.parse

WEIGHTS = (1.0, -1.5, 0.5, 0.2)
HOLD_LIMIT = 30.0  # seconds a held response waits for its peer at most


def body_bytes(n, seed):
    """The deterministic pseudo-random body of `/big?bytes=n&seed=seed`."""
    return random.Random(seed).randbytes(n)


def toy_predict(row):
    return int(sum(w * float(x) for w, x in zip(WEIGHTS, row)) > 0)


class Response:
    """A response the upstream sends as is: status, header lines, body (Content-Length unless `chunks` is given:
    then chunked, one chunk per element)."""

    def __init__(self, status=200, headers=(), body=b"", chunks=None, reason=None):
        self.status, self.headers, self.body, self.chunks = status, list(headers), body, chunks
        self.reason = reason or {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error",
                                 503: "Service Unavailable"}.get(status, "Status")

    def encode(self):
        head = [f"HTTP/1.1 {self.status} {self.reason}"] + [f"{k}: {v}" for k, v in self.headers]
        if self.chunks is None:
            head.append(f"Content-Length: {len(self.body)}")
            return ("\r\n".join(head) + "\r\n\r\n").encode() + self.body
        head.append("Transfer-Encoding: chunked")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + b"".join(chunk(c) for c in self.chunks) + b"0\r\n\r\n"


def chunk(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


def json_response(document, status=200):
    return Response(status, [("Content-Type", "application/json")], json.dumps(document).encode())


class Stream:
    """A paced streamed response: `release()` lets the next event be written; `written` holds the monotonic time
    of each event's write; `closed` is set when the peer closed before the last event."""

    def __init__(self, upstream):
        self._upstream = upstream
        self.gate = asyncio.Queue()
        self.started = threading.Event()
        self.closed = threading.Event()
        self.finished = threading.Event()
        self.written = []

    def release(self):
        self._upstream.loop.call_soon_threadsafe(self.gate.put_nowait, time.monotonic())


class Received:
    __slots__ = ("method", "target", "version", "headers", "body_length", "body_sha256", "connection", "time")

    def header(self, name):
        """The values of header `name` (case-insensitive), in order."""
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Upstream:
    def __init__(self, model_version="v7"):
        self.model_version = model_version
        self.fixed = {}  # path (without query) -> Response, before the built-in paths
        self.requests = 0
        self.connections = 0
        self.open = 0
        self.max_open = 0
        self.peer_closes = 0  # connections the peer closed (EOF seen here)
        self.abandoned = 0  # held or slow responses whose peer closed the connection while they waited
        self.seen = collections.deque(maxlen=512)
        self.receiving = {}  # target -> body bytes received so far of a request whose body is still arriving
        self._streams = {}
        self._big = {}
        self._lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="faulty-upstream", daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"

    async def _start(self):
        return await self.loop.create_server(lambda: _Connection(self), "127.0.0.1", 0, backlog=1024)

    def stream(self, name):
        with self._lock:
            if name not in self._streams:
                self._streams[name] = Stream(self)
            return self._streams[name]

    def big(self, n, seed):
        key = (n, seed)
        if key not in self._big:
            data = body_bytes(n, seed)
            self._big[key] = (data, hashlib.sha256(data).hexdigest())
        return self._big[key]

    def last(self, path_prefix):
        """The last request received whose target starts with `path_prefix`."""
        for r in reversed(self.seen):
            if r.target.startswith(path_prefix):
                return r
        raise AssertionError(f"the upstream received no request for {path_prefix}")

    def close(self):
        async def stop():
            self._server.close()
            for s in self._streams.values():
                s.gate.put_nowait(None)
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


class _Connection(asyncio.Protocol):
    def __init__(self, upstream):
        self.up = upstream
        self.buf = bytearray()
        self.head = None  # (method, target, version, headers) of the request whose body is being read
        self.body = None
        self.chunked = None  # remaining-size state of a chunked body: None when not chunked
        self.length = 0
        self.busy = False
        self.transport = None
        self.lost = None
        self.handled = 0  # requests dispatched on this connection

    # Connection accounting

    def connection_made(self, transport):
        up = self.up
        self.transport = transport
        self.lost = up.loop.create_future()
        up.connections += 1
        self.id = up.connections
        up.open += 1
        up.max_open = max(up.max_open, up.open)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc):
        self.up.open -= 1
        if not self.lost.done():
            self.lost.set_result(exc)

    def eof_received(self):
        self.up.peer_closes += 1
        if not self.lost.done():
            self.lost.set_result(None)
        return False

    # Parsing (pipelined requests are answered in order; one handler runs at a time)

    def data_received(self, data):
        self.buf += data
        self.process()

    def process(self):
        while not self.busy and self.transport is not None and not self.transport.is_closing():
            if self.head is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
                del self.buf[:end + 4]
                method, target, version = lines[0].split(" ", 2)
                headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
                self.head = (method, target, version, headers)
                self.body = bytearray()
                fields = {k.lower(): v for k, v in headers}
                self.chunked = 0 if "chunked" in fields.get("transfer-encoding", "").lower() else None
                self.length = int(fields.get("content-length", "0") or 0)
                if fields.get("expect", "").lower() == "100-continue":
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if self.chunked is None:
                if len(self.buf) < self.length:
                    self.up.receiving[self.head[1]] = len(self.buf)
                    return
                self.body += self.buf[:self.length]
                del self.buf[:self.length]
            elif not self.read_chunks():
                self.up.receiving[self.head[1]] = len(self.body)
                return
            head, body = self.head, bytes(self.body)
            self.head = self.body = None
            self.dispatch(head, body)

    def read_chunks(self):
        """Decodes what is buffered of a chunked body; True when the last chunk and the trailers are in."""
        while True:
            if self.chunked > 0:  # bytes of the current chunk still to come, then its CRLF
                if len(self.buf) < self.chunked + 2:
                    return False
                self.body += self.buf[:self.chunked]
                del self.buf[:self.chunked + 2]
                self.chunked = 0
            line_end = self.buf.find(b"\r\n")
            if line_end < 0:
                return False
            size = int(bytes(self.buf[:line_end]).split(b";")[0], 16)
            if size == 0:  # the last chunk, then trailer lines (none here, usually) and an empty line
                start = line_end + 2
                if len(self.buf) < start + 2:
                    return False
                if self.buf[start:start + 2] == b"\r\n":
                    end = start + 2
                else:
                    found = self.buf.find(b"\r\n\r\n", start)
                    if found < 0:
                        return False
                    end = found + 4
                del self.buf[:end]
                return True
            del self.buf[:line_end + 2]
            self.chunked = size

    def dispatch(self, head, body):
        method, target, version, headers = head
        up = self.up
        up.requests += 1
        self.handled += 1
        r = Received()
        r.method, r.target, r.version, r.headers = method, target, version, headers
        r.body_length, r.body_sha256 = len(body), hashlib.sha256(body).hexdigest()
        r.connection, r.time = self.id, time.monotonic()
        up.seen.append(r)
        url = urllib.parse.urlsplit(target)
        path, query = url.path, dict(urllib.parse.parse_qsl(url.query))
        fixed = up.fixed.get(path)
        if fixed is not None:
            return self.transport.write(fixed.encode())
        handler = self.route(path)
        result = handler(r, path, query, body)
        if isinstance(result, Response):
            self.transport.write(result.encode())
        elif result is not None:  # a coroutine: answered asynchronously; requests behind it wait
            self.busy = True
            task = up.loop.create_task(result)
            task.add_done_callback(self.resume)

    def resume(self, task):
        self.busy = False
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()
        self.process()

    def route(self, path):
        if path.startswith("/v2/models/") and path.endswith("/infer"):
            return self.v2
        if path.startswith("/v1/models/") and path.endswith(":predict"):
            return self.v1
        first = path.split("/")[1] if path.count("/") >= 1 else ""
        return {
            "invocations": self.mlflow, "echo": self.echo, "status": self.status, "hop": self.hop,
            "slow": self.slow, "hold-head": self.hold_head, "close-before-head": self.close_before_head,
            "reset": self.reset, "garbage": self.garbage, "close-mid-body": self.close_mid_body,
            "close-on-reuse": self.close_on_reuse,
            "stall-body": self.stall_body, "big": self.big, "sse": self.stream, "stream": self.stream,
        }.get(first, self.not_found)

    # Toy model server

    def v2(self, r, path, query, body):
        try:
            document = json.loads(body)
            tensor = document["inputs"][0]
            rows, width = tensor["shape"][0], tensor["shape"][1]
            data = tensor["data"]
            flat = [x for row in data for x in row] if data and isinstance(data[0], list) else data
            predictions = [toy_predict(flat[i * width:(i + 1) * width]) for i in range(rows)]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            return json_response({"error": f"bad request: {error}"}, 400)
        answer = json_response({"model_name": path.split("/")[3], "model_version": self.up.model_version,
                                "id": document.get("id", "toy"),
                                "outputs": [{"name": "predict", "shape": [rows], "datatype": "INT64",
                                             "data": predictions}]})
        if query.get("cut"):
            # The whole document under a head that announces 100 bytes more, then a close: a cut response.
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                                 % (len(answer.body) + 100) + answer.body)
            self.transport.close()
            return None
        return answer

    def v1(self, r, path, query, body):
        try:
            rows = json.loads(body)["instances"]
            predictions = [toy_predict(row) for row in rows]
        except (ValueError, KeyError, TypeError) as error:
            return json_response({"error": f"bad request: {error}"}, 400)
        return json_response({"predictions": predictions})

    def mlflow(self, r, path, query, body):
        try:
            split = json.loads(body)["dataframe_split"]
            predictions = [toy_predict(row) for row in split["data"]]
        except (ValueError, KeyError, TypeError) as error:
            return json_response({"error_code": "BAD_REQUEST", "message": str(error)}, 400)
        return json_response({"predictions": predictions})

    # Inspection and plain answers

    def echo(self, r, path, query, body):
        return json_response({"method": r.method, "target": r.target, "version": r.version,
                              "headers": [list(h) for h in r.headers], "body_length": r.body_length,
                              "body_sha256": r.body_sha256})

    def status(self, r, path, query, body):
        code = int(path.split("/")[2])
        return Response(code, [("Content-Type", "text/plain; charset=utf-8"), ("X-Upstream-Said", str(code))],
                        f"upstream answered {code}\n".encode())

    def hop(self, r, path, query, body):
        return Response(200, [("Content-Type", "application/json"), ("Connection", "X-Up-Hop"),
                              ("X-Up-Hop", "must-not-reach-the-client"), ("Keep-Alive", "timeout=30, max=100"),
                              ("X-Model-Custom", "kept as is")], b'{"hop": true}')

    def not_found(self, r, path, query, body):
        return Response(404, [("Content-Type", "text/plain")], b"no such path upstream\n")

    # Timing and faults

    async def wait_lost(self, timeout):
        """Waits `timeout` seconds for the peer to close; True (counted in `abandoned`) if it did."""
        try:
            await asyncio.wait_for(asyncio.shield(self.lost), timeout)
        except asyncio.TimeoutError:
            return False
        self.up.abandoned += 1
        return True

    async def slow(self, r, path, query, body):
        if await self.wait_lost(int(query.get("ms", "500")) / 1000):
            return
        self.transport.write(json_response({"slow": int(query.get("ms", "500"))}).encode())

    async def hold_head(self, r, path, query, body):
        await self.wait_lost(HOLD_LIMIT)
        self.transport.close()

    def close_before_head(self, r, path, query, body):
        self.transport.close()

    def close_on_reuse(self, r, path, query, body):
        """Answers the first request of a connection; closes at a later one without answering (a keep-alive timeout
        meeting a request on its way)."""
        if self.handled > 1:
            self.transport.close()
            return None
        return json_response({"connection": self.id})

    def reset(self, r, path, query, body):
        self.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                           struct.pack("ii", 1, 0))
        self.transport.abort()

    def garbage(self, r, path, query, body):
        self.transport.write(b"THIS IS NOT HTTP\r\n\r\n")
        self.transport.close()

    def partial_head_and_body(self, query):
        total, sent = int(query["total"]), int(query["sent"])
        data, _ = self.up.big(total, 7)
        if query.get("chunked"):
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            return head + chunk(data[:sent])
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: %d\r\n\r\n" % total) + data[:sent]

    def close_mid_body(self, r, path, query, body):
        self.transport.write(self.partial_head_and_body(query))
        self.transport.close()  # flushes what is buffered, then closes

    async def stall_body(self, r, path, query, body):
        self.transport.write(self.partial_head_and_body(query))
        await self.wait_lost(HOLD_LIMIT)
        self.transport.close()

    def big(self, r, path, query, body):
        data, digest = self.up.big(int(query["bytes"]), int(query.get("seed", "1")))
        headers = [("Content-Type", "application/octet-stream"), ("X-Body-Sha256", digest)]
        if query.get("chunked"):
            return Response(200, headers, chunks=[data[i:i + 65536] for i in range(0, len(data), 65536)])
        return Response(200, headers, data)

    async def stream(self, r, path, query, body):
        kind, name = path.split("/")[1:3]
        n = int(query.get("events", "5"))
        s = self.up.stream(name)
        content_type = "text/event-stream" if kind == "sse" else "application/octet-stream"
        self.transport.write(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n".encode())
        s.started.set()
        for k in range(n):
            get = asyncio.ensure_future(s.gate.get())
            done, _ = await asyncio.wait({get, self.lost}, timeout=HOLD_LIMIT, return_when=asyncio.FIRST_COMPLETED)
            if get not in done or get.result() is None:
                get.cancel()
                if self.lost.done():
                    s.closed.set()
                self.transport.close()
                return
            event = (f"id: {k}\ndata: {{\"k\": {k}}}\n\n" if kind == "sse" else f"chunk {k};").encode()
            s.written.append(time.monotonic())  # before the write: the client cannot read the event earlier
            self.transport.write(chunk(event))
        self.transport.write(b"0\r\n\r\n")
        s.finished.set()
