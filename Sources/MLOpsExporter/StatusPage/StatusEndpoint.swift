import Dispatch
import ExporterConfig
import Exposition
import Foundation
import HTTPServer
import ModelMonitoring
import Synchronization

/// `GET /` (every model's card) and `GET /models/{name}` (one model's details): server-rendered HTML from a
/// ``MetricSnapshot`` of the models' collector parts, the runs a scrape uses (a page that overlaps a scrape
/// joins its runs), and the ``StatusHistory`` for rates over the window.
///
/// Pages render on a Dispatch queue, never on an event loop, at most ``maxRenders`` at once (more get 503 with
/// `Retry-After: 1`; a page of a model that is not configured is a 404 without a render), each bounded by
/// ``renderTimeout`` for its collectors. Responses: `Cache-Control: no-store`,
/// a weak `ETag` over the page without its clock-only text (`If-None-Match` gets 304), a
/// `Content-Security-Policy` that allows nothing but the page's own stylesheet (no script), `nosniff`,
/// `no-referrer`, and `Refresh: N` when asked with `?refresh=N` (brought into 5 to 3600 seconds). `HEAD` is answered by the
/// server from the same response, without its body.
final class StatusEndpoint: Sendable {
    enum Page: Equatable {
        case overview
        case model(String)
    }

    /// The families the overview reads (sample names; the rest, such as per-bin counters, are not converted).
    static let overviewFamilies = FamilySelection([
        "mlops_model_requests_total", "mlops_model_latency_seconds", "mlops_ingest_events_total",
        "mlops_labels_pending", "mlops_labels_joined_total", "mlops_labels_join_delay_seconds",
        "mlops_dataset_drift_share", "mlops_dataset_drift_detected", "mlops_feature_drift_detected",
        "mlops_model_accuracy", "mlops_model_window_outcomes", "mlops_model_mae", "mlops_fairness_violation",
        "mlops_fairness_metric",
        "mlops_llm_requests_total", "mlops_llm_requests_within_objective_total",
        "mlops_llm_time_to_first_token_seconds", "mlops_llm_time_per_output_token_seconds",
        "mlops_model_correct_predictions_total", "mlops_model_classification_outcomes_total",
    ])
    /// The families a model's page reads: the overview's and its details'.
    static let modelFamilies = overviewFamilies.union(
        ["feature", "prediction"].flatMap { subject in
            ["drift_score", "drift_threshold", "drift_detected", "window_observations"].map { "mlops_\(subject)_\($0)" }
        } + ModelPage.qualityFigures.map(\.metric) + [
            "mlops_model_predicted_class_total", "mlops_model_confusion_total", "mlops_fairness_window_observations",
            "mlops_fairness_selection_rate", "mlops_fairness_true_positive_rate", "mlops_fairness_false_positive_rate",
            "mlops_fairness_lower_bound", "mlops_fairness_upper_bound",
        ])

    static let maxRenders = 2
    static let renderTimeout: Duration = .seconds(5)

    let registry: Registry
    let monitor: ModelMonitor
    let config: ConfigurationState
    let history: StatusHistory
    let metricsPath: String
    let version: String
    let grafanaURL: String?
    let inFlight = Atomic<Int>(0)
    let queue = DispatchQueue(label: "mlops-exporter.status", qos: .utility, attributes: .concurrent)
    /// Called on the render queue before each render, with a tenth of ``renderTimeout`` (as
    /// ``MetricsEndpoint/settle`` is).
    let settle: @Sendable (Duration) -> Void

    init(
        registry: Registry, monitor: ModelMonitor, config: ConfigurationState, history: StatusHistory,
        metricsPath: String, version: String, grafanaURL: String?,
        settle: @escaping @Sendable (Duration) -> Void = { _ in }
    ) {
        self.settle = settle
        self.registry = registry
        self.monitor = monitor
        self.config = config
        self.history = history
        self.metricsPath = metricsPath
        self.version = version
        self.grafanaURL = grafanaURL
    }

    /// The page a path names, if any: `/`, or `/models/` and one percent-encoded segment.
    static func page(_ path: String) -> Page? {
        if path == "/" { return .overview }
        guard path.hasPrefix("/models/") else { return nil }
        let segment = path.dropFirst("/models/".count)
        guard !segment.isEmpty, !segment.contains("/"), let name = segment.removingPercentEncoding, !name.isEmpty
        else { return nil }
        return .model(name)
    }

    /// Renders `page` on the render queue, at most ``maxRenders`` at once (more: 503); a render whose client has left
    /// by the time its turn comes (`cancelled`) is skipped (answered 499, counted so), so that a client looping on a
    /// page and dropping each request keeps no render going for nothing.
    func handle(
        _ request: HTTPRequest, page: Page, cancelled: @escaping @Sendable () -> Bool = { false },
        respond: @escaping @Sendable (HTTPResponse) -> Void
    ) {
        history.start()
        // A model that is not configured is answered from the configuration, without taking a render slot (3,000
        // requests for unknown names took them from the real pages: 689 of those got 503).
        if case .model(let name) = page, let unknown = unknownModel(name) { return respond(unknown) }
        guard inFlight.wrappingAdd(1, ordering: .relaxed).newValue <= Self.maxRenders else {
            inFlight.wrappingSubtract(1, ordering: .relaxed)
            var busy = HTTPResponse(
                status: 503, text: "status page busy: \(Self.maxRenders) renders under way, try again\n")
            busy.headers.add(name: "Retry-After", value: "1")
            respond(busy)
            return
        }
        let refresh = Self.refresh(request.query)
        let ifNoneMatch = request.headers["If-None-Match"]
        queue.async { [self] in
            if cancelled() {
                inFlight.wrappingSubtract(1, ordering: .relaxed)
                // (Nginx's 499, "client closed request": never sent, the connection is gone; counted as such.)
                respond(HTTPResponse(status: 499, text: "the client left before the page was rendered\n"))
                return
            }
            settle(Self.renderTimeout / 10)
            let answer = response(page, refresh: refresh, ifNoneMatch: ifNoneMatch, now: WallClock.now())
            // Before answering: a client that sends its next request as soon as it has this answer must find the
            // render counted out.
            inFlight.wrappingSubtract(1, ordering: .relaxed)
            respond(answer)
        }
    }

    /// `refresh=N` from the query, brought into 5...3600 (the page then says the period it uses: before, a period
    /// out of the range was ignored without a sign); nil without a whole number.
    static func refresh(_ query: String?) -> Int? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") where pair.hasPrefix("refresh=") {
            // Percent-encoded as a form sends it (`%35`, `%2B90`); a sign allowed (below 5 is 5, as 0 is).
            guard let value = String(pair.dropFirst("refresh=".count)).removingPercentEncoding else { continue }
            let negative = value.hasPrefix("-")
            let digits = negative || value.hasPrefix("+") ? value.dropFirst() : Substring(value)
            guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 &- 0x30 < 10 }) else { continue }
            if negative { return 5 }
            return Int(digits).map { min(max($0, 5), 3600) } ?? 3600  // more digits than an Int holds: the longest
        }
        return nil
    }

    func response(_ page: Page, refresh: Int?, ifNoneMatch: String?, now: Double) -> HTTPResponse {
        guard let html = render(page, refresh: refresh, now: now) else {
            guard case .model(let name) = page else { return .notFound("404 page not found\n") }
            return unknownModel(name)
                ?? .notFound(UnknownModelMessage.text(Substring(name), known: monitor.modelNames) + "\n")
        }
        let etag = html.weakETag()
        var headers: HTTPHeaders = [
            "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
            "Content-Security-Policy": PageStyle.contentSecurityPolicy, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "ETag": etag,
        ]
        if let refresh { headers.add(name: "Refresh", value: String(refresh)) }
        if let ifNoneMatch, Self.matches(ifNoneMatch, etag) {
            return HTTPResponse(status: 304, headers: headers)
        }
        return HTTPResponse(status: 200, headers: headers, body: html.bytes)
    }

    /// 404 for a page of `name` when no model of that name is configured, as the ingestion API says it (the name is
    /// echoed in text/plain, nosniff); nil when it is configured.
    func unknownModel(_ name: String) -> HTTPResponse? {
        guard !config.configuration.models.contains(where: { $0.name == name }) else { return nil }
        return .notFound(UnknownModelMessage.text(Substring(name), known: monitor.modelNames) + "\n")
    }

    /// Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2), or is `*`.
    static func matches(_ header: String, _ etag: String) -> Bool {
        let bare = etag.hasPrefix("W/") ? String(etag.dropFirst(2)) : etag
        for candidate in header.split(separator: ",") {
            var c = candidate.trimmingCharacters(in: .whitespaces)
            if c == "*" { return true }
            if c.hasPrefix("W/") { c.removeFirst(2) }
            if c == bare { return true }
        }
        return false
    }

    /// The page, or nil for a model that is not configured. `allFamilies` converts every family instead of the
    /// page's list (the tests check that the list misses nothing the page shows).
    func render(_ page: Page, refresh: Int?, now: Double, allFamilies: Bool = false) -> HTMLText? {
        let configuration = config.configuration
        switch page {
        case .overview:
            let snapshot = registry.snapshot(
                of: monitor.parts(), timeout: Self.renderTimeout, families: allFamilies ? nil : Self.overviewFamilies)
            let byModel = snapshot.partitioned(by: "model")
            let models = configuration.models.map { health($0, byModel[$0.name] ?? MetricSnapshot(), now: now) }
            return OverviewPage.render(
                models, skipped: snapshot.skipped, metricsPath: metricsPath, version: version, refresh: refresh,
                now: now)
        case .model(let name):
            guard let model = configuration.models.first(where: { $0.name == name }) else { return nil }
            let snapshot = registry.snapshot(
                of: monitor.parts().filter { $0.model == name }, timeout: Self.renderTimeout,
                families: allFamilies ? nil : Self.modelFamilies)
            let drift = monitor.model(named: name)?.collectors.lazy.compactMap { $0 as? DriftCollector }.first
            return ModelPage.render(
                health(model, snapshot, now: now), distributions: drift?.windowDistributions(now: now) ?? [],
                grafanaURL: grafanaURL, metricsPath: metricsPath, version: version, refresh: refresh,
                skipped: snapshot.skipped, now: now)
        }
    }

    func health(_ model: ModelConfiguration, _ snapshot: MetricSnapshot, now: Double) -> ModelHealth {
        let current = WindowPoint(model: model.name, snapshot: snapshot, time: now)
        let change = history.change(model: model.name, window: model.window.duration.seconds, current: current)
        // The outcome counts read only for a quality SLO (the overview renders every model).
        return ModelHealth(
            configuration: model, snapshot: snapshot, change: change,
            qualityChange: { [history] window in
                history.qualityChange(
                    model: model.name, window: window,
                    current: QualityPoint(model: model.name, snapshot: snapshot, time: now))
            })
    }
}
