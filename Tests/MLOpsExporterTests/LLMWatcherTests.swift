import Capture
import ExporterConfig
import HTTPServer
import Logging
import Testing

@testable import MLOpsExporter

/// How an exchange's LLM record is made from the proxy's record and the meter (review of the LLM metrics).
@Suite struct LLMWatcherTests {
    /// A streamed chat exchange: the request ends at 0, each event in `events` arrives at its time.
    private func meter(_ events: [(String, Double)]) -> LLMExchangeMeter {
        var m = LLMExchangeMeter(endpoint: .chatCompletions)
        m.requestEnded(elapsed: 0)
        m.responseHead(status: 200, contentType: "text/event-stream")
        for (text, at) in events { _ = Array(text.utf8).withUnsafeBytes { m.responseBody($0, elapsed: at) } }
        return m
    }

    private func chunk(_ index: Int, _ content: String, finish: String? = nil) -> String {
        let reason = finish.map { "\"\($0)\"" } ?? "null"
        return
            "data: {\"choices\":[{\"index\":\(index),\"delta\":{\"content\":\"\(content)\"},\"finish_reason\":\(reason)}]}\n\n"
    }

    private func exchange(cancelled: Bool, duration: Double) -> ProxyExchangeRecord {
        let request = HTTPRequest(method: "POST", path: "/v1/chat/completions")
        return ProxyExchangeRecord(
            request, requestBody: nil, requestBodyOverLimit: false, requestID: "r", tap: ProxyTap(), status: 200,
            responseBody: nil, responseBodyOverLimit: false, responseBodyBytes: 0, failure: nil, cancelled: cancelled,
            durationSeconds: duration)
    }

    /// A client that leaves once every choice has its finish reason, before `[DONE]` (the SDKs' `if
    /// chunk.choices[0].finish_reason: break`), had the whole answer: ok, not cancelled (it was counted cancelled
    /// beside a `stop` finish reason). One that leaves before a choice finished did cancel.
    @Test func aClientLeavingAfterEveryChoiceFinishedIsOk() {
        let finished = meter([(chunk(0, "a"), 0.1), (chunk(0, "b"), 0.2), (chunk(0, "", finish: "stop"), 0.3)])
        #expect(LLMWatcher.record(exchange(cancelled: true, duration: 0.35), meter: finished).outcome == .ok)
        let twoChoices = meter([(chunk(0, "a"), 0.1), (chunk(1, "x"), 0.1), (chunk(0, "", finish: "stop"), 0.2)])
        #expect(LLMWatcher.record(exchange(cancelled: true, duration: 0.25), meter: twoChoices).outcome == .cancelled)
    }

    /// A 2xx stream that ended without saying so (no `[DONE]`, a choice without a finish reason: a close-delimited
    /// body cut, llama.cpp's stream ended after an error) was cut short: an error, `stream_interrupted` (it was ok and
    /// within every objective). One that said it was over, by `[DONE]` or by every choice's finish reason, is ok.
    @Test func aStreamThatEndedWithoutSayingSoWasInterrupted() {
        let cut = meter([(chunk(0, "a"), 0.1), (chunk(0, "b"), 0.2)])
        let record = LLMWatcher.record(exchange(cancelled: false, duration: 0.3), meter: cut)
        #expect(record.outcome == .error && record.errorReason == "stream_interrupted")
        let done = meter([(chunk(0, "a"), 0.1), ("data: [DONE]\n\n", 0.2)])
        #expect(LLMWatcher.record(exchange(cancelled: false, duration: 0.3), meter: done).outcome == .ok)
        let finished = meter([(chunk(0, "a"), 0.1), (chunk(0, "", finish: "stop"), 0.2)])
        #expect(LLMWatcher.record(exchange(cancelled: false, duration: 0.3), meter: finished).outcome == .ok)
        // Fewer choices than `n` asked for, each finished: the stream said it was over (a server that ignores `n`).
        var two = LLMExchangeMeter(endpoint: .chatCompletions)
        Array(#"{"n":2,"stream":true}"#.utf8).withUnsafeBytes { two.requestBody($0) }
        two.requestEnded(elapsed: 0)
        two.responseHead(status: 200, contentType: "text/event-stream")
        for (text, at) in [(chunk(0, "a"), 0.1), (chunk(0, "", finish: "stop"), 0.2)] {
            _ = Array(text.utf8).withUnsafeBytes { two.responseBody($0, elapsed: at) }
        }
        #expect(LLMWatcher.record(exchange(cancelled: false, duration: 0.3), meter: two).outcome == .ok)
        // Another route's stream ends its own way (llama.cpp's `/completion`): not judged by OpenAI's markers.
        var other = LLMExchangeMeter(endpoint: .other)
        other.requestEnded(elapsed: 0)
        other.responseHead(status: 200, contentType: "text/event-stream")
        _ = Array(#"data: {"content":"a","stop":true}"#.utf8 + [10, 10]).withUnsafeBytes {
            other.responseBody($0, elapsed: 0.1)
        }
        #expect(LLMWatcher.record(exchange(cancelled: false, duration: 0.3), meter: other).outcome == .ok)
        // llama.cpp's error field: a stream error.
        let llama = meter([(chunk(0, "a"), 0.1), ("error: {\"code\":500,\"message\":\"x\"}\n\n", 0.2)])
        let failed = LLMWatcher.record(exchange(cancelled: false, duration: 0.3), meter: llama)
        #expect(failed.outcome == .error && failed.errorReason == "stream_error")
    }

    /// What follows `[DONE]` is not measured: the SDKs stop there (a token after it was counted, its gap timed).
    @Test func nothingAfterDoneIsMeasured() {
        let m = meter([
            (chunk(0, "a"), 0.1), (chunk(0, "", finish: "stop"), 0.1), ("data: [DONE]\n\n", 0.1),
            (chunk(0, "b"), 0.2), (chunk(1, "c", finish: "length"), 0.2),
        ])
        #expect(m.completionTokens! == (1, true))
        #expect(m.finishReasons[LLMFinishReason.stop.rawValue] == 1)
        #expect(m.finishReasons[LLMFinishReason.length.rawValue] == 0)
        #expect(m.choiceCount == 1)
    }

    /// With `n` choices the tokens counted are every choice's: one choice's time per output token divides by its
    /// own tokens (it was divided by all of them: n = 2 halved it, and slow requests counted as within objective).
    @Test func timePerOutputTokenIsPerChoice() {
        func both(_ a: String, _ b: String) -> String {
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\(a)\"}},"
                + "{\"index\":1,\"delta\":{\"content\":\"\(b)\"}}]}\n\n"
        }
        // Three tokens per choice, 0.07 s apart after the first at 0.1; the response ends at 0.24.
        let n2 = meter([
            (both("a", "x"), 0.1), (both("b", "y"), 0.17), (both("c", "z"), 0.24), ("data: [DONE]\n\n", 0.24),
        ])
        let one = meter([
            (chunk(0, "a"), 0.1), (chunk(0, "b"), 0.17), (chunk(0, "c"), 0.24), ("data: [DONE]\n\n", 0.24),
        ])
        let a = LLMWatcher.record(exchange(cancelled: false, duration: 0.24), meter: n2)
        let b = LLMWatcher.record(exchange(cancelled: false, duration: 0.24), meter: one)
        #expect(n2.choiceCount == 2 && one.choiceCount == 1)
        #expect(abs(a.timePerOutputTokenSeconds! - 0.07) < 1e-9, "\(a.timePerOutputTokenSeconds!)")
        #expect(abs(b.timePerOutputTokenSeconds! - 0.07) < 1e-9)
    }

    /// An exporter (never started) with a proxy (its default routes: the OpenAI paths) in front of `chat`, served as
    /// `served-name`, and the catch-all model `fallback`.
    private func llmExporter(catchAll: Bool = true) throws -> Exporter {
        var chat = ModelConfiguration(name: "chat", task: .textGeneration, versions: ["default"])
        chat.llm = LLMConfiguration(servedNames: ["served-name"])
        var fallback = ModelConfiguration(name: "fallback", task: .textGeneration, versions: ["default"])
        fallback.llm = LLMConfiguration(catchAll: true)
        var models = ExporterConfiguration(models: catchAll ? [chat, fallback] : [chat], source: "<code>")
        models.proxy = ProxyConfiguration(upstream: .init(host: "127.0.0.1", port: 9))
        var configuration = Exporter.Configuration()
        configuration.processMetrics = false
        configuration.models = models
        return try Exporter(
            configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    /// A chat request whose client leaves after sending `part` of its body: the exchange ends (cancelled) without the
    /// request ever ending, as the proxy reports it.
    private func leave(_ recorder: ProxyRecorder, after part: String) {
        let request = HTTPRequest(method: "POST", path: "/v1/chat/completions")
        let tap = recorder.proxyRequestStarted(request, requestID: "r")
        Array(part.utf8).withUnsafeBytes { tap.watcher?.requestBody($0) }
        var record = ProxyExchangeRecord(
            request, requestID: "r", tap: tap, status: nil, cancelled: true, durationSeconds: 0.1)
        recorder.proxyExchangeEnded(&record)
    }

    /// A client that leaves in the middle of its request body is counted for the model its body named so far (or the
    /// catch-all model, when the body had not named one yet), cancelled. Before the fix it was counted under
    /// `__unrouted__`, in no `mlops_llm_*` series: the model was resolved only when the body was complete.
    @Test func aClientLeavingDuringItsBodyIsCountedForTheModelItNamed() async throws {
        let exporter = try llmExporter()
        let recorder = try #require(exporter.proxy?.recorder)
        leave(recorder, after: #"{"model":"served-name","messages":[{"role":"user","content":"Say som"#)
        leave(recorder, after: #"{"messages":[{"role":"user","content":"Say som"#)
        let m = await scrape(exporter)
        let requests = "mlops_llm_requests_total"
        #expect(
            m[#"\#(requests){endpoint="chat_completions",model="chat",outcome="cancelled",version="default"}"#] == 1)
        #expect(
            m[#"\#(requests){endpoint="chat_completions",model="fallback",outcome="cancelled",version="__other__"}"#]
                == 1)
        #expect(m[#"mlops_llm_requests_in_flight{model="chat",version="default"}"#] == 0)
        #expect(m[#"mlops_proxy_requests_total{model="chat"}"#] == 1)
        #expect(m[#"mlops_proxy_requests_total{model="fallback"}"#] == 1)
        #expect(m[#"mlops_proxy_client_cancelled_total{model="chat"}"#] == 1)
        #expect(m[#"mlops_proxy_client_cancelled_total{model="fallback"}"#] == 1)
        #expect((m[#"mlops_proxy_requests_total{model="__unrouted__"}"#] ?? 0) == 0)
        #expect((m[#"mlops_proxy_client_cancelled_total{model="__unrouted__"}"#] ?? 0) == 0)
    }

    /// An unrouted stream (its body names no configured model, and there is no catch-all) is not parsed: whether it
    /// ended is not known, so a client that leaves at `[DONE]`, as some clients do before the body's last chunk, is not
    /// counted as cancelling (the rule for streams the meter cannot read). Before, every such exchange counted
    /// `mlops_proxy_client_cancelled_total{model="__unrouted__"}`, while a routed one counted ok.
    @Test func anUnroutedStreamLeftAtItsEndIsNotCancelled() async throws {
        let exporter = try llmExporter(catchAll: false)
        let recorder = try #require(exporter.proxy?.recorder)
        let request = HTTPRequest(method: "POST", path: "/v1/chat/completions")
        let tap = recorder.proxyRequestStarted(request, requestID: "r")
        let watcher = try #require(tap.watcher)
        Array(#"{"model":"unknown","stream":true}"#.utf8).withUnsafeBytes { watcher.requestBody($0) }
        watcher.requestEnded(elapsed: 0.01)
        watcher.responseHead(status: 200, headers: ["Content-Type": "text/event-stream"], elapsed: 0.02)
        Array((chunk(0, "Hi", finish: "stop") + "data: [DONE]\n\n").utf8).withUnsafeBytes {
            watcher.responseBody($0, elapsed: 0.03)
        }
        var record = ProxyExchangeRecord(
            request, requestID: "r", tap: tap, status: 200, responseHeaders: ["Content-Type": "text/event-stream"],
            cancelled: true, durationSeconds: 0.04)
        recorder.proxyExchangeEnded(&record)
        // Left after the head, before any of the body: not known either.
        let second = recorder.proxyRequestStarted(request, requestID: "s")
        let watcher2 = try #require(second.watcher)
        Array(#"{"model":"unknown","stream":true}"#.utf8).withUnsafeBytes { watcher2.requestBody($0) }
        watcher2.requestEnded(elapsed: 0.01)
        watcher2.responseHead(status: 200, headers: ["Content-Type": "text/event-stream"], elapsed: 0.02)
        var record2 = ProxyExchangeRecord(
            request, requestID: "s", tap: second, status: 200, responseHeaders: ["Content-Type": "text/event-stream"],
            cancelled: true, durationSeconds: 0.03)
        recorder.proxyExchangeEnded(&record2)
        let m = await scrape(exporter)
        #expect(m[#"mlops_proxy_requests_total{model="__unrouted__"}"#] == 2)
        #expect((m[#"mlops_proxy_client_cancelled_total{model="__unrouted__"}"#] ?? 0) == 0)
    }
}
