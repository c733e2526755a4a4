import ExporterConfig
import Foundation
import HTTPServer
import Ingestion
import Logging
import Synchronization
import Testing

@testable import Exposition
@testable import MLOpsExporter

/// A class, group and attribute value that would run as script if a page did not escape it.
private let hostile = "<script>alert(1)</script>"

private func statusExporter(qualityWindow: Duration = .seconds(3600)) throws -> Exporter {
    var fraud = ModelConfiguration(
        name: "fraud", task: .binaryClassification, versions: ["v1", "v2"], classes: ["legit", hostile],
        positiveClass: hostile, sensitiveAttributes: [SensitiveAttribute(name: "region", groups: ["north", hostile])],
        window: WindowConfiguration(duration: .seconds(600), slices: 10),
        latencyBuckets: [0.01, 0.05, 0.1, 0.5, 1],
        collectors: [
            CollectorConfiguration(name: "service"), CollectorConfiguration(name: "quality"),
            CollectorConfiguration(name: "fairness"),
        ])
    fraud.slos = [
        SLOConfiguration(type: .availability, objective: 99),
        SLOConfiguration(type: .latency, objective: 90, thresholdSeconds: 0.05),
        SLOConfiguration(type: .quality, objective: 95, metric: .accuracy, target: 0.9, window: qualityWindow),
    ]
    let eta = ModelConfiguration(name: "eta", task: .regression, versions: ["v1"])
    var configuration = Exporter.Configuration()
    configuration.processMetrics = false
    configuration.models = ExporterConfiguration(models: [fraud, eta], source: "<code>")
    configuration.grafanaURL = "https://grafana.example.com/"
    return try Exporter(configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
}

private func get(_ path: String, _ headers: [(name: String, value: String)] = []) -> ExporterEndpoints.Request {
    ExporterEndpoints.Request(method: "GET", path: path, headers: headers)
}

private func header(_ response: ExporterEndpoints.Response, _ name: String) -> String? {
    response.headers.first { $0.name.lowercased() == name.lowercased() }?.value
}

private func text(_ response: ExporterEndpoints.Response) -> String { String(decoding: response.body, as: UTF8.self) }

/// `<data value=… data-metric=… data-labels=…>` elements of a page: name, labels, value.
private func metricFigures(_ html: String) throws -> [(name: String, labels: [String: String], value: Double)] {
    let pattern = try NSRegularExpression(
        pattern: #"<data value="([^"]*)" data-metric="([^"]*)" data-labels="([^"]*)">"#)
    let ns = html as NSString
    return try pattern.matches(in: html, range: NSRange(location: 0, length: ns.length)).map { m in
        let json = ns.substring(with: m.range(at: 3)).replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&#39;", with: "'").replacingOccurrences(of: "&amp;", with: "&")
        let labels = try JSONDecoder().decode([String: String].self, from: Data(json.utf8))
        return (ns.substring(with: m.range(at: 2)), labels, Double(ns.substring(with: m.range(at: 1))) ?? .nan)
    }
}

/// The labels of a scraped series key (`name{a="x",b="y"}`), unescaped.
private func seriesLabels(_ key: String) -> (name: String, labels: [String: String]) {
    guard let open = key.firstIndex(of: "{") else { return (key, [:]) }
    let pairs = MetricSnapshotLabels.parse(String(key[key.index(after: open)..<key.index(before: key.endIndex)]))
    return (String(key[..<open]), pairs)
}

/// Label pairs as the text format writes them, read independently of `MetricSnapshot`.
private enum MetricSnapshotLabels {
    static func parse(_ s: String) -> [String: String] {
        var out: [String: String] = [:]
        var rest = Substring(s)
        while let eq = rest.firstIndex(of: "=") {
            let name = String(rest[..<eq])
            var i = rest.index(eq, offsetBy: 2)
            var value = ""
            while rest[i] != "\"" {
                if rest[i] == "\\" {
                    i = rest.index(after: i)
                    value.append(rest[i] == "n" ? "\n" : rest[i])
                } else {
                    value.append(rest[i])
                }
                i = rest.index(after: i)
            }
            out[name] = value
            rest = rest[rest.index(after: i)...]
            if rest.first == "," { rest = rest.dropFirst() }
        }
        return out
    }
}

@Suite("Status pages")
struct StatusPageTests {
    @Test("/ has a card per model; user strings are escaped; the policy allows no script")
    func overviewEscapesAndCards() async throws {
        let exporter = try statusExporter()
        let fraud = try #require(exporter.model("fraud"))
        _ = fraud.record(
            version: "v1", prediction: .label(hostile), score: 0.9, latencySeconds: 0.02,
            attributes: ["region": hostile], id: "a", label: .label(hostile))
        let response = await exporter.endpoints.respond(to: get("/"))
        #expect(response.status == 200)
        let html = text(response)
        #expect(!html.contains("<script"))
        #expect(html.contains("<section class=\"card"))
        #expect(html.contains("data-model=\"fraud\""))
        #expect(html.contains("data-model=\"eta\""))
        #expect(html.contains("href=\"/models/fraud\""))
        #expect(html.contains("<a href=\"/metrics\">Metrics</a>"))
        let csp = try #require(header(response, "Content-Security-Policy"))
        #expect(csp.hasPrefix("default-src 'none';"))
        #expect(!csp.contains("unsafe") && !csp.contains("script-src"))
        #expect(header(response, "Cache-Control") == "no-store")
        #expect(header(response, "X-Content-Type-Options") == "nosniff")
        let detail = text(await exporter.endpoints.respond(to: get("/models/fraud")))
        #expect(!detail.contains("<script"))
        #expect(detail.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(detail.contains("<table class=\"confusion\" data-version=\"v1\">"))
        #expect(detail.contains("<table class=\"fairness\" data-attribute=\"region\">"))
        #expect(detail.contains("href=\"https://grafana.example.com/d/mlops-model/?var-model=fraud&amp;viewPanel=2\""))
    }

    @Test("every figure marked as a sample equals that sample in a scrape")
    func figuresEqualTheScrape() async throws {
        let exporter = try statusExporter()
        let fraud = try #require(exporter.model("fraud"))
        for i in 0..<40 {
            let predicted = i % 3 == 0 ? hostile : "legit"
            let actual = i % 4 == 0 ? hostile : "legit"
            _ = fraud.record(
                version: i % 2 == 0 ? "v1" : "v2", prediction: .label(predicted), score: i % 3 == 0 ? 0.8 : 0.1,
                latencySeconds: Double(i) / 400, attributes: ["region": i % 2 == 0 ? "north" : hostile],
                id: "p\(i)", label: i < 30 ? .label(actual) : nil)
        }
        for page in ["/", "/models/fraud", "/models/eta"] {
            let html = text(await exporter.endpoints.respond(to: get(page)))
            let scraped = await scrape(exporter)
            var index: [String: [(labels: [String: String], value: Double)]] = [:]
            for (key, value) in scraped {
                let (name, labels) = seriesLabels(key)
                index[name, default: []].append((labels, value))
            }
            let figures = try metricFigures(html)
            let least = ["/": 5, "/models/fraud": 40, "/models/eta": 0][page]!
            #expect(figures.count >= least, "\(page): \(figures.count) figures")
            for f in figures {
                let match = index[f.name]?.first { $0.labels == f.labels }
                #expect(match != nil, "\(page): \(f.name) \(f.labels) is not in the scrape")
                if let match { #expect(match.value == f.value, "\(page): \(f.name) \(f.labels)") }
            }
        }
    }

    @Test("the pages' lists of families miss nothing they show: the same page as from every family")
    func familyLists() throws {
        let exporter = try statusExporter()
        let fraud = try #require(exporter.model("fraud"))
        for i in 0..<60 {
            _ = fraud.record(
                version: i % 2 == 0 ? "v1" : "v2", prediction: .label(i % 3 == 0 ? hostile : "legit"),
                score: i % 3 == 0 ? 0.8 : 0.2, latencySeconds: 0.01,
                attributes: ["region": i % 2 == 0 ? "north" : hostile],
                id: "p\(i)", label: .label(i % 4 == 0 ? hostile : "legit"))
        }
        let now = WallClock.now()
        exporter.statusHistory.sample(now: now - 30)
        for page in [StatusEndpoint.Page.overview, .model("fraud"), .model("eta")] {
            let listed = try #require(exporter.statusEndpoint.render(page, refresh: nil, now: now))
            let every = try #require(exporter.statusEndpoint.render(page, refresh: nil, now: now, allFamilies: true))
            #expect(listed.html == every.html, "\(page)")
        }
    }

    @Test("a render is counted out before its answer leaves: requests sent on an answer are not refused as busy")
    func busyCountedOutBeforeAnswering() async throws {
        let exporter = try statusExporter()
        let endpoint = exporter.statusEndpoint
        let request = HTTPRequest(method: "GET", path: "/models/eta")
        // Two more requests sent from the first one's answer: with the limit of 2 renders, both must be served.
        let statuses = await withCheckedContinuation { (done: CheckedContinuation<[Int], Never>) in
            let collected = Mutex<[Int]>([])
            endpoint.handle(request, page: .model("eta")) { first in
                collected.withLock { $0.append(first.status) }
                for _ in 0..<2 {
                    endpoint.handle(request, page: .model("eta")) { next in
                        let all = collected.withLock { list -> [Int] in
                            list.append(next.status)
                            return list
                        }
                        if all.count == 3 { done.resume(returning: all) }
                    }
                }
            }
        }
        #expect(statuses == [200, 200, 200])
    }

    /// The quality SLO stands on the window's accuracy pooled over the versions, as its generated rule and alert do:
    /// one wrong label on a canary version made the whole model Critical on the page (the worst version's accuracy)
    /// while `MLOpsModelQualityBelowTarget` stayed silent.
    /// A figure a version has none of (ROC AUC with one class among its outcomes) shows a muted dash, as the
    /// fairness tables do (the cell was blank; a status page probe).
    @Test func aFigureAVersionHasNoneOfShowsADash() throws {
        let exporter = try statusExporter()
        let fraud = try #require(exporter.model("fraud"))
        _ = fraud.record(version: "v1", prediction: .label("legit"), score: 0.2, id: "a", label: .label("legit"))
        _ = fraud.record(version: "v1", prediction: .label(hostile), score: 0.9, id: "b", label: .label(hostile))
        _ = fraud.record(version: "v2", prediction: .label("legit"), score: 0.3, id: "c", label: .label("legit"))
        let html = try #require(exporter.statusEndpoint.render(.model("fraud"), refresh: nil, now: 1_000_000)).html
        let start = try #require(html.range(of: "<tr><th>ROC AUC</th>"))
        let row = html[start.upperBound...].prefix { $0 != "\n" }
        #expect(row.components(separatedBy: "<td").count == 3, "\(row)")  // v1 and v2
        #expect(row.hasSuffix("<td class=\"n\"><span class=\"muted\">–</span></td></tr>"), "\(row)")
    }

    @Test func theQualitySLOPoolsTheVersionsAsItsRuleDoes() async throws {
        let exporter = try statusExporter()
        let fraud = try #require(exporter.model("fraud"))
        exporter.statusHistory.sample(now: 999_990)
        for i in 0..<20 {
            _ = fraud.record(
                version: "v1", prediction: .label("legit"), latencySeconds: 0.01, id: "a\(i)", label: .label("legit"))
        }
        _ = fraud.record(
            version: "v2", prediction: .label("legit"), latencySeconds: 0.01, id: "b", label: .label(hostile))
        let html = try #require(exporter.statusEndpoint.render(.model("fraud"), refresh: nil, now: 1_000_000)).html
        #expect(html.contains("accuracy 95.2% over the last 60 min (21 outcomes, all versions), target 90%"), "\(html)")
        #expect(!html.contains(#"data-state="critical""#))
        // Below the target pooled too: Critical, as the alert fires.
        for i in 0..<5 {
            _ = fraud.record(
                version: "v2", prediction: .label("legit"), latencySeconds: 0.01, id: "c\(i)", label: .label(hostile))
        }
        let worse = try #require(exporter.statusEndpoint.render(.model("fraud"), refresh: nil, now: 1_000_001)).html
        #expect(worse.contains(#"data-state="critical""#))
    }

    /// The quality SLO stands on the accuracy over the SLO's own `window`, as its rule reads the confusion counts,
    /// not over the model's window: with a 1 m model window and a 1 h SLO window, five wrong labels after a hundred
    /// right ones a minute before made the page Critical while the alert stayed silent (a status page probe). Here the
    /// other way round: 100 wrong labels, then 100 right ones more than the SLO's 5 minutes later, all within the
    /// model's 10-minute window (50% accuracy there): over the SLO's window, 100%.
    @Test func theQualitySLOReadsItsOwnWindow() async throws {
        let exporter = try statusExporter(qualityWindow: .seconds(300))
        let fraud = try #require(exporter.model("fraud"))
        for i in 0..<100 {
            _ = fraud.record(
                version: "v1", prediction: .label("legit"), latencySeconds: 0.01, id: "w\(i)", label: .label(hostile))
        }
        let t0 = 1_000_000.0
        exporter.statusHistory.sample(now: t0)
        for i in 0..<100 {
            _ = fraud.record(
                version: "v1", prediction: .label("legit"), latencySeconds: 0.01, id: "r\(i)", label: .label("legit"))
        }
        let html = try #require(exporter.statusEndpoint.render(.model("fraud"), refresh: nil, now: t0 + 400)).html
        #expect(html.contains("accuracy 100% over the last 5 min (100 outcomes, all versions), target 90%"), "\(html)")
        #expect(html.contains("accuracy") && !html.contains("SLO quality not met"))
        // Without a point a second old (no history yet), no verdict: not the counts since start.
        let fresh = try statusExporter(qualityWindow: .seconds(300))
        let other = try #require(fresh.model("fraud"))
        for i in 0..<10 {
            _ = other.record(
                version: "v1", prediction: .label("legit"), latencySeconds: 0.01, id: "a\(i)",
                label: .label(i < 5 ? "legit" : hostile))
        }
        let early = try #require(fresh.statusEndpoint.render(.model("fraud"), refresh: nil, now: t0)).html
        #expect(early.contains("collecting… (accuracy over the last 5 min)"), "\(early)")
        #expect(!early.contains("SLO quality not met"))
    }

    /// A quality SLO a reload adds to a model that keeps its counts: its points start at the counts then, not at zero
    /// (a zero point put every outcome since the model started in the SLO's window: 100 old wrong labels and 20 new
    /// right ones read 16.7% and Critical where the rule read 100%, a review found).
    @Test func aQualitySLOAddedByAReloadCountsFromThen() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("status-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("models.yaml")
        let model = """
            models:
              - name: fraud
                task: binary_classification
                classes: ["legit", "fraud"]
                positive_class: fraud
                versions: [v1]
                window: {duration: 10m, slices: 10}
                collectors: [service, quality]

            """
        try model.write(to: file, atomically: true, encoding: .utf8)
        var configuration = Exporter.Configuration()
        configuration.processMetrics = false
        configuration.configPath = file.path
        configuration.models = try Exporter.checkConfiguration(file: file.path)
        let exporter = try Exporter(
            configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        for i in 0..<100 {
            _ = exporter.model("fraud")?.record(
                version: "v1", prediction: .label("legit"), latencySeconds: 0.01, id: "w\(i)", label: .label("fraud"))
        }
        let t0 = 1_000_000.0
        exporter.statusHistory.sample(now: t0)
        let slo = "    slos: [{type: quality, objective: 95, target: 0.9, window: 5m}]\n"
        try (model + slo).write(to: file, atomically: true, encoding: .utf8)
        #expect(exporter.reload() == nil)
        exporter.statusHistory.sample(now: t0 + 10)
        for i in 0..<20 {
            _ = exporter.model("fraud")?.record(
                version: "v1", prediction: .label("legit"), latencySeconds: 0.01, id: "r\(i)", label: .label("legit"))
        }
        let html = try #require(exporter.statusEndpoint.render(.model("fraud"), refresh: nil, now: t0 + 20)).html
        #expect(html.contains("accuracy 100% over the last 5 min (20 outcomes, all versions), target 90%"), "\(html)")
    }

    @Test("rates over the window: the difference of counts since the history's oldest point within the window")
    func ratesOverTheWindow() async throws {
        let exporter = try statusExporter()
        let fraud = try #require(exporter.model("fraud"))
        for i in 0..<10 {
            _ = fraud.record(version: "v1", prediction: .label("legit"), latencySeconds: Double(i) / 100)
        }
        let t0 = 1_000_000.0
        exporter.statusHistory.sample(now: t0)
        // 30 requests, 6 of them errors, over the next 20 s: rate 1.5/s, error ratio 0.2.
        for i in 0..<30 {
            fraud.recordRequest(version: "v2", status: i % 5 == 0 ? .error : .ok, latencySeconds: 0.03)
        }
        let endpoint = exporter.statusEndpoint
        let html = try #require(endpoint.render(.overview, refresh: nil, now: t0 + 20)).html
        #expect(html.contains(#"<data value="1.5" data-figure="request_rate">1.5/s</data>"#))
        #expect(html.contains(#"<data value="0.2" data-figure="error_ratio">20%</data>"#))
        // Every latency in the window is 0.03 s, in the (0.01, 0.05] bucket: p50 interpolates to 0.03.
        #expect(html.contains(#"data-figure="latency_p50">30 ms</data>"#))
        // Availability 80% < 99%: critical, said in words.
        #expect(html.contains(#"<span class="state critical" data-state="critical">Critical</span>"#))
        // A point older than the window is not the base: with only that point, the change runs from it.
        let later = try #require(endpoint.render(.overview, refresh: nil, now: t0 + 20)).html
        #expect(later.contains("data-figure=\"request_rate\""))
    }

    /// The wall clock stepped back an hour between two ticks (an NTP step), the monotonic clock one second on: the
    /// history moves with the step, so the rates over the window read as before it. Before, no point was older than
    /// now and the page said "collecting…" for the hour.
    @Test("a wall clock stepped back between ticks: the history moves with it and the rates still read")
    func clockSteppedBack() throws {
        let exporter = try statusExporter()
        let fraud = try #require(exporter.model("fraud"))
        let t0 = 1_000_000.0
        let c0 = ContinuousClock.now
        exporter.statusHistory.sample(now: t0, clock: c0)
        for i in 0..<30 {
            fraud.recordRequest(version: "v2", status: i % 5 == 0 ? .error : .ok, latencySeconds: 0.03)
        }
        // One second later by the monotonic clock, an hour earlier by the wall clock.
        let back = t0 + 1 - 3_600
        exporter.statusHistory.sample(now: back, clock: c0 + .seconds(1))
        let html = try #require(exporter.statusEndpoint.render(.overview, refresh: nil, now: back + 19)).html
        #expect(html.contains(#"data-figure="error_ratio">20%</data>"#), "\(html)")
        #expect(exporter.statusHistory.rings.withLock { $0.values.flatMap { $0 }.allSatisfy { $0.time <= back } })
        // Without the monotonic clock (a caller's own times) nothing moves.
        let other = try statusExporter()
        other.statusHistory.sample(now: t0)
        other.statusHistory.sample(now: back)
        #expect(other.statusHistory.rings.withLock { $0.values.flatMap { $0 }.contains { $0.time == t0 } })
    }

    /// A model reset by a reload (its counts from zero) between the base point and now: the change adds the
    /// increases between the points, as `increase()` does. Before, it compared the base with now alone: 100 ok and
    /// 50 errors before the reset, 99 ok and 60 errors after read as 109 requests with 9% errors (OK where 38% errors
    /// is critical).
    @Test("a count that went down between the window's points restarted there, as increase() reads it")
    func resetWithinTheWindow() throws {
        let exporter = try statusExporter()
        func point(_ time: Double, ok: Double, errors: Double) -> WindowPoint {
            var p = WindowPoint(time: time)
            p.ok = ok
            p.errors = errors
            p.latency = WindowPoint.Buckets(bounds: [0.1, 1], counts: [ok + errors, 0, 0])
            return p
        }
        exporter.statusHistory.rings.withLock {
            $0["fraud"] = [
                point(100, ok: 100, errors: 50), point(110, ok: 0, errors: 0), point(115, ok: 40, errors: 10),
            ]
        }
        let change = try #require(
            exporter.statusHistory.change(model: "fraud", window: 60, current: point(120, ok: 99, errors: 60)))
        #expect(change.seconds == 20)
        #expect(change.ok == 99 && change.errors == 60)
        #expect(change.latency.counts == [159, 0, 0])
        // Without a reset the sum along the points is the difference of the ends.
        exporter.statusHistory.rings.withLock {
            $0["fraud"] = [point(100, ok: 10, errors: 5), point(110, ok: 20, errors: 5), point(115, ok: 30, errors: 8)]
        }
        let plain = try #require(
            exporter.statusHistory.change(model: "fraud", window: 60, current: point(120, ok: 35, errors: 9)))
        #expect(plain.ok == 25 && plain.errors == 4 && plain.latency.counts == [29, 0, 0])
    }

    /// A model that appears between two samples (a reload added it) counted from zero when it was built: its first
    /// point is zero at the sample before. Before, its first point was its counts at the next tick, and what it got
    /// in between (50 errors of 100 requests) never showed in its window: OK where its availability SLO was missed.
    @Test func aModelThatAppearsBetweenSamplesCountsFromZero() throws {
        let exporter = try statusExporter()
        let fraud = try #require(exporter.model("fraud"))
        let t0 = 1_000_000.0
        exporter.statusHistory.sample(now: t0)
        // A tick at which no model is due (each took a point at t0, one a second at most): it counts too, the zero
        // point is at the last tick, not at the last point taken (a model's points come every window/120 s).
        exporter.statusHistory.sample(now: t0 + 0.5)
        // As if a reload had added `fraud` after that tick: no point of it, and traffic before the next one.
        exporter.statusHistory.rings.withLock { $0["fraud"] = nil }
        for _ in 0..<10 { fraud.recordRequest(version: "v1", status: .error, latencySeconds: 0.03) }
        exporter.statusHistory.sample(now: t0 + 1)
        let ring = exporter.statusHistory.rings.withLock { $0["fraud"] ?? [] }
        #expect(ring.map(\.time) == [t0 + 0.5, t0 + 1])
        #expect(ring.first?.errors == 0 && ring.last?.errors == 10)
        var current = try #require(ring.last)
        current.time = t0 + 5
        let change = try #require(exporter.statusHistory.change(model: "fraud", window: 60, current: current))
        #expect(change.errors == 10)
    }

    @Test(
        "the ETag changes with any one byte of the page, in the eight-byte steps and the tail, but not with volatile text"
    )
    func etagCoversEveryByte() {
        func page(_ body: String, clock: String = "12:00") -> HTMLText {
            var h = HTMLText()
            h.raw("<p>")
            h.volatileText(clock)
            h.raw(body)
            return h
        }
        let body = String(repeating: "abcdefghij", count: 7) + "xyz"  // 73 bytes: nine steps and a tail of one
        let tag = page(body).weakETag()
        #expect(tag.hasPrefix("W/\"") && tag.count == 20)
        #expect(page(body, clock: "12:01").weakETag() == tag)
        var seen: Set<String> = [tag]
        for i in 0..<body.utf8.count {
            var bytes = Array(body.utf8)
            bytes[i] ^= 0x20
            seen.insert(page(String(decoding: bytes, as: UTF8.self)).weakETag())
        }
        #expect(seen.count == body.utf8.count + 1)
        #expect(page(body + "!").weakETag() != tag)
    }

    @Test("a render whose client left while it waited is skipped (499), and counted out of the renders under way")
    func aRenderForAClientThatLeftIsSkipped() async throws {
        let exporter = try statusExporter()
        let endpoint = exporter.statusEndpoint
        let request = HTTPRequest(method: "GET", path: "/models/eta")
        let answer: HTTPResponse = await withCheckedContinuation { done in
            endpoint.handle(request, page: .model("eta"), cancelled: { true }) { done.resume(returning: $0) }
        }
        #expect(answer.status == 499)
        #expect(answer.body.count < 100)
        let rendered: HTTPResponse = await withCheckedContinuation { done in
            endpoint.handle(request, page: .model("eta"), cancelled: { false }) { done.resume(returning: $0) }
        }
        #expect(rendered.status == 200)
        #expect(String(decoding: rendered.body, as: UTF8.self).contains("eta"))
    }

    /// A page of a model that is not configured is answered from the configuration, without a render slot. Before,
    /// it took one: 3,000 requests for unknown names at 20 at once took the slots from the real pages (689 got 503).
    @Test("an unknown model's page is a 404 even while every render slot is taken")
    func unknownModelsTakeNoRenderSlot() async throws {
        let exporter = try statusExporter()
        let endpoint = exporter.statusEndpoint
        endpoint.inFlight.store(StatusEndpoint.maxRenders, ordering: .relaxed)
        func answer(_ name: String) async -> HTTPResponse {
            await withCheckedContinuation { done in
                endpoint.handle(HTTPRequest(method: "GET", path: "/models/\(name)"), page: .model(name)) {
                    done.resume(returning: $0)
                }
            }
        }
        let unknown = await answer("nope")
        #expect(unknown.status == 404)
        #expect(String(decoding: unknown.body, as: UTF8.self) == "unknown model \"nope\" (configured: fraud, eta)\n")
        #expect(await answer("eta").status == 503)
        #expect(endpoint.inFlight.load(ordering: .relaxed) == StatusEndpoint.maxRenders)
    }

    @Test("ETag: unchanged state keeps it (304 to If-None-Match); a new prediction changes it")
    func entityTags() async throws {
        let exporter = try statusExporter()
        // A history point well in the past: both pages show rates (not "collecting…" then rates, a real change),
        // however long the machine takes between them.
        exporter.statusHistory.sample(now: WallClock.now() - 10)
        let first = await exporter.endpoints.respond(to: get("/models/eta"))
        let etag = try #require(header(first, "ETag"))
        #expect(etag.hasPrefix("W/\""))
        let again = await exporter.endpoints.respond(to: get("/models/eta", [("If-None-Match", etag)]))
        #expect(again.status == 304)
        #expect(again.body.isEmpty)
        _ = exporter.model("eta")?.record(version: "v1", prediction: .number(3), latencySeconds: 0.1)
        let changed = await exporter.endpoints.respond(to: get("/models/eta", [("If-None-Match", etag)]))
        #expect(changed.status == 200)
        #expect(header(changed, "ETag") != etag)
    }

    @Test("ETag: rates that move with the clock alone (no new event) keep it")
    func entityTagsIgnoreRatesMovingWithTheClock() throws {
        let exporter = try statusExporter()
        let now = WallClock.now()
        exporter.statusHistory.sample(now: now - 30)
        for _ in 0..<5 { _ = exporter.model("eta")?.record(version: "v1", prediction: .number(3), latencySeconds: 0.1) }
        let first = try #require(exporter.statusEndpoint.render(.model("eta"), refresh: nil, now: now))
        let later = try #require(exporter.statusEndpoint.render(.model("eta"), refresh: nil, now: now + 7))
        #expect(first.html.contains(#"data-figure="request_rate""#))
        #expect(first.html != later.html)  // the rate (and its span) moved
        #expect(first.weakETag() == later.weakETag())
    }

    @Test("paths: percent-encoded names, unknown models, other methods, refresh")
    func paths() async throws {
        let exporter = try statusExporter()
        #expect(await exporter.endpoints.respond(to: get("/models/fr%61ud")).status == 200)
        let unknown = await exporter.endpoints.respond(to: get("/models/nope"))
        #expect(unknown.status == 404)
        // Said as the ingestion API says it, with the models there are.
        #expect(text(unknown).hasPrefix(#"unknown model "nope" (configured: "#))
        // The text repeats the client's path: never sniffed as anything but text.
        #expect(header(unknown, "X-Content-Type-Options") == "nosniff")
        #expect(header(await exporter.endpoints.respond(to: get("/nowhere")), "X-Content-Type-Options") == "nosniff")
        #expect(await exporter.endpoints.respond(to: get("/models/")).status == 404)
        #expect(await exporter.endpoints.respond(to: get("/models/a/b")).status == 404)
        let post = await exporter.endpoints.respond(to: .init(method: "POST", path: "/"))
        #expect(post.status == 405)
        let refreshing = await exporter.endpoints.respond(to: .init(method: "GET", path: "/", query: "refresh=30"))
        #expect(header(refreshing, "Refresh") == "30")
        // Out of 5...3600: the nearest bound, which the page then shows (ignored without a sign before); no number:
        // no refresh.
        for (query, expected) in [
            ("refresh=1", "5"), ("refresh=99999", "3600"), ("refresh=99999999999999999999999", "3600"),
            ("refresh=-3", "5"), ("refresh=%35", "5"), ("refresh=%2B90", "90"), ("refresh=abc", nil),
            ("refresh=", nil), ("refresh=-", nil),
        ] as [(String, String?)] {
            let page = await exporter.endpoints.respond(to: .init(method: "GET", path: "/", query: query))
            #expect(header(page, "Refresh") == expected, "\(query)")
        }
    }

    @Test("a histogram summed over series counts each series' observations, the first one's too")
    func bucketsSumTheSeriesCounts() throws {
        // Two versions' latency histograms: 10 fast requests in the first, 100 slow ones in the second.
        var buckets = WindowPoint.Buckets()
        buckets.add(MetricSnapshot.HistogramValue(bounds: [0.1, 0.25, 1], counts: [10, 0, 0, 0], sum: 0.5))
        buckets.add(MetricSnapshot.HistogramValue(bounds: [0.1, 0.25, 1], counts: [0, 0, 100, 0], sum: 100))
        #expect(buckets.counts == [10, 0, 100, 0])
        #expect(buckets.total == 110)
        // The median is among the slow ones, in (0.25, 1].
        let median = try #require(buckets.quantile(0.5))
        #expect(median > 0.25 && median <= 1)
    }

    @Test("quantiles are Prometheus's histogram_quantile: checked against a direct reading of the cumulative counts")
    func quantiles() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]
            let counts = (0...bounds.count).map { _ in Double(Int.random(in: 0...20, using: &rng)) }
            let buckets = WindowPoint.Buckets(bounds: bounds, counts: counts)
            for q in [0.0, 0.25, 0.5, 0.9, 0.99, 1] {
                // The reference: cumulative counts, the first bucket whose cumulative count reaches the rank.
                var cumulative: [Double] = []
                for c in counts { cumulative.append((cumulative.last ?? 0) + c) }
                let total = cumulative.last!
                guard total > 0 else {
                    #expect(buckets.quantile(q) == nil)
                    continue
                }
                let rank = q * total
                let b = cumulative.firstIndex { $0 >= rank }!
                #expect(buckets.isBeyondBounds(q) == (b == bounds.count), "q=\(q) counts=\(counts)")
                let expected: Double
                if b == bounds.count {
                    expected = bounds.last!
                } else {
                    let start = b == 0 ? 0 : bounds[b - 1]
                    let inBucket = cumulative[b] - (b == 0 ? 0 : cumulative[b - 1])
                    let before = b == 0 ? 0 : cumulative[b - 1]
                    expected = inBucket == 0 ? start : start + (bounds[b] - start) * (rank - before) / inBucket
                }
                #expect(abs(buckets.quantile(q)! - expected) < 1e-12, "q=\(q) counts=\(counts)")
            }
        }
    }

    /// A p99 in the `+Inf` bucket is the highest bound by `histogram_quantile`: it read "1 s" for requests of 2 s.
    @Test("a quantile beyond the highest finite bound is shown after '>'")
    func quantileBeyondTheBounds() {
        func shown(_ counts: [Double], _ q: Double) -> String {
            var h = HTMLText()
            ModelCard.quantile("latency_p99", WindowPoint.Buckets(bounds: [0.1, 1], counts: counts), q, into: &h)
            return String(decoding: h.bytes, as: UTF8.self)
        }
        #expect(shown([9, 0, 1], 0.99).hasPrefix("&gt; <data value=\"1\" data-figure=\"latency_p99\">"))
        #expect(shown([9, 0, 1], 0.5).hasPrefix("<data value=\""))
        #expect(shown([0, 99, 1], 0.99).hasPrefix("<data value=\"1"))  // the rank reached within the last bound
        #expect(shown([0, 0, 0], 0.99).isEmpty)
    }

    @Test("numbers shown read back to the value within their last digit, over ten magnitudes each way")
    func shownNumbersReadBack() throws {
        var generator = SystemRandomNumberGenerator()
        var values: [Double] = [
            1, -1, 0.001, 0.000_999_9, 999.4, 999.6, 9_999.5, 1e4, 0.995, 9.9996, 1e9, 1e14, 0.125, 2.5, 0.0105,
        ]
        for _ in 0..<3000 {
            let magnitude = Double.random(in: -9...14, using: &generator)
            values.append((Bool.random(using: &generator) ? 1 : -1) * pow(10, magnitude))
        }
        /// Half a unit of the third significant digit of `v` (the rounding every shown figure allows), a little more
        /// for the scaling's own rounding.
        func halfUnit(_ v: Double, significant: Int = 3) -> Double {
            0.5 * pow(10, floor(log10(abs(v))) - Double(significant - 1)) * (1 + 1e-9)
        }
        for v in values {
            // number: the digits (with a k/M/G suffix or an exponent) read back within half a unit of the third digit.
            let number = try #require(ShownText(Shown.number(v)), "\(v): \(Shown.number(v))")
            #expect(abs(number.value - v) <= halfUnit(v), "\(v): \(Shown.number(v))")
            #expect(number.significant <= ((1000..<10_000).contains(abs(v)) ? 4 : 3), "\(v): \(Shown.number(v))")
            // count: an integer below ten thousand as it is, else as a number.
            let whole = v.rounded()
            #expect(Shown.count(whole) == (abs(whole) < 1e4 ? String(Int(whole)) : Shown.number(whole)), "\(v)")
            // percent: `<0.01%` for what rounds below it, else four significant digits from 100% on, three below.
            let percent = Shown.percent(v)
            #expect(percent.hasSuffix("%"), "\(v): \(percent)")
            if abs(v * 100) < 0.01 {
                #expect(percent == "<0.01%", "\(v): \(percent)")
            } else {
                let shown = try #require(ShownText(percent.dropLast()), "\(v): \(percent)")
                let digits = v * 100 >= 1e15 ? 3 : v * 100 >= 100 ? 4 : 3  // a power of ten from 10^15 on
                #expect(abs(shown.value - v * 100) <= halfUnit(v * 100, significant: digits), "\(v): \(percent)")
            }
            // seconds: the unit people read (µs below a millisecond, … days from two days on), its number as above.
            let a = abs(v)
            let unit: (String, Double) =
                a < 1e-3
                ? ("µs", 1e-6)
                : a < 1
                    ? ("ms", 1e-3)
                    : a < 120
                        ? ("s", 1)
                        : a < 7200
                            ? ("min", 60)
                            : a < 172_800 ? ("h", 3600) : ("d", 86400)
            let seconds = Shown.seconds(v)
            #expect(seconds.hasSuffix(" " + unit.0), "\(v): \(seconds)")
            let inUnit = try #require(ShownText(seconds.dropLast(unit.0.count + 1)), "\(v): \(seconds)")
            #expect(abs(inUnit.value - v / unit.1) <= halfUnit(v / unit.1), "\(v): \(seconds)")
            // An SVG coordinate: one decimal, never negative.
            var h = HTMLText()
            h.oneDecimal(v)
            let coordinate = h.html
            #expect(coordinate.split(separator: ".").last?.count == 1, "\(v): \(coordinate)")
            #expect(abs((Double(coordinate) ?? .nan) - max(0, v)) <= 0.05 * (1 + 1e-9) + abs(v) * 1e-15, "\(v)")
            // The raw value of a sample: Prometheus's text, which reads back to exactly the value.
            var raw = HTMLText()
            raw.rawValue(v)
            #expect(raw.html == HTMLText.raw(v) && Double(raw.html) == v, "\(v): \(raw.html)")
        }
        for v in [Int.min, Int.max, 0, -1, 7, 10, 1_000_000_007] {
            var h = HTMLText()
            h.int(v)
            #expect(h.html == String(v))
        }
    }

    @Test("values too large for the fixed forms are shown with a power of ten, never trapping")
    func shownHugeValues() {
        #expect(Shown.number(1e300) == "1e300")
        #expect(Shown.number(-4.5678e18) == "-4.57e18")
        #expect(Shown.number(2e15) == "2e15")
        #expect(Shown.number(4.5678e12) == "4.57e12" && Shown.number(999e9) == "999G")
        #expect(Shown.percent(1e20) == "1e22%")
        #expect(Shown.seconds(1e300) == "1.16e295 d")
        #expect(Shown.count(1e300) == "1e300")
        #expect(Shown.number(.nan) == "n/a" && Shown.percent(.infinity) == "∞" && Shown.seconds(-.infinity) == "-∞")
        #expect(Shown.percent(0.000_01) == "<0.01%")
        var h = HTMLText()
        h.shown(0.000_01, .percent)
        #expect(h.html == "&lt;0.01%")
    }

    @Test("labels in data-labels: a JSON object, its text escaped for the attribute, for any bytes")
    func labelsAsJSONInAttributes() throws {
        let names = ["plain", "quote\"d", "back\\slash", "ctl\u{01}\u{1f}\n\r\t", "<tag attr='x'>&amp;", "é ∞ 😀", ""]
        for value in names {
            var h = HTMLText()
            h.metric("m", [("model", "x"), ("group", value)], 1.5, shown: .number)
            let expected =
                #"<data value="1.5" data-metric="m" data-labels=""#
                + HTMLText.escape(
                    "{" + jsonStringLiteral("model") + ":" + jsonStringLiteral("x") + ","
                        + jsonStringLiteral("group") + ":" + jsonStringLiteral(value) + "}") + #"">1.5</data>"#
            #expect(h.html == expected)
            let figures = try metricFigures(h.html)
            #expect(figures.first?.labels == ["model": "x", "group": value])
        }
    }

    @Test("numbers are shown with three significant digits and their unit")
    func shown() {
        #expect(Shown.number(0.0123) == "0.0123")
        #expect(Shown.number(1.2345) == "1.23")
        #expect(Shown.number(123.4) == "123")
        #expect(Shown.number(12_345) == "12.3k")
        #expect(Shown.number(0.5) == "0.5")
        #expect(Shown.number(0.00012) == "1.2e-4")
        #expect(Shown.percent(0.995) == "99.5%")
        #expect(Shown.percent(1) == "100%")
        #expect(Shown.seconds(0.0205) == "20.5 ms")
        #expect(Shown.seconds(600) == "10 min")
        #expect(Shown.rate(129.4) == "129/s")
        #expect(HTMLText.escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;")
        // Bidirectional controls a name leaves open turned the page's text after it around (a version "\u{202E}v9"
        // showed its count 16 as 61): shown as U+FFFD; other characters of the same lead byte pass.
        #expect(HTMLText.escape("\u{202E}v9<") == "\u{FFFD}v9&lt;")
        #expect(HTMLText.escape("a\u{2066}b\u{2069}\u{202A}") == "a\u{FFFD}b\u{FFFD}\u{FFFD}")
        #expect(HTMLText.escape("x\u{2026}\u{2013}y") == "x\u{2026}\u{2013}y")
        #expect(HTMLText.pathSegment("a b/é") == "a%20b%2F%C3%A9")
    }
}

/// A shown number read back on its own terms: `-1.23`, `12.3k`, `4.56M`, `7.8G`, `1.2e-4`; its value and how many
/// significant digits it shows (leading and trailing zeros not counted: `1000k` has one).
private struct ShownText {
    let value: Double
    let significant: Int

    init?(_ text: some StringProtocol) {
        var body = Substring(text)
        var scale = 1.0
        if let last = body.last, let s = ["k": 1e3, "M": 1e6, "G": 1e9][String(last)] {
            scale = s
            body = body.dropLast()
        }
        guard let parsed = Double(body) else { return nil }
        value = parsed * scale
        let mantissa = body.split(separator: "e").first ?? ""
        let digits = mantissa.filter(\.isNumber).drop { $0 == "0" }
        significant = digits.reversed().drop { $0 == "0" }.count
    }
}
