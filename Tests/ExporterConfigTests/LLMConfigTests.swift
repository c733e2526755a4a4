import Testing

@testable import ExporterConfig

/// A text-generation model whose `llm:` section has lines `llm` (indented 6), then `more` (whole lines).
private func yaml(_ llm: String, task: String = "text_generation", more: String = "") -> String {
    """
    models:
      - name: chat
        task: \(task)
        versions: [base, sql]
        llm:
    \(llm)
    \(more)
    """
}

@Suite struct LLMConfigTests {
    @Test func readsEveryFieldAndAddsTheCollector() throws {
        let c = try ConfigLoader.parse(
            yaml(
                """
                      served_names: [meta-llama/Llama-3.1-8B-Instruct, llama]
                      adapters: {sql-lora: sql}
                      catch_all: true
                      ttft_buckets: [0.1, 1]
                      itl_buckets: [0.01]
                      tpot_buckets: [0.02, 0.2]
                      duration_buckets: [5]
                      objectives: {ttft_seconds: 0.5, tpot_seconds: 0.05, duration_seconds: 30}
                """), file: "test.yaml")
        let m = try #require(c.models.first)
        let l = try #require(m.llm)
        #expect(l.servedNames == ["meta-llama/Llama-3.1-8B-Instruct", "llama"])
        #expect(l.adapters == [LLMConfiguration.Adapter(name: "sql-lora", version: "sql")])
        #expect(l.catchAll)
        #expect(l.ttftBuckets == [0.1, 1] && l.itlBuckets == [0.01] && l.tpotBuckets == [0.02, 0.2])
        #expect(l.durationBuckets == [5])
        #expect(l.objectives == .init(ttftSeconds: 0.5, tpotSeconds: 0.05, durationSeconds: 30))
        #expect(l.objectives.names == ["ttft", "tpot", "duration"])
        #expect(m.collectors.map(\.name) == ["service", "llm"])
        // The same configuration built in code passes the same reader.
        _ = try c.validated()
    }

    @Test func defaults() throws {
        let c = try ConfigLoader.parse(yaml("      catch_all: false"), file: "test.yaml")
        let l = try #require(c.models.first?.llm)
        #expect(l.servedNames.isEmpty && l.adapters.isEmpty && !l.catchAll && l.objectives.isEmpty)
        #expect(l.ttftBuckets == LLMConfiguration.defaultTTFTBuckets)
        #expect(l.ttftBuckets.first == 0.01 && l.ttftBuckets.last == 60)
        #expect(l.itlBuckets.first == 0.001 && l.itlBuckets.last == 5)
    }

    @Test func mistakesAreLocated() {
        #expect(
            locatedErrors(yaml("      catch_all: true", task: "regression")) == [
                "6:7: models[0].llm: only text_generation models have an llm section (this one is regression)"
            ])
        #expect(
            locatedErrors(yaml("      adapters: {sql-lora: v9}")) == [
                #"6:28: models[0].llm.adapters.sql-lora: "v9" is not a version of model "chat" (its versions: base, sql)"#
            ])
        #expect(
            locatedErrors(yaml("      objectives: {ttft_seconds: -1}")) == [
                "6:34: models[0].llm.objectives.ttft_seconds: must be positive (seconds)"
            ])
        #expect(
            locatedErrors(yaml("      objectives: {}")) == [
                "6:19: models[0].llm.objectives: set at least one of ttft_seconds, tpot_seconds, duration_seconds"
            ])
        #expect(
            locatedErrors(yaml("      stream: true")).first?.contains("models[0].llm.stream: unknown field") == true)
        #expect(
            locatedErrors(yaml("      catch_all: maybe")) == ["6:18: models[0].llm.catch_all: expected true or false"])
        #expect(
            locatedErrors(
                """
                models:
                  - name: chat
                    task: text_generation
                    classes: [a, b]
                    versions: [v]
                """) == ["4:14: models[0].classes: a text_generation model has no classes"])
    }

    @Test func namesBelongToOneModelAndOneModelIsTheCatchAll() {
        let two = """
            models:
              - name: a
                task: text_generation
                versions: [v]
                llm: {served_names: [llama], catch_all: true}
              - name: b
                task: text_generation
                versions: [v]
                llm: {served_names: [llama], catch_all: true}
            """
        let errors = locatedErrors(two)
        #expect(errors.count == 2)
        #expect(errors.contains { $0.contains(#""llama" is already a name of model "a""#) })
        #expect(errors.contains { $0.contains(#"model "a" is the catch-all already"#) })
    }

    @Test func openAIRoutesTakeTheModelFromTheBody() throws {
        let c = try ConfigLoader.parse(
            yaml(
                "      catch_all: true",
                more: """
                    proxy:
                      upstream: http://127.0.0.1:8000
                      routes:
                        - {path: /openai/v1/chat/completions, protocol: openai}
                        - {path: "/v1/models/{model}:predict"}
                    """), file: "test.yaml")
        let routes = try #require(c.proxy?.routes)
        #expect(routes.map(\.protocol) == [.openAI, .modelServer])
        #expect(routes[0].model == nil && routes[0].modelHeader == nil)
        _ = try c.validated()
        let wrong = locatedErrors(
            yaml(
                "      catch_all: true",
                more: """
                    proxy:
                      upstream: http://127.0.0.1:8000
                      routes:
                        - {path: /x, protocol: grpc}
                        - {path: /y}
                    """))
        #expect(
            wrong.contains {
                $0.contains(#"routes[0].protocol: unknown protocol "grpc" (expected one of: model_server, openai)"#)
            })
        #expect(wrong.contains { $0.contains("routes[1]: a route must say which model a request is for") })
    }

    @Test func injectIncludeUsageIsOffUnlessSet() throws {
        let base = "proxy:\n  upstream: http://127.0.0.1:8000\n"
        #expect(
            try ConfigLoader.parse(yaml("      catch_all: true", more: base), file: "t.yaml").proxy?.injectIncludeUsage
                == false)
        let on = try ConfigLoader.parse(
            yaml("      catch_all: true", more: base + "  inject_include_usage: true\n"), file: "t.yaml")
        #expect(on.proxy?.injectIncludeUsage == true)
        #expect(try on.validated() == on)
        #expect(
            locatedErrors(yaml("      catch_all: true", more: base + "  inject_include_usage: yes please\n")).first?
                .contains("proxy.inject_include_usage: expected true or false") == true)
    }

    @Test func theDefaultRoutesIncludeTheOpenAIPaths() {
        let openAI = ProxyConfiguration.defaultRoutes.filter { $0.protocol == .openAI }.map(\.path)
        #expect(openAI == ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"])
    }

    /// Only the proxy measures LLM requests: an `llm` section without a `proxy:` section is read by nothing. Before,
    /// such a configuration started without a word and its `mlops_llm_*` series stayed at zero for good.
    @Test func anLLMSectionWithoutAProxyIsAWarning() throws {
        let alone = try ConfigLoader.parse(yaml("      catch_all: true"), file: "t.yaml")
        #expect(alone.warnings.count == 1)
        #expect(alone.warnings.first?.hasPrefix("t.yaml:") == true)
        #expect(alone.warnings.first?.contains(": models[0] (chat): llm: there is no proxy: section") == true)
        let proxied = try ConfigLoader.parse(
            yaml("      catch_all: true", more: "proxy:\n  upstream: http://127.0.0.1:8000\n"), file: "t.yaml")
        #expect(proxied.warnings.isEmpty)
    }
}
