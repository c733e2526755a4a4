import Dispatch
import ExporterConfig
import Exposition
import Foundation
import HTTPServer
import Logging
import ModelMonitoring
import Profiling
import Synchronization

/// The model configuration currently in force, and its reloading: `--config FILE` read at start, again on
/// SIGHUP and `POST /-/reload`. Every load also builds the models' collectors in the ``ModelMonitor``
/// (unchanged models keep theirs, and their counts). A reload that fails validation (of the file, or of
/// collector options and series caps) keeps the previous configuration, logs every problem, and says so
/// in `mlops_exporter_config_last_reload_successful` (0) and
/// `mlops_exporter_config_reloads_total{result="failure"}`.
final class ConfigurationState: Sendable {
    let path: String?
    let current: Mutex<ExporterConfiguration>
    let monitor: ModelMonitor
    let logger: Logger
    let metrics: ReloadMetrics
    /// Serialises reloads (a SIGHUP and a POST at once).
    let reloadLock = Mutex(())
    /// Called after each successful reload (a checkpoint follows it).
    let afterReload: @Sendable (ExporterConfiguration) -> Void
    /// Called before a reload's models are applied, holding only the reload lock (which no request takes): where a
    /// reload flood waits for what earlier reloads left to be released (``PublishedReference/waitForRoom()``).
    let beforeApply: @Sendable () -> Void
    /// The `cloudevents:` bounds in force: read at start, a reload that changes them says so.
    let startCloudEvents: CloudEventsConfiguration
    /// The `remote_write:` section in force: read at start, likewise.
    let startRemoteWrite: RemoteWriteConfiguration?
    /// The file's `storage:` at start: the checkpointer is built from it once.
    let startStorage: StorageConfiguration?
    /// Storage set outside the file (`--storage.path`, `Exporter.Configuration.storage`), which the file's section
    /// does not override: a change of that section is then nothing to restart for.
    let storageSetOutsideTheFile: Bool

    init(
        path: String?, initial: ExporterConfiguration, monitor: ModelMonitor, registry: Registry, logger: Logger,
        storageSetOutsideTheFile: Bool = false,
        beforeApply: @escaping @Sendable () -> Void = {},
        afterReload: @escaping @Sendable (ExporterConfiguration) -> Void = { _ in }
    ) throws {
        self.beforeApply = beforeApply
        self.storageSetOutsideTheFile = storageSetOutsideTheFile
        self.path = path
        self.afterReload = afterReload
        self.current = Mutex(initial)
        self.startCloudEvents = initial.cloudEvents
        self.startRemoteWrite = initial.remoteWrite
        self.startStorage = initial.storage
        self.monitor = monitor
        self.logger = logger
        // Problems found while building the collectors are configuration errors, as `checkConfiguration` and a reload
        // report them (a host catching `ConfigErrors` sees them all).
        do {
            monitor.apply(try ConfigurationState.prepare(initial, monitor: monitor))
        } catch {
            throw ConfigErrors(error, file: initial.source)
        }
        metrics = try ReloadMetrics(registry: registry, prefix: "mlops_exporter_config", what: "configuration")
    }

    var configuration: ExporterConfiguration { current.withLock { $0 } }

    /// Most problems of a rejected reload logged one by one (a file can hold thousands: the rest are counted in
    /// one line), and most named in the `POST /-/reload` answer.
    static let maxLoggedProblems = 100
    static let maxAnsweredProblems = 20

    /// The check that a proxy upstream's host resolves (its problem, or nil), as the configuration is loaded: at
    /// start and by `check-config` (an upstream that did not resolve passed check-config and stopped `serve` with
    /// neither file, line nor field), and on a reload for an upstream other than `inUse` (the one serving).
    static func upstreamResolves(unless inUse: (host: String, port: Int)? = nil) -> ConfigLoader.UpstreamCheck {
        { host, port in
            guard host != inUse?.host || port != inUse?.port else { return nil }
            do throws(HTTPServerError) {
                _ = try UpstreamAddress.resolve(host: host, port: port)
                return nil
            } catch {
                return error.message
            }
        }
    }

    /// The answer to a rejected `POST /-/reload`: one line, the first ``maxAnsweredProblems`` problems.
    static func rejection(_ problems: ConfigErrors) -> String {
        var reason = problems.errors.prefix(maxAnsweredProblems).map(\.description).joined(separator: "; ")
        if problems.errors.count > maxAnsweredProblems {
            reason += "; and \(problems.errors.count - maxAnsweredProblems) more (see the log)"
        }
        return "configuration rejected, previous one kept: \(reason)\n"
    }

    /// Whether a configuration file is in use (otherwise the built-in demo configuration is, and a reload
    /// has nothing to read).
    var hasFile: Bool { path != nil }

    /// The answers waiting for the next reload of ``requestReload(trigger:then:)``, whether one is under way, and when
    /// the last one began.
    private struct ReloadRequests {
        var running = false
        var waiting: [@Sendable (ConfigErrors?) -> Void] = []
        var lastStart: ContinuousClock.Instant?
    }

    /// The shortest time between two reloads run for requests: a client posting `/-/reload` again as soon as it is
    /// answered made one reload after another (1,500 a second: a core busy and 1.2 MB of log a second, unauthenticated
    /// unless basic auth is on); now a request that comes sooner waits for the next one, at most this long.
    static let minimumRequestedReloadInterval = Duration.seconds(1)
    private let requests = Mutex(ReloadRequests())

    /// Reloads for a request (`POST /-/reload`), off the calling thread, and calls `deliver` with the result. Requests
    /// are coalesced: one reload runs at a time, and every request that arrives while it runs is answered by the
    /// next one, which reads the file as it is after they arrived (so each request still sees its own change). A
    /// flood of requests costs two reloads at a time, not one each: nothing is dropped, and the waiting answers are
    /// bounded by the requests in flight (connections × pipelined requests). Reloads for requests begin at least
    /// ``minimumRequestedReloadInterval`` apart (SIGHUP's and the library's are not paced). Reloads actually run are
    /// counted in `mlops_exporter_config_reloads_total{result}`, requests in
    /// `mlops_exporter_http_requests_total{handler="reload"}`.
    func requestReload(trigger: String, then deliver: @escaping @Sendable (ConfigErrors?) -> Void) {
        let starts = requests.withLock { r -> Bool in
            r.waiting.append(deliver)
            defer { r.running = true }
            return !r.running
        }
        guard starts else { return }
        DispatchQueue.global().async { [self] in runRequestedReloads(trigger: trigger) }
    }

    /// Runs reloads for the requests waiting until none is; when the last began less than
    /// ``minimumRequestedReloadInterval`` ago, goes on that much later (no thread held while it waits: the requests
    /// that come meanwhile are answered by the same reload).
    private func runRequestedReloads(trigger: String) {
        while true {
            let wait = requests.withLock { r -> Duration? in
                if r.waiting.isEmpty {
                    r.running = false
                    return nil
                }
                guard let last = r.lastStart else { return .zero }
                return max(.zero, last + Self.minimumRequestedReloadInterval - .now)
            }
            guard let wait else { return }
            if wait > .zero {
                DispatchQueue.global().asyncAfter(deadline: .now() + wait.seconds) { [self] in
                    runRequestedReloads(trigger: trigger)
                }
                return
            }
            let batch = requests.withLock { r -> [@Sendable (ConfigErrors?) -> Void] in
                defer { r.waiting = [] }
                r.lastStart = .now
                return r.waiting
            }
            let result = reload(trigger: trigger)
            for answer in batch { answer(result) }
        }
    }

    /// Re-reads the file. Returns `nil` on success, else the problems (already logged and counted).
    func reload(trigger: String) -> ConfigErrors? {
        guard let path else {
            logger.info(
                "reload requested, but no --config file is in use; nothing to do", metadata: ["trigger": "\(trigger)"])
            return nil
        }
        return reloadLock.withLock { _ -> ConfigErrors? in
            do throws(ConfigErrors) {
                // A changed proxy upstream must resolve, or the reload is refused, located (it was taken as a
                // success, the routes applied and the upstream not, logged without a location).
                let inUse = current.withLock { $0.proxy?.upstream }
                let fresh = try ConfigLoader.load(
                    file: path, knownCollectors: monitor.catalog.names,
                    upstreamCheck: Self.upstreamResolves(unless: inUse.map { ($0.host, $0.port) }),
                    listenOverlap: Exporter.listenOverlap)
                for warning in fresh.warnings { logger.warning("configuration: \(warning)") }
                let models: PreparedModels
                do throws(ModelSetupErrors) {
                    models = try ConfigurationState.prepare(fresh, monitor: monitor)
                } catch {
                    throw ConfigErrors(error, file: path)
                }
                beforeApply()
                let removed = monitor.apply(models)
                current.withLock { $0 = fresh }
                metrics.succeeded()
                for model in removed {
                    // Said as a restart says it of a saved model no longer configured (before, nothing was).
                    logger.warning(
                        "model removed by the reload: its series, windows and predictions waiting for labels are gone",
                        metadata: [
                            "model": "\(model.name)", "pending_predictions": "\(model.pendingPredictions)",
                            "file": "\(path)",
                        ])
                }
                // What the reload emptied, said (it was one line naming every model, whatever was kept or reset).
                for name in models.rebuilt {
                    logger.warning(
                        "model rebuilt by the reload: its collectors start empty (windows, and their counters from zero) and its pending predictions are evicted (mlops_predictions_evicted_total{reason=\"reload\"})",
                        metadata: ["model": "\(name)", "file": "\(path)"])
                }
                for (name, collectors) in models.collectorsStartedEmpty.sorted(by: { $0.key < $1.key }) {
                    logger.warning(
                        "collectors whose new options could not carry their state start empty (the model's other state is kept)",
                        metadata: ["model": "\(name)", "collectors": "\(collectors.joined(separator: ", "))"])
                }
                if fresh.remoteWrite != startRemoteWrite {
                    // Before, silently ignored: a rotated token or tenant header kept the old one, a removed
                    // section kept sending.
                    logger.warning(
                        "the remote_write section is read at start: restart the exporter to apply the change",
                        metadata: ["file": "\(path)"])
                }
                if fresh.storage != startStorage && !storageSetOutsideTheFile {
                    // Before, silently ignored: an added or moved storage section seemed applied.
                    logger.warning(
                        "the storage section is read at start: restart the exporter to apply the change",
                        metadata: ["in_force": "\(startStorage?.path ?? "none")", "file": "\(path)"])
                }
                if fresh.cloudEvents != startCloudEvents {
                    // Before, the change was silently ignored (the store keeps the bounds it was built with).
                    let start = startCloudEvents
                    logger.warning(
                        "the cloudevents bounds are read at start: restart the exporter to apply the new ones",
                        metadata: [
                            "in_force":
                                "max_pending=\(start.maxPending) max_pending_bytes=\(start.maxPendingBytes) ttl=\(start.ttl)",
                            "file": "\(path)",
                        ])
                }
                afterReload(fresh)
                logger.info(
                    "configuration reloaded",
                    metadata: ["trigger": "\(trigger)", "file": "\(path)", "models": "\(fresh.models.map(\.name))"])
                return nil
            } catch {
                metrics.failed()
                for problem in error.errors.prefix(Self.maxLoggedProblems) {
                    logger.error(
                        "configuration reload rejected; keeping the previous configuration",
                        metadata: ["trigger": "\(trigger)", "problem": "\(problem)"])
                }
                if error.errors.count > Self.maxLoggedProblems {
                    logger.error(
                        "configuration reload rejected: more problems not logged",
                        metadata: [
                            "trigger": "\(trigger)", "not_logged": "\(error.errors.count - Self.maxLoggedProblems)",
                        ])
                }
                return error
            }
        }
    }

    /// Builds and validates the models of `configuration`, with their reference profiles (read, checked
    /// against their model, and hashed).
    static func prepare(
        _ configuration: ExporterConfiguration, monitor: ModelMonitor
    ) throws(ModelSetupErrors)
        -> PreparedModels
    {
        // The same loading as `mlops-exporter batch` (BatchScoring), so both build the models alike.
        let (references, referenceProblems) = ProfileLoader.references(for: configuration)
        if !referenceProblems.isEmpty {
            throw ModelSetupErrors(
                referenceProblems.map {
                    ModelSetupErrors.Problem(
                        $0.message, at: $0.location, field: $0.field, fieldMessage: $0.fieldMessage)
                })
        }
        var problems: [ModelSetupErrors.Problem] = []
        let prepared = try monitor.prepare(configuration, references: references)
        // A capture mapping is checked against its model's schema now, not at the first logger event.
        for model in prepared.models {
            guard let capture = model.context.configuration.capture else { continue }
            do {
                _ = try CaptureRoutes.decoder(capture, model: model)
            } catch {
                let at = model.context.configuration.locations
                // Built in code (no location): the field, as the file reader names fields.
                let index = at.entry == nil ? configuration.models.firstIndex { $0.name == model.name } : nil
                problems.append(
                    .init(
                        "model \"\(model.name)\": capture: \(error)", at: at.capture ?? at.entry,
                        field: index.map { "models[\($0)].capture" } ?? "",
                        fieldMessage: "model \"\(model.name)\": \(error)"))
            }
        }
        if !problems.isEmpty { throw ModelSetupErrors(problems) }
        return prepared
    }
}

extension ConfigErrors {
    /// The problems of building `file`'s models, each at its location in the file when known, else at its field when
    /// known (a configuration built in code: `<code>: models[0].collectors[1].options.bins: ...`).
    init(_ setup: ModelSetupErrors, file: String) {
        self.init(
            setup.located.map {
                ConfigError(
                    file: file, line: $0.location?.line ?? 0, column: $0.location?.column ?? 0, field: $0.field,
                    message: $0.field.isEmpty ? $0.message : $0.fieldMessage)
            })
    }
}
