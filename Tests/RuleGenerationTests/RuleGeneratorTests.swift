import ExporterConfig
import Testing

@testable import RuleGeneration

private func config(_ models: [ModelConfiguration], alerting: AlertingConfiguration = .init()) -> ExporterConfiguration
{
    var c = ExporterConfiguration(models: models, source: "test.yaml")
    c.alerting = alerting
    return c
}

private var fraud: ModelConfiguration {
    var m = ModelConfiguration(
        name: "fraud", task: .binaryClassification, versions: ["v1"], classes: ["legit", "fraud"],
        positiveClass: "fraud", features: [FeatureConfiguration(name: "amount", kind: .numeric)],
        sensitiveAttributes: [SensitiveAttribute(name: "gender", groups: ["f", "m"])], latencyBuckets: [0.1, 1])
    m.slos = [
        SLOConfiguration(type: .availability, objective: 99.9, period: .days28),
        SLOConfiguration(name: "fast", type: .latency, objective: 99, thresholdSeconds: 1),
        SLOConfiguration(type: .quality, objective: 95, metric: .accuracy, target: 0.9),
        SLOConfiguration(type: .drift, objective: 95),
    ]
    return m
}

private var chat: ModelConfiguration {
    var m = ModelConfiguration(name: "chat", task: .textGeneration, versions: ["base", "sql"])
    m.llm = LLMConfiguration(objectives: .init(ttftSeconds: 0.5, durationSeconds: 30))
    m.slos = [
        SLOConfiguration(type: .ttft, objective: 99, thresholdSeconds: 1),
        SLOConfiguration(type: .tpot, objective: 99.5, period: .days28, thresholdSeconds: 0.05),
        SLOConfiguration(type: .goodput, objective: 95),
    ]
    return m
}

@Suite("Rule generation")
struct RuleGeneratorTests {
    /// Sloth takes a service or SLO name of letters, digits, `-`, `_` and `.`, starting and ending with a letter or a
    /// digit: an SLO named `lat_` (valid in the file) or `--job monitoring/mlops-exporter` made a spec that only
    /// `sloth generate` refused.
    @Test func slothNamesAreChecked() {
        #expect(RuleGenerator.slothNameProblems(for: config([fraud, chat])).isEmpty)
        var odd = fraud
        odd.slos[1].name = "lat_"
        let problems = RuleGenerator.slothNameProblems(for: config([odd]), job: "monitoring/mlops-exporter")
        #expect(problems.count == 2)
        #expect(
            problems.first?.hasPrefix("--job \"monitoring/mlops-exporter\" cannot be the Sloth spec's service") == true)
        #expect(problems.last?.hasPrefix("SLO \"lat_\" of model fraud: its Sloth name \"fraud-lat_\" is none") == true)
        // Two SLOs of one Sloth name: model `a-b`'s `c` and model `a`'s `b-c`.
        var ab = ModelConfiguration(name: "a-b", task: .regression, versions: ["v1"])
        ab.slos = [SLOConfiguration(name: "c", type: .availability, objective: 99)]
        var a = ModelConfiguration(name: "a", task: .regression, versions: ["v1"])
        a.slos = [SLOConfiguration(name: "b-c", type: .availability, objective: 99)]
        #expect(
            RuleGenerator.slothNameProblems(for: config([ab, a])) == [
                "SLO \"b-c\" of model a: its Sloth name \"a-b-c\" is another SLO's too (a model named with a '-' and an SLO of another model): rename one"
            ])
        for good in ["ab", "a.b-c_d", "mlops-exporter", "9x"] { #expect(RuleGenerator.isSlothName(good), "\(good)") }
        for bad in ["x", "", "a_", "-a", "a/b", "a b", ".a", "é1"] {
            #expect(!RuleGenerator.isSlothName(bad), "\(bad)")
        }
    }

    @Test("burn-rate factors follow Sloth: budget share x period hours / long window hours")
    func factors() {
        #expect(BurnRateWindow.windows(periodDays: 30).map(\.factor) == [14.4, 6, 3, 1])
        #expect(BurnRateWindow.windows(periodDays: 28).map(\.factor) == [13.44, 5.6, 2.8, 0.933333333333])
        #expect(BurnRateWindow.windows(periodDays: 28).map(\.short) == ["5m", "30m", "2h", "6h"])
        #expect(BurnRateWindow.windows(periodDays: 28).map(\.severity) == ["page", "page", "ticket", "ticket"])
    }

    @Test("an idle feature has no fleet share (no +Inf PSI); requests refused whole have their own alert")
    func idleFeaturesAndRefusedRequests() {
        let file = RuleGenerator.rules(for: config([fraud]))
        let share = file.rules.first { $0.name == "mlops:feature_bin_share:increase1h" }
        #expect(share?.expr.hasSuffix("[1h])) > 0)") == true, "\(share?.expr ?? "")")
        let refused = file.rules.first { $0.name == "MLOpsIngestRequestsRefused" }
        #expect(
            refused?.expr
                == "sum(rate(mlops_ingest_rejected_requests_total{job=\"mlops-exporter\",model=\"fraud\"}[5m])) > 0")
        #expect(refused?.label("model") == "fraud" && refused?.label("severity") == "warning")
    }

    /// Where nothing scrapes the exporters (their own remote write feeds the receiver) there is no `up`: the rules
    /// for a scrape job had `MLOpsExporterAbsent` firing for good and `MLOpsExporterDown` never. `--source
    /// remote_write` reads the series that arrive; nothing else of the file changes.
    @Test func livenessWithoutAScraperReadsTheSeriesThatArrive() {
        let scraped = RuleGenerator.rules(for: config([fraud]), job: "edge")
        let pushed = RuleGenerator.rules(for: config([fraud]), job: "edge", source: .remoteWrite)
        func alert(_ file: RuleFile, _ name: String) -> String? {
            file.groups.flatMap(\.rules).first { $0.name == name }?.expr
        }
        #expect(alert(scraped, "MLOpsExporterAbsent") == #"absent(up{job="edge"})"#)
        #expect(alert(pushed, "MLOpsExporterAbsent") == #"absent(mlops_exporter_build_info{job="edge"})"#)
        #expect(
            alert(pushed, "MLOpsExporterDown")
                == #"group by (job, instance) (max_over_time(mlops_exporter_build_info{job="edge"}[1h]))"#
                + "\n" + #"unless group by (job, instance) (mlops_exporter_build_info{job="edge"})"#)
        // Sent every 15 minutes (remote_write.interval): twice that counts as still sending, eight times as seen
        // (with a plain selector, 5 minutes after each send both alerts fired against a healthy exporter).
        var slow = config([fraud])
        slow.remoteWrite = RemoteWriteConfiguration(url: .init(host: "receiver", port: 9090, basePath: "/api/v1/write"))
        slow.remoteWrite?.interval = .seconds(900)
        let sparse = RuleGenerator.rules(for: slow, job: "edge", source: .remoteWrite)
        #expect(
            alert(sparse, "MLOpsExporterAbsent") == #"absent_over_time(mlops_exporter_build_info{job="edge"}[30m])"#)
        #expect(
            alert(sparse, "MLOpsExporterDown")
                == #"group by (job, instance) (max_over_time(mlops_exporter_build_info{job="edge"}[2h]))"#
                + "\n"
                + #"unless group by (job, instance) (last_over_time(mlops_exporter_build_info{job="edge"}[30m]))"#)
        #expect(pushed.groups.flatMap(\.rules).allSatisfy { !$0.expr.contains("up{") })
        let others = { (file: RuleFile) in
            file.groups.flatMap(\.rules).filter { !$0.name.hasPrefix("MLOpsExporter") }.map(\.expr)
        }
        #expect(others(pushed) == others(scraped))
    }

    @Test("groups: fleet, one per SLO, model health; SLO groups record windows, budget, burn rates, then alert")
    func structure() {
        let file = RuleGenerator.rules(for: config([fraud]))
        #expect(
            file.groups.map(\.name) == [
                "mlops-fleet", "mlops-slo-fraud-availability", "mlops-slo-fraud-fast", "mlops-slo-fraud-quality",
                "mlops-slo-fraud-drift", "mlops-model-health",
            ])
        let availability = file.groups[1].rules
        #expect(
            availability.map(\.name) == [
                "slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_rate30m", "slo:sli_error:ratio_rate1h",
                "slo:sli_error:ratio_rate2h", "slo:sli_error:ratio_rate6h", "slo:sli_error:ratio_rate1d",
                "slo:sli_error:ratio_rate3d", "slo:sli_error:ratio_rate28d", "slo:objective:ratio",
                "slo:error_budget:ratio", "slo:time_period:days", "slo:current_burn_rate:ratio",
                "slo:period_burn_rate:ratio", "slo:period_error_budget_remaining:ratio",
            ] + Array(repeating: "MLOpsSLOErrorBudgetBurn", count: 4))
        for rule in availability {
            #expect(rule.label("model") == "fraud" && rule.label("slo") == "availability")
            // Records carry the job too (alerts get it from them): two exporter jobs' files record apart.
            if rule.name != RuleGenerator.burnRateAlert { #expect(rule.label("job") == "mlops-exporter") }
        }
        #expect(availability[8].expr == "vector(0.999)" && availability[9].expr == "vector(0.001)")
        let page = availability[14]
        #expect(page.label("severity") == "page" && page.label("long_window") == "1h")
        #expect(
            page.expr
                == "slo:sli_error:ratio_rate1h{job=\"mlops-exporter\",model=\"fraud\",slo=\"availability\"} > (13.44 * 0.001)\nand on (job, model, slo)\nslo:sli_error:ratio_rate5m{job=\"mlops-exporter\",model=\"fraud\",slo=\"availability\"} > (13.44 * 0.001)"
        )
        #expect(page.annotation("runbook_url") == "https://runbooks.example.com/mlops-exporter/MLOpsSLOErrorBudgetBurn")
        #expect(availability[17].label("severity") == "ticket" && availability[17].label("long_window") == "3d")
        // Time-based SLIs record the 0/1 violation first, then average it.
        let drift = file.groups[4].rules
        #expect(drift[0].name == "slo:sli_violation:bool")
        #expect(
            drift[0].expr
                == "max(mlops_dataset_drift_detected{job=\"mlops-exporter\",model=\"fraud\"}) > bool 0 or on () vector(0)"
        )
        #expect(
            drift[1].expr
                == "avg_over_time(slo:sli_violation:bool{job=\"mlops-exporter\",model=\"fraud\",slo=\"drift\"}[5m])")
        #expect(drift[8].name == "slo:sli_error:ratio_rate30d")
        let health = file.groups[5].rules.map(\.name)
        #expect(
            health == [
                "MLOpsExporterDown", "MLOpsExporterAbsent", "MLOpsIngestRejects", "MLOpsIngestRequestsRefused",
                "MLOpsLabelsNotArriving",
                "MLOpsDatasetDrift",
                "MLOpsFairnessViolation", "MLOpsModelQualityBelowTarget", "MLOpsIngestUnknownModel",
            ])
        for rule in file.rules {
            if case .alert = rule.kind {
                #expect(["page", "ticket", "warning"].contains(rule.label("severity") ?? ""))
                #expect(rule.annotation("summary") != nil && rule.annotation("description") != nil)
                #expect(rule.annotation("runbook_url")?.hasPrefix("https://") == true)
            }
        }
    }

    @Test("SLIs select the job and model; latency matches both renderings of an integral bucket")
    func queries() {
        let file = RuleGenerator.rules(for: config([fraud]), job: "ml \"prod\"")
        let latency = file.groups[2].rules[0].expr
        #expect(
            latency.contains(
                "mlops_model_latency_seconds_bucket{job=\"ml \\\"prod\\\"\",model=\"fraud\",le=~\"1|1\\\\.0\"}[5m]"))
        let availability = file.groups[1].rules[0].expr
        #expect(
            availability
                == "(sum(rate(mlops_model_requests_total{job=\"ml \\\"prod\\\"\",model=\"fraud\",status=\"error\"}[5m])) or vector(0))\n/\nsum(rate(mlops_model_requests_total{job=\"ml \\\"prod\\\"\",model=\"fraud\"}[5m]))"
        )
        let quality = file.groups[3].rules[0].expr
        #expect(quality.contains("actual=\"legit\",predicted=\"legit\"}[1h]) or rate("))
        #expect(quality.hasSuffix("< bool 0.9 or on () vector(0)"))
        #expect(PromQL.leMatcher(0.25) == ("le", "=", "0.25"))
        #expect(PromQL.goString(1e-05) == "1e-05" && PromQL.goString(2.5) == "2.5" && PromQL.goString(10) == "10")
    }

    @Test("service-wide SLOs: the per-model rules and alerts over every model's requests, model=\"__service__\"")
    func service() throws {
        var c = config([fraud, ModelConfiguration(name: "eta", task: .regression, versions: ["1"])])
        c.serviceSLOs = [
            SLOConfiguration(type: .availability, objective: 99.5, period: .days28),
            SLOConfiguration(name: "fast", type: .latency, objective: 99, period: .days28, thresholdSeconds: 1),
        ]
        let file = RuleGenerator.rules(for: c)
        let names = file.groups.map(\.name)
        #expect(
            names.suffix(3) == [
                "mlops-slo-__service__-availability", "mlops-slo-__service__-fast", "mlops-model-health",
            ])
        let availability = try #require(file.groups.first { $0.name == "mlops-slo-__service__-availability" })
        let perModel = try #require(file.groups.first { $0.name == "mlops-slo-fraud-availability" })
        // The same rules as a model's SLO, told apart by model="__service__".
        #expect(availability.rules.map(\.name) == perModel.rules.map(\.name))
        #expect(
            availability.rules[0].expr
                == "(sum(rate(mlops_model_requests_total{job=\"mlops-exporter\",status=\"error\"}[5m])) or vector(0))\n/\nsum(rate(mlops_model_requests_total{job=\"mlops-exporter\"}[5m]))"
        )
        #expect(availability.rules.allSatisfy { $0.label("model") == "__service__" })
        let alerts = availability.rules.filter { $0.name == RuleGenerator.burnRateAlert }
        #expect(alerts.count == 4)
        #expect(
            alerts[0].expr.contains(
                "slo:sli_error:ratio_rate1h{job=\"mlops-exporter\",model=\"__service__\",slo=\"availability\"} > ("))
        #expect(
            alerts[0].annotation("summary")?.hasPrefix("service: SLO availability (availability, 99.5% over 28d)")
                == true)
        #expect(
            alerts[0].annotation("description")?.hasPrefix("The availability error ratio of the service (all models)")
                == true)
        let fast = try #require(file.groups.first { $0.name == "mlops-slo-__service__-fast" })
        #expect(
            fast.rules[0].expr.contains(
                "mlops_model_latency_seconds_bucket{job=\"mlops-exporter\",le=~\"1|1\\\\.0\"}[5m]"))
        #expect(!fast.rules[0].expr.contains("model="))
        let sloth = RuleGenerator.slothYAML(for: c)
        #expect(sloth.contains("  - name: \"service-fast\"\n    objective: 99\n"))
        #expect(sloth.contains("  - name: \"service-availability\"\n    objective: 99.5\n"))
        #expect(sloth.contains("    labels:\n      model: \"__service__\"\n      slo: \"fast\""))
    }

    @Test("ttft and tpot read their histogram's bucket as latency does; goodput is bad = total - good")
    func llm() throws {
        let file = RuleGenerator.rules(for: config([chat]))
        #expect(
            file.groups.map(\.name) == [
                "mlops-slo-chat-ttft", "mlops-slo-chat-tpot", "mlops-slo-chat-goodput", "mlops-model-health",
            ])
        let latency = try #require(RuleGenerator.rules(for: config([fraud])).groups.first { $0.name.hasSuffix("fast") })
        for group in file.groups.dropLast() {
            // The same rules as any request-based SLO: no violation series, the windows, budget and four alerts.
            #expect(
                group.rules.map(\.name)
                    == latency.rules.map(\.name).map {
                        $0.replacing("30d", with: group.name.hasSuffix("tpot") ? "28d" : "30d")
                    })
        }
        let ttft = file.groups[0].rules
        let job = "job=\"mlops-exporter\",model=\"chat\""
        #expect(
            ttft[0].expr
                == "(sum(rate(mlops_llm_time_to_first_token_seconds_count{\(job)}[5m])) - sum(rate(mlops_llm_time_to_first_token_seconds_bucket{\(job),le=~\"1|1\\\\.0\"}[5m])))\n/\nsum(rate(mlops_llm_time_to_first_token_seconds_count{\(job)}[5m]))"
        )
        let tpot = file.groups[1].rules
        #expect(
            tpot[7].expr
                == "(sum(rate(mlops_llm_time_per_output_token_seconds_count{\(job)}[28d])) - sum(rate(mlops_llm_time_per_output_token_seconds_bucket{\(job),le=\"0.05\"}[28d])))\n/\nsum(rate(mlops_llm_time_per_output_token_seconds_count{\(job)}[28d]))"
        )
        let goodput = file.groups[2].rules
        #expect(
            goodput[0].expr
                == "(sum(rate(mlops_llm_requests_total{\(job),outcome!=\"cancelled\"}[5m])) - (sum(rate(mlops_llm_requests_within_objective_total{\(job),objective=\"all\"}[5m])) or vector(0)))\n/\nsum(rate(mlops_llm_requests_total{\(job),outcome!=\"cancelled\"}[5m]))"
        )
        #expect(goodput[9].expr == "vector(0.05)")
        let page = try #require(goodput.first { $0.name == RuleGenerator.burnRateAlert })
        #expect(page.label("slo_type") == "goodput" && page.label("severity") == "page")
        #expect(
            page.expr.hasPrefix(
                "slo:sli_error:ratio_rate1h{job=\"mlops-exporter\",model=\"chat\",slo=\"goodput\"} > (14.4 * 0.05)\n"))
        #expect(page.annotation("description")?.contains("goodput objectives (ttft <= 0.5s, duration <= 30s)") == true)
        let ttftPage = try #require(ttft.first { $0.name == RuleGenerator.burnRateAlert })
        #expect(ttftPage.annotation("description")?.contains("waits over 1s for its first token") == true)
        #expect(
            ttftPage.annotation("summary")
                == "chat: SLO ttft (ttft, 99% over 30d) spent over 2% of its error budget in the last 1h (14.4x the rate that spends it over 30d)"
        )
        // The 3d ticket of a 28d SLO: its factor shown to four decimals, and no "too fast" at a rate under 1 (an SRE's
        // walk of the rules: "burns its error budget over 0.933333333333x too fast").
        let ticket = try #require(
            RuleGenerator.sloRules(
                model: chat, slo: SLOConfiguration(type: .availability, objective: 99, period: .days28),
                alerting: AlertingConfiguration(), job: "mlops-exporter"
            ).last { $0.name == RuleGenerator.burnRateAlert })
        #expect(
            ticket.annotation("summary")
                == "chat: SLO availability (availability, 99% over 28d) spent over 10% of its error budget in the last 3d (0.9333x the rate that spends it over 28d)"
        )
        #expect(ticket.annotation("description")?.contains("is above 0.9333 times the error budget") == true)
        let tpotPage = try #require(tpot.first { $0.name == RuleGenerator.burnRateAlert })
        #expect(tpotPage.annotation("description")?.contains("over 0.05s per output token") == true)
        // Sloth: request-based, so events.
        let sloth = RuleGenerator.slothYAML(for: config([chat]))
        #expect(sloth.components(separatedBy: "version: \"prometheus/v1\"").count == 3)
        #expect(
            sloth.contains(
                "    sli:\n      events:\n        error_query: |-\n          (sum(rate(mlops_llm_requests_total{\(job),outcome!=\"cancelled\"}[{{.window}}])) - (sum(rate(mlops_llm_requests_within_objective_total{\(job),objective=\"all\"}[{{.window}}])) or vector(0)))\n        total_query: |-\n          sum(rate(mlops_llm_requests_total{\(job),outcome!=\"cancelled\"}[{{.window}}]))\n"
            ))
        #expect(sloth.contains("      slo_type: \"ttft\"") && sloth.contains("      slo_type: \"tpot\""))
        #expect(!sloth.contains("raw:"))
    }

    @Test("the alerting section sets durations, thresholds and runbooks; a model without SLOs gets health alerts")
    func alerting() {
        var a = AlertingConfiguration()
        a.runbookBaseURL = "https://wiki.example/rb"
        a.driftFor = .seconds(5400)
        a.rejectRatio = 0.05
        let plain = ModelConfiguration(name: "eta", task: .regression, versions: ["1"])
        let file = RuleGenerator.rules(for: config([plain], alerting: a))
        #expect(file.groups.map(\.name) == ["mlops-model-health"])
        let rejects = file.rules.first { $0.name == "MLOpsIngestRejects" }
        #expect(rejects?.expr.hasSuffix("> 0.05") == true && rejects?.duration == "10m")
        #expect(rejects?.annotation("runbook_url") == "https://wiki.example/rb/MLOpsIngestRejects")
        var drifting = fraud
        drifting.slos = []
        let drift = RuleGenerator.rules(for: config([drifting], alerting: a)).rules.first {
            $0.name == "MLOpsDatasetDrift"
        }
        #expect(drift?.duration == "90m")
    }

    @Test("YAML output is deterministic, quoted and ends with a newline; Sloth spec has one document per period")
    func yaml() {
        let c = config([fraud])
        let text = RuleGenerator.prometheusYAML(for: c)
        #expect(text == RuleGenerator.prometheusYAML(for: c))
        #expect(text.hasPrefix("# Generated by `mlops-exporter rules` from test.yaml"))
        #expect(
            text.contains(
                "\n  - name: \"mlops-slo-fraud-availability\"\n    rules:\n      - record: slo:sli_error:ratio_rate5m\n        expr: |-\n"
            ))
        #expect(text.hasSuffix("\n"))
        let sloth = RuleGenerator.slothYAML(for: c)
        #expect(sloth.components(separatedBy: "version: \"prometheus/v1\"").count == 3)
        #expect(sloth.contains("  - name: \"fraud-availability\"\n    objective: 99.9\n"))
        #expect(sloth.contains("error_ratio_query: |-\n          avg_over_time(("))
        #expect(YAMLWriter.quoted("a\"b\\c\n") == "\"a\\\"b\\\\c\\n\"")
    }
}
