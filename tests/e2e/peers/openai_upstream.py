#!/usr/bin/env python3
"""A scripted OpenAI-compatible upstream (HTTP/1.1, standard library only, asyncio on raw sockets): the peer of the
LLM metrics tests (tests/e2e/test_llm.py) and of scripts/bench-llm. It listens on 127.0.0.1 only, on the port given
on the command line (`--port 0`: a kernel-chosen one), and prints `listening 127.0.0.1:PORT` once it accepts.

Endpoints (POST, JSON body):
- `/v1/chat/completions`, `/v1/completions`: `"stream": true` answers `text/event-stream`, chunked, one HTTP chunk per
  write, `data: {...}\\n\\n` events in the wire format of the OpenAI API (chat: a role chunk, content chunks, a chunk
  with an empty delta and the finish_reason, then a usage chunk with `"choices": []` when the request has
  `"stream_options": {"include_usage": true}`, then `data: [DONE]`); not streamed: one JSON document with `usage`.
  `"n": k` gives k choices (content chunk i carries choice i % k).
- `/v1/responses`: the Responses API (`event: response.*` events, `response.completed` carrying `usage`; no [DONE]).
- `/v1/embeddings`: one embedding per input (float lists, or base64 of float32 when `encoding_format` is base64, as
  the SDK asks by default), `usage` with `prompt_tokens`.
- `GET /_log`: a JSON list of what was done for every request so far; `GET /_log/<id>`: one (404 while unknown);
  `GET /_health`: 200.

The script of a request: the JSON object in the request header `X-Script`, else the body's `x_script` field (the SDK
passes it with `extra_body`), else the defaults. Fields (seconds for times):
- `id`: the name of the request's record in `/_log` (default `req-<n>`).
- `status`: 200, or an error status answered with an OpenAI error document (`{"error": {message, type, param,
  code}}`, Content-Length), after `head_delay`.
- `head_delay` (0): before the response head (streamed: before the first event too).
- `ttft` (0): from the request's last byte to the first content-bearing event.
- `gap` (0) or `gaps` (a list, one per content event after the first): the pause before each next content write.
- `tokens` (5): content-bearing events (text pieces `tok0 `, `tok1 `, ...).
- `role_chunk` (true, chat only): an assistant role chunk with empty content right after the head (not content).
- `finish_reason` ("stop"; a list gives one per choice); `finish_in_last` (false): carry it in the last content
  chunk (as vLLM does) instead of a chunk of its own.
- `usage` (true): false leaves `usage` out (also of a streamed response that asked for it); `prompt_tokens` (7),
  `completion_tokens` (default: `tokens`), `cached_tokens` (absent: no `prompt_tokens_details`).
- `delay`: a non-streamed response's wait before it is written (default `ttft` + the sum of the gaps).
- `batch` (1): content events written together, this many per write (the gaps are then per write).
- `split` ([]): content events (indices) written in two halves, `split_delay` (0.03) apart.
- `comments` (false): a `: keep-alive` comment line written between content events (half-way through each gap).
- `malformed` ([]): after these content events, an event whose data is not JSON (`data: {not json`).
- `error_after`: after this many content events, an error object in the stream (`data: {"error": {...}}`, preceded
  by `event: error` when `error_event` is true), then [DONE] and the end of the body.
- `die_after`: after this many content events, close the connection without ending the chunked body.
- `tail_delay` (0): the pause between the last event and the chunked body's terminating chunk (a client that closes
  at `[DONE]`, as the OpenAI SDKs do, leaves before it).
- `eol` ("\\n"): the line ending inside events ("\\r\\n" is also valid SSE).
- `stamp` (false): each content event carries `"x_ts"`, the CLOCK_MONOTONIC nanoseconds of its write (benchmark).
- `coding`: the response's `Content-Encoding`: `gzip` or `deflate` (the zlib format) compress the body (a stream: one
  compressor for the whole body, each write flushed with Z_SYNC_FLUSH, as a streaming gzip middleware does, and the
  stream's end in the last chunk); `corrupt` sends `gzip` over a gzip body damaged in its middle; any other value is
  sent as the header over the body unchanged. The record's `writes` keep the bytes before compression.
A request body sent with `Content-Encoding: gzip` or `deflate` is inflated before it is read.

The record of a request (`/_log`): `id`, `path`, `stream`, `script`, `request_headers`, `body_sha256`,
`body_length`, `t_request_start` and `t_request` (CLOCK_MONOTONIC seconds, the same clock as Python's
`time.monotonic()` in any process on this machine: the first and the last byte of the request), `t_head`, `writes`
(each `{t, data}`: the time and the payload of one write, chunk framing excluded, latin-1), `events` (each `{kind,
t, index}` with kind role | content | finish | usage | done | comment | malformed | error | response: `t` is the time
of the write that completed the event), `t_end` (the last write, the terminating chunk included), `end`
(complete | died | peer_closed | error_status), `peer_closed_at` (when the peer's close was seen, else null).
"""
import argparse
import asyncio
import base64
import gzip
import hashlib
import json
import socket
import struct
import sys
import time
import zlib

SSE = "text/event-stream"
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable"}
ERROR_TYPES = {429: ("rate_limit_exceeded", "Rate limit reached for requests"),
               500: ("server_error", "The server had an error while processing your request")}
MAX_RECORDS = 10000


def encode_whole(coding, body: bytes) -> bytes:
    """A whole body in the script's `coding`."""
    if coding == "gzip":
        return gzip.compress(body)
    if coding == "deflate":
        return zlib.compress(body)
    if coding == "corrupt":
        damaged = bytearray(gzip.compress(body))
        for i in range(12, len(damaged) - 8, 7):
            damaged[i] ^= 0x5A
        return bytes(damaged)
    return body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


class Record(dict):
    pass


class Server:
    def __init__(self):
        self.records = {}
        self.order = []
        self.count = 0

    def new_record(self, rid):
        if len(self.order) >= MAX_RECORDS:
            self.records.pop(self.order.pop(0), None)
        r = Record(id=rid)
        self.records[rid] = r
        self.order.append(rid)
        return r


class Connection(asyncio.Protocol):
    def __init__(self, server):
        self.server = server
        self.buf = bytearray()
        self.busy = False
        self.t_first = None
        self.transport = None
        self.lost = None
        self.can_write = None
        self.encoder = None  # the compressor of the stream being written (script `coding`)

    def connection_made(self, transport):
        self.transport = transport
        self.lost = asyncio.get_running_loop().create_future()
        self.can_write = asyncio.Event()
        self.can_write.set()
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc):
        self.can_write.set()
        if not self.lost.done():
            self.lost.set_result(time.monotonic())

    def eof_received(self):
        if not self.lost.done():
            self.lost.set_result(time.monotonic())
        return False

    def pause_writing(self):
        self.can_write.clear()

    def resume_writing(self):
        self.can_write.set()

    def data_received(self, data):
        if not self.buf and self.t_first is None:
            self.t_first = time.monotonic()
        self.buf += data
        self.process()

    def process(self):
        if self.busy:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        try:
            method, target, _ = lines[0].split(" ", 2)
        except ValueError:
            self.transport.close()
            return
        headers = [tuple(p.strip() for p in line.split(":", 1)) for line in lines[1:] if ":" in line]
        fields = {k.lower(): v for k, v in headers}
        start = end + 4
        if "chunked" in fields.get("transfer-encoding", "").lower():
            body, consumed = self.dechunk(start)
            if body is None:
                return
        else:
            length = int(fields.get("content-length", "0") or 0)
            if len(self.buf) < start + length:
                return
            body, consumed = bytes(self.buf[start:start + length]), start + length
        del self.buf[:consumed]
        t_first, t_last = self.t_first, time.monotonic()
        self.t_first = time.monotonic() if self.buf else None
        self.busy = True
        task = asyncio.get_running_loop().create_task(
            self.handle(method, target, headers, fields, body, t_first, t_last))
        task.add_done_callback(self.done)

    def dechunk(self, pos):
        body = bytearray()
        while True:
            line_end = self.buf.find(b"\r\n", pos)
            if line_end < 0:
                return None, 0
            size = int(bytes(self.buf[pos:line_end]).split(b";")[0], 16)
            pos = line_end + 2
            if size == 0:
                end = self.buf.find(b"\r\n", pos)
                while end >= 0 and end != pos:  # trailer lines
                    pos = end + 2
                    end = self.buf.find(b"\r\n", pos)
                return (bytes(body), end + 2) if end >= 0 else (None, 0)
            if len(self.buf) < pos + size + 2:
                return None, 0
            body += self.buf[pos:pos + size]
            pos += size + 2

    def done(self, task):
        self.busy = False
        if not task.cancelled() and task.exception() is not None:
            print(f"handler failed: {task.exception()!r}", file=sys.stderr, flush=True)
            self.transport.close()
            return
        if not self.transport.is_closing():
            self.process()

    # -------------------------------------------------------------- writing and waiting

    async def until(self, t):
        """Waits until CLOCK_MONOTONIC `t`; False when the peer closed meanwhile."""
        delay = t - time.monotonic()
        if self.lost.done():
            return False
        if delay > 0:
            await asyncio.wait({self.lost}, timeout=delay)
        else:
            await asyncio.sleep(0)  # a stream with no gaps still lets the others write between its events
        return not self.lost.done()

    async def write(self, record, data: bytes, framed=True):
        if self.lost.done() or self.transport.is_closing():
            return False
        if not self.can_write.is_set():
            await self.can_write.wait()
        t = time.monotonic()
        if framed and self.encoder is not None:
            self.transport.write(chunk(self.encoder.compress(data) + self.encoder.flush(zlib.Z_SYNC_FLUSH)))
        else:
            self.transport.write(chunk(data) if framed else data)
        if record is not None and framed:
            record["writes"].append({"t": t, "data": data.decode("latin-1")})
        return t

    def respond(self, status, body: bytes, content_type="application/json", extra=()):
        head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", f"Content-Type: {content_type}",
                f"Content-Length: {len(body)}", *extra]
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    # -------------------------------------------------------------- requests

    async def handle(self, method, target, headers, fields, body, t_first, t_last):
        path = target.split("?", 1)[0]
        if method == "GET":
            return self.side(path)
        if method != "POST" or path not in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                                            "/v1/responses"):
            return self.respond(404, b'{"error": {"message": "no such endpoint", "type": "invalid_request_error"}}')
        try:
            coding = fields.get("content-encoding", "").lower()
            if coding in ("gzip", "deflate"):
                body = zlib.decompress(body, 47)  # 32 + 15: a gzip or zlib header
            document = json.loads(body)
            script = json.loads(fields["x-script"]) if "x-script" in fields else document.get("x_script") or {}
            if not isinstance(script, dict):
                raise ValueError("the script is not an object")
        except (ValueError, KeyError, zlib.error) as e:
            return self.respond(400, json.dumps({"error": {"message": f"bad request: {e}",
                                                           "type": "invalid_request_error"}}).encode())
        server = self.server
        server.count += 1
        rid = str(script.get("id") or f"req-{server.count}")
        stream = bool(document.get("stream")) and path != "/v1/embeddings"
        r = server.new_record(rid)
        r.update(path=path, stream=stream, script=script, request_headers=headers,
                 body_sha256=hashlib.sha256(body).hexdigest(), body_length=len(body), model=document.get("model"),
                 t_request_start=t_first, t_request=t_last, t_head=None, writes=[], events=[], t_end=None,
                 end=None, peer_closed_at=None)
        self.encoder = None
        try:
            await self.answer(r, path, document, script, stream)
        finally:
            if self.lost.done():
                r["peer_closed_at"] = self.lost.result()
                if r["end"] is None:
                    r["end"] = "peer_closed"

    def side(self, path):
        if path == "/_health":
            return self.respond(200, b'{"ok": true}')
        if path == "/_log":
            return self.respond(200, json.dumps([self.server.records[i] for i in self.server.order]).encode())
        if path.startswith("/_log/"):
            r = self.server.records.get(path[len("/_log/"):])
            if r is not None and r["end"] is not None:
                return self.respond(200, json.dumps(r).encode())
            return self.respond(404, b'{"error": "no such record (yet)"}')
        return self.respond(404, b'{"error": "no such path"}')

    async def answer(self, r, path, document, script, stream):
        t0 = r["t_request"]
        status = int(script.get("status", 200))
        head_delay = float(script.get("head_delay", 0))
        if status != 200:
            if not await self.until(t0 + head_delay):
                return
            kind, message = ERROR_TYPES.get(status, ("api_error", f"upstream status {status}"))
            error = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
            r["t_head"] = r["t_end"] = time.monotonic()
            self.respond(status, json.dumps(error).encode())
            r["end"] = "error_status"
            return
        model = document.get("model", "unknown")
        if path == "/v1/embeddings":
            return await self.embeddings(r, document, script, model, t0 + head_delay + float(script.get("delay", 0)))
        tokens = int(script.get("tokens", 5))
        gaps = script.get("gaps")
        if gaps is None:
            gaps = [float(script.get("gap", 0))] * max(0, tokens - 1)
        gaps = [float(g) for g in gaps]
        if not stream:
            delay = float(script.get("delay", float(script.get("ttft", 0)) + sum(gaps)))
            if not await self.until(t0 + head_delay + delay):
                return
            body = self.whole(path, document, script, model, tokens)
            r["t_head"] = r["t_end"] = time.monotonic()
            coding = script.get("coding")
            encoded, extra = json.dumps(body).encode(), ()
            if coding:
                encoded = encode_whole(coding, encoded)
                extra = (f"Content-Encoding: {'gzip' if coding == 'corrupt' else coding}",)
            self.respond(200, encoded, extra=extra)
            r["end"] = "complete"
            return
        await self.stream(r, path, document, script, model, tokens, gaps, t0, head_delay)

    # -------------------------------------------------------------- documents

    def usage(self, script, tokens, responses=False):
        prompt = int(script.get("prompt_tokens", 7))
        completion = int(script.get("completion_tokens", tokens))
        if responses:
            u = {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": int(script.get("cached_tokens", 0))},
                 "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": prompt + completion}
            return u
        u = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        if "cached_tokens" in script:
            u["prompt_tokens_details"] = {"cached_tokens": int(script["cached_tokens"])}
        return u

    @staticmethod
    def reasons(script, n):
        f = script.get("finish_reason", "stop")
        return list(f) if isinstance(f, list) else [f] * n

    def whole(self, path, document, script, model, tokens):
        n = int(document.get("n", 1) or 1)
        reasons = self.reasons(script, n)
        texts = ["".join(f"tok{i} " for i in range(tokens) if i % n == c) for c in range(n)]
        created = int(time.time())
        if path == "/v1/chat/completions":
            body = {"id": "chatcmpl-scripted", "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": c, "message": {"role": "assistant", "content": texts[c]},
                                 "logprobs": None, "finish_reason": reasons[c]} for c in range(n)]}
        elif path == "/v1/completions":
            body = {"id": "cmpl-scripted", "object": "text_completion", "created": created, "model": model,
                    "choices": [{"index": c, "text": texts[c], "logprobs": None, "finish_reason": reasons[c]}
                                for c in range(n)]}
        else:
            body = self.response_object(model, "completed", texts[0])
            if script.get("usage", True):
                body["usage"] = self.usage(script, tokens, responses=True)
            return body
        if script.get("usage", True):
            body["usage"] = self.usage(script, tokens)
        return body

    @staticmethod
    def response_object(model, status, text=None):
        output = [] if text is None else [{
            "type": "message", "id": "msg_scripted", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}]
        return {"id": "resp_scripted", "object": "response", "created_at": int(time.time()), "status": status,
                "model": model, "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
                "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
                "temperature": 1.0, "top_p": 1.0, "usage": None}

    async def embeddings(self, r, document, script, model, at):
        if not await self.until(at):
            return
        inputs = document.get("input", "")
        inputs = inputs if isinstance(inputs, list) else [inputs]
        dims = int(script.get("dimensions", document.get("dimensions", 8)))
        data = []
        for i, _ in enumerate(inputs):
            vector = [round(0.1 * (i + 1) + 0.01 * d, 4) for d in range(dims)]
            if document.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vector})
        prompt = int(script.get("prompt_tokens", 7))
        body = {"object": "list", "data": data, "model": model}
        if script.get("usage", True):
            body["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
        r["t_head"] = r["t_end"] = time.monotonic()
        self.respond(200, json.dumps(body).encode())
        r["end"] = "complete"

    # -------------------------------------------------------------- streams

    async def stream(self, r, path, document, script, model, tokens, gaps, t0, head_delay):
        eol = script.get("eol", "\n").encode()
        n = int(document.get("n", 1) or 1)
        chat, responses = path == "/v1/chat/completions", path == "/v1/responses"
        include_usage = bool((document.get("stream_options") or {}).get("include_usage")) and script.get("usage", True)
        reasons = self.reasons(script, n)
        batch = max(1, int(script.get("batch", 1)))
        split = set(int(i) for i in script.get("split", []))
        split_delay = float(script.get("split_delay", 0.03))
        malformed = set(int(i) for i in script.get("malformed", []))
        comments = bool(script.get("comments", False))
        error_after = script.get("error_after")
        die_after = script.get("die_after")
        stamp = bool(script.get("stamp", False))
        created = int(time.time())
        ttft = float(script.get("ttft", 0))
        seq = [0]

        def event(payload, name=None):
            data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
            lines = ([b"event: " + name.encode()] if name else []) + [b"data: " + data.encode()]
            return eol.join(lines) + eol + eol

        def chat_chunk(choices, usage=None):
            body = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": created,
                    "model": model, "choices": choices}
            if usage is not None:
                body["usage"] = usage
            return body

        def completion_chunk(choices, usage=None):
            body = {"id": "cmpl-scripted", "object": "text_completion", "created": created, "model": model,
                    "choices": choices}
            if usage is not None:
                body["usage"] = usage
            return body

        def response_event(kind, **fields):
            body = {"type": kind, "sequence_number": seq[0], **fields}
            seq[0] += 1
            return event(body, kind)

        def content(i):
            c = i % n
            last = i >= tokens - n
            reason = reasons[c] if script.get("finish_in_last") and last else None
            if responses:
                body = {"type": "response.output_text.delta", "sequence_number": seq[0], "item_id": "msg_scripted",
                        "output_index": 0, "content_index": 0, "delta": f"tok{i} ", "logprobs": []}
                seq[0] += 1
                if stamp:
                    body["x_ts"] = time.monotonic_ns()
                return event(body, "response.output_text.delta")
            if chat:
                body = chat_chunk([{"index": c, "delta": {"content": f"tok{i} "}, "logprobs": None,
                                    "finish_reason": reason}])
            else:
                body = completion_chunk([{"index": c, "text": f"tok{i} ", "logprobs": None,
                                          "finish_reason": reason}])
            if stamp:
                body["x_ts"] = time.monotonic_ns()
            return event(body)

        async def send(data, kinds):
            t = await self.write(r, data)
            if t is False:
                return False
            for kind, index in kinds:
                r["events"].append({"kind": kind, "t": t, "index": index})
            return t

        # The head, and what precedes the first token.
        if not await self.until(t0 + head_delay):
            return
        coding = script.get("coding")
        head = ("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
                + (f"Content-Encoding: {'gzip' if coding == 'corrupt' else coding}\r\n" if coding else "")
                + "Transfer-Encoding: chunked\r\n\r\n").encode()
        if coding in ("gzip", "deflate"):
            self.encoder = zlib.compressobj(wbits=31 if coding == "gzip" else 15)
        await self.write(None, head, framed=False)
        r["t_head"] = time.monotonic()
        if responses:
            if not await send(response_event("response.created", response=self.response_object(model, "in_progress")),
                              [("response", None)]):
                return
            item = {"type": "message", "id": "msg_scripted", "status": "in_progress", "role": "assistant",
                    "content": []}
            if not await send(response_event("response.output_item.added", output_index=0, item=item)
                              + response_event("response.content_part.added", item_id="msg_scripted", output_index=0,
                                               content_index=0, part={"type": "output_text", "text": "",
                                                                      "annotations": []}),
                              [("response", None), ("response", None)]):
                return
        elif chat and script.get("role_chunk", True):
            role = [{"index": c, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                     "finish_reason": None} for c in range(n)]
            if not await send(event(chat_chunk(role)), [("role", None)]):
                return

        # Content events, in writes of `batch`, at t0 + ttft + the gaps so far (an absolute schedule: no drift).
        at = t0 + ttft
        sent = 0
        write_index = 0
        while sent < tokens:
            if write_index > 0:
                gap = gaps[write_index - 1] if write_index - 1 < len(gaps) else (gaps[-1] if gaps else 0.0)
                if comments and gap > 0:
                    if not await self.until(at + gap / 2) or not await send(b": keep-alive" + eol + eol,
                                                                            [("comment", None)]):
                        return
                at += gap
            if not await self.until(at):
                return
            group = list(range(sent, min(tokens, sent + batch)))
            if len(group) == 1 and group[0] in split:
                data = content(group[0])
                half = len(data) // 2
                if await self.write(r, data[:half]) is False:
                    return
                if not await self.until(time.monotonic() + split_delay):
                    return
                if not await send(data[half:], [("content", group[0])]):
                    return
            else:
                if not await send(b"".join(content(i) for i in group), [("content", i) for i in group]):
                    return
            sent += len(group)
            write_index += 1
            for i in group:
                if i in malformed:
                    if not await send(b"data: {not json" + eol + eol, [("malformed", i)]):
                        return
            if die_after is not None and sent >= int(die_after):
                r["t_end"] = time.monotonic()
                r["end"] = "died"
                self.transport.close()
                return
            if error_after is not None and sent >= int(error_after):
                err = {"error": {"message": "scripted failure mid-stream", "type": "server_error", "param": None,
                                 "code": 500}}
                if not await send(event(err, "error" if script.get("error_event") else None), [("error", None)]):
                    return
                if not responses and not await send(event("[DONE]"), [("done", None)]):
                    return
                return await self.finish(r)

        # The end: finish reasons, usage, [DONE].
        if responses:
            text = "".join(f"tok{i} " for i in range(tokens))
            final = self.response_object(model, "completed", text)
            if script.get("usage", True):
                final["usage"] = self.usage(script, tokens, responses=True)
            if not await send(response_event("response.output_text.done", item_id="msg_scripted", output_index=0,
                                             content_index=0, text=text, logprobs=[])
                              + response_event("response.completed", response=final),
                              [("response", None), ("finish", None)]):
                return
            return await self.finish(r)
        if not script.get("finish_in_last"):
            if chat:
                finish = chat_chunk([{"index": c, "delta": {}, "logprobs": None, "finish_reason": reasons[c]}
                                     for c in range(n)])
            else:
                finish = completion_chunk([{"index": c, "text": "", "logprobs": None, "finish_reason": reasons[c]}
                                           for c in range(n)])
            if not await send(event(finish), [("finish", None)]):
                return
        if include_usage:
            u = self.usage(script, tokens)
            usage_chunk = chat_chunk([], u) if chat else completion_chunk([], u)
            if not await send(event(usage_chunk), [("usage", None)]):
                return
        if not await send(event("[DONE]"), [("done", None)]):
            return
        await self.finish(r)

    async def finish(self, r):
        tail = float(r.get("script", {}).get("tail_delay", 0))
        if tail > 0:
            await asyncio.sleep(tail)  # the body's last chunk comes this long after the last event
        if self.encoder is not None:
            await self.write(None, chunk(self.encoder.flush()), framed=False)
            self.encoder = None
        t = await self.write(None, b"0\r\n\r\n", framed=False)
        if t is not False:
            r["t_end"] = t
            r["end"] = "complete"


async def main(port, host="127.0.0.1"):
    server = Server()
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: Connection(server), host, port, backlog=4096, reuse_address=True)
    print(f"listening {host}:{srv.sockets[0].getsockname()[1]}", flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (0: chosen by the kernel)")
    args = ap.parse_args()
    try:
        asyncio.run(main(args.port))
    except KeyboardInterrupt:
        pass
