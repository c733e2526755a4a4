import ExporterConfig
import Exposition
import ModelMonitoring
import Testing

private let chat: ModelConfiguration = {
    var m = ModelConfiguration(
        name: "chat", task: .textGeneration, versions: ["base", "sql"],
        collectors: [CollectorConfiguration(name: "service"), CollectorConfiguration(name: "llm")])
    m.llm = LLMConfiguration(
        ttftBuckets: [0.1, 0.5, 1], itlBuckets: [0.01, 0.05], tpotBuckets: [0.02, 0.1], durationBuckets: [1, 10],
        objectives: .init(ttftSeconds: 0.5, tpotSeconds: 0.05))
    return m
}()

@Suite struct LLMCollectorTests {
    private func llm(_ h: Harness) throws -> LLMCollector {
        try #require(h.model("chat").collectors.compactMap { $0 as? LLMCollector }.first)
    }

    @Test func histogramsCountEachObservationInItsBucketAndSum() throws {
        let h = try Harness([chat])
        let c = try llm(h)
        let ttfts = [0.05, 0.3, 0.5, 2.0]
        for t in ttfts { c.firstToken(version: 1, seconds: t) }
        c.tokenGaps(version: 1, gap: 0.02, zeros: 3)
        c.tokenGaps(version: 1, gap: 0.2, zeros: 0)
        // Each bucket holds the observations at or below its bound (cumulative), +Inf all of them.
        for (le, bound) in [("0.1", 0.1), ("0.5", 0.5), ("1", 1.0)] {
            let expected = Double(ttfts.filter { $0 <= bound }.count)
            #expect(
                h.value(#"mlops_llm_time_to_first_token_seconds_bucket{model="chat",version="sql",le="\#(le)"}"#)
                    == expected)
        }
        #expect(h.value(#"mlops_llm_time_to_first_token_seconds_count{model="chat",version="sql"}"#) == 4)
        #expect(
            h.value(#"mlops_llm_time_to_first_token_seconds_sum{model="chat",version="sql"}"#) == ttfts.reduce(0, +))
        #expect(h.value(#"mlops_llm_inter_token_latency_seconds_bucket{model="chat",version="sql",le="0.01"}"#) == 3)
        #expect(h.value(#"mlops_llm_inter_token_latency_seconds_bucket{model="chat",version="sql",le="0.05"}"#) == 4)
        #expect(h.value(#"mlops_llm_inter_token_latency_seconds_count{model="chat",version="sql"}"#) == 5)
        #expect(h.value(#"mlops_llm_inter_token_latency_seconds_sum{model="chat",version="sql"}"#) == 0.22)
        #expect(h.value(#"mlops_llm_time_to_first_token_seconds_count{model="chat",version="base"}"#) == 0)
    }

    @Test func requestsTokensReasonsErrorsAndInFlight() throws {
        let h = try Harness([chat])
        let c = try llm(h)
        c.requestStarted(version: 0)
        c.requestStarted(version: 0)
        #expect(h.value(#"mlops_llm_requests_in_flight{model="chat",version="base"}"#) == 2)
        var ok = LLMRequestRecord(endpoint: 0, outcome: .ok)
        ok.durationSeconds = 2
        ok.promptTokens = 10
        ok.completionTokens = 5
        ok.cachedTokens = 4
        ok.finishReasons = [1, 0, 0, 0, 0, 0, 0]
        c.requestEnded(version: 0, ok)
        var failed = LLMRequestRecord(endpoint: 1, outcome: .error)
        failed.errorReason = "http_429"
        failed.completionTokens = 3
        failed.completionEstimated = true
        failed.malformedEvents = 2
        c.requestEnded(version: 0, failed)
        #expect(h.value(#"mlops_llm_requests_in_flight{model="chat",version="base"}"#) == 0)
        #expect(
            h.value(#"mlops_llm_requests_total{endpoint="chat_completions",model="chat",outcome="ok",version="base"}"#)
                == 1)
        #expect(
            h.value(#"mlops_llm_requests_total{endpoint="completions",model="chat",outcome="error",version="base"}"#)
                == 1)
        // Endpoints never used have no series (chat_completions always has).
        #expect(!h.samples().contains { $0.contains(#"endpoint="embeddings""#) })
        #expect(h.value(#"mlops_llm_tokens_total{model="chat",source="usage",type="prompt",version="base"}"#) == 10)
        #expect(h.value(#"mlops_llm_tokens_total{model="chat",source="usage",type="completion",version="base"}"#) == 5)
        #expect(h.value(#"mlops_llm_tokens_total{model="chat",source="usage",type="cached",version="base"}"#) == 4)
        #expect(
            h.value(#"mlops_llm_tokens_total{model="chat",source="estimated",type="completion",version="base"}"#) == 3)
        #expect(h.value(#"mlops_llm_finish_reasons_total{model="chat",reason="stop",version="base"}"#) == 1)
        #expect(h.value(#"mlops_llm_errors_total{model="chat",reason="http_429",version="base"}"#) == 1)
        #expect(h.value(#"mlops_llm_stream_malformed_events_total{model="chat",version="base"}"#) == 2)
        #expect(h.value(#"mlops_llm_request_duration_seconds_count{model="chat",version="base"}"#) == 1)
    }

    @Test func objectivesCountMetOnesAndAllOnlyWhenEveryOneIs() throws {
        let h = try Harness([chat])
        let c = try llm(h)
        // (ttft, tpot): met both; ttft missed; no measures (met); tpot missed; an error (never counted).
        let cases: [(Double?, Double?, LLMRequestRecord.Outcome)] = [
            (0.2, 0.01, .ok), (0.9, 0.01, .ok), (nil, nil, .ok), (0.1, 0.2, .ok), (0.1, 0.01, .error),
        ]
        for (ttft, tpot, outcome) in cases {
            var r = LLMRequestRecord(endpoint: 0, outcome: outcome)
            r.timeToFirstTokenSeconds = ttft
            r.timePerOutputTokenSeconds = tpot
            r.durationSeconds = 1
            c.requestEnded(version: 0, r, wasInFlight: false)
        }
        func within(_ objective: String) -> Double? {
            h.value(
                #"mlops_llm_requests_within_objective_total{model="chat",objective="\#(objective)",version="base"}"#)
        }
        let oks = cases.filter { $0.2 == .ok }
        #expect(within("ttft") == Double(oks.filter { ($0.0 ?? 0) <= 0.5 }.count))
        #expect(within("tpot") == Double(oks.filter { ($0.1 ?? 0) <= 0.05 }.count))
        #expect(within("all") == Double(oks.filter { ($0.0 ?? 0) <= 0.5 && ($0.1 ?? 0) <= 0.05 }.count))
        #expect(within("duration") == nil)  // not configured
    }

    @Test func errorReasonsMapToTheirSlots() throws {
        let h = try Harness([chat])
        let c = try llm(h)
        for reason in ["stream_interrupted", "pool_full", "http_500", "http_599", "http_700", "nonsense"] {
            var r = LLMRequestRecord(endpoint: 0, outcome: .error)
            r.errorReason = reason
            c.requestEnded(version: 2, r, wasInFlight: false)
        }
        let errors = h.samples().filter { $0.hasPrefix("mlops_llm_errors_total") }
        #expect(
            errors.sorted() == [
                #"mlops_llm_errors_total{model="chat",reason="http_500",version="__other__"} 1"#,
                #"mlops_llm_errors_total{model="chat",reason="http_599",version="__other__"} 1"#,
                #"mlops_llm_errors_total{model="chat",reason="http_other",version="__other__"} 2"#,
                #"mlops_llm_errors_total{model="chat",reason="pool_full",version="__other__"} 1"#,
                #"mlops_llm_errors_total{model="chat",reason="stream_interrupted",version="__other__"} 1"#,
            ])
    }

    @Test func onlyTextGenerationModelsTakeIt() throws {
        var m = ModelConfiguration(name: "r", task: .regression, versions: ["v"])
        m.collectors = [CollectorConfiguration(name: "llm")]
        #expect(throws: (any Error).self) { try Harness([m]) }
    }

    @Test func stateSurvivesASaveAndRestore() throws {
        let h = try Harness([chat])
        let c = try llm(h)
        c.firstToken(version: 0, seconds: 0.3)
        var r = LLMRequestRecord(endpoint: 3, outcome: .ok)
        r.durationSeconds = 4
        r.promptTokens = 7
        c.requestEnded(version: 0, r, wasInFlight: false)
        var writer = StateWriter()
        c.saveState(into: &writer)
        let h2 = try Harness([chat])
        let c2 = try llm(h2)
        var reader = StateReader(writer.bytes)
        try c2.restoreState(from: &reader, now: 0)
        let names = [
            "mlops_llm_time_to_first_token", "mlops_llm_request_duration", "mlops_llm_tokens", "mlops_llm_requests",
        ]
        let before = h.samples().filter { s in names.contains { s.hasPrefix($0) } }
        #expect(!before.isEmpty)
        #expect(h2.samples().filter { s in names.contains { s.hasPrefix($0) } } == before)
    }

    /// The `llm` section's buckets and objectives define the collector's saved counts: a checkpoint taken under other
    /// ones is not restored as if it were this model's state (`changed`, not `restored`). Its names only route.
    /// A reload that only adds a served name or an adapter (names the proxy's routes read) keeps the model and its
    /// counts, as a restart does (the state fingerprint leaves the names out). Before, it rebuilt the model: every
    /// `mlops_llm_*` and `mlops_model_requests_total` series of it went back to zero (a probe counted 151).
    @Test func aReloadThatOnlyRenamesKeepsTheCounts() throws {
        let h = try Harness([chat])
        try llm(h).firstToken(version: 1, seconds: 0.3)
        h.model("chat").record(version: "sql", prediction: .label("x"))
        let requests = #"mlops_model_requests_total{model="chat",status="ok",version="sql"}"#
        let ttft = #"mlops_llm_time_to_first_token_seconds_count{model="chat",version="sql"}"#
        #expect(h.value(requests) == 1 && h.value(ttft) == 1)
        var renamed = chat
        renamed.llm?.servedNames = ["chat", "chat-alias"]
        renamed.llm?.adapters = [.init(name: "sql-lora", version: "sql")]
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [renamed], source: "t")))
        #expect(h.model("chat").context.configuration.llm?.servedNames == ["chat", "chat-alias"])
        #expect(h.value(requests) == 1 && h.value(ttft) == 1)
        // Buckets are the state's shape: changing them still rebuilds.
        var rebucketed = renamed
        rebucketed.llm?.ttftBuckets = [0.2, 1]
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [rebucketed], source: "t")))
        #expect(h.value(ttft) == 0)
    }

    @Test func bucketsAndObjectivesArePartOfTheStateFingerprint() throws {
        func fingerprint(_ edit: (inout LLMConfiguration) -> Void) throws -> String {
            var m = chat
            edit(&m.llm!)
            return try ModelContext(configuration: m).stateFingerprint
        }
        let base = try fingerprint { _ in }
        #expect(try fingerprint { $0.objectives = .init(durationSeconds: 0.5) } != base)
        #expect(try fingerprint { $0.objectives.ttftSeconds = 0.25 } != base)
        #expect(try fingerprint { $0.durationBuckets = [1, 5] } != base)
        #expect(try fingerprint { $0.ttftBuckets = [0.1, 0.5, 1, 2] } != base)
        #expect(try fingerprint { $0.itlBuckets = [0.01, 0.02] } != base)
        #expect(try fingerprint { $0.tpotBuckets = [0.03, 0.1] } != base)
        #expect(try fingerprint { $0.servedNames = ["gpt-x"] } == base)
        #expect(try fingerprint { $0.catchAll = true } == base)
    }
}
