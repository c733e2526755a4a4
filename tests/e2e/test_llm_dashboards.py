"""The model dashboard's "LLM serving" row (dashboards/mlops-model.json, the panels of test_dashboards'
NEEDS_LLM_TRAFFIC) against a real Prometheus scraping an exporter whose proxy carries LLM traffic: the official `openai`
SDK (chat completions, streamed and not, some 429s) through the proxy to the scripted OpenAI-compatible upstream
(tests/e2e/peers/openai_upstream.py). Every query of every LLM panel (variables substituted as Grafana's "All" does)
returns a finite value for the model that had the traffic, and the values the panels compute are the ones the scripts
make plausible: the TTFT p50 and p99 in the buckets around the scripted TTFTs, the goodput ratio the share of requests
that succeeded (every ok request meets the objectives by a wide margin), the errors by reason http_429.

test_dashboards.test_every_panel_query_returns_data covers every other panel (the demo sends no LLM traffic)."""
import math

import pytest

from conftest import wait_for
from llm_support import MODELS, SERVED, openai_upstream, script, sdk_client  # noqa: F401 (fixture)
from proxy_support import start_proxy  # noqa: F401 (fixture)
from test_dashboards import NEEDS_LLM_TRAFFIC, ROOT, load, panels, prom_query, substitute

openai = pytest.importorskip("openai", reason="the openai SDK (tests/requirements.txt) is not installed")

MODEL = "chat"  # llm_support.MODELS: SERVED routes to the model `chat`, version `default`
MESSAGES = [{"role": "user", "content": "Say something."}]
ALL = {"datasource": "", "job": ".*", "model": ".*", "version": ".*", "instance": ".*"}
# The traffic, chat completions only: STREAMED streamed requests (with usage; every third without: estimated tokens)
# whose TTFTs are spread evenly over TTFT_RANGE, gaps of 10 to 30 ms (TPOT ≈ the gap: far within the 0.05 s objective),
# and, between them, NOT_STREAMED whole responses (cached prompt tokens) and RATE_LIMITED 429s. About 5 s in all.
# One endpoint: the collector writes mlops_llm_requests_total of chat_completions from the start (at 0) and those of
# another endpoint from its first request on, whose rate then misses that first request (so the ratios below would
# be off by it).
STREAMED, NOT_STREAMED, RATE_LIMITED = 20, 6, 6
TTFT_RANGE = (0.05, 0.14)  # seconds: the TTFT buckets (llm.ttft_buckets' defaults) are ... 0.075, 0.1, 0.15, 0.2, ...


def llm_queries():
    """(panel title, refId, query with the variables substituted) of every LLM panel."""
    d = load(ROOT / "dashboards/mlops-model.json")
    out = [(p["title"], t["refId"], substitute(t["expr"], ALL))
           for p in panels(d) if (d["uid"], p["title"]) in NEEDS_LLM_TRAFFIC for t in p["targets"]]
    assert {title for title, _, _ in out} == {title for _, title in NEEDS_LLM_TRAFFIC}
    return out


def finite_values(result, model=MODEL):
    """{labels without `model`: value} of the result's series of `model` whose value is finite."""
    out = {}
    for r in result:
        labels = dict(r["metric"])
        if labels.pop("model", None) == model:
            v = float(r["value"][1])
            if math.isfinite(v):
                out[tuple(sorted(labels.items()))] = v
    return out


def drive_traffic(client):
    """The scripted requests, in order; returns (ok, errors) sent."""
    ok = errors = 0
    lo, hi = TTFT_RANGE
    for i in range(STREAMED):
        ttft = lo + (hi - lo) * i / (STREAMED - 1)
        fields = dict(ttft=round(ttft, 4), gap=0.01 + 0.01 * (i % 3), tokens=4 + i % 3, prompt_tokens=5 + i)
        usage = {"stream_options": {"include_usage": True}} if i % 3 != 2 else {}
        for _ in client.chat.completions.create(model=SERVED, messages=MESSAGES, stream=True,
                                                extra_headers=script(id=f"dash-s{i}", **fields), **usage):
            pass
        ok += 1
        if i % 3 == 0 and i // 3 < NOT_STREAMED:
            r = client.chat.completions.create(model=SERVED, messages=MESSAGES, extra_headers=script(
                id=f"dash-w{i}", tokens=6, delay=0.03, prompt_tokens=20, cached_tokens=16))
            assert r.usage.prompt_tokens_details.cached_tokens == 16
            ok += 1
        if i % 3 == 1 and i // 3 < RATE_LIMITED:
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(model=SERVED, messages=MESSAGES,
                                               extra_headers=script(id=f"dash-e{i}", status=429))
            errors += 1
    assert (ok, errors) == (STREAMED + NOT_STREAMED, RATE_LIMITED)
    return ok, errors


def test_llm_panels_show_the_proxied_traffic(start_proxy, openai_upstream, prometheus):
    exporter = start_proxy(MODELS, openai_upstream.base)
    base = prometheus(exporter.port)
    requests = f'sum(mlops_llm_requests_total{{model="{MODEL}"}})'
    # Scraped once before any traffic: the histograms and counters start at 0 in Prometheus, so the panels' rates
    # cover every request below (the 20 s $__rate_interval reaches back to that scrape while the test polls).
    wait_for(lambda: prom_query(base, requests), timeout=30, interval=0.2, what="a first scrape of the LLM series")

    ok, errors = drive_traffic(sdk_client(exporter.proxy_port))

    def scraped_all():
        r = prom_query(base, requests)
        return r and float(r[0]["value"][1]) == ok + errors
    wait_for(scraped_all, timeout=30, interval=0.2, what=f"Prometheus to have scraped all {ok + errors} requests")

    queries = llm_queries()
    results = {}

    def all_have_data():
        results.clear()
        for title, ref, expr in queries:
            results[(title, ref)] = finite_values(prom_query(base, expr))
        return all(results.values())
    try:
        wait_for(all_have_data, timeout=30, interval=0.5, what="every LLM panel query to return a finite value")
    except AssertionError:
        raise AssertionError("LLM panel queries without a finite value for model chat:\n" + "\n".join(
            f"{title} / {ref}: {expr}" for (title, ref, expr) in queries if not results.get((title, ref))))

    def one(title, ref="A"):
        values = results[(title, ref)]
        assert len(values) == 1, (title, ref, values)
        return next(iter(values.values()))

    # TTFT: scripted 0.05 to 0.14 s, measured at the proxy a loopback hop later. The p99 falls in the bucket of the
    # slowest (0.1, 0.15], or (0.15, 0.2] if the proxy saw it ≥ 10 ms late; the p50 near 0.095 s, in (0.075, 0.1]
    # (within a bucket either side, for the same lateness).
    p50 = one("Time to first token p50 and p99", "A")
    p99 = one("Time to first token p50 and p99", "B")
    assert 0.1 < p99 <= 0.2, f"TTFT p99 {p99:.4f} s: the scripts' TTFTs are {TTFT_RANGE[0]} to {TTFT_RANGE[1]} s"
    assert 0.05 < p50 <= 0.15 and p50 < p99, f"TTFT p50 {p50:.4f} s (p99 {p99:.4f} s)"
    # Gaps of 10 to 30 ms: TPOT and inter-token latency p99 in the buckets around 30 ms (loosely: scheduling).
    for title in ("Time per output token p99", "Inter-token latency p99"):
        assert 0.02 < one(title) <= 0.2, (title, one(title))
    # Every ok request meets every objective (TTFT ≤ 0.14 s of 0.25, TPOT ≈ 30 ms of 50, duration < 0.5 s of 1):
    # the goodput is the share of requests that did not fail (one request made late by the machine: 0.77).
    goodput = one("Goodput ratio")
    assert abs(goodput - ok / (ok + errors)) <= 0.05, (goodput, ok, errors)
    outcomes = results[("LLM requests per second by outcome", "A")]
    assert outcomes[(("outcome", "ok"),)] > 0 and outcomes[(("outcome", "error"),)] > 0, outcomes
    assert outcomes[(("outcome", "ok"),)] / outcomes[(("outcome", "error"),)] == pytest.approx(ok / errors, rel=0.05)
    reasons = results[("LLM errors by reason", "A")]
    assert set(reasons) == {(("reason", "http_429"),)} and reasons[(("reason", "http_429"),)] > 0, reasons
    tokens = results[("Tokens per second by type", "A")]
    assert {dict(k)["type"] for k, v in tokens.items() if v > 0} == {"prompt", "completion", "cached"}, tokens
    assert one("LLM requests in flight") == 0
