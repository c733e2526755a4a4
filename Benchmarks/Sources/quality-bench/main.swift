// The label-join measurements that need a plain process (no benchmark harness, no malloc interposer):
//
//     quality-bench memory [exporter|snapshot|flat]   RSS per pending entry, 1,000,000 entries
//     quality-bench window PREDICTIONS.csv LABELS.csv RUNS   CPU time of one window (scripts/bench-quality)
//
// `memory exporter` fills the benchmark model's store (service + quality + fairness, max_pending 1,000,000)
// through MonitoredModel.record; `snapshot` and `flat` fill a bare PendingStore with PredictionSnapshot or the
// proposed FlatSnapshot payload. Each prints one JSON object on stdout.
import Exposition
import Foundation
import Ingestion
import ModelMonitoring
import QualityBenchFixtures

let count = 1_000_000

func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

func json(_ pairs: [(String, String)]) -> String {
    "{" + pairs.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
}

/// What one pending entry occupies by the store's layout, in bytes (shards of 62,500 entries; a Swift
/// dictionary keeps its load factor at most 3/4 in a power-of-two number of buckets of key + value plus one
/// bit of occupancy).
func layoutBytes<Payload>(_: Payload.Type, heapPerEntry: Int) -> [(String, String)] {
    let perShard = 62_500
    var buckets = 1
    while Double(buckets) * 0.75 < Double(perShard) { buckets *= 2 }
    let dictionary =
        Double(buckets) * (Double(MemoryLayout<UInt64>.stride + MemoryLayout<Int32>.stride) + 0.125)
        / Double(perShard)
    let ring =
        MemoryLayout<UInt64>.stride + MemoryLayout<Double>.stride + MemoryLayout<Payload?>.stride
        + MemoryLayout<Bool>.stride
    return [
        ("payload_stride", "\(MemoryLayout<Payload?>.stride)"), ("ring_bytes", "\(ring)"),
        ("dictionary_bytes", String(format: "%.1f", dictionary)), ("heap_bytes", "\(heapPerEntry)"),
        ("layout_total", String(format: "%.1f", Double(ring) + dictionary + Double(heapPerEntry))),
    ]
}

func memory(_ kind: String) throws {
    let ids = QualityBench.ids(0..<count)
    let rss0 = QualityBench.residentBytes()
    var rssEmpty = 0
    var extra: [(String, String)] = []
    switch kind {
    case "exporter":
        let (registry, model) = try QualityBench.makeModel(maxPending: count)
        rssEmpty = QualityBench.residentBytes()
        let template = QualityBench.template(model)
        let t0 = WallClock.now() - 3600
        for i in 0..<count {
            model.record(
                QualityBench.prediction(
                    template, id: ids[i], score: Double(i % 1000) / 1000, gender: i & 1, age: (i >> 1) & 1),
                receivedAt: t0 + Double(i) * 0.001)
        }
        let rss = QualityBench.residentBytes()
        guard let store = model.joiner?.store else { fatalError("no label join") }
        // Shards cap at capacity / 16 each, and ids do not spread exactly evenly: some are evicted already.
        let filled = store.counts
        // A ring with holes: label every other pending prediction (not at the rings' heads), then add 1,000.
        for i in stride(from: 1, to: count, by: 2) {
            model.record(label: LabelEvent(id: ids[i], label: .label("approve")), receivedAt: t0 + 1000)
        }
        let before = store.counts
        for i in 0..<1_000 {
            model.record(
                QualityBench.prediction(template, id: "n\(i)", score: 0.5, gender: 0, age: 0),
                receivedAt: t0 + 1001)
        }
        let after = store.counts
        extra = [
            ("pending_after_fill", "\(filled.pending)"), ("evicted_during_fill", "\(filled.evicted)"),
            ("pending_after_half_labelled", "\(before.pending)"),
            ("evicted_by_1000_more", "\(after.evicted - before.evicted)"),
            ("pending_after_1000_more", "\(after.pending)"),
        ]
        blackHole(registry)
        extra = [("rss_full", "\(rss)")] + extra
        // Heap per entry: the groups array of two Ints (32-byte header + 16 bytes = 48 bytes asked, a 64-byte
        // chunk from glibc malloc); probabilities are empty (no heap).
        extra += layoutBytes(PredictionSnapshot.self, heapPerEntry: 64)
    case "snapshot":
        let rss = fillBare(ids, QualityBench.snapshotPayload)
        rssEmpty = rss.empty
        extra = [("rss_full", "\(rss.full)")] + layoutBytes(PredictionSnapshot.self, heapPerEntry: 64)
    case "flat":
        let rss = fillBare(ids, QualityBench.flatPayload)
        rssEmpty = rss.empty
        extra = [("rss_full", "\(rss.full)")] + layoutBytes(FlatSnapshot.self, heapPerEntry: 0)
    default:
        fatalError("memory: exporter, snapshot or flat")
    }
    // The ids stay alive to the end (Swift may free an array after its last use: its 16 MB would leave the RSS).
    blackHole(ids)
    let full = Int(extra.first { $0.0 == "rss_full" }!.1)!
    print(
        json(
            [
                ("kind", "\"\(kind)\""), ("entries", "\(count)"), ("rss_before", "\(rss0)"),
                ("rss_empty", "\(rssEmpty)"),
                ("bytes_per_entry", String(format: "%.1f", Double(full - rss0) / Double(count))),
                ("preallocated_per_entry", String(format: "%.1f", Double(rssEmpty - rss0) / Double(count))),
                ("filled_per_entry", String(format: "%.1f", Double(full - rssEmpty) / Double(count))),
            ] + extra))
}

/// Fills a bare store of `Payload` with one entry per id: the RSS with the store empty, and full.
func fillBare<Payload: Sendable>(_ ids: [String], _ make: (Int) -> Payload) -> (empty: Int, full: Int) {
    let store = PendingStore<Payload>(capacity: count, timeToLive: 86_400)
    let empty = QualityBench.residentBytes()
    for i in 0..<count {
        store.insert(key: PendingStore<Payload>.key(ids[i]), time: Double(i), make(i), now: Double(i))
    }
    let full = QualityBench.residentBytes()
    blackHole(store)
    return (empty, full)
}

@inline(never)
func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

/// One row of the window: a prediction (in prediction order) or a label (in label order).
struct Row {
    var id: String
    var score: Double
    var gender: Int
    var age: Int
    var positive: Bool
}

/// Reads `id,score,gender,age` (predictions) or `id,label` (labels) rows after a header line.
func readRows(_ path: String, labels: Bool) throws -> [Row] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return text.split(separator: "\n").dropFirst().map { line in
        let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        if labels { return Row(id: f[0], score: 0, gender: 0, age: 0, positive: f[1] == "approve") }
        return Row(
            id: f[0], score: Double(f[1])!, gender: QualityBench.genders.firstIndex(of: f[2])!,
            age: QualityBench.ages.firstIndex(of: f[3])!, positive: false)
    }
}

func window(_ predictionsPath: String, _ labelsPath: String, runs: Int) throws {
    let predictions = try readRows(predictionsPath, labels: false)
    let labels = try readRows(labelsPath, labels: true)
    var cpu: [Double] = []
    var wall: [Double] = []
    var body: [UInt8] = []
    var sections: [[Double]] = []
    for _ in 0..<runs {
        let (registry, model) = try QualityBench.makeModel(maxPending: count)
        let template = QualityBench.template(model)
        let labelEvents = labels.map {
            LabelEvent(id: $0.id, label: .label(QualityBench.classes[$0.positive ? 1 : 0]))
        }
        let base = WallClock.now() - 60
        let c0 = cpuSeconds()
        let w0 = WallClock.now()
        for (i, p) in predictions.enumerated() {
            model.record(
                QualityBench.prediction(template, id: p.id, score: p.score, gender: p.gender, age: p.age),
                receivedAt: base + Double(i) * 1e-4)
        }
        let c1 = cpuSeconds()
        for (i, l) in labelEvents.enumerated() { model.record(label: l, receivedAt: base + 20 + Double(i) * 1e-4) }
        let c2 = cpuSeconds()
        body = registry.render(format: .text)
        let c3 = cpuSeconds()
        cpu.append(c3 - c0)
        sections.append([c1 - c0, c2 - c1, c3 - c2])
        wall.append(WallClock.now() - w0)
    }
    // The quality and fairness lines of the last run's scrape, for the cross-check with scikit-learn/fairlearn.
    let lines = String(decoding: body, as: UTF8.self).split(separator: "\n").filter {
        $0.hasPrefix("mlops_model_accuracy") || $0.hasPrefix("mlops_model_log_loss")
            || $0.hasPrefix("mlops_model_brier") || $0.hasPrefix("mlops_model_roc_auc")
            || $0.hasPrefix("mlops_model_f1") || $0.hasPrefix("mlops_fairness_metric")
            || $0.hasPrefix("mlops_labels_joined_total")
    }
    let sorted = cpu.sorted()
    let sectionNames = ["predictions", "labels", "scrape"]
    func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
    let quoted = lines.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
    print(
        json([
            ("predictions", "\(predictions.count)"), ("labels", "\(labels.count)"), ("runs", "\(runs)"),
            ("cpu_seconds", "[" + cpu.map { String(format: "%.6f", $0) }.joined(separator: ", ") + "]"),
            ("wall_seconds", "[" + wall.map { String(format: "%.6f", $0) }.joined(separator: ", ") + "]"),
            ("cpu_median", String(format: "%.6f", sorted[sorted.count / 2])),
            (
                "section_medians",
                json(
                    sectionNames.indices.map { k in
                        (sectionNames[k], String(format: "%.6f", median(sections.map { $0[k] })))
                    })
            ), ("body_bytes", "\(body.count)"),
            ("lines", "[" + quoted.joined(separator: ", ") + "]"),
        ]))
}

let args = CommandLine.arguments
switch args.count > 1 ? args[1] : "" {
case "memory": try memory(args.count > 2 ? args[2] : "exporter")
case "window" where args.count == 5: try window(args[2], args[3], runs: Int(args[4]) ?? 5)
default:
    FileHandle.standardError.write(
        Data("usage: quality-bench memory [exporter|snapshot|flat] | window PREDICTIONS.csv LABELS.csv RUNS\n".utf8))
    exit(2)
}
