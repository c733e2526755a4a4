import Dispatch
import ExporterConfig
import Exposition
import Foundation
import HTTPServer
import Logging
import ModelMonitoring
import StateStorage
import Synchronization

/// An mlops-exporter instance: a ``Registry`` served over HTTP at `/metrics`, with its landing page,
/// health and readiness endpoints, self metrics, process metrics and the ingestion API of its models.
///
/// Embed it in a Swift service in one of two ways:
/// - on its own server: create, ``start()`` (binds the listen addresses), register metrics in ``registry``,
///   ``shutdown(deadline:)``; or let the `mlops-exporter serve` command run it until SIGTERM, SIGINT or SIGQUIT
///   (``runUntilSignalled()``);
/// - on the service's own HTTP server (Hummingbird, Vapor, ...): create it and mount ``endpoints`` on that
///   server's routes; ``start()`` is then never called and no socket is bound (docs/embedding.md).
public final class Exporter: Sendable {
    /// Everything `serve` can set; the defaults are the documented ones.
    public struct Configuration: Sendable {
        /// The default port (`:9747`, all interfaces).
        public static let defaultListenAddress = ":9747"
        /// Addresses to listen on (`host:port`, `[v6]:port`, `:port` for all interfaces).
        public var listenAddresses: [String] = [defaultListenAddress]
        /// Path of the metrics endpoint (``Exporter/init(configuration:registry:logger:)`` throws
        /// ``Exporter/InvalidTelemetryPath`` for one that cannot be reached: ``Exporter/telemetryPathProblem(_:)``).
        public var telemetryPath: String = "/metrics"
        /// Most concurrent metrics requests; more get 503. 0 means no limit.
        public var maxRequests: Int = 40
        /// HTTP limits and timeouts (its listen addresses are replaced by ``listenAddresses``).
        public var server = HTTPServer.Configuration()
        /// Export `process_*` metrics for the exporter itself.
        public var processMetrics: Bool = true
        /// Also export `process_*` metrics for this process (the model server beside the sidecar).
        public var targetPID: Int32?
        /// Or read the target's pid from this file at every scrape.
        public var targetPIDFile: String?
        /// Number of synthetic series to register, for load tests and benchmarks (see `SyntheticSeries`).
        public var syntheticSeries: Int = 0
        /// The configuration file to re-read on SIGHUP and `POST /-/reload` (`nil`: none, nothing to reload).
        public var configPath: String?
        /// The models to monitor: loaded from a file (``Exporter/checkConfiguration(file:collectors:)``) or built
        /// in code; either way checked again by ``Exporter/init(configuration:registry:logger:)`` with the
        /// checks of a configuration file (``ExporterConfiguration/validated(knownCollectors:referencesMustExist:)``).
        /// `nil` (the default), like a configuration without models, means no models: a plain metrics server.
        public var models: ExporterConfiguration? = nil
        /// The web configuration file (`--web.config.file`) to re-read on SIGHUP; nil: none.
        public var webConfigPath: String?
        /// The web configuration (TLS, HTTP/2, headers, basic auth), already loaded and validated (the basic auth
        /// hashes are checked again: ``Exporter/init(configuration:registry:logger:)`` throws
        /// ``Exporter/InvalidBasicAuthUser``).
        public var web = WebConfiguration()
        /// The model collectors configurations may name: the built-in ones, plus any you register.
        public var collectors: CollectorCatalog = .builtIn
        /// Most events one ingestion request may carry (more: 413).
        public var ingestMaxEvents: Int = 10_000
        /// Most bytes a gzip ingestion body may inflate to (more: 413).
        public var ingestMaxDecompressedBytes: Int = 64 << 20
        /// The workers that inflate gzip ingestion bodies and decode identity bodies above 256 KiB, off the
        /// event loops: one thread per core, 4 bodies per core waiting (each holds at most
        /// `server.maxBodySize` bytes; a running gzip body inflates to at most ``ingestMaxDecompressedBytes``),
        /// 10 s of waiting at most. A body finding them full is refused with 503 and `Retry-After`, counted in
        /// `mlops_ingest_rejected_requests_total{reason="overloaded"}`.
        public var ingestWorkers = WorkerLimits(
            threads: Exporter.cores, queue: 4 * Exporter.cores, maxQueueWait: .seconds(10))
        /// The workers that check uncached basic-auth credentials (bcrypt): half the cores (one at least, so
        /// that a flood of wrong passwords leaves the other half to scrapes and ingestion), 16 checks waiting,
        /// 4 per client address, 2 s of waiting at most. Beyond: 503 (`queue_full`, `expired`) or 429
        /// (`client_limit`) with `Retry-After`, counted in `mlops_exporter_auth_rejected_total{reason}`.
        public var authWorkers = WorkerLimits(
            threads: Exporter.cores / 2, queue: 16, perKey: 4, maxQueueWait: .seconds(2))
        /// The threads that run TLS handshake steps (with `--web.config.file` TLS), off the event loops: half the
        /// cores (one at least), so that a flood of handshakes (each signs with the server's key) leaves the event
        /// loops to the connections already established. Steps wait in a queue of `server.maxConnections` (a
        /// connection has one at most) for at most `server.tlsHandshakeTimeout`.
        public var tlsHandshakeThreads = Exporter.cores / 2
        /// Source revision shown in `mlops_exporter_build_info`: by default the git commit this build was made from
        /// (``MLOpsExporterVersion/revision``, `unknown` outside a git checkout).
        public var revision: String = MLOpsExporterVersion.revision
        /// Grafana's base URL (`--web.grafana-url`, e.g. `https://grafana.example.com`): the status page at
        /// `/models/{name}` then links to the model's panels of the dashboards in `dashboards/`. `nil`: no links.
        public var grafanaURL: String?
        /// Checkpoints of the models' state (docs/storage.md); overrides the model configuration's `storage:`.
        /// `nil` and no `storage:` in the file: nothing is kept across restarts.
        public var storage: StorageConfiguration?
        /// This exporter's name in a fleet (`--instance.id`): 1 to 64 characters of `[A-Za-z0-9._-]`
        /// (``Exporter/init(configuration:registry:logger:)`` throws ``Exporter/InvalidInstanceID`` otherwise). The
        /// prefix of the event ids it generates (`ModelMonitoring.EventID`); labels whose id names another instance
        /// are counted `other_instance` and named in the labels endpoint's answer. Default: the host name.
        public var instanceID: String = Exporter.hostName

        /// Creates a configuration with the defaults.
        public init() {}
    }

    /// The registry this exporter serves; register your own metrics and collectors here.
    public let registry: Registry
    /// The monitored models (see ``model(_:)``).
    public let monitor: ModelMonitor
    let configuration: Configuration
    let server: HTTPServer
    let state = ExporterState()
    let logger: Logger
    let config: ConfigurationState
    let web: WebConfigState
    /// What the server calls: auth and headers, then the router.
    let handler: WebHandler
    /// Checkpoints the models' state, when storage is configured (`--storage.path` or `storage:`).
    public let checkpointer: Checkpointer?
    /// The sidecar's reverse proxy, when the configuration has a `proxy:` section (docs/proxy.md).
    let proxy: ProxyService?
    /// Points of each model's counts for the status page's rates over the window.
    let statusHistory: StatusHistory
    /// `/` and `/models/{name}`.
    let statusEndpoint: StatusEndpoint
    /// The exporter's own remote write (`remote_write:` in the configuration), if any.
    let remoteWriter: RemoteWriter?
    /// The KServe logger's halves waiting for their pair (dropped and counted at ``shutdown(deadline:)``).
    let cloudEventPairs: CloudEventPairs
    /// The ingestion and password-check worker threads, stopped at ``shutdown(deadline:)`` (they were left until the
    /// exporter was freed: a host keeping it kept cores + 1 + cores / 2 + 1 idle threads per exporter, a review
    /// found).
    let workerPools: [WorkerPool]
    /// Runs TLS handshake steps (``Configuration/tlsHandshakeThreads``); nil without TLS.
    let handshakeWorkers: WorkerPool?
    /// Where this exporter's registrations begin and end in ``registry`` (what lies between is removed when
    /// ``start()`` fails; a host's own registrations, before or after, stay).
    let registrationMark: Registry.RegistrationMark
    let registrationEnd: Registry.RegistrationMark

    /// The processors this process may use.
    static let cores = ProcessInfo.processInfo.activeProcessorCount

    /// Builds the exporter: checks the model configuration (throws ``ConfigErrors``: its problems as a file
    /// with the same content would have them, else those of building its collectors), builds the models and
    /// registers every collector. Nothing is bound until ``start()``; ``endpoints`` serve at once. When it throws,
    /// `registry` holds nothing of it (what it had registered is unregistered), so a corrected configuration may
    /// be tried with the same registry.
    public init(configuration: Configuration, registry: Registry = Registry(), logger: Logger) throws {
        var configuration = configuration
        // One body and one unread-answer budget for the process: the web port's server and the proxy's share them
        // (each had its own: together they held twice `--web.max-buffered-body-bytes`, the proxy's part on no gauge).
        if configuration.server.sharedMemory == nil {
            configuration.server.sharedMemory = SharedMemoryBounds(
                maxBufferedBodyBytes: configuration.server.maxBufferedBodyBytes,
                maxUnreadAnswerBytes: configuration.server.maxUnreadAnswerBytes)
        }
        // One open-file limit: out of descriptors, either server makes room among both's connections (each evicted
        // only its own: silent connections on the proxy's port kept scrapes out of the web port).
        if configuration.server.sharedDescriptors == nil {
            configuration.server.sharedDescriptors = SharedDescriptors()
        }
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        DispatchTimerDescriptors.make()
        try Self.checkInstanceID(configuration.instanceID)
        try Self.checkTelemetryPath(configuration.telemetryPath)
        try Self.checkBasicAuthUsers(configuration.web.basicAuthUsers)
        // What this init registers is undone if it throws: the caller may fix the configuration and try again
        // with the same registry.
        let mark = registry.registrationMark()
        registrationMark = mark
        do {
            let selfMetrics = try SelfMetrics(
                registry: registry, version: MLOpsExporterVersion.version, revision: configuration.revision)
            if configuration.processMetrics {
                try registry.register(
                    ProcessCollector(targetPID: configuration.targetPID, targetPIDFile: configuration.targetPIDFile))
            }
            try SyntheticSeries.register(count: configuration.syntheticSeries, in: registry)
            monitor = ModelMonitor(catalog: configuration.collectors, instanceID: configuration.instanceID)
            try registry.register(monitor)
            let models: ExporterConfiguration
            if let given = configuration.models {
                models = try given.validated(knownCollectors: configuration.collectors.names)
                if let proxy = models.proxy {
                    try Self.checkProxyListenAddresses(proxy.listenAddresses, web: configuration.listenAddresses)
                }
                for warning in models.warnings { logger.warning("configuration: \(warning)") }
            } else {
                models = ExporterConfiguration(models: [], source: "<none>")
                logger.info("no model configuration given: no models are monitored (only the registry's own metrics)")
            }
            if let storage = configuration.storage ?? models.storage {
                // A SIGTERM or SIGINT sent while the restore waits for another exporter's lock (blocked until
                // runUntilSignalled takes it) ends the wait: the process was asked to stop (before, it waited out the
                // whole lock_wait, up to an hour, and a pod's grace period ended in SIGKILL).
                let checkpointer = Checkpointer(
                    directory: storage.path, interval: storage.checkpointInterval, lockWait: storage.lockWait,
                    monitor: monitor, exporterVersion: MLOpsExporterVersion.version, logger: logger,
                    stopWaiting: { SignalPipe.isPending([SIGTERM, SIGINT, SIGQUIT]) })
                try registry.register(checkpointer.metrics)
                self.checkpointer = checkpointer
            } else {
                checkpointer = nil
            }
            let proxyBox = ProxyBox()
            config = try ConfigurationState(
                path: configuration.configPath, initial: models, monitor: monitor, registry: registry, logger: logger,
                // The file's own section handed back whole (as `serve` does when no storage flag is given) is the
                // file's: its changes on reload are said to wait for a restart (they were ignored without a word).
                storageSetOutsideTheFile: configuration.storage != nil && configuration.storage != models.storage,
                beforeApply: { proxyBox.waitForRoom() },
                afterReload: { [checkpointer] fresh in
                    checkpointer?.requestCheckpoint()
                    proxyBox.reloaded(fresh, logger: logger)
                })
            try registry.register(SLOCollector(config: config))
            // The KServe logger receiver (docs/proxy.md); its bounds are read at start.
            let pairs = CloudEventPairs(
                maxPending: models.cloudEvents.maxPending, maxBytes: models.cloudEvents.maxPendingBytes,
                ttl: models.cloudEvents.ttl.seconds)
            cloudEventPairs = pairs
            let cloudEventsMetrics = CloudEventsMetrics(
                pairs: pairs, isConfigured: { [monitor] in monitor.model(named: $0) != nil })
            try registry.register(cloudEventsMetrics)
            let ingestWorkers = WorkerPool(limits: configuration.ingestWorkers)
            let metrics = MetricsEndpoint(
                registry: registry, selfMetrics: selfMetrics, maxRequests: configuration.maxRequests, logger: logger,
                settle: { proxyBox.waitForReports(timeout: $0) })
            remoteWriter = try models.remoteWrite.map {
                try RemoteWriter(
                    configuration: $0, registry: registry, instanceID: configuration.instanceID, logger: logger)
            }
            let history = StatusHistory(registry: registry, monitor: monitor)
            statusHistory = history
            statusEndpoint = StatusEndpoint(
                registry: registry, monitor: monitor, config: config, history: history,
                metricsPath: configuration.telemetryPath, version: MLOpsExporterVersion.version,
                grafanaURL: configuration.grafanaURL, settle: { proxyBox.waitForReports(timeout: $0) })
            let router = Router(
                metricsPath: configuration.telemetryPath, metrics: metrics, selfMetrics: selfMetrics,
                status: statusEndpoint,
                state: state, config: config,
                ingest: IngestEndpoint(
                    monitor: monitor, maxEvents: configuration.ingestMaxEvents,
                    maxDecompressedBytes: configuration.ingestMaxDecompressedBytes, workers: ingestWorkers),
                cloudEvents: CloudEventsEndpoint(
                    monitor: monitor, pairs: pairs, routes: CaptureRoutes(), metrics: cloudEventsMetrics,
                    workers: ingestWorkers, maxInflatedBytes: configuration.ingestMaxDecompressedBytes))
            var serverConfiguration = configuration.server
            serverConfiguration.listenAddresses = configuration.listenAddresses
            if let settings = models.proxy {
                let proxyMetrics = ProxyMetrics()
                try registry.register(proxyMetrics)
                let service = try ProxyService(
                    settings: settings, server: configuration.server, monitor: monitor, metrics: proxyMetrics,
                    workers: ingestWorkers, instanceID: configuration.instanceID, logger: logger)
                proxyBox.set(service, metrics: proxyMetrics)
                proxy = service
            } else {
                proxy = nil
            }
            web = try WebConfigState(
                path: configuration.webConfigPath, initial: configuration.web, registry: registry, logger: logger)
            WebConfigState.apply(configuration.web, to: &serverConfiguration)
            if serverConfiguration.tls != nil {
                for reason in HTTPServer.tlsErrorReasons { _ = try selfMetrics.errors.labels(reason) }
            }
            let authWorkers = WorkerPool(limits: configuration.authWorkers)
            workerPools = [ingestWorkers, authWorkers]
            if serverConfiguration.tls != nil {
                let handshakes = WorkerPool(
                    limits: WorkerLimits(
                        threads: configuration.tlsHandshakeThreads, queue: serverConfiguration.maxConnections,
                        maxQueueWait: serverConfiguration.tlsHandshakeTimeout))
                handshakeWorkers = handshakes
                serverConfiguration.tlsHandshakeOffload = { run, expired in
                    handshakes.submit(run: run, expired: expired) == .accepted
                }
            } else {
                handshakeWorkers = nil
            }
            handler = WebHandler(
                next: router, web: web,
                hasOwnCredentials: { [monitor] request in IngestEndpoint.carriesModelToken(request, monitor: monitor) },
                checks: authWorkers, selfMetrics: selfMetrics)
            server = HTTPServer(
                configuration: serverConfiguration, handler: handler, observer: selfMetrics, logger: logger)
            try registry.register(ServerBudgetCollector(server: server))
            web.attach(server)
            registrationEnd = registry.registrationMark()
        } catch {
            registry.unregister(since: mark)
            throw error
        }
    }

    /// Binds every listen address and starts serving. Throws (naming the address) if one cannot be bound. Raises the
    /// process's soft open-file limit to its hard one first (as Go's runtime does), and warns when even that is below
    /// what the connection caps may hold.
    public func start() throws {
        // Once only. A start that failed stopped the storage and the status history for good (a second start served
        // without checkpoints, silently, a review found); a second start of a running exporter must not take the
        // failure path below (it tore the running exporter down, the next review found).
        let (claimed, was) = state.started.compareExchange(
            expected: ExporterState.notStarted, desired: ExporterState.startedOnce, ordering: .acquiringAndReleasing)
        guard claimed else {
            if was == ExporterState.startFailed { throw StartFailedBefore() }
            throw HTTPServerError(.invalidState, "the exporter was already started (an exporter starts once)")
        }
        OpenFileLimit.raise(
            // The main server's clients, and with a proxy its own clients (the same cap) and its upstream pool.
            toServe: configuration.server.maxConnections
                + (models.proxy.map { configuration.server.maxConnections + $0.maxConnections } ?? 0),
            logger: logger)
        // Made before anything listens: once clients hold every descriptor the process may open, a pipe made
        // after the start (runUntilSignalled's) could not be, and the exporter stopped.
        SignalPipe.reserve()
        startStorage()
        statusHistory.start()
        do {
            try server.start()
            do {
                try proxy?.start()
            } catch {
                proxy?.shutdown(deadline: .zero)
                server.shutdown(deadline: .zero)
                throw ProxyStartError(error)
            }
        } catch {
            // Nothing was served: the checkpoint stays as it was, and the next start is no restart after a crash
            // (before, the `running` marker made here was left, and the next start zeroed every counter). Nothing is
            // left running (the proxy's pruning thread was), and the registry holds nothing of this exporter, so a
            // new one may be made with it.
            statusHistory.stop()
            checkpointer?.abandon()
            proxy?.shutdown(deadline: .zero)
            for pool in workerPools { pool.shutdown() }
            handshakeWorkers?.shutdown()
            state.started.store(ExporterState.startFailed, ordering: .releasing)
            registry.unregister(between: registrationMark, and: registrationEnd)
            throw error
        }
        remoteWriter?.start()
        web.watchFiles()
        state.ready.store(true, ordering: .relaxed)
        logger.info(
            "listening",
            metadata: [
                "addresses": "\(server.boundAddresses.map { "\($0)" }.joined(separator: ","))",
                "instance_id": "\(configuration.instanceID)",
            ])
    }

    /// The exporter's endpoints for another HTTP server to mount (docs/embedding.md): the handler chain this
    /// exporter's own server calls, available from ``init(configuration:registry:logger:)`` on; ``start()`` need
    /// not run (then no socket is bound).
    public var endpoints: ExporterEndpoints {
        ExporterEndpoints(
            handler: handler, metricsPath: configuration.telemetryPath, maxBodyBytes: configuration.server.maxBodySize,
            countTooLarge: { [selfMetrics = handler.selfMetrics] in selfMetrics.connectionError(reason: "too_large") })
    }

    /// The addresses actually bound (port 0 resolved), as `host:port` strings.
    public var boundAddresses: [String] { server.boundAddresses.map { "\($0)" } }

    /// The proxy's bound addresses (empty without a `proxy:` section or before ``start()``).
    public var proxyAddresses: [String] { proxy?.boundAddresses ?? [] }

    /// Stops accepting, lets in-flight requests finish up to `deadline`, then closes everything.
    public func shutdown(deadline: Duration = .seconds(10)) {
        let began = ContinuousClock.now
        state.ready.store(false, ordering: .relaxed)
        // Both ports stop at once, under one deadline: one after the other, each with the whole deadline, a stream on
        // the proxy port kept the web port serving, and the stop took up to twice `--shutdown-timeout` (a supervisor's
        // SIGKILL then came before the last checkpoint).
        // With remote write, a quarter of the deadline (at most 1 s) is kept for its staleness markers: a stream held
        // open to the deadline left none, and the receiver kept the stopped exporter's series for 5 minutes.
        let reserve = remoteWriter == nil ? Duration.zero : min(.seconds(1), deadline / 4)
        let stopped = DispatchGroup()
        if let proxy {
            stopped.enter()
            proxy.shutdown(deadline: deadline - reserve) { stopped.leave() }
        }
        stopped.enter()
        server.shutdown(deadline: deadline - reserve) { stopped.leave() }
        stopped.wait()
        statusHistory.stop()
        web.stopWatching()
        // No more events come: halves still waiting for their pair are not kept across restarts.
        let unpaired = cloudEventPairs.dropAllAtShutdown()
        if unpaired > 0 {
            logger.warning(
                "cloudevents: events waiting for their other half dropped at shutdown (not kept across restarts)",
                metadata: ["events": "\(unpaired)"])
        }
        // Nothing more is served (or, for a host that mounts the endpoints, should be): the workers finish what is
        // queued (captures of answered exchanges, within what is left of the deadline), then go; ingestion requests
        // and password checks that still come are refused as overloaded (503).
        while workerPools.contains(where: { $0.jobs > 0 }), ContinuousClock.now - began < deadline {
            usleep(1000)
        }
        for pool in workerPools { pool.shutdown() }
        handshakeWorkers?.shutdown()  // the server is down: no handshake is waited for
        // The last checkpoint first: a remote write waiting on a hung receiver delayed it past a pod's grace period.
        checkpointer?.stop()
        remoteWriter?.stop(within: deadline - (ContinuousClock.now - began))
    }

    /// With storage configured: reads the last checkpoint back into the models, then starts writing one every
    /// interval (docs/storage.md). ``start()`` calls it before serving; a host that mounts ``endpoints`` instead
    /// calls it before recording anything, and ``shutdown(deadline:)`` (which writes the last checkpoint) when it
    /// stops. Runs once; later calls do nothing.
    public func startStorage() {
        guard let checkpointer, !state.storageStarted.exchange(true, ordering: .relaxed) else { return }
        // A file size limit (RLIMIT_FSIZE) must fail the write (EFBIG, counted), not kill the process.
        signal(SIGXFSZ, SIG_IGN)
        checkpointer.restore()
        checkpointer.start()
    }

    /// Re-reads the configuration file; returns the problems if it was rejected (the old one stays).
    @discardableResult
    public func reload() -> ConfigErrors? { config.reload(trigger: "api") }

    /// The model configuration in force.
    public var models: ExporterConfiguration { config.configuration }

    /// The monitored model named `name`, to record predictions and labels in process with the ingestion
    /// API's rules (`exporter.model("fraud")?.record(version: "v1", prediction: .label("fraud"), ...)`).
    /// Look it up again after a configuration reload: a changed model is a new object.
    public func model(_ name: String) -> MonitoredModel? { monitor.model(named: name) }

    /// The check ``checkConfiguration(file:collectors:)`` makes of a proxy upstream as the file is loaded (its host
    /// resolves), for a host that loads the file itself (`ConfigLoader.load(file:knownCollectors:upstreamCheck:)`) and
    /// builds the models once, in ``init(configuration:registry:logger:)``.
    public static var upstreamCheck: ConfigLoader.UpstreamCheck { ConfigurationState.upstreamResolves() }

    /// The check ``checkConfiguration(file:collectors:)`` makes of `proxy.listen`'s addresses as the file is loaded
    /// (none overlaps another: ``ListenAddress/overlaps(_:)``), for a host that loads the file itself.
    public static var listenOverlap: ConfigLoader.ListenOverlap {
        { first, second in
            guard let a = try? ListenAddress(first), let b = try? ListenAddress(second) else { return false }
            return a.overlaps(b)
        }
    }

    /// Loads `file` and builds its models with `collectors` exactly as `serve` would, without serving:
    /// what `check-config` runs. Throws ``ConfigErrors``: the file's problems, else those of building its
    /// models (at the line and column of the collector option at fault when there is one).
    public static func checkConfiguration(
        file: String, collectors: CollectorCatalog = .builtIn
    ) throws
        -> ExporterConfiguration
    {
        // The models the file's problems leave readable are built too: their collector options' problems are listed
        // with the file's (one model's problem hid every other model's option errors).
        let (configuration, problems) = try ConfigLoader.loadReadable(
            file: file, knownCollectors: collectors.names, upstreamCheck: ConfigurationState.upstreamResolves(),
            listenOverlap: listenOverlap)
        var all = problems
        do throws(ModelSetupErrors) {
            _ = try ConfigurationState.prepare(configuration, monitor: ModelMonitor(catalog: collectors))
        } catch {
            all += ConfigErrors(error, file: file).errors
        }
        if !all.isEmpty { throw ConfigErrors(all) }
        return configuration
    }

    /// Checks `configuration` (built in code) and builds its models with `collectors` exactly as
    /// ``init(configuration:registry:logger:)`` would, without serving: the code-side twin of
    /// ``checkConfiguration(file:collectors:)``. Returns the configuration with its defaults filled; throws
    /// ``ConfigErrors``.
    public static func checkConfiguration(
        _ configuration: ExporterConfiguration, collectors: CollectorCatalog = .builtIn
    ) throws -> ExporterConfiguration {
        let checked = try configuration.validated(knownCollectors: collectors.names)
        do throws(ModelSetupErrors) {
            _ = try ConfigurationState.prepare(checked, monitor: ModelMonitor(catalog: collectors))
        } catch {
            throw ConfigErrors(error, file: checked.source)
        }
        return checked
    }

    /// Blocks SIGTERM, SIGINT, SIGQUIT and SIGHUP in the calling thread, and so in every thread it starts afterwards:
    /// call it first in `main` (before anything starts a thread) so that ``runUntilSignalled(deadline:)``, which
    /// unblocks them in its own thread, is the only one they interrupt. Without it they still work, on whichever
    /// thread the kernel picks.
    public static func blockShutdownSignals() { SignalPipe.block(Self.shutdownSignals) }

    static let shutdownSignals = [SIGTERM, SIGINT, SIGQUIT, SIGHUP]

    /// Blocks until SIGTERM, SIGINT or SIGQUIT, then shuts down gracefully; SIGHUP reloads the configuration.
    /// (SIGQUIT was left to the Swift runtime, whose backtracer printed a "crashed" report and let the process run on:
    /// a supervisor that stops with SIGQUIT, as nginx's and Go's are stopped, never stopped it.)
    /// Returns the process exit status: 0, or 1 if the handlers could not be installed (then it shuts down at once).
    public func runUntilSignalled(deadline: Duration = .seconds(10)) -> Int32 {
        // A handler writing to a pipe, read on this thread: no Dispatch source (their handlers need a free worker
        // of the global pool, and their signalfd a signal that no other thread takes first). The previous
        // handlers are restored on return, so that an embedding process gets its own handling back.
        guard let signals = SignalPipe(signals: Self.shutdownSignals) else {
            logger.error("cannot install the signal handlers (a pipe could not be made, or they are installed)")
            shutdown(deadline: deadline)
            return 1
        }
        while true {
            var signal = signals.next()
            if signal == SIGHUP {
                // SIGHUPs queued meanwhile are one reload, and a stop among them is not kept waiting behind them: a
                // storm of 40 (each reload up to 5 s, waiting for the proxy's replaced routings) delayed a SIGTERM by
                // 19 s, the exporter ready and serving all along.
                let queued = signals.queued()
                if let stop = queued.first(where: { $0 != SIGHUP }) {
                    signal = stop
                } else {
                    _ = config.reload(trigger: "SIGHUP")
                    web.reload(trigger: "SIGHUP")
                    continue
                }
            }
            let name = signal == SIGTERM ? "SIGTERM" : signal == SIGQUIT ? "SIGQUIT" : "SIGINT"
            logger.info("shutting down", metadata: ["signal": "\(name)"])
            break
        }
        // Signals during the shutdown are read by no one (a second Ctrl-C does not cut it short).
        shutdown(deadline: deadline)
        signals.restore()
        logger.info("stopped")
        return 0
    }
}

/// The proxy's listener could not start (its `proxy.listen` address busy, not allowed, …): the error says it is the
/// proxy's, not the exporter's own port (before, "bind to … Address already in use" left which one unsaid).
public struct ProxyStartError: Error, CustomStringConvertible {
    /// What the proxy's server threw.
    public let underlying: any Error

    init(_ underlying: any Error) { self.underlying = underlying }

    /// `proxy (proxy.listen): ` and the underlying error.
    public var description: String { "proxy (proxy.listen): \(underlying)" }
}

/// Hands a reloaded configuration to the proxy, which is built after the configuration state it listens to.
final class ProxyBox: Sendable {
    private let service = Mutex<(ProxyService, ProxyMetrics)?>(nil)

    func set(_ proxy: ProxyService, metrics: ProxyMetrics) { service.withLock { $0 = (proxy, metrics) } }

    /// Waits, before a reload applies, until the proxy holds few enough replaced routings and upstreams.
    func waitForRoom() { service.withLock { $0?.0 }?.waitForRoom() }

    /// Waits (at most `timeout`) until the exchanges the proxy answered so far are recorded: a scrape then counts
    /// every exchange a client was answered before it (recorded after the answer is written, once the loop has no
    /// event ready, at most 1 ms later, they were missing from a scrape that came in between: a CI run found a 502
    /// answered and not counted).
    func waitForReports(timeout: Duration) {
        service.withLock { $0?.0 }?.server.waitForEndedExchangesReported(timeout: timeout)
    }

    func reloaded(_ configuration: ExporterConfiguration, logger: Logger) {
        guard let (proxy, metrics) = service.withLock({ $0 }) else {
            // Before, silent: nothing listened on the proxy's addresses and the reload said it succeeded.
            if configuration.proxy != nil {
                logger.warning("a proxy section was added: the proxy starts at the next restart")
            }
            return
        }
        proxy.apply(configuration.proxy, metrics: metrics)
    }
}
