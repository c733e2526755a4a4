import Testing

@testable import ExporterConfig

private let classifier = """
    models:
      - name: m
        task: binary_classification
        versions: [v1]
        classes: [no, yes]
        positive_class: "yes"
        features: [{name: x, type: numeric}]
        sensitive_attributes: [{name: g, groups: [a, b]}]
        latency_buckets: [0.1, 0.25, 1]
        slos:

    """

private let llmModel = """
    models:
      - name: chat
        task: text_generation
        versions: [base, sql]
        llm:
          adapters: {sql-lora: sql}
          ttft_buckets: [0.1, 0.5, 2]
          tpot_buckets: [0.02, 0.04, 0.1]
          objectives: {ttft_seconds: 0.5, tpot_seconds: 0.05}
        slos:

    """

@Suite("SLOs in the configuration")
struct SLOConfigTests {
    @Test("the example's SLOs and alerting section load")
    func example() throws {
        let config = try ConfigLoader.parse(
            classifier + """
                      - {type: availability, objective: 99.9, period: 28d, runbook_url: "https://r.example/a"}
                      - {name: fast, type: latency, objective: 99, threshold_seconds: 0.25}
                      - {type: quality, target: 0.9, window: 2h, objective: 95, description: labelled accuracy}
                      - {type: drift, objective: 95}
                      - {type: fairness, objective: 99, period: 30d}
                alerting: {runbook_base_url: "https://runbooks.example/x/", drift_for: 45m, reject_ratio: 0.05}
                """, file: "t.yaml")
        let slos = try #require(config.model(named: "m")).slos
        #expect(slos.map(\.name) == ["availability", "fast", "quality", "drift", "fairness"])
        #expect(
            slos[0]
                == SLOConfiguration(
                    type: .availability, objective: 99.9, period: .days28, runbookURL: "https://r.example/a"))
        #expect(slos[1].thresholdSeconds == 0.25 && slos[1].period == .days30)
        #expect(slos[2].metric == .accuracy && slos[2].target == 0.9 && slos[2].window == .seconds(7200))
        #expect(slos[2].description == "labelled accuracy")
        #expect(slos[0].objectiveRatio == 0.999)
        #expect(config.alerting.runbookBaseURL == "https://runbooks.example/x")
        #expect(config.alerting.driftFor == .seconds(2700) && config.alerting.rejectRatio == 0.05)
        #expect(config.alerting.fairnessFor == .seconds(1800))
    }

    @Test(
        "every SLO problem names line, column and field",
        arguments: [
            (
                "- {objective: 99}",
                "11:9: models[0].slos[0].type: required (availability, latency, quality, drift, fairness, ttft, tpot, goodput)"
            ),
            ("- {type: speed, objective: 99}", "11:16: models[0].slos[0].type: unknown SLO type \"speed\""),
            ("- {type: availability}", "11:9: models[0].slos[0].objective: required"),
            ("- {type: availability, objective: 100}", "11:41: models[0].slos[0].objective: must be a percentage"),
            ("- {type: availability, objective: high}", "11:41: models[0].slos[0].objective: expected a finite number"),
            (
                "- {type: availability, objective: 99, period: 7d}",
                "11:53: models[0].slos[0].period: unknown period \"7d\""
            ),
            ("- {type: latency, objective: 99}", "11:9: models[0].slos[0].threshold_seconds: required"),
            (
                "- {type: latency, objective: 99, threshold_seconds: 0.3}",
                "11:59: models[0].slos[0].threshold_seconds: 0.3 is not one of the model's latency_buckets (0.1, 0.25, 1)"
            ),
            (
                "- {type: availability, objective: 99, threshold_seconds: 1}",
                "11:64: models[0].slos[0].threshold_seconds: only latency, ttft and tpot SLOs have threshold_seconds"
            ),
            ("- {type: quality, objective: 99}", "11:9: models[0].slos[0].target: required"),
            (
                "- {type: quality, objective: 99, target: 90}",
                "11:48: models[0].slos[0].target: must be above 0 and below 1"
            ),
            (
                "- {type: quality, objective: 99, target: 0.9, metric: auc}",
                "11:61: models[0].slos[0].metric: unknown quality metric \"auc\""
            ),
            (
                "- {type: quality, objective: 99, target: 0.9, window: 1m}",
                "11:61: models[0].slos[0].window: must be between 5m and 1d"
            ),
            (
                "- {type: drift, objective: 99, runbook_url: wiki/drift}",
                "11:51: models[0].slos[0].runbook_url: \"wiki/drift\" is not an http:// or https:// URL"
            ),
            ("- {type: drift, objective: 99, owner: me}", "11:38: models[0].slos[0].owner: unknown field"),
            (
                "- {type: drift, objective: 99}\n      - {type: drift, objective: 95}",
                "12:9: models[0].slos[1].name: SLO \"drift\" is defined twice for this model (name it)"
            ),
            (
                "- {name: \"a b\", type: drift, objective: 99}",
                "11:16: models[0].slos[0].name: SLO name \"a b\" must be"
            ),
            // An objective that rounds to 100 % (the rules' ratio has 12 decimals) leaves no budget: any error pages.
            // Said so (it said "must be a percentage above 0 and below 100" of a value below 100).
            (
                "- {type: availability, objective: 99.99999999999}",
                "11:41: models[0].slos[0].objective: leaves an error budget of 0 at the rules' 12 decimals"
            ),
            // A ratio written for a percentage: 0.999 % leaves a budget no error ratio can burn fast enough to page (it
            // was accepted, and a total outage paged nobody).
            (
                "- {type: availability, objective: 0.999}",
                "11:41: models[0].slos[0].objective: is a percentage: 0.999 means 0.999 % (for 99.9 %, write 99.9)"
            ),
            // 1 (100 %, no budget) and tiny values suggest no percentage that is itself refused.
            (
                "- {type: availability, objective: 1}",
                "11:41: models[0].slos[0].objective: is a percentage, above 1 and below 100 (like 99.9)"
            ),
            (
                "- {type: availability, objective: 0.005}",
                "11:41: models[0].slos[0].objective: is a percentage, above 1 and below 100 (like 99.9)"
            ),
            // Alert annotations are Go templates: Prometheus would refuse the whole rule file.
            (
                "- {type: drift, objective: 99, description: \"owner {{ team\"}",
                "11:51: models[0].slos[0].description: must not contain {{ or }}"
            ),
            (
                "- {type: drift, objective: 99, runbook_url: \"https://wiki.example/{{x}}\"}",
                "11:51: models[0].slos[0].runbook_url: must not contain {{ or }}"
            ),
        ])
    func problems(slo: String, expected: String) {
        let found = locatedErrors(classifier + "      " + slo + "\n")
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.hasPrefix(expected) == true, "\(found)")
    }

    /// An objective so low that the error ratio (at most 1) can never exceed a page's factor times the budget is valid
    /// but said: a total outage would page nobody. Above 93.06 % (30 days; 92.56 % for 28) both pages can fire.
    @Test(
        "an objective too low for the pages to fire is a warning",
        arguments: [
            ("99.9", "30d", nil), ("93.1", "30d", nil), ("93", "30d", "the 1h/5m page can never fire"),
            ("92.6", "28d", nil), ("92.5", "28d", "the 1h/5m page can never fire"),
            ("85", "30d", "the 1h/5m page can never fire"),
            ("80", "30d", "the 1h/5m page and the 6h/30m page can never fire"),
            ("60", "28d", "the 1h/5m page, the 6h/30m page and the 1d/2h ticket can never fire"),
        ] as [(String, String, String?)])
    func lowObjectives(objective: String, period: String, expected: String?) throws {
        let config = try ConfigLoader.parse(
            classifier + "      - {type: availability, objective: \(objective), period: \(period)}\n"
                + "service_slos: [{type: availability, objective: \(objective), period: \(period)}]\n",
            file: "m.yaml")
        let low = config.warnings.filter { $0.contains("objective \(objective):") }
        if let expected {
            #expect(low.count == 2, "\(low)")
            #expect(low.first?.hasPrefix("m.yaml:") == true)
            #expect(low.first?.contains(": models[0] (m): slos[0] (availability): objective") == true)
            #expect(low.last?.hasPrefix("m.yaml: service_slos[0] (availability): objective") == true)
            #expect(low.allSatisfy { $0.contains(expected) }, "\(low)")
            let lowest = period == "30d" ? "93.0556" : "92.5596"
            #expect(low.allSatisfy { $0.hasSuffix("every alert can above \(lowest) %)") }, "\(low)")
        } else {
            #expect(low.isEmpty, "\(low)")
        }
    }

    /// A time-based SLO counts minutes in violation: with a budget under two minutes of the 1h/5m page's hour, one
    /// minute of drift pages (a probe: at 99.9 % all four burn-rate alerts fired on a single minute). Said, not refused.
    @Test(
        "a time-based SLO whose page fires on a minute of violation is a warning",
        arguments: [
            ("drift", "99.9", "30d", true), ("drift", "99.8", "30d", true), ("drift", "99.7", "30d", false),
            ("fairness", "99.8", "28d", true),
            ("drift", "99.75", "28d", false), ("availability", "99.99", "30d", false),
        ] as [(String, String, String, Bool)])
    func highTimeBasedObjectives(type: String, objective: String, period: String, warned: Bool) throws {
        let config = try ConfigLoader.parse(
            classifier + "      - {type: \(type), objective: \(objective), period: \(period)}\n"
                + "    collectors: [service, drift, fairness]\n",
            file: "m.yaml", referencesMustExist: false)
        let found = config.warnings.filter { $0.contains("a single minute pages") }
        #expect(found.count == (warned ? 1 : 0), "\(config.warnings)")
        if warned {
            // 1 − 2 minutes / (0.02 × hours × 60): 1 − 2/864 for 30 days, 1 − 2/806.4 for 28, rounded down.
            let highest = period == "30d" ? "99.7685" : "99.7519"
            #expect(found.first?.hasSuffix("(time-based SLOs want objectives up to \(highest) %)") == true, "\(found)")
        }
    }

    /// An LLM model's requests count in the service latency histogram timed to the end of their generation: a
    /// service-wide latency SLO over them reads every long generation as a slow request. Said, not refused.
    @Test("a service-wide latency SLO over LLM models is a warning")
    func serviceLatencyOverGenerations() throws {
        let text =
            llmModel + "      - {type: ttft, objective: 99, threshold_seconds: 0.5}\n"
            + "proxy: {upstream: http://127.0.0.1:8000}\n"
        let latency = "service_slos: [{type: latency, objective: 99, threshold_seconds: 0.5}]\n"
        let availability = "service_slos: [{type: availability, objective: 99}]\n"
        let warned = try ConfigLoader.parse(text + latency, file: "m.yaml").warnings
        #expect(warned.count == 1, "\(warned)")
        #expect(
            warned.first?.hasPrefix(
                "m.yaml: service_slos[0] (latency): a service-wide latency SLO counts the requests of chat,") == true)
        #expect(try ConfigLoader.parse(text + availability, file: "m.yaml").warnings.isEmpty)
        let noLLM = try ConfigLoader.parse(
            classifier + "      - {type: availability, objective: 99}\n"
                + latency.replacingOccurrences(of: "0.5", with: "0.25"), file: "m.yaml")
        #expect(!noLLM.warnings.contains { $0.contains("service-wide latency") }, "\(noLLM.warnings)")
    }

    @Test("two SLOs of different models that would get the same rule group or Sloth name are refused")
    func namesAcrossModels() {
        let text = """
            models:
              - name: fraud-eu
                task: regression
                versions: [v1]
                slos: [{type: availability, objective: 99}]
              - name: fraud
                task: regression
                versions: [v1]
                slos: [{name: eu-availability, type: availability, objective: 99}]
            """
        let found = locatedErrors(text)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.contains("gets the same rule group or Sloth name") == true, "\(found)")
        let service = """
            models:
              - name: service
                task: regression
                versions: [v1]
                slos: [{type: availability, objective: 99}]
            service_slos: [{type: availability, objective: 99}]
            """
        #expect(locatedErrors(service).first?.contains("service SLO \"availability\"") == true)
    }

    @Test("types that need something the model lacks are refused")
    func needs() {
        let found = locatedErrors(
            """
            models:
              - name: r
                task: regression
                versions: [v1]
                slos:
                  - {type: quality, target: 0.9, objective: 99}
                  - {type: drift, objective: 99}
                  - {type: fairness, objective: 99}
            """)
        #expect(
            found == [
                "6:16: models[0].slos[0].type: quality SLOs need a classification model (accuracy)",
                "7:16: models[0].slos[1].type: drift SLOs need the model's features (none are configured)",
                "8:16: models[0].slos[2].type: fairness SLOs need sensitive_attributes (none are configured)",
            ])
    }

    @Test("ttft, tpot and goodput SLOs load on a model with an llm section; thresholds are its buckets")
    func llm() throws {
        let config = try ConfigLoader.parse(
            llmModel + """
                      - {type: ttft, objective: 99, threshold_seconds: 0.5}
                      - {name: fast-tokens, type: tpot, objective: 99.5, threshold_seconds: 0.04, period: 28d}
                      - {type: goodput, objective: 95, description: answers in time}
                """, file: "t.yaml")
        let slos = try #require(config.model(named: "chat")).slos
        #expect(slos.map(\.name) == ["ttft", "fast-tokens", "goodput"])
        #expect(slos.map(\.type) == [.ttft, .tpot, .goodput])
        #expect(slos[0] == SLOConfiguration(type: .ttft, objective: 99, thresholdSeconds: 0.5))
        #expect(slos[1].thresholdSeconds == 0.04 && slos[1].period == .days28)
        #expect(slos[2].thresholdSeconds == nil && slos[2].description == "answers in time")
        #expect(SLOType.allCases.filter(\.isLLM) == [.ttft, .tpot, .goodput])
        #expect(SLOType.allCases.filter(\.isRequestBased) == [.availability, .latency, .ttft, .tpot, .goodput])
    }

    @Test(
        "ttft, tpot and goodput problems name line, column and field",
        arguments: [
            (
                "- {type: ttft, objective: 99, threshold_seconds: 0.35}",
                "11:56: models[0].slos[0].threshold_seconds: 0.35 is not one of the model's llm.ttft_buckets (0.1, 0.5, 2)"
            ),
            (
                "- {type: tpot, objective: 99, threshold_seconds: 0.5}",
                "11:56: models[0].slos[0].threshold_seconds: 0.5 is not one of the model's llm.tpot_buckets (0.02, 0.04, 0.1)"
            ),
            (
                "- {type: ttft, objective: 99}",
                "11:9: models[0].slos[0].threshold_seconds: required: one of the model's llm.ttft_buckets"
            ),
            (
                "- {type: tpot, objective: 99}",
                "11:9: models[0].slos[0].threshold_seconds: required: one of the model's llm.tpot_buckets"
            ),
            (
                "- {type: goodput, objective: 95, threshold_seconds: 0.5}",
                "11:59: models[0].slos[0].threshold_seconds: only latency, ttft and tpot SLOs have threshold_seconds"
            ),
            (
                "- {type: ttft, objective: 99, threshold_seconds: 0.5, target: 0.9}",
                "11:69: models[0].slos[0].target: only quality SLOs have target"
            ),
        ])
    func llmProblems(slo: String, expected: String) {
        let found = locatedErrors(llmModel + "      " + slo + "\n")
        #expect(found == [expected])
    }

    @Test("ttft, tpot and goodput need an llm section; goodput needs its objectives; a refused section says so once")
    func llmNeeds() {
        let found = locatedErrors(
            """
            models:
              - name: r
                task: regression
                versions: [v1]
                slos:
                  - {type: ttft, objective: 99, threshold_seconds: 0.5}
                  - {type: tpot, objective: 99, threshold_seconds: 0.05}
                  - {type: goodput, objective: 99}
              - name: chat
                task: text_generation
                versions: [v1]
                slos: [{type: goodput, objective: 99}]
              - name: plain
                task: text_generation
                versions: [v1]
                llm: {served_names: [plain]}
                slos: [{type: goodput, objective: 99}]
              - name: broken
                task: text_generation
                versions: [v1]
                llm: {ttft_buckets: soon}
                slos: [{type: ttft, objective: 99, threshold_seconds: 0.5}]
            """)
        #expect(
            found == [
                "6:16: models[0].slos[0].type: ttft SLOs need the model's llm section (none is configured)",
                "7:16: models[0].slos[1].type: tpot SLOs need the model's llm section (none is configured)",
                "8:16: models[0].slos[2].type: goodput SLOs need the model's llm section (none is configured)",
                "12:19: models[1].slos[0].type: goodput SLOs need the model's llm section (none is configured)",
                "17:19: models[2].slos[0].type: goodput SLOs need llm.objectives (ttft_seconds, tpot_seconds or duration_seconds; none are set)",
                "21:25: models[3].llm.ttft_buckets: expected a list",
            ])
    }

    @Test("service-wide SLOs load: availability and latency over every model, a bucket common to all")
    func service() throws {
        let config = try ConfigLoader.parse(
            classifier + """
                      - {type: availability, objective: 99.9}
                  - {name: r, task: regression, versions: [v1], latency_buckets: [0.25, 0.5, 1]}
                service_slos:
                  - {type: availability, objective: 99.5, period: 28d}
                  - {name: fast, type: latency, objective: 99, threshold_seconds: 1}
                """, file: "t.yaml")
        #expect(config.serviceSLOs.map(\.name) == ["availability", "fast"])
        #expect(config.serviceSLOs[1].thresholdSeconds == 1 && config.serviceSLOs[0].period == .days28)
        #expect(
            config.allSLOs.map { "\($0.model.name)/\($0.slo.name)" } == [
                "m/availability", "__service__/availability", "__service__/fast",
            ])
        #expect(config.allSLOs[1].model == ExporterConfiguration.serviceModel)
    }

    @Test("service-wide SLO problems name line, column and field")
    func serviceProblems() {
        let found = locatedErrors(
            classifier + """
                      - {type: availability, objective: 99.9}
                  - {name: r, task: regression, versions: [v1], latency_buckets: [0.5, 1]}
                  - {name: __service__, task: regression, versions: [v1]}
                service_slos:
                  - {type: latency, objective: 99, threshold_seconds: 0.25}
                  - {type: latency, objective: 99}
                  - {type: drift, objective: 99}
                  - {type: availability, objective: 99}
                  - {type: availability, objective: 99.9}
                  - {type: availability, objective: 99, target: 0.9}
                  - {type: ttft, objective: 99, threshold_seconds: 0.5}
                  - {type: goodput, objective: 99}
                """)
        #expect(
            found == [
                "13:12: models[2].name: \"__service__\" is reserved for service-wide SLOs",
                "15:55: service_slos[0].threshold_seconds: 0.25 is not a bucket of every model's latency_buckets (missing in: r)",
                "16:5: service_slos[1].threshold_seconds: required: a bucket of every model's latency_buckets",
                "17:12: service_slos[2].type: service-wide SLOs are availability or latency (drift SLOs are per model)",
                "19:5: service_slos[4].name: SLO \"availability\" is defined twice for this service (name it)",
                "20:49: service_slos[5].target: only quality SLOs have target",
                "21:12: service_slos[6].type: service-wide SLOs are availability or latency (ttft SLOs are per model)",
                "22:12: service_slos[7].type: service-wide SLOs are availability or latency (goodput SLOs are per model)",
            ])
    }

    /// A model refused for another error still has its latency buckets checked against the service-wide latency
    /// SLO's threshold: one run reports both problems. Before, the refused model was left out of the check, and the
    /// threshold's error appeared only after the first one was fixed.
    @Test("a model with errors still counts for the service-wide latency threshold")
    func refusedModelsCountForTheServiceThreshold() {
        let found = locatedErrors(
            """
            models:
              - name: r
                task: regression
                versions: [v1]
                latency_buckets: [0.5, 1]
                slos: [{type: availability, objective: 120}]
              - {name: s, task: regression, versions: [v1], latency_buckets: [0.25, 1]}
            service_slos:
              - {type: latency, objective: 99, threshold_seconds: 0.25}
            """)
        #expect(found.count == 2, "\(found)")
        #expect(found.first?.hasPrefix("6:44: models[0].slos[0].objective:") == true, "\(found)")
        #expect(
            found.last
                == "9:55: service_slos[0].threshold_seconds: 0.25 is not a bucket of every model's latency_buckets (missing in: r)"
        )
    }

    @Test("alerting section problems are located")
    func alerting() {
        let found = locatedErrors(
            """
            models:
              - {name: r, task: regression, versions: [v1]}
            alerting:
              drift_for: 10s
              reject_ratio: 2
              labels_for: soon
              paging: true
            """)
        #expect(
            found == [
                "4:14: alerting.drift_for: must be between 1m and 1d",
                "5:17: alerting.reject_ratio: must be above 0 and below 1",
                "6:15: alerting.labels_for: \"soon\" is not a duration in whole seconds (like 30s, 5m, 1h, 1d)",
                "7:3: alerting.paging: unknown field (expected one of: runbook_base_url, drift_for, fairness_for, quality_for, labels_drop_ratio, labels_for, reject_ratio, reject_for, scrape_for)",
            ])
    }
}
