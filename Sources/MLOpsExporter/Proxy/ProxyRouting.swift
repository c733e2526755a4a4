import Capture
import ExporterConfig
import ModelMonitoring

/// What the proxy needs to attribute a request, built once per configuration and model generation: the route
/// table, and per configured model its monitored model, its capture decoder (nil without `capture:`) and its
/// counters. Immutable; replaced as a whole (``PublishedReference``).
final class ProxyRouting: Sendable {
    struct Entry: Sendable {
        let model: MonitoredModel
        let decoder: CaptureDecoder?
        let counters: ProxyModelCounters
        /// The version of a request that names none (neither its route nor its response): the model's only
        /// version when it declares one; else nil (recorded as `default`, which is `__other__` unless declared).
        let impliedVersion: String?
    }

    /// The ``ModelMonitor/generation`` it was built for.
    let generation: UInt64
    let settings: ProxyConfiguration
    let table: ProxyRouteTable?
    /// By the table's model index.
    let entries: [Entry?]
    let unrouted: ProxyModelCounters

    init(
        generation: UInt64, settings: ProxyConfiguration, monitor: ModelMonitor, metrics: ProxyMetrics,
        logMistake: (String) -> Void
    ) {
        self.generation = generation
        self.settings = settings
        unrouted = metrics.counters(ProxyMetrics.unrouted)
        let names = monitor.modelNames
        var entries: [Entry?] = []
        for name in names {
            guard let model = monitor.model(named: name) else {
                entries.append(nil)
                continue
            }
            var decoder: CaptureDecoder? = nil
            if let capture = model.context.configuration.capture {
                // Checked when the configuration was loaded: a mapping that does not build never gets here.
                decoder = try? CaptureRoutes.decoder(capture, model: model)
            }
            let versions = model.context.configuration.versions
            entries.append(
                Entry(
                    model: model, decoder: decoder, counters: metrics.counters(name),
                    impliedVersion: versions.count == 1 ? versions[0] : nil))
        }
        self.entries = entries
        do {
            table = try ProxyRouteTable(routes: settings.routes.map(Self.route), modelNames: names)
        } catch {
            logMistake("proxy routes: \(error)")
            table = nil
        }
    }

    /// A configuration route in the table's terms.
    static func route(_ route: ProxyConfiguration.Route) -> ProxyRouteTable.Route {
        let hasModel = route.path.contains("{model}")
        let hasVersion = route.path.contains("{version}")
        let model: ProxyRouteTable.Route.Source =
            if hasModel { .path } else if let fixed = route.model { .fixed(fixed) } else {
                .header(route.modelHeader ?? "")
            }
        let version: ProxyRouteTable.Route.Source? =
            if hasVersion {
                .path
            } else if let fixed = route.version {
                .fixed(fixed)
            } else if let header = route.versionHeader {
                .header(header)
            } else {
                nil
            }
        return ProxyRouteTable.Route(pattern: route.path, methods: route.methods, model: model, version: version)
    }

    /// The entry of `request`'s model and the version it names, or nil (unrouted).
    func attribute(method: String, path: String, header: (String) -> String?) -> (Entry, String?)? {
        guard let table, let match = table.match(method: method, path: path, header: header),
            case .configured(let index) = match.model, index < entries.count, let entry = entries[index]
        else { return nil }
        return (entry, match.version)
    }
}
