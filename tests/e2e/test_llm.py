"""LLM serving metrics through the proxy (issue 17, docs/llm.md): the official `openai` SDK as the client, streamed and
not, chat, completions, embeddings and responses, through `mlops-exporter serve`'s proxy to a scripted
OpenAI-compatible upstream (tests/e2e/peers/openai_upstream.py) whose log says when it wrote every event. Every
histogram's count is asserted exactly and its sum against the upstream's log within TOL per observation (llm_support:
the loopback hops and the scheduling of three processes on 2 cores); buckets against the scripts where the script is
far from a bound. Also: usage present and absent (estimated), 429 and 500, an upstream dying mid-stream, a client that
cancels (the upstream sees its connection closed), SSE comments, split and coalesced events, malformed and error
events, events passed through byte for byte and unbuffered (arrival times against the upstream's write times),
goodput objectives, served names, LoRA adapters and the catch-all model."""
import gzip
import hashlib
import http.client
import json
import socket
import subprocess
import threading
import time

import pytest

from conftest import free_port, scrape, wait_for
from llm_support import (
    ADAPTER, DURATION, ENDPOINTS, ERRORS, FINISH, IN_FLIGHT, ITL, MALFORMED, MODELS, MODELS_WITHOUT_CATCH_ALL,
    OPENAI_ROUTES_YAML, OTHER_VERSION, REQUESTS, SERVED, TOKENS, TOL, TPOT, TTFT, WITHIN, Expected, RawExchange,
    assert_buckets, assert_close, histogram, openai_upstream, script, sdk_client, total, value)  # noqa: F401 (fixture)
from proxy_support import PROXY_CANCELLED, PROXY_REQUESTS, UNROUTED, read_head, start_proxy  # noqa: F401 (fixture)

openai = pytest.importorskip("openai", reason="the openai SDK (tests/requirements.txt) is not installed")

CHAT = {"model": "chat", "version": "default"}
MESSAGES = [{"role": "user", "content": "Say something."}]


@pytest.fixture
def llm_proxy(start_proxy, openai_upstream):
    """The exporter with MODELS and a proxy (default routes) in front of the module's upstream."""
    return start_proxy(MODELS, openai_upstream.base)


def stream_chat(client, model=SERVED, usage=True, **fields):
    """A streamed chat completion read to its end; the text received."""
    kwargs = {"stream_options": {"include_usage": True}} if usage else {}
    text = []
    for chunk in client.chat.completions.create(model=model, messages=MESSAGES, stream=True,
                                                extra_headers=script(**fields), **kwargs):
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
    return "".join(text)


def wait_requests(exporter, n, **labels):
    """The scrape once mlops_llm_requests_total{labels} (summed) reached n and nothing is in flight."""
    def reached():
        _, s = scrape(exporter)
        return s if total(s, REQUESTS, **labels) >= n and total(s, IN_FLIGHT) == 0 else None
    return wait_for(reached, timeout=10, what=f"{n} LLM requests recorded for {labels}")


# ------------------------------------------------------------------------------------------------ the upstream alone

def test_the_upstream_follows_its_script_through_the_sdk(openai_upstream):
    """The peer itself, with the SDK talking to it directly: the chunks arrive at the scripted times (as the client
    sees them) and the log says what was written. The other tests rely on this."""
    client = sdk_client(openai_upstream.port)
    t0 = time.monotonic()
    arrivals, usage = [], None
    for chunk in client.chat.completions.create(model=SERVED, messages=MESSAGES, stream=True,
                                                stream_options={"include_usage": True},
                                                extra_headers=script(id="self-1", ttft=0.2, gap=0.05, tokens=4)):
        if chunk.usage:
            usage = chunk.usage
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 4 and usage.completion_tokens == 4 and usage.prompt_tokens == 7
    record = openai_upstream.record("self-1")
    e = Expected(record)
    assert record["end"] == "complete" and e.content_events == 4
    # The upstream writes on an absolute schedule: a write late by its scheduling makes the next gap shorter.
    assert_close(e.ttft, 0.2, TOL, "the upstream's TTFT")
    for gap in e.gaps:
        assert_close(gap, 0.05, TOL, "the upstream's gap")
    # The SDK's set-up (its first request builds an HTTP client) is in it: 0.4003 s was seen with three test workers
    # on two cores. At least the scripted 0.2 s (less 10 ms), at most 0.79 s.
    assert_close(arrivals[0] - t0, 0.49, 0.3, "the client's TTFT (the SDK's request set-up included)")
    # The client sees the upstream's gaps, give or take a loopback hop at each end.
    for (a, b), gap in zip(zip(arrivals, arrivals[1:]), e.gaps):
        assert_close(b - a, gap, TOL, "a gap at the client")
    kinds = [ev["kind"] for ev in record["events"]]
    assert kinds == ["role", "content", "content", "content", "content", "finish", "usage", "done"], kinds
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=SERVED, messages=MESSAGES, extra_headers=script(status=429))
    embedding = client.embeddings.create(model="embed", input=["a", "b"], extra_headers=script(prompt_tokens=3))
    assert len(embedding.data) == 2 and embedding.usage.prompt_tokens == 3


# ------------------------------------------------------------------------------------------------ streamed requests

def test_streamed_chat_histograms_match_the_script(llm_proxy, openai_upstream):
    """Three streamed chats with usage: TTFT from the request's last byte to the first content chunk (the role chunk
    with empty content, written at once, is not content), one ITL per gap, TPOT, duration, tokens from usage; in
    flight 1 while a stream is open, 0 after."""
    client = sdk_client(llm_proxy.proxy_port)
    scripts = [dict(id="hist-1", ttft=0.15, gap=0.06, tokens=6, prompt_tokens=11),
               dict(id="hist-2", ttft=0.30, gap=0.02, tokens=4, prompt_tokens=5),
               dict(id="hist-3", ttft=0.15, gaps=[0.06, 0.02, 0.06], tokens=4, prompt_tokens=3)]
    # The first one read chunk by chunk, the in-flight gauge scraped in the middle.
    seen_in_flight = None
    for i, chunk in enumerate(client.chat.completions.create(model=SERVED, messages=MESSAGES, stream=True,
                                                             stream_options={"include_usage": True},
                                                             extra_headers=script(**scripts[0]))):
        if i == 2:
            _, s = scrape(llm_proxy)
            seen_in_flight = value(s, IN_FLIGHT, **CHAT)
    assert seen_in_flight == 1
    for fields in scripts[1:]:
        assert stream_chat(client, **fields) == "".join(f"tok{i} " for i in range(fields["tokens"]))
    s = wait_requests(llm_proxy, 3, **CHAT)
    expected = [Expected(openai_upstream.record(f["id"])) for f in scripts]

    assert value(s, REQUESTS, endpoint="chat_completions", outcome="ok", **CHAT) == 3
    assert total(s, REQUESTS) == 3
    assert value(s, IN_FLIGHT, **CHAT) == 0
    count, sum_, buckets = histogram(s, TTFT, **CHAT)
    assert count == 3
    assert_close(sum_, sum(e.ttft for e in expected), 3 * TOL, "TTFT sum")
    assert_buckets(buckets, [e.ttft for e in expected], TOL, "TTFT buckets")
    assert buckets[0.1] == 0 and buckets[0.4] == 3, buckets  # 0.15, 0.30, 0.15 s: never early, late by < 0.1 s
    count, sum_, buckets = histogram(s, ITL, **CHAT)
    assert count == sum(f["tokens"] - 1 for f in scripts) == 11
    # The gaps of one stream add up to its last content chunk's time minus its first: TOL at each end.
    assert_close(sum_, sum(e.itl_sum for e in expected), 3 * 2 * TOL, "ITL sum")
    assert_buckets(buckets, [g for e in expected for g in e.gaps], TOL, "ITL buckets")
    count, sum_, _ = histogram(s, TPOT, **CHAT)
    assert count == 3
    assert_close(sum_, sum(e.tpot for e in expected), 3 * TOL, "TPOT sum")
    count, sum_, _ = histogram(s, DURATION, **CHAT)
    assert count == 3
    assert_close(sum_, sum(e.duration for e in expected), 3 * TOL, "duration sum")
    assert value(s, TOKENS, type="prompt", source="usage", **CHAT) == 11 + 5 + 3
    assert value(s, TOKENS, type="completion", source="usage", **CHAT) == 6 + 4 + 4
    assert total(s, TOKENS, source="estimated") == 0
    assert value(s, FINISH, reason="stop", **CHAT) == 3 and total(s, FINISH) == 3
    assert total(s, ERRORS) == 0 and total(s, MALFORMED) == 0
    # The model's service series count the exchanges too (as for every proxied request).
    assert total(s, "mlops_model_requests_total", model="chat") == 3


def test_tokens_without_usage_are_estimated_from_content_chunks(llm_proxy, openai_upstream):
    """No `usage` in the stream (not asked for, or asked and left out by the upstream): completion tokens are the
    content-bearing chunks, labelled estimated; prompt tokens are not estimated. With usage, usage's figures win over
    the chunk count (a chunk may carry several tokens), also for TPOT. finish_reason in the last content chunk (as
    vLLM sends it) and several choices (one finish_reason each) are counted."""
    client = sdk_client(llm_proxy.proxy_port)
    stream_chat(client, usage=False, id="est-1", tokens=5, gap=0.01)
    for _ in client.completions.create(model=SERVED, prompt="Say", stream=True, stream_options={"include_usage": True},
                                       extra_headers=script(id="est-2", tokens=3, gap=0.01, usage=False,
                                                            finish_in_last=True, finish_reason="length")):
        pass
    # Usage present, 8 completion tokens over 4 chunks.
    stream_chat(client, id="est-3", tokens=4, gap=0.03, completion_tokens=8, prompt_tokens=2)
    # Two choices, 6 content chunks (3 each), finish reasons stop and length.
    for _ in client.completions.create(model=SERVED, prompt="Say", stream=True, n=2,
                                       extra_headers=script(id="est-4", tokens=6, gap=0.01,
                                                            finish_reason=["stop", "length"])):
        pass
    s = wait_requests(llm_proxy, 4, **CHAT)
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="ok", **CHAT) == 2
    assert value(s, REQUESTS, endpoint="completions", outcome="ok", **CHAT) == 2
    assert value(s, TOKENS, type="completion", source="estimated", **CHAT) == 5 + 3 + 6
    assert value(s, TOKENS, type="prompt", source="estimated", **CHAT) == 0
    assert value(s, TOKENS, type="completion", source="usage", **CHAT) == 8
    assert value(s, TOKENS, type="prompt", source="usage", **CHAT) == 2
    assert value(s, FINISH, reason="stop", **CHAT) == 2 + 1  # est-1, est-3; est-4's first choice
    assert value(s, FINISH, reason="length", **CHAT) == 1 + 1  # est-2; est-4's second choice
    # TPOT: est-3 over its usage's 8 tokens, the others over their chunks.
    e3 = Expected(openai_upstream.record("est-3"), completion_tokens=8)
    others = [Expected(openai_upstream.record(i)) for i in ("est-1", "est-2", "est-4")]
    count, sum_, _ = histogram(s, TPOT, **CHAT)
    assert count == 4
    assert_close(sum_, e3.tpot + sum(e.tpot for e in others), 4 * TOL, "TPOT sum")
    # Inter-token gaps are each choice's own: est-4's two choices of 3 chunks have 2 gaps each (it was 5, the
    # stream's, with one choice's gaps between the other's).
    count, _, _ = histogram(s, ITL, **CHAT)
    assert count == 4 + 2 + 3 + 2 * 2


# ------------------------------------------------------------------------------------------------ not streamed

def test_not_streamed_chat_completions_and_embeddings(llm_proxy, openai_upstream):
    """Not streamed: duration and tokens from usage (cached ones too), finish reasons; no TTFT, ITL or TPOT."""
    client = sdk_client(llm_proxy.proxy_port)
    r = client.chat.completions.create(model=SERVED, messages=MESSAGES,
                                       extra_headers=script(id="whole-1", tokens=9, delay=0.2, prompt_tokens=20,
                                                            cached_tokens=16))
    assert r.usage.completion_tokens == 9 and r.choices[0].finish_reason == "stop"
    r = client.completions.create(model=SERVED, prompt="Say",
                                  extra_headers=script(id="whole-2", tokens=3, delay=0.15, finish_reason="length"))
    assert r.choices[0].finish_reason == "length"
    e = client.embeddings.create(model=SERVED, input=["one", "two", "three"],
                                 extra_headers=script(id="whole-3", prompt_tokens=12))
    assert len(e.data) == 3 and e.usage.prompt_tokens == 12
    # Usage absent: nothing to count (a whole response is not estimated).
    client.chat.completions.create(model=SERVED, messages=MESSAGES,
                                   extra_headers=script(id="whole-4", tokens=2, usage=False))
    s = wait_requests(llm_proxy, 4, **CHAT)
    for endpoint, n in (("chat_completions", 2), ("completions", 1), ("embeddings", 1)):
        assert value(s, REQUESTS, endpoint=endpoint, outcome="ok", **CHAT) == n, endpoint
    expected = [Expected(openai_upstream.record(f"whole-{i}")) for i in (1, 2, 3, 4)]
    count, sum_, buckets = histogram(s, DURATION, **CHAT)
    assert count == 4
    assert_close(sum_, sum(e.duration for e in expected), 4 * TOL, "duration sum")
    assert_buckets(buckets, [e.duration for e in expected], TOL, "duration buckets")
    assert buckets[0.1] <= 2 and buckets[0.25] >= 2, buckets  # 0.2, 0.15, ~0, ~0 s
    for h in (TTFT, ITL, TPOT):
        assert histogram(s, h, **CHAT)[0] == 0, h
    assert value(s, TOKENS, type="prompt", source="usage", **CHAT) == 20 + 7 + 12
    assert value(s, TOKENS, type="completion", source="usage", **CHAT) == 9 + 3
    assert value(s, TOKENS, type="cached", source="usage", **CHAT) == 16
    assert total(s, TOKENS, source="estimated") == 0
    assert value(s, FINISH, reason="stop", **CHAT) == 2 and value(s, FINISH, reason="length", **CHAT) == 1


def test_compressed_responses_and_requests_are_read(llm_proxy, openai_upstream):
    """Bodies under a content coding (a gzip middleware in front of the server; httpx, under the SDK, accepts gzip):
    a gzip and a zlib (`deflate`) whole response give their usage, a gzip and a deflate stream (flushed per event)
    their time to first token, gaps and usage, a gzip request body its model; what the client gets is untouched (the
    SDK reads it). A coding the proxy cannot undo (br), a damaged gzip body and a whole response over the limit
    (compressed or not) are counted (mlops_proxy_capture_failures_total, `unsupported_encoding`,
    `invalid_encoding`, `too_large`), the exchange still counted ok."""
    from proxy_support import PROXY_CAPTURE_FAILURES
    client = sdk_client(llm_proxy.proxy_port)
    for coding, tokens, prompt in (("gzip", 9, 20), ("deflate", 4, 6)):
        r = client.chat.completions.create(model=SERVED, messages=MESSAGES, extra_headers=script(
            id=f"coded-whole-{coding}", tokens=tokens, prompt_tokens=prompt, coding=coding))
        assert r.usage.completion_tokens == tokens and r.choices[0].message.content.startswith("tok0")
    streams = [dict(id="coded-stream-gzip", ttft=0.15, gap=0.06, tokens=5, prompt_tokens=3, coding="gzip"),
               dict(id="coded-stream-deflate", ttft=0.1, gap=0.05, tokens=3, prompt_tokens=2, coding="deflate")]
    for fields in streams:
        assert stream_chat(client, **fields) == "".join(f"tok{i} " for i in range(fields["tokens"]))
    # A gzip request body: the model is read from it (the default routes name no model).
    document = {"model": SERVED, "messages": MESSAGES}
    x = RawExchange(llm_proxy.proxy_port, "/v1/chat/completions", gzip.compress(json.dumps(document).encode()),
                    headers={"Content-Encoding": "gzip", **script(id="coded-request", tokens=2, prompt_tokens=1)})
    assert x.status == 200 and json.loads(x.body)["usage"]["completion_tokens"] == 2
    s = wait_requests(llm_proxy, 5, **CHAT)
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="ok", **CHAT) == 5
    assert value(s, TOKENS, type="completion", source="usage", **CHAT) == 9 + 4 + 5 + 3 + 2
    assert value(s, TOKENS, type="prompt", source="usage", **CHAT) == 20 + 6 + 3 + 2 + 1
    assert total(s, TOKENS, source="estimated") == 0
    expected = [Expected(openai_upstream.record(f["id"])) for f in streams]
    count, sum_, _ = histogram(s, TTFT, **CHAT)
    assert count == 2
    assert_close(sum_, sum(e.ttft for e in expected), 2 * TOL, "TTFT sum")
    count, sum_, _ = histogram(s, ITL, **CHAT)
    assert count == 4 + 2
    assert_close(sum_, sum(e.itl_sum for e in expected), 2 * 2 * TOL, "ITL sum")
    assert total(s, PROXY_CAPTURE_FAILURES) == 0 and total(s, MALFORMED) == 0
    # What cannot be read is counted; the exchange is still an ok request.
    for coding in ("br", "corrupt"):
        x = RawExchange(llm_proxy.proxy_port, "/v1/chat/completions", json.dumps(document).encode(),
                        headers=script(id=f"coded-{coding}", tokens=2, coding=coding))
        assert x.status == 200
    # So is a whole response longer than capture.max_body_bytes (1 MiB), inflated or not: its usage is unknown.
    for coding in ("gzip", None):
        r = client.chat.completions.create(model=SERVED, messages=MESSAGES, extra_headers=script(
            id=f"coded-long-{coding}", tokens=200_000, coding=coding))
        assert r.usage.completion_tokens == 200_000
    s = wait_requests(llm_proxy, 9, **CHAT)
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="ok", **CHAT) == 9
    assert value(s, PROXY_CAPTURE_FAILURES, model="chat", reason="unsupported_encoding") == 1
    assert value(s, PROXY_CAPTURE_FAILURES, model="chat", reason="invalid_encoding") == 1
    assert value(s, PROXY_CAPTURE_FAILURES, model="chat", reason="too_large") == 2
    assert value(s, TOKENS, type="completion", source="usage", **CHAT) == 9 + 4 + 5 + 3 + 2
    # A client's compressed request is inflated only to capture.max_body_bytes (the CPU a small body can make the
    # event loop spend): a model named after 2 MiB of padding is not read; the request is proxied all the same.
    padded = {"padding": " " * (2 << 20), "model": SERVED, "messages": MESSAGES}
    x = RawExchange(llm_proxy.proxy_port, "/v1/chat/completions", gzip.compress(json.dumps(padded).encode()),
                    headers={"Content-Encoding": "gzip", **script(id="coded-bomb", tokens=1)})
    assert x.status == 200

    def counted():
        _, s = scrape(llm_proxy)
        return s if total(s, PROXY_CAPTURE_FAILURES, reason="too_large") == 3 else None
    s = wait_for(counted, timeout=10, what="the padded request counted too_large")
    # Its model unread, the catch-all model has it.
    assert value(s, PROXY_CAPTURE_FAILURES, model="fallback", reason="too_large") == 1
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="ok", **CHAT) == 9
    assert total(s, REQUESTS, endpoint="chat_completions", model="fallback") == 1, [k for k in s if k[0] == REQUESTS]


def test_responses_api_streamed_and_not(llm_proxy, openai_upstream):
    """/v1/responses: `event: response.*` events, text deltas are the content, usage (input/output tokens) in
    response.completed."""
    client = sdk_client(llm_proxy.proxy_port)
    with client.responses.stream(model=SERVED, input="Say",
                                 extra_headers=script(id="resp-1", ttft=0.1, gap=0.03, tokens=4,
                                                      prompt_tokens=6)) as stream:
        for _ in stream:
            pass
        assert stream.get_final_response().usage.output_tokens == 4
    assert client.responses.create(model=SERVED, input="Say",
                                   extra_headers=script(id="resp-2", tokens=2, prompt_tokens=4)).output_text
    s = wait_requests(llm_proxy, 2, **CHAT)
    assert value(s, REQUESTS, endpoint="responses", outcome="ok", **CHAT) == 2
    e = Expected(openai_upstream.record("resp-1"))
    count, sum_, _ = histogram(s, TTFT, **CHAT)
    assert count == 1
    assert_close(sum_, e.ttft, TOL, "TTFT")
    count, sum_, _ = histogram(s, ITL, **CHAT)
    assert count == 3
    assert_close(sum_, e.itl_sum, 2 * TOL, "ITL sum")
    assert value(s, TOKENS, type="prompt", source="usage", **CHAT) == 6 + 4
    assert value(s, TOKENS, type="completion", source="usage", **CHAT) == 4 + 2


# ------------------------------------------------------------------------------------------------ failures

def test_upstream_429_and_500_are_errors(llm_proxy, openai_upstream):
    client = sdk_client(llm_proxy.proxy_port)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=SERVED, messages=MESSAGES, extra_headers=script(id="err-1", status=429))
    with pytest.raises(openai.InternalServerError):
        stream_chat(client, id="err-2", status=500, head_delay=0.1)
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model=SERVED, input="x", extra_headers=script(id="err-3", status=500))
    s = wait_requests(llm_proxy, 3, **CHAT)
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="error", **CHAT) == 2
    assert value(s, REQUESTS, endpoint="embeddings", outcome="error", **CHAT) == 1
    assert total(s, REQUESTS, outcome="ok") == 0
    assert value(s, ERRORS, reason="http_429", **CHAT) == 1
    assert value(s, ERRORS, reason="http_500", **CHAT) == 2
    # The service series follow the proxy's error_statuses (default 5xx), as for any proxied request: the 429 is a
    # served request there (a client's 4xx paged through the availability SLO before), the 500s are errors.
    assert total(s, "mlops_model_requests_total", model="chat", status="ok") == 1
    assert total(s, "mlops_model_requests_total", model="chat", status="error") == 2
    assert total(s, "mlops_model_errors_total", model="chat", kind="http_429") == 0
    assert total(s, "mlops_model_errors_total", model="chat", kind="http_500") == 2
    count, sum_, _ = histogram(s, DURATION, **CHAT)  # error outcomes are timed too
    assert count == 3
    expected = [Expected(openai_upstream.record(f"err-{i}")) for i in (1, 2, 3)]
    assert_close(sum_, sum(e.duration for e in expected), 3 * TOL, "duration sum")
    assert histogram(s, TTFT, **CHAT)[0] == 0 and histogram(s, TPOT, **CHAT)[0] == 0
    assert total(s, TOKENS) == 0 and total(s, FINISH) == 0


def test_a_redirect_is_an_error_not_a_good_request(llm_proxy, openai_upstream):
    """Only a 2xx answer generated anything: a 302 (an ingress sending the client to a login page) or a 307 is an
    error (`http_other`) and meets no objective. Before, any status below 400 counted `ok` and within every objective,
    so goodput read 100 % behind a redirecting ingress. The service series follow `error_statuses` (a served request)."""
    for i, status in enumerate((302, 307)):
        body = json.dumps({"model": SERVED, "messages": MESSAGES, "stream": True,
                           "x_script": {"id": f"redir-{i}", "status": status}}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", llm_proxy.proxy_port, timeout=10)
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        assert conn.getresponse().status == status
        conn.close()
    s = wait_requests(llm_proxy, 2, **CHAT)
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="error", **CHAT) == 2
    assert total(s, REQUESTS, outcome="ok") == 0
    assert value(s, ERRORS, reason="http_other", **CHAT) == 2
    assert total(s, WITHIN) == 0
    assert total(s, "mlops_model_requests_total", model="chat", status="ok") == 2


def test_usage_counts_that_are_no_token_counts_are_counted_not_dropped(llm_proxy, openai_upstream):
    """A `usage` count that is no whole number of tokens below 1e15 (here 1e18) is not taken, and the exchange is
    counted `mlops_proxy_capture_failures_total{reason="invalid_value"}`; a stream's completion tokens are then the
    estimate. Before, it vanished: nothing counted or said it."""
    client = sdk_client(llm_proxy.proxy_port)
    client.chat.completions.create(model=SERVED, messages=MESSAGES,
                                   extra_headers=script(id="usage-1", completion_tokens=10**18))
    stream_chat(client, id="usage-2", tokens=4, completion_tokens=10**18)
    s = wait_requests(llm_proxy, 2, **CHAT)
    assert value(s, "mlops_proxy_capture_failures_total", model="chat", reason="invalid_value") == 2
    assert value(s, TOKENS, type="prompt", source="usage", **CHAT) == 7 + 7
    assert value(s, TOKENS, type="completion", source="usage", **CHAT) == 0
    assert value(s, TOKENS, type="completion", source="estimated", **CHAT) == 4
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="ok", **CHAT) == 2


def test_upstream_dying_mid_stream_is_an_interrupted_stream(llm_proxy, openai_upstream):
    """The upstream closes after 3 of 10 content chunks: the client must not see a clean end; the request is an
    error (stream_interrupted) with the 3 tokens seen counted as estimated."""
    client = sdk_client(llm_proxy.proxy_port)
    received = []
    with pytest.raises((openai.APIConnectionError, openai.APIError)):
        for chunk in client.chat.completions.create(model=SERVED, messages=MESSAGES, stream=True,
                                                    extra_headers=script(id="die-1", tokens=10, gap=0.02,
                                                                         die_after=3)):
            received += [c.delta.content for c in chunk.choices if c.delta.content]
    assert received == ["tok0 ", "tok1 ", "tok2 "]
    assert openai_upstream.record("die-1")["end"] == "died"
    s = wait_requests(llm_proxy, 1, **CHAT)
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="error", **CHAT) == 1
    assert value(s, ERRORS, reason="stream_interrupted", **CHAT) == 1
    assert value(s, TOKENS, type="completion", source="estimated", **CHAT) == 3
    assert total(s, FINISH) == 0
    assert histogram(s, TTFT, **CHAT)[0] == 1 and histogram(s, ITL, **CHAT)[0] == 2
    assert histogram(s, TPOT, **CHAT)[0] == 0  # TPOT: ok requests only


def test_error_event_in_the_stream(llm_proxy, openai_upstream):
    """An error object in the stream (vLLM sends `data: {"error": ...}` then [DONE]; some send `event: error`):
    counted as stream_error; the request's outcome is error."""
    client = sdk_client(llm_proxy.proxy_port)
    for i, named in ((1, False), (2, True)):
        with pytest.raises(openai.APIError):
            stream_chat(client, id=f"evt-{i}", tokens=6, gap=0.01, error_after=2, error_event=named)
    s = wait_requests(llm_proxy, 2, **CHAT)
    assert value(s, ERRORS, reason="stream_error", **CHAT) == 2
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="error", **CHAT) == 2
    assert value(s, TOKENS, type="completion", source="estimated", **CHAT) == 2 + 2


def test_a_client_that_cancels_cancels_the_upstream_request(llm_proxy, openai_upstream):
    """The client reads 3 content chunks and closes the stream while the upstream waits 5 s before the 4th: the
    upstream sees its connection closed (well before those 5 s), and the request is cancelled with its 3 tokens;
    cancelled requests are not timed."""
    client = sdk_client(llm_proxy.proxy_port)
    stream = client.chat.completions.create(model=SERVED, messages=MESSAGES, stream=True,
                                            extra_headers=script(id="cancel-1", tokens=10,
                                                                 gaps=[0.02, 0.02, 5.0, 0.02]))
    content = 0
    for chunk in stream:
        content += sum(1 for c in chunk.choices if c.delta.content)
        if content == 3:
            break
    closed_at = time.monotonic()
    stream.close()
    record = openai_upstream.record("cancel-1", timeout=4)  # ends when the upstream sees the close
    assert record["end"] == "peer_closed", record["end"]
    assert record["peer_closed_at"] - closed_at < 1.0
    assert sum(e["kind"] == "content" for e in record["events"]) == 3
    s = wait_requests(llm_proxy, 1, **CHAT)
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="cancelled", **CHAT) == 1
    assert value(s, TOKENS, type="completion", source="estimated", **CHAT) == 3
    assert value(s, PROXY_CANCELLED, model="chat") == 1
    assert histogram(s, DURATION, **CHAT)[0] == 0
    assert total(s, ERRORS) == 0


def test_a_client_that_leaves_before_the_response_head_stops_the_generation(llm_proxy, openai_upstream):
    """The upstream takes 3 s before its response head (a queue, a long prefill); the client leaves after 0.3 s: the
    upstream sees its connection closed at once, so that it can abort the generation (before, the connection kept its
    place in the pool and the proxy read the whole generation and dropped it, as for a reset request of any model)."""
    body = json.dumps({"model": SERVED, "messages": MESSAGES, "stream": True,
                       "x_script": dict(id="cancel-head", tokens=10, gap=0.05, head_delay=3.0)}).encode()
    with socket.create_connection(("127.0.0.1", llm_proxy.proxy_port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        time.sleep(0.3)  # the client's own pause before it leaves, not a synchronisation
    closed_at = time.monotonic()
    record = openai_upstream.record("cancel-head", timeout=6)
    assert record["end"] == "peer_closed", record["end"]
    assert record["peer_closed_at"] - closed_at < 1.0
    assert not record["events"]
    s = wait_requests(llm_proxy, 1, **CHAT)
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="cancelled", **CHAT) == 1
    assert value(s, PROXY_CANCELLED, model="chat") == 1


def test_a_client_that_leaves_during_its_request_body_is_counted_for_its_model(llm_proxy):
    """Two clients send a chat request's head and part of its body, then close their connections: the first after the
    body's `model` (the served name), the second before any `model`. Each request is cancelled, counted for the model
    its body named so far (`chat`), or the catch-all model (`fallback`, version __other__) when it had named none.
    Before the fix both were counted under __unrouted__ and in no mlops_llm_* series."""
    named = json.dumps({"model": SERVED, "messages": MESSAGES, "stream": True}).encode()
    unnamed = json.dumps({"messages": MESSAGES, "model": SERVED, "stream": True}).encode()
    for body, cut in ((named, named.index(b'"messages"') + 14), (unnamed, 20)):
        with socket.create_connection(("127.0.0.1", llm_proxy.proxy_port), timeout=10) as s:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body[:cut])
    fallback = {"model": "fallback", "version": OTHER_VERSION}

    def both():
        _, s = scrape(llm_proxy)
        done = total(s, REQUESTS, **CHAT) + total(s, REQUESTS, **fallback) + value(s, PROXY_REQUESTS, model=UNROUTED)
        return s if done >= 2 and total(s, IN_FLIGHT) == 0 else None
    s = wait_for(both, timeout=10, what="both requests recorded")
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="cancelled", **CHAT) == 1
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="cancelled", **fallback) == 1
    assert value(s, PROXY_REQUESTS, model="chat") == 1 and value(s, PROXY_REQUESTS, model="fallback") == 1
    assert value(s, PROXY_CANCELLED, model="chat") == 1 and value(s, PROXY_CANCELLED, model="fallback") == 1
    assert value(s, PROXY_REQUESTS, model=UNROUTED) == 0 and value(s, PROXY_CANCELLED, model=UNROUTED) == 0
    assert total(s, REQUESTS) == 2 and histogram(s, DURATION, **CHAT)[0] == 0


def test_a_failure_before_the_body_is_counted_for_the_model_the_body_names(start_proxy):
    """The upstream refuses connections: the proxy answers 502 once it has the head. The client sends its body only
    after that answer (as the SDK's separate writes may): the failure counts for the model the body names (it went
    to the catch-all model before: the record was made without the body; an LLM probe)."""
    e = start_proxy(MODELS, f"http://127.0.0.1:{free_port()}")
    body = json.dumps({"model": SERVED, "messages": MESSAGES}).encode()
    with socket.create_connection(("127.0.0.1", e.proxy_port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        assert read_head(s).startswith(b"HTTP/1.1 502 ")
        s.sendall(body)
        got = wait_for(lambda: (lambda s: s if total(s, ERRORS, **CHAT) >= 1 else None)(scrape(e)[1]), timeout=10,
                       what="the failure counted for chat")
    assert value(got, ERRORS, reason="connect_refused", **CHAT) == 1
    assert value(got, PROXY_REQUESTS, model="chat") == 1 and total(got, REQUESTS, model="fallback") == 0


def test_an_early_answer_before_the_body_is_counted_for_the_model_the_body_names(start_proxy):
    """An upstream (a gateway) answers 413 as soon as it has the head, before the body: the client sends its body
    after the answer. The answer counts for the model the body names (the catch-all model's before; an LLM probe)."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = server.accept()
        with conn:
            read_head(conn)  # the request's head
            conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
            conn.settimeout(5)
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
    threading.Thread(target=serve, daemon=True).start()
    e = start_proxy(MODELS, f"http://127.0.0.1:{server.getsockname()[1]}")
    body = json.dumps({"model": SERVED, "messages": MESSAGES}).encode()
    try:
        with socket.create_connection(("127.0.0.1", e.proxy_port), timeout=10) as s:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body))
            assert read_head(s).startswith(b"HTTP/1.1 413 ")
            s.sendall(body)
            got = wait_for(lambda: (lambda s: s if total(s, REQUESTS, **CHAT) >= 1 else None)(scrape(e)[1]),
                           timeout=10, what="the answer counted for chat")
    finally:
        server.close()
    assert value(got, ERRORS, reason="http_413", **CHAT) == 1
    assert total(got, REQUESTS, model="fallback") == 0


def test_a_held_body_whose_exchange_fails_as_it_is_released_is_still_read_and_counted(start_proxy):
    """With inject_include_usage a chat body is held up to the capture limit; one that outgrows it is released, and
    the connection asked for then is refused at once (pool_full: the only one is taken, no waiting). The rest of the
    body must be read on and the 503 counted for the model the body names. Before, the body stayed paused for good:
    nothing counted, the client's connection never closed (a review)."""
    from proxy_support import PROXY_UPSTREAM_ERRORS, PROXY_UPSTREAM_OPEN
    silent = socket.create_server(("127.0.0.1", 0))  # listens, never accepts: a connection to it stays busy
    e = start_proxy(MODELS, f"http://127.0.0.1:{silent.getsockname()[1]}", max_connections=1, max_waiting=0,
                    inject_include_usage=True)
    small = json.dumps({"model": SERVED, "messages": MESSAGES}).encode()
    a = socket.create_connection(("127.0.0.1", e.proxy_port), timeout=10)
    try:
        a.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(small) + small)
        wait_for(lambda: (value(scrape(e)[1], PROXY_UPSTREAM_OPEN) or 0) == 1, timeout=10,
                 what="the only upstream connection taken")
        big = json.dumps({"model": SERVED, "messages": MESSAGES, "pad": "x" * 1_400_000}).encode()
        with socket.create_connection(("127.0.0.1", e.proxy_port), timeout=10) as b:
            b.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            for at in range(0, len(big), 65536):
                piece = big[at:at + 65536]
                b.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            b.sendall(b"0\r\n\r\n")
            assert read_head(b).startswith(b"HTTP/1.1 503 ")
            got = wait_for(
                lambda: (lambda s: s if value(s, PROXY_UPSTREAM_ERRORS, model="chat", reason="pool_full") else None)(
                    scrape(e)[1]), timeout=10, what="the 503 counted for chat")
        assert value(got, ERRORS, reason="pool_full", **CHAT) == 1
    finally:
        a.close()
        silent.close()


def test_an_h2_client_that_resets_during_its_request_body_is_counted_for_its_model(llm_proxy):
    """The same over HTTP/2 (h2c): a stream reset after the body's `model`, another before any. HTTP/2 hands a request
    over only once its body is whole: both counted nowhere before; then, told without their partial bodies, both
    under the catch-all model (a review of that fix)."""
    import h2.config
    import h2.connection
    import h2.errors
    named = json.dumps({"model": SERVED, "messages": MESSAGES, "stream": True}).encode()
    unnamed = json.dumps({"messages": MESSAGES, "model": SERVED, "stream": True}).encode()
    sock = socket.create_connection(("127.0.0.1", llm_proxy.proxy_port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    try:
        for body, cut in ((named, named.index(b'"messages"') + 14), (unnamed, 20)):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, [(":method", "POST"), (":path", "/v1/chat/completions"), (":scheme", "http"),
                                    (":authority", "proxy"), ("content-type", "application/json"),
                                    ("content-length", str(len(body)))])
            conn.send_data(sid, body[:cut])
            conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
        sock.sendall(conn.data_to_send())
        fallback = {"model": "fallback", "version": OTHER_VERSION}

        def both():
            _, s = scrape(llm_proxy)
            done = (total(s, REQUESTS, **CHAT) + total(s, REQUESTS, **fallback)
                    + value(s, PROXY_REQUESTS, model=UNROUTED))
            return s if done >= 2 and total(s, IN_FLIGHT) == 0 else None
        s = wait_for(both, timeout=10, what="both requests recorded")
    finally:
        sock.close()
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="cancelled", **CHAT) == 1
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="cancelled", **fallback) == 1
    assert value(s, PROXY_REQUESTS, model="chat") == 1 and value(s, PROXY_REQUESTS, model="fallback") == 1
    assert value(s, PROXY_CANCELLED, model="chat") == 1 and value(s, PROXY_CANCELLED, model="fallback") == 1
    assert value(s, PROXY_REQUESTS, model=UNROUTED) == 0


def test_a_client_that_closes_at_done_had_the_whole_response(llm_proxy, openai_upstream):
    """The OpenAI SDK stops reading at `data: [DONE]` and closes its connection; an upstream whose chunked body ends
    0.5 s after that event sees the client gone first. The client had the whole response: the request is ok (timed,
    its tokens from usage, within its objectives), not cancelled (it was, before the fix)."""
    client = sdk_client(llm_proxy.proxy_port)
    text = stream_chat(client, id="done-1", tokens=4, gap=0.01, tail_delay=0.5)
    assert text == "tok0 tok1 tok2 tok3 "
    s = wait_requests(llm_proxy, 1, **CHAT)
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="ok", **CHAT) == 1
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="cancelled", **CHAT) == 0
    assert value(s, PROXY_CANCELLED, model="chat") == 0
    assert histogram(s, DURATION, **CHAT)[0] == 1
    assert value(s, TOKENS, type="completion", source="usage", **CHAT) == 4
    assert total(s, ERRORS) == 0


def test_a_client_that_closes_at_done_of_a_gzip_stream_left_nothing_unread(llm_proxy, openai_upstream):
    """The same with a gzip stream: the client leaves at `[DONE]`, before the chunk that ends the compressed stream
    (its trailer, 0.5 s later). What was inflated is the whole response: ok, tokens from usage, and no
    invalid_encoding (a compressed stream cut short counts only when the client stayed for all of it)."""
    from proxy_support import PROXY_CAPTURE_FAILURES
    client = sdk_client(llm_proxy.proxy_port)
    text = stream_chat(client, id="done-gzip", tokens=4, gap=0.01, tail_delay=0.5, coding="gzip")
    assert text == "tok0 tok1 tok2 tok3 "
    s = wait_requests(llm_proxy, 1, **CHAT)
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="ok", **CHAT) == 1
    assert value(s, TOKENS, type="completion", source="usage", **CHAT) == 4
    assert total(s, PROXY_CAPTURE_FAILURES) == 0 and total(s, ERRORS) == 0


def test_a_stream_the_proxy_cannot_read_is_not_cancelled_by_a_client_leaving_at_done(llm_proxy, openai_upstream):
    """A stream in a coding the proxy cannot undo (br): its `[DONE]` is not seen, so a client that leaves there, as the
    SDKs do (here by hand, before the body's last chunk 0.5 s later), is not counted as cancelling: the request is
    recorded by its status, with its duration; its tokens are not read (`unsupported_encoding`)."""
    from proxy_support import PROXY_CAPTURE_FAILURES
    body = json.dumps({"model": SERVED, "messages": MESSAGES, "stream": True,
                       "x_script": dict(id="br-done", tokens=3, gap=0.01, tail_delay=0.5, coding="br")}).encode()
    data = b""
    with socket.create_connection(("127.0.0.1", llm_proxy.proxy_port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        deadline = time.monotonic() + 10
        while b"[DONE]" not in data and time.monotonic() < deadline:
            piece = s.recv(65536)
            if not piece:
                break
            data += piece
    assert b"content-encoding: br" in data.lower() and b"[DONE]" in data
    s = wait_requests(llm_proxy, 1, **CHAT)
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="ok", **CHAT) == 1
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="cancelled", **CHAT) == 0
    assert value(s, PROXY_CANCELLED, model="chat") == 0
    assert histogram(s, DURATION, **CHAT)[0] == 1
    assert value(s, PROXY_CAPTURE_FAILURES, model="chat", reason="unsupported_encoding") == 1


# ------------------------------------------------------------------------------------------------ the SSE stream itself

def raw_chat(port, **fields):
    """A streamed chat request sent by hand (so that the bytes are known), with the script in its body."""
    body = json.dumps({"model": SERVED, "messages": MESSAGES, "stream": True, "x_script": fields}).encode()
    return RawExchange(port, "/v1/chat/completions", body)


def test_sse_edge_cases_parse_and_pass_through_unchanged(llm_proxy, openai_upstream):
    """Comments (keep-alives), several events in one write, an event split across two writes 30 ms apart, a
    malformed event, [DONE]: the client receives exactly the bytes the upstream wrote, the request body reaches the
    upstream unchanged, the malformed event is counted, and the tokens and gaps are all there."""
    tokens = 9
    fields = dict(id="edge-1", ttft=0.05, gap=0.03, tokens=tokens, batch=3, comments=True, malformed=[4],
                  usage=False)
    # batch=3 groups the 9 content events in 3 writes; split=[...] applies to single-event writes only, so a second
    # request splits events with batch 1.
    r1 = raw_chat(llm_proxy.proxy_port, **fields)
    fields2 = dict(id="edge-2", ttft=0.05, gap=0.03, tokens=4, split=[0, 2], split_delay=0.03, comments=True)
    r2 = raw_chat(llm_proxy.proxy_port, **fields2)
    for r, rid in ((r1, "edge-1"), (r2, "edge-2")):
        record = openai_upstream.record(rid)
        assert r.status == 200 and r.complete, (r.status, r.body[-200:])
        assert r.body == "".join(w["data"] for w in record["writes"]).encode("latin-1"), rid
        assert record["body_sha256"] == hashlib.sha256(r.sent_body).hexdigest(), "request body rewritten"
    s = wait_requests(llm_proxy, 2, **CHAT)
    assert value(s, MALFORMED, **CHAT) == 1
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="ok", **CHAT) == 2
    assert value(s, TOKENS, type="completion", source="estimated", **CHAT) == tokens + 4
    count, sum_, buckets = histogram(s, ITL, **CHAT)
    assert count == (tokens - 1) + 3
    # edge-1: 3 writes of 3 events: 6 gaps of 0 (events read in one socket read) and 2 of 0.03 s.
    assert buckets[0.001] >= 6, buckets
    e1, e2 = Expected(openai_upstream.record("edge-1")), Expected(openai_upstream.record("edge-2"))
    assert_close(sum_, e1.itl_sum + e2.itl_sum, 2 * 2 * TOL, "ITL sum")
    count, sum_, _ = histogram(s, TTFT, **CHAT)
    assert count == 2
    # edge-2's first event is complete only with its second half, 30 ms after the first.
    assert_close(sum_, e1.ttft + e2.ttft, 2 * TOL, "TTFT sum (a split first event counts when complete)")
    assert value(s, FINISH, reason="stop", **CHAT) == 2


def test_sse_with_crlf_line_endings(llm_proxy, openai_upstream):
    """CRLF line endings are SSE too (WHATWG HTML, "Parsing an event stream")."""
    r = raw_chat(llm_proxy.proxy_port, id="crlf-1", tokens=4, gap=0.01, eol="\r\n", comments=True)
    record = openai_upstream.record("crlf-1")
    assert r.body == "".join(w["data"] for w in record["writes"]).encode("latin-1")
    s = wait_requests(llm_proxy, 1, **CHAT)
    assert value(s, MALFORMED, **CHAT) == 0
    assert value(s, TOKENS, type="completion", source="estimated", **CHAT) == 4
    assert histogram(s, ITL, **CHAT)[0] == 3 and value(s, FINISH, reason="stop", **CHAT) == 1


def test_events_reach_the_client_before_the_next_leaves_the_upstream(llm_proxy, openai_upstream):
    """Unbuffered: with 100 ms between writes, every event the upstream wrote arrived at the client before the
    upstream wrote the next one (both times on CLOCK_MONOTONIC), and within 50 ms of its write."""
    r = raw_chat(llm_proxy.proxy_port, id="pace-1", ttft=0.1, gap=0.1, tokens=6, comments=True)
    record = openai_upstream.record("pace-1")
    assert r.status == 200 and r.complete
    writes = record["writes"]
    events = r.events
    # One write, one event here (no batch, no split): pair them in order.
    assert len(events) == len(writes), ([e[0] for e in events], [w["data"] for w in writes])
    for k, ((text, arrived), write) in enumerate(zip(events, writes)):
        assert text == write["data"].encode("latin-1"), k
        assert arrived >= write["t"], (k, arrived, write["t"])
        assert arrived - write["t"] < 0.05, f"event {k} took {1000 * (arrived - write['t']):.1f} ms through the proxy"
        if k + 1 < len(writes) and writes[k + 1]["t"] - write["t"] >= 0.04:
            assert arrived < writes[k + 1]["t"], f"event {k} arrived after the upstream wrote event {k + 1}"


# ------------------------------------------------------------------------------------------------ goodput, names

def test_goodput_counts_requests_within_each_objective(llm_proxy, openai_upstream):
    """Objectives TTFT 0.25 s, TPOT 0.05 s, duration 1 s (llm_support.OBJECTIVES); each script is ≥ 0.05 s from a
    bound. A request without the measure (not streamed, one token) meets that objective; errors count in none."""
    client = sdk_client(llm_proxy.proxy_port)
    stream_chat(client, id="good-a", ttft=0.05, gap=0.01, tokens=5)  # meets all
    stream_chat(client, id="good-b", ttft=0.45, gap=0.01, tokens=5)  # TTFT missed
    stream_chat(client, id="good-c", ttft=0.05, gap=0.1, tokens=4)  # TPOT missed (0.1 s)
    client.chat.completions.create(model=SERVED, messages=MESSAGES,
                                   extra_headers=script(id="good-d", delay=1.3, tokens=3))  # duration missed
    stream_chat(client, id="good-e", ttft=0.05, tokens=1)  # one token: no TPOT, meets all
    with pytest.raises(openai.InternalServerError):
        stream_chat(client, id="good-f", status=500)  # not ok: counts in none
    s = wait_requests(llm_proxy, 6, **CHAT)
    assert value(s, REQUESTS, endpoint="chat_completions", outcome="ok", **CHAT) == 5
    assert value(s, WITHIN, objective="ttft", **CHAT) == 4  # a, c, d, e
    assert value(s, WITHIN, objective="tpot", **CHAT) == 4  # a, b, d, e
    assert value(s, WITHIN, objective="duration", **CHAT) == 4  # a, b, c, e
    assert value(s, WITHIN, objective="all", **CHAT) == 2  # a, e
    assert histogram(s, TPOT, **CHAT)[0] == 3  # a, b, c (d not streamed, e one token)


def test_served_names_adapters_and_the_catch_all(start_proxy, openai_upstream):
    """The body's `model`: a served name is the model, version `default` (no route or header names one), an adapter
    name is the model with the adapter's version, an unknown name goes to the catch-all model as version __other__;
    without a catch-all it is unrouted (and has no LLM series)."""
    e = start_proxy(MODELS, openai_upstream.base)
    client = sdk_client(e.proxy_port)
    client.chat.completions.create(model=SERVED, messages=MESSAGES, extra_headers=script(tokens=2))
    client.chat.completions.create(model=ADAPTER, messages=MESSAGES, extra_headers=script(tokens=3))
    client.chat.completions.create(model="gpt-unknown", messages=MESSAGES, extra_headers=script(tokens=4))
    s = wait_requests(e, 3)
    assert value(s, REQUESTS, model="chat", version="default", endpoint="chat_completions", outcome="ok") == 1
    assert value(s, REQUESTS, model="chat", version="sql", endpoint="chat_completions", outcome="ok") == 1
    assert value(s, REQUESTS, model="fallback", version=OTHER_VERSION, endpoint="chat_completions",
                 outcome="ok") == 1
    assert value(s, TOKENS, model="chat", version="sql", type="completion", source="usage") == 3
    assert value(s, TOKENS, model="fallback", version=OTHER_VERSION, type="completion", source="usage") == 4
    # No new label value from a body: the `model` label holds configured names only.
    assert {dict(ls)["model"] for (n, ls) in s if n == REQUESTS} == {"chat", "fallback"}

    # Without a catch-all.
    e2 = start_proxy(MODELS_WITHOUT_CATCH_ALL, openai_upstream.base)
    client2 = sdk_client(e2.proxy_port)
    client2.chat.completions.create(model="gpt-unknown", messages=MESSAGES, extra_headers=script(tokens=1))
    client2.chat.completions.create(model=SERVED, messages=MESSAGES, extra_headers=script(tokens=1))

    def both():
        _, s2 = scrape(e2)
        return s2 if value(s2, PROXY_REQUESTS, model=UNROUTED) == 1 and total(s2, REQUESTS) == 1 else None
    s2 = wait_for(both, timeout=10, what="one unrouted and one LLM request")
    assert value(s2, REQUESTS, model="chat", version="default", endpoint="chat_completions", outcome="ok") == 1


def test_openai_routes_listed_explicitly(tmp_path, binary, openai_upstream):
    """`proxy.routes` with `protocol: openai` (the default routes' own form) is accepted and measured."""
    from proxy_support import ProxiedExporter, proxy_section
    config = tmp_path / "explicit-routes.yaml"
    config.write_text(MODELS + proxy_section(0, openai_upstream.base, routes=[]).replace(
        "  routes:\n", "  routes:\n" + OPENAI_ROUTES_YAML))
    e = ProxiedExporter(binary, ["--config", str(config)], tmp_path)
    try:
        client = sdk_client(e.proxy_port)
        stream_chat(client, tokens=2, gap=0.01)
        s = wait_requests(e, 1, **CHAT)
        assert value(s, REQUESTS, endpoint="chat_completions", outcome="ok", **CHAT) == 1
    finally:
        e.stop()


# ------------------------------------------------------------------------------------------------ length drift (optional)

LENGTH_MODEL = """
  - name: chat
    task: text_generation
    versions: [default]
    features:
      - {name: prompt_tokens, type: numeric}
      - {name: completion_tokens, type: numeric}
    llm:
      served_names: [""" + SERVED + """]
"""


def test_declared_length_features_feed_the_drift_collector(start_proxy, openai_upstream, binary, tmp_path):
    """Off by default; a text_generation model that declares the numeric features prompt_tokens and completion_tokens
    (with a reference profile and the drift collector) has each OpenAI request recorded as a prediction with those
    lengths: usage's figures, the estimate when a stream has no usage, missing when unknown."""
    csv = tmp_path / "lengths.csv"
    csv.write_text("prompt_tokens,completion_tokens\n" + "".join(f"{5 + i % 40},{1 + i % 17}\n" for i in range(400)))
    plain = tmp_path / "plain.yaml"
    plain.write_text("models:" + LENGTH_MODEL)
    ref = tmp_path / "lengths.json"
    done = subprocess.run([str(binary), "profile", "--config", str(plain), "--model", "chat", "--input", str(csv),
                           "--out", str(ref)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    exporter = start_proxy("models:" + LENGTH_MODEL + f"    reference: {ref}\n    collectors: [service, drift]\n",
                           openai_upstream.base)
    client = sdk_client(exporter.proxy_port)
    for i in range(4):
        stream_chat(client, id=f"len-{i}", tokens=3, gap=0.0, prompt_tokens=30 + i)
    stream_chat(client, usage=False, id="len-4", tokens=5, gap=0.0)  # no usage: prompt unknown, completion estimated
    s = wait_requests(exporter, 5, model="chat")
    assert value(s, "mlops_ingest_events_total", kind="predictions", model="chat") == 5
    assert value(s, "mlops_feature_window_observations", feature="prompt_tokens", model="chat") == 4
    assert value(s, "mlops_feature_window_missing", feature="prompt_tokens", model="chat") == 1
    assert value(s, "mlops_feature_window_observations", feature="completion_tokens", model="chat") == 5
    assert value(s, "mlops_model_requests_total", model="chat", status="ok", version="default") == 5


# ------------------------------------------------------------------------------------------------ include_usage injection

def injected(body: bytes) -> bytes:
    """The body the proxy sends with inject_include_usage, computed here: the member right after the opening brace."""
    assert body.startswith(b"{")
    return b'{"stream_options":{"include_usage":true},' + body[1:]


def chunked_post(port, path, body: bytes, pieces=3):
    """A POST whose body is sent chunked, in `pieces` chunks; the de-chunked response body."""
    size = -(-len(body) // pieces)
    framed = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size))
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.putrequest("POST", path)
    c.putheader("Content-Type", "application/json")
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    c.send(framed + b"0\r\n\r\n")
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def h2_post(port, path, body: bytes):
    """A POST over HTTP/2 with prior knowledge (the h2 package); the status and the response body."""
    import h2.config
    import h2.connection
    import h2.events
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":path", path), (":scheme", "http"),
                            (":authority", f"127.0.0.1:{port}"), ("content-type", "application/json")])
    conn.send_data(sid, body, end_stream=True)
    sock.sendall(conn.data_to_send())
    status, data, deadline = None, b"", time.monotonic() + 10
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed"
        ended = False
        for event in conn.receive_data(chunk):
            if isinstance(event, h2.events.ResponseReceived):
                status = int(dict(event.headers)[":status"])
            elif isinstance(event, h2.events.DataReceived):
                data += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                ended = True
        sock.sendall(conn.data_to_send())
        if ended:
            break
    sock.close()
    return status, data


def test_inject_include_usage_makes_streams_report_usage(start_proxy, openai_upstream):
    """With proxy.inject_include_usage, a streamed chat or completions request without stream_options.include_usage
    reaches the upstream with it (sent with Content-Length, chunked or over HTTP/2: the upstream's record has the
    body computed here), so its tokens count from usage; a request that asked, one that is not streamed, and one
    longer than capture.max_body_bytes reach it unchanged."""
    e = start_proxy(MODELS, openai_upstream.base, max_body_bytes=4096, inject_include_usage=True)
    path = "/v1/chat/completions"

    def body(rid, **extra):
        return json.dumps({"model": SERVED, "messages": MESSAGES, "stream": True, **extra,
                           "x_script": {"id": rid, "tokens": 3, "prompt_tokens": 9}}, separators=(",", ":")).encode()

    plain = body("inj-1")
    x = RawExchange(e.proxy_port, path, plain)
    assert x.status == 200 and b'"usage"' in x.body  # the client sees the server's usage chunk too
    chunked = body("inj-2")
    assert chunked_post(e.proxy_port, path, chunked)[0] == 200
    h2 = body("inj-3")
    assert h2_post(e.proxy_port, path, h2)[0] == 200
    asked = body("inj-4", stream_options={"include_usage": False})
    assert RawExchange(e.proxy_port, path, asked).status == 200
    whole = json.dumps({"model": SERVED, "messages": MESSAGES, "x_script": {"id": "inj-5"}}).encode()
    assert RawExchange(e.proxy_port, path, whole).status == 200
    long = body("inj-6", user="x" * 5000)
    assert RawExchange(e.proxy_port, path, long).status == 200
    long_chunked = body("inj-7", user="y" * 5000)  # held until it passed the limit, then forwarded unchanged
    assert chunked_post(e.proxy_port, path, long_chunked, pieces=4)[0] == 200
    for rid, sent, expected in [("inj-1", plain, injected(plain)), ("inj-2", chunked, injected(chunked)),
                                ("inj-3", h2, injected(h2)), ("inj-4", asked, asked), ("inj-5", whole, whole),
                                ("inj-6", long, long), ("inj-7", long_chunked, long_chunked)]:
        record = openai_upstream.record(rid)
        assert record["body_sha256"] == hashlib.sha256(expected).hexdigest(), (rid, record["body_length"],
                                                                               len(expected))
    s = wait_requests(e, 7, **CHAT)
    # Usage for the three injected streams (3 tokens each) and the whole response (5, the default); estimated for
    # the one that said no and the one too long to hold.
    assert value(s, TOKENS, type="completion", source="usage", **CHAT) == 3 * 3 + 5
    assert value(s, TOKENS, type="completion", source="estimated", **CHAT) == 3 + 3 + 3
    assert value(s, TOKENS, type="prompt", source="usage", **CHAT) == 9 * 3 + 7


def test_without_injection_the_body_is_never_changed(llm_proxy, openai_upstream):
    """The default: the body reaches the upstream byte for byte, and the stream's tokens are estimated."""
    plain = json.dumps({"model": SERVED, "messages": MESSAGES, "stream": True,
                        "x_script": {"id": "noinj-1", "tokens": 4}}).encode()
    x = RawExchange(llm_proxy.proxy_port, "/v1/chat/completions", plain)
    assert x.status == 200 and b'"usage"' not in x.body
    assert openai_upstream.record("noinj-1")["body_sha256"] == hashlib.sha256(plain).hexdigest()
    s = wait_requests(llm_proxy, 1, **CHAT)
    assert value(s, TOKENS, type="completion", source="estimated", **CHAT) == 4
