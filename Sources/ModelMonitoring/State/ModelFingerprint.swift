import ExporterConfig

/// The fingerprints a model's state is saved with (``ModelContext``): the whole configuration's, and (checkpoint
/// format 2 on) its layout's, each collector's and each collector's options, so that a restart after a change of
/// collector options carries the state on as a reload would (``ModelMonitor/restore(model:fingerprints:state:now:counters:)``).
public struct StateFingerprints: Sendable, Equatable {
    /// ``ModelContext/stateFingerprint``.
    public var state: String
    /// ``ModelContext/layoutFingerprint``; nil in a checkpoint written before it was saved.
    public var layout: String?
    /// ``ModelContext/collectorFingerprints``; nil in a checkpoint written before they were saved.
    public var collectors: [String]?
    /// Each collector's options as configured (the collector the state was saved with can be built again from them);
    /// nil in a checkpoint written before they were saved.
    public var collectorOptions: [[String: ConfigValue]]?

    /// The fingerprints given.
    public init(
        state: String, layout: String? = nil, collectors: [String]? = nil,
        collectorOptions: [[String: ConfigValue]]? = nil
    ) {
        self.state = state
        self.layout = layout
        self.collectors = collectors
        self.collectorOptions = collectorOptions
    }

    /// The fingerprints of `context`.
    public init(of context: ModelContext) {
        self.init(
            state: context.stateFingerprint, layout: context.layoutFingerprint,
            collectors: context.collectorFingerprints, collectorOptions: context.configuration.collectors.map(\.options)
        )
    }

    /// Writes all but ``state``: the layout fingerprint, then per collector its fingerprint and its options. Options
    /// that ``readParts(from:)`` would refuse (past its bounds: a user collector's free-form option) are written as
    /// unknown (`false`), which leaves every collector's options unknown when read (before, such an option made the
    /// whole checkpoint unreadable at every start).
    public func writeParts(into w: inout StateWriter) {
        w.string(layout ?? "")
        let fingerprints = collectors ?? []
        w.count(fingerprints.count)
        for (i, f) in fingerprints.enumerated() {
            w.string(f)
            var options = StateWriter(capacity: 256)
            ModelContext.value(.map(collectorOptions?[i] ?? [:]), &options)
            var check = StateReader(options.bytes, range: 0..<options.bytes.count)
            if (try? ModelContext.readValue(&check)) != nil, check.isAtEnd {
                for byte in options.bytes { w.byte(byte) }
            } else {
                ModelContext.value(.bool(false), &w)
            }
        }
    }

    /// Reads what ``writeParts(into:)`` wrote into these fingerprints.
    public mutating func readParts(from r: inout StateReader) throws(StateError) {
        layout = try r.string(max: 256)
        let n = try r.count(max: 1 << 16)
        var fingerprints: [String] = []
        var options: [[String: ConfigValue]] = []
        var known = true
        for _ in 0..<n {
            fingerprints.append(try r.string(max: 256))
            if case .map(let m) = try ModelContext.readValue(&r) { options.append(m) } else { known = false }
        }
        collectors = fingerprints
        collectorOptions = known ? options : nil
    }
}

extension ModelContext {
    /// ``stateFingerprint`` of `c` with the reference profile's hash: a canonical encoding (option mappings by sorted
    /// key) of the fields that shape a model's state, hashed. Without `options`, ``layoutFingerprint``: the same but
    /// the collectors' options (their names kept).
    static func fingerprint(of c: ModelConfiguration, referenceSHA256: String, options: Bool = true) -> String {
        var w = StateWriter(capacity: 1024)
        w.string(options ? "mlops-exporter model state 1" : "mlops-exporter model layout 1")
        w.string(c.name)
        w.string(c.task.rawValue)
        Self.strings(c.versions, &w)
        Self.strings(c.classes, &w)
        w.string(c.positiveClass ?? "\u{0}")
        w.count(c.features.count)
        for f in c.features {
            w.string(f.name)
            w.string(f.kind.rawValue)
            w.byte(f.values == nil ? 0 : 1)
            Self.strings(f.values ?? [], &w)
        }
        w.count(c.sensitiveAttributes.count)
        for a in c.sensitiveAttributes {
            w.string(a.name)
            Self.strings(a.groups, &w)
            w.string(a.privileged ?? "\u{0}")
        }
        let window = c.window.duration.components
        w.signed(window.seconds)
        w.signed(window.attoseconds)
        w.count(c.window.slices)
        w.count(c.latencyBuckets.count)
        for b in c.latencyBuckets { w.double(b) }
        w.count(c.collectors.count)
        for collector in c.collectors {
            w.string(collector.name)
            if options { Self.value(.map(collector.options), &w) }
        }
        w.string(referenceSHA256)
        // The drift collector's numeric tails hold each side's distance from the reference range in units of 2^64
        // (425e4c6), where earlier releases summed the values: a window checkpointed by one of those is not restored
        // into the new meaning (its Wasserstein scores would be wrong until the window rolled over).
        if c.collectors.contains(where: { $0.name == "drift" }) {
            w.string("drift tails: distance / 2^64")
            // PSI, KL and Jensen-Shannon count a numeric column of few values value by value (6dd9b81): its window has
            // more slots, so a window saved before is restored as a changed model's (counters kept, windows fresh),
            // not refused as unreadable (the model started empty, its pending predictions lost uncounted).
            w.string("drift: few-valued columns by value for psi, kl_div, jensenshannon")
        }
        // A text-generation model's `llm` section sizes and defines its collector's state (bucket bounds, goodput
        // objectives); served names, adapters and the catch-all only route. Nothing is written without a section, so
        // the fingerprints of other models are those of earlier releases.
        if let llm = c.llm {
            w.string("llm")
            for buckets in [llm.ttftBuckets, llm.itlBuckets, llm.tpotBuckets, llm.durationBuckets] {
                w.count(buckets.count)
                for b in buckets { w.double(b) }
            }
            for objective in [llm.objectives.ttftSeconds, llm.objectives.tpotSeconds, llm.objectives.durationSeconds] {
                w.byte(objective == nil ? 0 : 1)
                w.double(objective ?? 0)
            }
        }
        return SHA256.hex(w.bytes)
    }

    /// ``collectorFingerprints`` of `c`: per collector, its name and options hashed.
    static func collectorFingerprints(of c: ModelConfiguration) -> [String] {
        c.collectors.map { collector in
            var w = StateWriter(capacity: 256)
            w.string("mlops-exporter collector options 1")
            w.string(collector.name)
            Self.value(.map(collector.options), &w)
            return SHA256.hex(w.bytes)
        }
    }

    /// Reads what ``value(_:_:)`` wrote, nested at most 32 levels.
    static func readValue(_ r: inout StateReader, depth: Int = 0) throws(StateError) -> ConfigValue {
        guard depth < 32 else { throw .malformed("options nested too deep") }
        switch try r.byte() {
        case 1: return .string(try r.string(max: 1 << 16))
        case 2: return .number(try r.double())
        case 3: return .bool(true)
        case 4: return .bool(false)
        case 5:
            var items: [ConfigValue] = []
            for _ in 0..<(try r.count(max: 1 << 16)) { items.append(try readValue(&r, depth: depth + 1)) }
            return .list(items)
        case 6:
            var m: [String: ConfigValue] = [:]
            for _ in 0..<(try r.count(max: 1 << 16)) {
                let key = try r.string(max: 4096)
                m[key] = try readValue(&r, depth: depth + 1)
            }
            return .map(m)
        case let kind: throw .malformed("option value of kind \(kind)")
        }
    }

    static func strings(_ values: [String], _ w: inout StateWriter) {
        w.count(values.count)
        for v in values { w.string(v) }
    }

    /// A canonical encoding of an option value (mappings by sorted key).
    static func value(_ v: ConfigValue, _ w: inout StateWriter) {
        switch v {
        case .string(let s):
            w.byte(1)
            w.string(s)
        case .number(let n):
            w.byte(2)
            w.double(n)
        case .bool(let b):
            w.byte(b ? 3 : 4)
        case .list(let items):
            w.byte(5)
            w.count(items.count)
            for item in items { value(item, &w) }
        case .map(let m):
            w.byte(6)
            w.count(m.count)
            for key in m.keys.sorted() {
                w.string(key)
                value(m[key]!, &w)
            }
        }
    }
}
