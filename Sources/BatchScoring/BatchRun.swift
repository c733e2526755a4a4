import ExporterConfig
import Exposition
import Foundation
import ModelMonitoring
import Profiling

/// `mlops-exporter batch`: scores one batch of a model's predictions (and labels) with the model's configured
/// collectors, built as `serve` builds them (``ProfileLoader/references(for:)`` and ``ModelMonitor/prepare(_:references:)``),
/// and reads their figures as the exporter would export them (``Registry/snapshot(of:timeout:families:)``).
///
/// Every event is recorded at one instant, so that the whole batch is one window: the figures are those a
/// scrape would show right after the batch arrived at a fresh exporter. Predictions are read before labels, so
/// labels join predictions pending by `id`; the model's `max_pending` is raised to the number of input lines so
/// that no prediction of the batch is evicted before its label.
///
/// Pure: files in, a report and the bytes of a text-format render out; no sockets.
public struct BatchRun: Sendable {
    /// The report.
    public let report: BatchReport
    /// The model's series and the batch's own, rendered once right after the snapshot of the report (``render()``).
    let rendered: [UInt8]
    /// Seconds the run took.
    public let duration: Double
    /// When the run finished (Unix seconds): `mlops_batch_last_success_timestamp_seconds`, and the time remote write
    /// stamps the samples with.
    public let finishedAt: Double

    /// Reads the configuration and the inputs, runs the collectors and builds the report. Throws a
    /// ``ProfilingError`` (`file[:line[:column]]: [field: ]message`) for any bad input.
    public init(_ request: BatchRequest) throws(ProfilingError) {
        let started = WallClock.now()
        let format = try Self.format(request.inputFormat, path: request.input)
        var configuration = try Self.configuration(request.configPath)
        guard let index = configuration.models.firstIndex(where: { $0.name == request.model }) else {
            let known = configuration.models.map(\.name).joined(separator: ", ")
            throw ProfilingError(file: request.configPath, message: "no model \"\(request.model)\" (models: \(known))")
        }
        // Only this model: the others (and their references) play no part.
        var modelConfiguration = configuration.models[index]
        if let version = request.defaultVersion, !modelConfiguration.versions.isEmpty,
            !modelConfiguration.versions.contains(where: { $0.sameBytes(version) })
        {
            // Before, every row was reported under __other__ without a word.
            throw ProfilingError(
                file: request.configPath,
                message: "--model-version \"\(version)\": model \(request.model) declares the versions "
                    + "\(modelConfiguration.versions.joined(separator: ", ")) (rows of another version count as __other__)"
            )
        }
        if let clash = modelConfiguration.fileColumnClash {
            throw ProfilingError(file: request.configPath, message: clash)
        }
        if let reference = request.reference { modelConfiguration.reference = reference }
        if request.labels != nil {
            // The pending store splits its capacity over up to 16 shards by id hash, and a shard evicts at its share:
            // room for the busiest shard's excess too (4 standard deviations of a shard's count), or a batch of about
            // max_pending rows and more lost labels to evictions (281 of 100,000).
            let lines = try Self.lineCount(request.input)
            let room = lines + 16 * Int(Double(lines).squareRoot().rounded(.up)) + 128
            modelConfiguration.maxPending = max(modelConfiguration.maxPending, room)
        }
        configuration.models = [modelConfiguration]
        let (references, problems) = ProfileLoader.references(for: configuration)
        if let problem = problems.first {
            throw ProfilingError(file: request.reference ?? request.configPath, message: problem.message)
        }
        let monitor = ModelMonitor()
        do throws(ModelSetupErrors) {
            monitor.apply(try monitor.prepare(configuration, references: references))
        } catch {
            throw ProfilingError(file: request.configPath, message: error.problems.joined(separator: "; "))
        }
        guard let model = monitor.model(named: request.model) else {
            throw ProfilingError(file: request.configPath, message: "model \"\(request.model)\" was not built")
        }
        if let labels = request.labels, !model.usesLabels {
            // They were read, counted as neither accepted nor rejected, and the run said nothing (the ingestion API
            // refuses them with 409 labels_not_used).
            throw ProfilingError(
                file: labels,
                message:
                    "--labels: model \(request.model) has no quality or fairness collector, so nothing would use its labels (add one to its collectors)"
            )
        }

        try CSVColumn.checkIgnorable(request.ignoreColumns, file: request.input, model: model)
        let receivedAt = WallClock.now()
        let rows: Int
        switch format {
        case .csv:
            rows = try PredictionReader.csv(
                file: request.input, model: model,
                defaultVersion: request.defaultVersion ?? modelConfiguration.versions.first,
                ignoring: Set(request.ignoreColumns), receivedAt: receivedAt
            ).rows
        case .ndjson where try FlatNDJSONReader.isFlat(request.input, model: model) == true:
            rows = try FlatNDJSONReader.read(
                file: request.input, model: model,
                defaultVersion: request.defaultVersion ?? modelConfiguration.versions.first,
                ignoring: Set(request.ignoreColumns), receivedAt: receivedAt)
        case .ndjson:
            // Ingestion events: a top-level key that is no event field is refused unless listed (as by `profile`).
            // An event without `version` gets --model-version, as a CSV row does (it was rejected missing_version,
            // every one, the flag ignored without a word); without the flag it is rejected, as by the ingestion API.
            rows = try PredictionReader.ndjson(
                file: request.input, model: model, kind: .predictions, ignoring: Set(request.ignoreColumns),
                defaultVersion: request.defaultVersion, receivedAt: receivedAt
            ).rows
        }
        var labelRows: Int?
        // What the predictions' rows had rejected: the labels' rejections are told apart by difference (the counter
        // has both kinds under one reason label).
        let predictionRejections = model.counters.rejectedByReason
        if let labels = request.labels {
            let labelFormat = try Self.format(nil, path: labels)
            switch labelFormat {
            case .csv: labelRows = try LabelReader.csv(file: labels, model: model, receivedAt: receivedAt)
            case .ndjson:
                labelRows = try PredictionReader.ndjson(
                    file: labels, model: model, kind: .labels, receivedAt: receivedAt
                ).rows
            }
        }

        let registry = Registry(options: Registry.Options(selfMetricsPrefix: nil))
        let modelParts = monitor.parts().filter { $0.model == request.model }
        let snapshot = registry.snapshot(of: modelParts)
        // The batch was recorded at `receivedAt`, in one slice of the window: once the window has moved past that
        // slice (as soon as `duration` minus one slice later), the figures no longer hold the whole batch.
        let window = modelConfiguration.window
        let seconds = Double(window.duration.components.seconds)
        let usable = seconds - seconds / Double(max(1, window.slices))
        let took = WallClock.now() - receivedAt
        if took >= usable {
            throw ProfilingError(
                file: request.input,
                message:
                    "reading the batch took \(Int(took.rounded(.up))) s, longer than the model's window keeps it whole (window.duration less one slice: \(Int(usable)) s): raise window.duration"
            )
        }
        report = BatchReport.build(
            model: request.model, input: request.input, labels: request.labels, snapshot: snapshot, rows: rows,
            labelRows: labelRows, predictionRejections: predictionRejections)
        let finished = WallClock.now()
        finishedAt = finished
        duration = finished - started
        let batchPart = BatchMetrics.part(
            model: request.model, finishedAt: finished, duration: duration, predictions: rows, labels: labelRows)
        do {
            _ = try registry.register(BatchGroup(monitor: monitor, model: request.model, batchPart: batchPart))
        } catch {
            // The families are fixed (the catalog's and the batch's own) and the registry is fresh: cannot clash.
            preconditionFailure("cannot register the batch's families: \(error)")
        }
        // Rendered now, beside the report's snapshot: a push retried for minutes, and the remote write after it, send
        // these figures, not those of a window that has moved on since.
        rendered = registry.render(format: .text)
    }

    /// The model's series and the batch's own (`mlops_batch_*`) in the Prometheus text format 0.0.4, as they were
    /// when the report was made: what `--push` and `--remote-write` send.
    public func render() -> [UInt8] { rendered }

    static func format(_ format: InputFormat?, path: String) throws(ProfilingError) -> InputFormat {
        guard let format = format ?? InputFormat(path: path) else {
            // A process substitution (`--input <(…)`) has no extension: say what is wrong with it first.
            try ChunkedFile.requireRegular(path)
            // `data.csv.gz`: what --input-format would find at its first bytes, said without it.
            if path.hasSuffix(".gz") {
                throw ProfilingError(file: path, message: "gzip-compressed: decompress it first (gunzip)")
            }
            throw ProfilingError(
                file: path, message: "cannot tell the format from the extension (.csv, .ndjson, .jsonl)")
        }
        return format
    }

    static func configuration(_ path: String) throws(ProfilingError) -> ExporterConfiguration {
        do {
            return try ConfigLoader.load(
                file: path, knownCollectors: CollectorCatalog.builtIn.names, referencesMustExist: false)
        } catch {
            throw ProfilingError(
                file: path, message: "invalid configuration: " + ConfigErrors.describe(error, in: path))
        }
    }

    /// Lines of `path` (an upper bound on its events), counted in pieces.
    static func lineCount(_ path: String) throws(ProfilingError) -> Int {
        var file = try ChunkedFile(path: path)
        defer { file.close() }
        var count = 1
        var buffer: [UInt8] = []
        while !file.atEnd {
            buffer.removeAll(keepingCapacity: true)
            try file.read(appendingTo: &buffer)
            count += buffer.count(where: { $0 == UInt8(ascii: "\n") })
        }
        return count
    }
}
