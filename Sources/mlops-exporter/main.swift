import ArgumentParser
import BatchScoring
import DemoTraffic
import ExporterConfig
import Foundation
import Logging
import MLOpsExporter
import MetricsPush
import ModelMonitoring
import Profiling
import RemoteWrite
import RuleGeneration

/// `mlops-exporter`: the command line. Parses arguments and hands over to the MLOpsExporter library.
struct MLOpsExporterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlops-exporter",
        abstract: "Prometheus exporter for a service's SRE signals and its ML models' health.",
        version: MLOpsExporterVersion.printed,
        subcommands: [Serve.self, CheckConfig.self, Profile.self, Batch.self, Rules.self, Demo.self],
        defaultSubcommand: Serve.self)
}

/// `mlops-exporter serve`: runs the exporter until SIGTERM, SIGINT or SIGQUIT.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve /metrics (and the landing page, /-/healthy, /-/ready) until SIGTERM, SIGINT or SIGQUIT.")

    @Option(
        name: .customLong("config"),
        help: "Model configuration file (YAML; see examples/models.yaml). Default: none, no models are monitored.")
    var configPath: String?

    @Option(
        name: .customLong("web.listen-address"),
        help: "Address to listen on; repeat for several (host:port, [v6]:port, :port for all interfaces).")
    var listenAddresses: [String] = [Exporter.Configuration.defaultListenAddress]

    @Option(
        name: .customLong("web.config.file"),
        help: "Web configuration file (exporter-toolkit format: TLS, HTTP/2, headers, basic auth); re-read on SIGHUP.")
    var webConfigPath: String?

    @Option(name: .customLong("web.telemetry-path"), help: "Path under which to expose metrics.")
    var telemetryPath = "/metrics"

    @Option(
        name: .customLong("web.grafana-url"),
        help: "Grafana's base URL: the status page at /models/{name} links to the model's dashboard panels.")
    var grafanaURL: String?

    @Option(
        name: .customLong("web.max-requests"), parsing: .unconditional,
        help: "Maximum number of concurrent metrics requests; more get 503. 0 means no limit.")
    var maxRequests = 40

    @Option(
        name: .customLong("process.pid"), parsing: .unconditional,
        help: "Also export process_* metrics for this pid (the model server).")
    var targetPID: Int32?

    @Option(
        name: .customLong("process.pidfile"), help: "Also export process_* metrics for the pid read from this file.")
    var targetPIDFile: String?

    @Flag(name: .customLong("no-process-metrics"), help: "Do not export process_* metrics for the exporter itself.")
    var noProcessMetrics = false

    @Option(
        name: .customLong("web.max-connections"), parsing: .unconditional,
        help: "Maximum number of open HTTP connections.")
    var maxConnections = 1024

    @Option(
        name: .customLong("web.header-timeout"), parsing: .unconditional,
        help: "Seconds a client has to send a request's headers.")
    var headerTimeout = 10.0

    @Option(
        name: .customLong("web.idle-timeout"), parsing: .unconditional,
        help: "Seconds an idle keep-alive connection is kept.")
    var idleTimeout = 60.0

    @Option(
        name: .customLong("web.write-timeout"), parsing: .unconditional,
        help: "Seconds a client may stall reading a response before the connection is closed.")
    var writeTimeout = 30.0

    @Option(
        name: .customLong("web.tls-handshake-timeout"), parsing: .unconditional,
        help: "Seconds a client has to complete the TLS handshake (with tls_server_config).")
    var tlsHandshakeTimeout = 10.0

    @Option(name: .customLong("web.max-body-bytes"), parsing: .unconditional, help: "Largest request body accepted.")
    var maxBodyBytes = 16 << 20

    @Option(
        name: .customLong("web.max-buffered-body-bytes"), parsing: .unconditional,
        help: "Most request-body bytes held at once over all connections; new bodies beyond it get 503.")
    var maxBufferedBodyBytes = 256 << 20

    @Option(
        name: .customLong("web.max-unread-answer-bytes"), parsing: .unconditional,
        help:
            "Most answer bytes held over all connections for clients that have not read them; new requests get 503."
    )
    var maxUnreadAnswerBytes = 256 << 20

    @Option(
        name: .customLong("web.max-connection-body-bytes"), parsing: .unconditional,
        help: "Most request-body bytes one connection may hold (HTTP/1.1 pipelining, HTTP/2 streams).")
    var maxConnectionBodyBytes = 32 << 20

    @Option(
        name: .customLong("web.body-timeout"), parsing: .unconditional,
        help: "Seconds a request body may take in all, from its headers on.")
    var bodyTimeout = 60.0

    @Option(
        name: .customLong("web.body-min-rate"), parsing: .unconditional,
        help: "Bytes per second a request body must keep up after its first 5 seconds; 0 disables.")
    var bodyMinRate = 4096

    @Option(
        name: .customLong("web.reserved-connections"), parsing: .unconditional,
        help: "Connections kept for requests without a body (scrapes, health checks). Default: max-connections / 10.")
    var reservedConnections: Int?

    @Option(
        name: .customLong("ingest.max-events"), parsing: .unconditional,
        help: "Most events one ingestion request may carry.")
    var ingestMaxEvents = 10_000

    @Option(
        name: .customLong("ingest.max-decompressed-bytes"), parsing: .unconditional,
        help: "Most bytes a gzip ingestion body may inflate to.")
    var ingestMaxDecompressedBytes = 64 << 20

    @Option(
        name: .customLong("bench.synthetic-series"), parsing: .unconditional,
        help:
            "Register this many synthetic series (synthetic_requests_total), for load tests and benchmarks."
    )
    var syntheticSeries = 0

    @Option(
        name: .customLong("instance.id"),
        help:
            "This exporter's name in a fleet (1 to 64 characters of [A-Za-z0-9._-]): the prefix of the event ids it generates; labels whose id names another instance are counted other_instance. Default: the host name."
    )
    var instanceID: String?

    @Option(
        name: .customLong("storage.path"),
        help:
            "Directory for checkpoints of the models' windows, pending labels and counters, restored at start (overrides storage.path in --config)."
    )
    var storagePath: String?

    @Option(
        name: .customLong("storage.checkpoint-interval"),
        help: "Time between checkpoints, e.g. 60s, 5m (default 60s; overrides storage.checkpoint_interval).")
    var checkpointInterval: String?

    @Option(
        name: .customLong("storage.lock-wait"),
        help:
            "How long to wait at start for the storage directory's lock while another process holds it, e.g. 30s, 0s (default 10s; overrides storage.lock_wait)."
    )
    var lockWait: String?

    @Option(
        name: .customLong("shutdown-timeout"), parsing: .unconditional,
        help:
            "Seconds in-flight requests get to finish on shutdown, on both the web and proxy ports (0.001 to 86400; a quarter of it, at most 1 s, kept for remote write's staleness markers when configured)."
    )
    var shutdownTimeout = 10.0

    @Option(
        name: .customLong("log.level"),
        help: "Only log messages at or above: debug, info, warn, error (also trace, notice, warning, critical).")
    var logLevel: String = "info"

    @Option(name: .customLong("log.format"), help: "Log line format: logfmt or json.")
    var logFormat: String = "logfmt"

    func validate() throws {
        guard StderrLogHandler.level(named: logLevel) != nil else {
            throw ValidationError(
                "--log.level: unknown level \"\(logLevel)\" (debug, info, warn, error; trace, notice, warning, critical)"
            )
        }
        guard LogFormat(rawValue: logFormat) != nil else {
            throw ValidationError("--log.format: unknown format \"\(logFormat)\" (logfmt, json)")
        }
        if let problem = Exporter.telemetryPathProblem(telemetryPath) {
            throw ValidationError("--web.telemetry-path \(telemetryPath): \(problem)")
        }
        if let problem = Exporter.listenAddressesProblem(listenAddresses) {
            throw ValidationError("--web.listen-address: \(problem)")
        }
        if let grafanaURL, !(grafanaURL.hasPrefix("http://") || grafanaURL.hasPrefix("https://")) {
            throw ValidationError("--web.grafana-url must start with http:// or https://")
        }
        // A pid is positive: -1 or 0 started, and the target's series only ever said `process_target_up 0`.
        if let targetPID, targetPID <= 0 { throw ValidationError("--process.pid must be a process id (> 0)") }
        guard syntheticSeries >= 0 else { throw ValidationError("--bench.synthetic-series must be >= 0") }
        guard maxConnections > 0 else { throw ValidationError("--web.max-connections must be > 0") }
        guard maxBodyBytes > 0 else { throw ValidationError("--web.max-body-bytes must be > 0") }
        guard maxBufferedBodyBytes > 0 else { throw ValidationError("--web.max-buffered-body-bytes must be > 0") }
        guard maxUnreadAnswerBytes > 0 else { throw ValidationError("--web.max-unread-answer-bytes must be > 0") }
        guard maxConnectionBodyBytes > 0 else {
            throw ValidationError("--web.max-connection-body-bytes must be > 0")
        }
        guard bodyMinRate >= 0 else { throw ValidationError("--web.body-min-rate must be >= 0") }
        if let reservedConnections, !(0..<maxConnections).contains(reservedConnections) {
            throw ValidationError("--web.reserved-connections must be >= 0 and below --web.max-connections")
        }
        guard ingestMaxEvents > 0 else { throw ValidationError("--ingest.max-events must be > 0") }
        guard ingestMaxDecompressedBytes > 0 else {
            throw ValidationError("--ingest.max-decompressed-bytes must be > 0")
        }
        guard maxRequests >= 0 else { throw ValidationError("--web.max-requests must be >= 0") }
        if let instanceID, let problem = EventID.instanceProblem(instanceID) {
            throw ValidationError("--instance.id: \(problem)")
        }
        for (flag, seconds) in [
            ("--web.header-timeout", headerTimeout), ("--web.idle-timeout", idleTimeout),
            ("--web.write-timeout", writeTimeout), ("--shutdown-timeout", shutdownTimeout),
            ("--web.tls-handshake-timeout", tlsHandshakeTimeout), ("--web.body-timeout", bodyTimeout),
        ] where !(seconds >= 0.001 && seconds <= 86_400) {
            throw ValidationError("\(flag): \(seconds) is not between 0.001 and 86400 seconds")
        }
        if storagePath?.isEmpty == true { throw ValidationError("--storage.path must not be empty") }
        if let checkpointInterval {
            guard let d = DurationParser.parse(checkpointInterval), StorageConfiguration.intervalRange.contains(d)
            else {
                throw ValidationError(
                    "--storage.checkpoint-interval: \"\(checkpointInterval)\" is not a duration between 1s and 1d (like 30s, 5m)"
                )
            }
        }
        if let lockWait {
            guard let d = StorageConfiguration.lockWait(parsing: lockWait),
                StorageConfiguration.lockWaitRange.contains(d)
            else {
                throw ValidationError(
                    "--storage.lock-wait: \"\(lockWait)\" is not a duration between 0s and 1h (like 0s, 30s, 2m)")
            }
        }

    }

    func run() throws {
        // Before any thread starts (threads inherit the mask): SIGTERM, SIGINT, SIGQUIT and SIGHUP then reach only the
        // thread that waits for them in runUntilSignalled.
        Exporter.blockShutdownSignals()
        let level = StderrLogHandler.level(named: logLevel)!
        let format = LogFormat(rawValue: logFormat)!
        LoggingSystem.bootstrap { StderrLogHandler(label: $0, format: format, level: level) }
        let logger = Logger(label: "mlops-exporter")
        var configuration = Exporter.Configuration()
        // JSON logs get the refusal as a JSON line, as every later error (logfmt keeps the readable list).
        let jsonLogger = format == .json ? logger : nil
        if let configPath {
            // Read and checked here; the models are built once, by the exporter below, whose problems building them
            // (a reference profile, a collector's options) are reported the same way. (They were built twice: a check
            // that built every model and threw it away took half of the start, 4.5 s of 9.5 for 800 models.)
            configuration.models = try loadOrExit("configuration", logger: jsonLogger) {
                try ConfigLoader.load(
                    file: configPath, knownCollectors: configuration.collectors.names,
                    upstreamCheck: Exporter.upstreamCheck, listenOverlap: Exporter.listenOverlap)
            }
            configuration.configPath = configPath
        }
        if let webConfigPath {
            configuration.web = try loadOrExit("web configuration", logger: jsonLogger) {
                try WebConfigLoader.load(file: webConfigPath)
            }
            configuration.webConfigPath = webConfigPath
        }
        configuration.listenAddresses = listenAddresses
        configuration.telemetryPath = telemetryPath
        configuration.grafanaURL = grafanaURL
        configuration.maxRequests = maxRequests
        configuration.processMetrics = !noProcessMetrics
        configuration.targetPID = targetPID
        configuration.targetPIDFile = targetPIDFile
        configuration.syntheticSeries = syntheticSeries
        configuration.ingestMaxEvents = ingestMaxEvents
        if let instanceID { configuration.instanceID = instanceID }
        configuration.ingestMaxDecompressedBytes = ingestMaxDecompressedBytes
        configuration.server.maxConnections = maxConnections
        configuration.server.headerReadTimeout = .seconds(headerTimeout)
        configuration.server.idleTimeout = .seconds(idleTimeout)
        configuration.server.writeStallTimeout = .seconds(writeTimeout)
        configuration.server.maxBodySize = maxBodyBytes
        configuration.server.maxBufferedBodyBytes = maxBufferedBodyBytes
        configuration.server.maxUnreadAnswerBytes = maxUnreadAnswerBytes
        configuration.server.maxConnectionBodyBytes = maxConnectionBodyBytes
        configuration.server.bodyTimeout = .seconds(bodyTimeout)
        configuration.server.minBodyRate = bodyMinRate
        configuration.server.reservedConnections = reservedConnections
        configuration.server.tlsHandshakeTimeout = .seconds(tlsHandshakeTimeout)
        let interval = checkpointInterval.flatMap(DurationParser.parse)
        let wait = lockWait.flatMap(StorageConfiguration.lockWait(parsing:))
        if let path = storagePath ?? configuration.models?.storage?.path {
            configuration.storage = StorageConfiguration(
                path: path,
                checkpointInterval: interval ?? configuration.models?.storage?.checkpointInterval
                    ?? StorageConfiguration.defaultInterval,
                lockWait: wait ?? configuration.models?.storage?.lockWait ?? StorageConfiguration.defaultLockWait)
        } else {
            for (flag, value) in [("--storage.checkpoint-interval", interval), ("--storage.lock-wait", wait)]
            where value != nil {
                logger.warning("\(flag) is ignored: no --storage.path (or storage.path) is set")
            }
        }
        let exporter: Exporter
        do {
            exporter = try Exporter(configuration: configuration, logger: logger)
            try exporter.start()
        } catch let errors as ConfigErrors {
            // A model that cannot be built, said as a file's problems are (the exporter builds the models).
            throw invalid("configuration", errors, logger: jsonLogger)
        } catch {
            logger.error("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        let status = exporter.runUntilSignalled(deadline: .seconds(shutdownTimeout))
        throw ExitCode(status)
    }
}

/// `mlops-exporter check-config FILE`: validates a configuration file and lists every problem.
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration file; print each problem as FILE:LINE:COLUMN: FIELD: MESSAGE.")

    @Argument(help: "The configuration file.")
    var file: String

    func run() throws {
        let config: ExporterConfiguration
        do {
            config = try Exporter.checkConfiguration(file: file)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        for warning in config.warnings { printError("warning: \(warning)") }
        let names = config.models.map(\.name).joined(separator: ", ")
        try writeOrExit(
            config.models.isEmpty
                ? "\(file): valid, no models\n" : "\(file): valid, \(config.models.count) model(s): \(names)\n")
    }
}

/// `mlops-exporter profile`: builds a model's reference profile from training or validation data.
struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build a model's reference profile (drift baseline) from a CSV or NDJSON file.")

    @Option(name: .customLong("config"), help: "Model configuration file (YAML).")
    var configPath: String

    @Option(help: "The model to profile (its name in the configuration).")
    var model: String

    @Option(help: "Reference data: CSV with a header row, or NDJSON (flat objects or ingestion events).")
    var input: String

    @Option(help: "Where to write the profile (JSON).")
    var out: String

    @Option(parsing: .unconditional, help: "Quantile bins per numeric column (repeated values may merge some).")
    var bins = 10

    @Option(
        name: .customLong("fine-bins"), parsing: .unconditional,
        help: "Equal-width bins of the fine histogram (for KS, Wasserstein).")
    var fineBins = 1000

    @Option(
        name: .customLong("max-categories"), parsing: .unconditional,
        help: "Most values learned for a categorical feature without configured values; the rest are __other__.")
    var maxCategories = 50

    @Option(help: "Input format: csv or ndjson. Default: from the extension (.csv; .ndjson, .jsonl).")
    var format: String?

    @Option(
        name: .customLong("ignore-columns"),
        help:
            ArgumentHelp(
                "Comma-separated input columns to skip (other columns that are not the model's are an error; each "
                    + "must be in the input, and none a feature)."))
    var ignoreColumns: String?

    func validate() throws {
        guard (1...10_000).contains(bins) else { throw ValidationError("--bins must be between 1 and 10000") }
        guard (1...ProfileLoader.maxFineBins).contains(fineBins) else {
            throw ValidationError("--fine-bins must be between 1 and \(ProfileLoader.maxFineBins)")
        }
        guard (1...100_000).contains(maxCategories) else {
            throw ValidationError("--max-categories must be between 1 and 100000")
        }
        if let format, InputFormat(rawValue: format) == nil {
            throw ValidationError("--format: unknown format \"\(format)\" (csv, ndjson)")
        }
    }

    func run() throws {
        let request = Profiler.Request(
            configPath: configPath, model: model, input: input, output: out,
            format: format.flatMap(InputFormat.init(rawValue:)),
            options: ProfileBuilder.Options(bins: bins, fineBins: fineBins, maxCategories: maxCategories),
            ignoreColumns: ignoreColumns.map(ProfilingError.ignoredColumns) ?? [])
        let summary: Profiler.Summary
        do {
            summary = try Profiler.run(request)
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
        for warning in summary.warnings { printError("warning: \(warning)") }
        try writeOrExit("\(summary)\n")
    }
}

/// `mlops-exporter batch`: scores one batch of a model's predictions (and labels) as one window; see docs/batch.md.
struct Batch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model's collectors over a batch of predictions (and labels) as one window; print a report.",
        discussion: """
            Exit status: 0; 2 with --fail-on-drift when dataset drift is detected; 1 for bad input (one line naming \
            file, line and column), a failed push, or predictions of which none was accepted. See docs/batch.md.
            """)

    @Option(name: .customLong("config"), help: "Model configuration file (YAML).")
    var configPath: String

    @Option(help: "The model (its name in the configuration).")
    var model: String

    @Option(
        help:
            "Predictions: CSV with a header row (the columns profile reads), or NDJSON (prediction events, or flat objects)."
    )
    var input: String

    @Option(help: "Labels joined by id: CSV with id,label columns, or NDJSON label events.")
    var labels: String?

    @Option(help: "Reference profile to use instead of the model's configured reference.")
    var reference: String?

    @Option(help: "Report format: text or json.")
    var format = "text"

    @Option(name: .customLong("input-format"), help: "Input format: csv or ndjson. Default: from the extension.")
    var inputFormat: String?

    @Option(
        name: .customLong("model-version"),
        help:
            "Version of rows without one: CSV rows and flat NDJSON objects (default: the model's first configured version), ingestion events (default: none, such an event is rejected)."
    )
    var modelVersion: String?

    @Option(
        name: .customLong("ignore-columns"),
        help: "Comma-separated CSV columns to skip (other columns that are not the model's are an error).")
    var ignoreColumns: String?

    @Flag(name: .customLong("fail-on-drift"), help: "Exit with status 2 when dataset drift is detected.")
    var failOnDrift = false

    @Option(help: "Push the result to this Prometheus Pushgateway (http://host:port), with PUT.")
    var push: String?

    @Option(help: "The job label of the push's grouping key.")
    var job = "mlops-batch"

    @Option(
        name: .customLong("run-id"),
        help: "The run_id label of the push's grouping key. Default: derived from the model and the input files.")
    var runID: String?

    @Option(
        name: .customLong("push-timeout"), parsing: .unconditional,
        help: "Seconds to keep retrying a failed push or remote write.")
    var pushTimeout = 30.0

    @Option(
        name: .customLong("remote-write"),
        help: "Send the result with Prometheus remote write 1.0 to this receiver (http://host:port/api/v1/write).")
    var remoteWrite: String?

    func validate() throws {
        guard format == "text" || format == "json" else {
            throw ValidationError("--format: unknown format \"\(format)\" (text, json)")
        }
        if let inputFormat, InputFormat(rawValue: inputFormat) == nil {
            throw ValidationError("--input-format: unknown format \"\(inputFormat)\" (csv, ndjson)")
        }
        guard pushTimeout > 0 && pushTimeout <= 86_400 else {
            throw ValidationError("--push-timeout must be between 0 and 86400 seconds")
        }
        guard !job.isEmpty else { throw ValidationError("--job must not be empty") }
        // Checked before the batch runs: a URL the push cannot use is not found out after it.
        if let push {
            do {
                _ = try PushgatewayTarget(url: push, job: job, labels: [])
            } catch {
                throw ValidationError("--push: \(error)")
            }
        }
        if let remoteWrite {
            do {
                _ = try RemoteWriteReceiver(url: remoteWrite, userAgent: MLOpsExporterVersion.userAgent)
            } catch {
                throw ValidationError("--remote-write: \(error)")
            }
        }
    }

    func run() throws {
        if push == nil && remoteWrite == nil {
            // Said, not refused (a wrapper may pass them on a dry run): they were ignored without a word.
            let given = CommandLine.arguments.dropFirst().prefix { $0 != "--" }
            for flag in ["--job", "--run-id", "--push-timeout"]
            where given.contains(where: { $0 == flag || $0.hasPrefix(flag + "=") }) {
                printError("mlops-exporter batch: \(flag) is ignored without --push or --remote-write")
            }
        }
        let request = BatchRequest(
            configPath: configPath, model: model, input: input,
            inputFormat: inputFormat.flatMap(InputFormat.init(rawValue:)), labels: labels, reference: reference,
            defaultVersion: modelVersion,
            ignoreColumns: ignoreColumns.map(ProfilingError.ignoredColumns) ?? [])
        let result: BatchRun
        do {
            result = try BatchRun(request)
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
        // The report is the run's result (a CI gate reads it): one that cannot be written (a full disk) fails the run.
        if let problem = writeStandardOutput(format == "json" ? result.report.json + "\n" : result.report.text) {
            printError("mlops-exporter batch: cannot write the report: \(problem)")
            throw ExitCode(1)
        }
        let id = runID ?? BatchRunID.derived(model: model, files: [input, labels].compactMap { $0 })
        // A failed push does not skip the remote write (another store, maybe up): both are tried, then the run fails.
        var delivered = true
        if let push {
            do {
                var target = try PushgatewayTarget(
                    url: push, job: job, labels: [("model", model), ("run_id", id)])
                target.userAgent = MLOpsExporterVersion.userAgent
                let outcome = try Pushgateway.push(
                    result.render(), to: target, retry: PushRetry(deadline: pushTimeout)
                ) { printError($0) }
                let authority =
                    target.host.contains(":") ? "[\(target.host)]:\(target.port)" : "\(target.host):\(target.port)"
                printError(
                    "pushed to http://\(authority)\(target.path): \(outcome.status) after \(outcome.attempts) attempt(s)"
                )
            } catch {
                printError("mlops-exporter batch: push to \(push): \(error)")
                delivered = false
            }
        }
        if let remoteWrite {
            do {
                let receiver = try RemoteWriteReceiver(url: remoteWrite, userAgent: MLOpsExporterVersion.userAgent)
                let (samples, metadata) = ExpositionText.parse(result.render())
                // `job` and `run_id` as the push's grouping key has them: concurrent runs (shards) of one job are other
                // series, not one overwriting the other.
                let bodies = try WriteRequestEncoder(externalLabels: ["job": job, "run_id": id]).encode(
                    samples, metadata: metadata, timestamp: Int64((result.finishedAt * 1000).rounded()))
                try receiver.postAll(bodies, retry: PushRetry(deadline: pushTimeout)) { printError($0) }
                printError("sent \(samples.count) samples to \(remoteWrite) in \(bodies.count) request(s)")
            } catch {
                printError("mlops-exporter batch: remote write to \(remoteWrite): \(error)")
                delivered = false
            }
        }
        guard delivered else { throw ExitCode(1) }
        // Rows read and none accepted: nothing was scored (every row lacked a version, say), which a CI gate must not
        // take for a pass, drift or not (it exited 0). The report and the push above still say what was rejected.
        let counts = result.report.counts
        if counts.rows > 0 && counts.accepted == 0 {
            let reasons = counts.rejected.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value))" }
            printError(
                "mlops-exporter batch: \(input): none of the \(counts.rows) predictions was accepted (rejected: "
                    + reasons.joined(separator: ", ") + ")")
            throw ExitCode(1)
        }
        if failOnDrift && result.report.driftDetected { throw ExitCode(2) }
    }
}

/// `mlops-exporter demo`: demo traffic for examples/demo/models.yaml, or that configuration's reference data.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send demo prediction and label traffic (stable, drift, bias, degraded phases) to an exporter.",
        discussion: """
            The models are those of examples/demo/models.yaml (fraud, eta). Phases: stable, drift, bias, degraded, \
            incident (all three). Default schedule (minutes): stable 3, drift 5, stable 8, bias 5, stable 8, degraded 5, \
            incident 5, cycling. --time-scale 10 runs phases and label delays ten times faster. With --config, traffic \
            only for the demo models that configuration declares.
            """)

    @Option(help: "The exporter's base URL (http only), e.g. http://127.0.0.1:9747.")
    var target: String?

    // `.unconditional`: a negative value (`--rate -5`) is read as the value, and refused by its own check (it was taken
    // for an option: "Missing value for '--rate <rate>'").
    @Option(parsing: .unconditional, help: "Predictions per second, over both models.")
    var rate = 40.0

    @Option(
        name: .customLong("time-scale"), parsing: .unconditional,
        help: "Demo seconds per real second (phases and label delays).")
    var timeScale = 1.0

    @Option(help: "Phases as name:duration,... (e.g. stable:30s,drift:10m,bias); the last may omit its duration.")
    var phases: String?

    @Flag(help: "Start the --phases schedule again after its last phase (the default schedule always cycles).")
    var cycle = false

    @Option(help: "Seed of the generated traffic.")
    var seed: UInt64 = 1

    @Option(parsing: .unconditional, help: "Stop after this many (real) seconds. Default: run until interrupted.")
    var duration: Double?

    @Option(
        name: .customLong("label-delay"), parsing: .unconditional, help: "Demo seconds from a prediction to its label.")
    var labelDelay = 30.0

    @Option(
        name: .customLong("write-reference-data"),
        help: "Write the reference data (fraud.csv, eta.csv) into this directory and exit.")
    var referenceDirectory: String?

    @Option(
        name: .customLong("reference-rows"), parsing: .unconditional,
        help: "Rows per model with --write-reference-data.")
    var referenceRows = 5000

    @Option(
        name: .customLong("config"),
        help: "The target's configuration: traffic only for the demo models (fraud, eta) it declares.")
    var configPath: String?

    func validate() throws {
        if referenceDirectory == nil && target == nil {
            throw ValidationError("--target (or --write-reference-data) is required")
        }
        guard (1...10_000_000).contains(referenceRows) else {
            throw ValidationError("--reference-rows must be between 1 and 10000000")
        }
        guard labelDelay >= 0 && labelDelay.isFinite else {
            throw ValidationError("--label-delay must be a number of seconds, 0 or more (got \(labelDelay))")
        }
        // Usage errors (64), as every other command's, not the demo's run-time failure (2); unused (so unchecked)
        // when only the reference data is written.
        if referenceDirectory == nil, let target, !target.hasPrefix("http://") {
            throw ValidationError("--target: only http:// URLs are supported (got \"\(target)\")")
        }
        if referenceDirectory == nil, let phases {
            do { _ = try DemoSchedule(parsing: phases, cycles: cycle) } catch { throw ValidationError("\(error)") }
        }
        // The generator's own checks, here so that they are usage errors too (they exited 2, batch's "drift").
        guard referenceDirectory == nil else { return }
        guard rate > 0, rate <= 100_000 else { throw ValidationError("--rate must be in (0, 100000] (got \(rate))") }
        guard timeScale > 0, timeScale <= 100_000 else {
            throw ValidationError("--time-scale must be in (0, 100000] (got \(timeScale))")
        }
        if let duration, !(duration > 0) {
            throw ValidationError("--duration must be positive (got \(duration))")
        }
    }

    func run() throws {
        let configuration = try configPath.map { path in
            try loadOrExit("configuration") { try ConfigLoader.load(file: path) }
        }
        do {
            let models = try configuration.map {
                try DemoGenerator.models(configured: $0.models.map(\.name), source: $0.source)
            }
            if let referenceDirectory {
                try DemoGenerator.writeReferenceData(directory: referenceDirectory, rows: referenceRows, seed: seed)
                return
            }
            var options = DemoGenerator.Options(target: target ?? "")
            options.rate = rate
            options.timeScale = timeScale
            options.seed = seed
            options.duration = duration
            options.labelDelay = labelDelay
            options.models = models ?? DemoGenerator.models
            if let phases {
                options.schedule = try DemoSchedule(parsing: phases, cycles: cycle)
            }
            try DemoGenerator(options: options).run()
        } catch {
            printError("mlops-exporter demo: \(error)")
            throw ExitCode(2)
        }
    }
}

/// The loaded file, or exits with status 1 after printing every problem.
func loadOrExit<T>(_ what: String, logger: Logger? = nil, _ load: () throws -> T) throws -> T {
    do {
        return try load()
    } catch {
        throw invalid(what, error, logger: logger)
    }
}

/// Prints `error`, the problems of an invalid `what` (as a JSON log line with `logger`), and returns exit status 1.
func invalid(_ what: String, _ error: any Error, logger: Logger?) -> ExitCode {
    if let logger {
        logger.error("cannot start: invalid \(what)", metadata: ["error": "\(error)"])
    } else {
        printError("invalid \(what):\n\(error)")
    }
    return ExitCode(1)
}

/// `mlops-exporter rules`: writes the Prometheus rules (or a Sloth spec) for the configured SLOs and models.
struct Rules: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write Prometheus recording and alerting rules (SLOs, burn rates, model health) or a Sloth spec.",
        discussion:
            "Every rule and alert is described in docs/slos.md. Check the output with: promtool check rules FILE")

    @Option(name: .customLong("config"), help: "Model configuration file (YAML) with the models' slos.")
    var configPath: String

    @Option(help: "Where to write the rules. Default: standard output.")
    var out: String?

    @Option(help: "Output format: prometheus (a rule file) or sloth (a Sloth prometheus/v1 spec).")
    var format = "prometheus"

    @Option(help: "The job label Prometheus scrapes the exporter under.")
    var job = RuleGenerator.defaultJob

    @Option(
        help: ArgumentHelp(
            "How the exporters' series reach the Prometheus that evaluates the rules: scrape (a scrape job, or remote write by the Prometheus that scrapes them) or remote_write (the exporters' own remote_write:, no scraper). It decides the liveness alerts: up for scrape, the series that arrive for remote_write.",
            valueName: "scrape|remote_write"))
    var source = RuleGenerator.Source.scrape.rawValue

    func validate() throws {
        guard format == "prometheus" || format == "sloth" else {
            throw ValidationError("--format: unknown format \"\(format)\" (prometheus, sloth)")
        }
        guard RuleGenerator.Source(rawValue: source) != nil else {
            throw ValidationError("--source: unknown source \"\(source)\" (scrape, remote_write)")
        }
        guard !job.isEmpty, !job.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }),
            !ConfigLoader.isTemplateText(job)
        else {
            throw ValidationError("--job must be a non-empty label value without control characters, {{ or }}")
        }
    }

    func run() throws {
        let configuration = try loadOrExit("configuration") {
            try ConfigLoader.load(
                file: configPath, knownCollectors: CollectorCatalog.builtIn.names, referencesMustExist: false)
        }
        for warning in configuration.warnings { printError("warning: \(warning)") }
        let source = RuleGenerator.Source(rawValue: source) ?? .scrape
        for warning in RuleGenerator.warnings(for: configuration, source: source) { printError("warning: \(warning)") }
        if format == "sloth" {
            // Names Sloth refuses: a spec written with them failed only in `sloth generate`.
            let problems = RuleGenerator.slothNameProblems(for: configuration, job: job)
            for problem in problems { printError("\(configPath): \(problem)") }
            if !problems.isEmpty { throw ExitCode(1) }
        }
        let text =
            format == "sloth"
            ? RuleGenerator.slothYAML(for: configuration, job: job)
            : RuleGenerator.prometheusYAML(for: configuration, job: job, source: source)
        guard let out else {
            try writeOrExit(text)
            return
        }
        // Not onto the configuration or a profile it names: the rules would replace them (profile refuses the same).
        let inputs =
            [(configPath, "the configuration")]
            + configuration.models.compactMap { model in
                model.reference.map { ($0, "model \"\(model.name)\"'s reference profile") }
            }
        for (path, what) in inputs where Profiler.sameFile(out, path) {
            printError(
                "\(out): cannot write: this is \(what) (\(path)); the rules would replace it: choose another --out")
            throw ExitCode(1)
        }
        // profile's writer: through links, into devices and the process's own descriptors, never replacing them.
        do throws(ProfilingError) {
            try Profiler.write(Array(text.utf8), to: out)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}

/// Writes `text` to standard output whole (retrying short writes); the error's description when it cannot.
func writeStandardOutput(_ text: String) -> String? {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return String(cString: strerror(errno)) }
        offset += n
    }
    return nil
}

/// Writes `text` to standard output whole, or reports why it cannot and exits 1: a result lost to a full disk or a
/// closed pipe fails the command (`print` dropped the error and the command exited 0).
func writeOrExit(_ text: String) throws {
    guard let problem = writeStandardOutput(text) else { return }
    printError("mlops-exporter: cannot write to standard output: \(problem)")
    throw ExitCode(1)
}

func printError(_ message: String) {
    var line = Array((message + "\n").utf8)
    line.withUnsafeMutableBytes { _ = write(2, $0.baseAddress, $0.count) }
}

/// ArgumentParser keeps the last of an option given twice, without a word (`serve --config a.yaml --config b.yaml`
/// served b.yaml): refused, as Prometheus refuses a repeated flag, but for `--web.listen-address`, which is meant to be
/// repeated. Exits with ArgumentParser's usage status, 64.
func refuseRepeatedOptions(_ arguments: ArraySlice<String>) {
    var seen: Set<Substring> = []
    for argument in arguments {
        if argument == "--" { break }  // what follows is no option
        guard argument.hasPrefix("--") else { continue }
        let name = argument.prefix { $0 != "=" }
        if name == "--web.listen-address" { continue }
        if !seen.insert(name).inserted {
            printError("mlops-exporter: \(name) is given more than once; give it once")
            exit(64)
        }
    }
}

refuseRepeatedOptions(CommandLine.arguments.dropFirst())
MLOpsExporterCommand.main()
