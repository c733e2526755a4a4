import Exposition

/// SplitMix64: small, seedable, and the same sequence on every platform.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Generates a random registry plan for property tests.
///
/// Names are valid and also clean for `promtool check metrics` (its lint rules flag type names, unit
/// abbreviations, non-base units and camelCase), so promtool must exit 0. Label values, help texts and
/// exemplar labels use random Unicode scalars, including quotes, backslashes, line feeds, other control
/// characters and emoji. Values use random bit patterns and the special cases around them.
///
/// Restrictions, each because of a known problem elsewhere (see the conformance report):
/// - within a family, label values that are canonically equivalent but byte-different (`é` vs `e` +
///   U+0301) are not generated: the library merges them (bug; covered by a dedicated scenario);
/// - histogram observations are non-negative unless a bound is negative, and summary observations are
///   non-negative: negative sums and quantiles make the OpenMetrics output invalid (bug; scenario);
/// - exemplar label values contain no `"` (prometheus_client's OpenMetrics parser mis-tokenises an
///   escaped quote inside an exemplar; `escaping-golden` checks those bytes), and exemplar labels stay
///   within the OpenMetrics limit of 128 code points (the `exemplar-limit` scenario covers the limit);
/// - help texts start and end with a letter: prometheus_client's text parser strips surrounding
///   whitespace from HELP lines.
struct RandomPlanner {
    var rng: SplitMix64
    var usedNames = Set<String>()

    init(seed: UInt64) { rng = SplitMix64(state: seed) }

    // MARK: - Primitives

    mutating func chance(_ p: Double) -> Bool { Double(rng.next() >> 11) * 0x1p-53 < p }
    mutating func int(_ r: ClosedRange<Int>) -> Int { Int.random(in: r, using: &rng) }
    mutating func pick<T>(_ xs: [T]) -> T { xs[int(0...(xs.count - 1))] }
    mutating func unit01() -> Double { Double(rng.next() >> 11) * 0x1p-53 }

    // MARK: - Names

    static let forbiddenTokens: Set<String> = [
        "counter", "gauge", "histogram", "summary", "untyped", "total", "created", "count", "sum", "bucket", "info",
        "gcount", "gsum", "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d", "le",
        "quantile",
    ]
    static let nonBaseUnits = [
        "minutes", "hours", "days", "weeks", "kelvins", "fahrenheit", "rankine", "inches", "yards", "miles", "bits",
        "calories", "pounds", "ounces",
    ]
    static let letters = Array("abcdefghijklmnopqrstuvwxyz")
    static let alphanumerics = Array("abcdefghijklmnopqrstuvwxyz0123456789")

    mutating func token(upper: Bool, first: Bool) -> String {
        while true {
            var s = String(pick(first ? Self.letters : Self.alphanumerics))
            for _ in 0..<int(0...7) { s.append(pick(Self.alphanumerics)) }
            if upper { s = s.uppercased() }
            let lower = s.lowercased()
            if Self.forbiddenTokens.contains(lower) || Self.nonBaseUnits.contains(where: { lower.hasSuffix($0) }) {
                continue
            }
            return s
        }
    }

    mutating func identifier(tokens: ClosedRange<Int>) -> String {
        let upper = chance(0.2)
        return (0..<int(tokens)).map { token(upper: upper, first: $0 == 0) }.joined(separator: "_")
    }

    /// A metric name used by no other family (no name ends in a reserved suffix, so none can clash).
    mutating func metricName(unit: String = "") -> String {
        while true {
            var name = identifier(tokens: 1...4)
            if !unit.isEmpty { name += "_" + unit }
            if usedNames.insert(name).inserted { return name }
        }
    }

    mutating func labelNames(_ count: Int, avoiding: String) -> [String] {
        var names: [String] = []
        while names.count < count {
            let n = identifier(tokens: 1...2)
            if n != avoiding && !names.contains(n) { names.append(n) }
        }
        return names
    }

    // MARK: - Text

    static let specials: [String] = [
        "\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{7F}", "\u{2028}", "\u{2029}", "\u{85}", "\u{FEFF}", "\u{301}",
        "\u{200D}", "🚀", "👨‍👩‍👧‍👦", "🇩🇪", "é", "ü", "中", "\\n", "\\\"", "{", "}", ",", "=", "#", " # ",
    ]

    mutating func scalar() -> String {
        switch int(0...99) {
        case 0..<40: return String(UnicodeScalar(UInt8(int(0x20...0x7E))))
        case 40..<55: return pick(Self.specials)
        case 55..<65:
            let v = pick([int(0x00...0x1F), int(0x7F...0x9F)])
            return String(Character(Unicode.Scalar(UInt32(v))!))
        case 65..<82:
            while true {
                let v = UInt32(int(0xA0...0xFFFD))
                if let s = Unicode.Scalar(v) { return String(Character(s)) }
            }
        default:
            return String(Character(Unicode.Scalar(UInt32(int(0x10000...0x10FFFF)))!))
        }
    }

    mutating func text(length: Int, excluding: String? = nil) -> String {
        var s = ""
        while s.unicodeScalars.count < length {
            let piece = scalar()
            if let excluding, piece.contains(excluding) { continue }
            s += piece
        }
        return s
    }

    mutating func labelValue() -> String {
        switch int(0...99) {
        case 0..<10: return ""
        case 10..<80: return text(length: int(1...12))
        case 80..<96: return text(length: int(13...80))
        default: return text(length: int(200...600))
        }
    }

    mutating func help() -> String {
        String(pick(Self.letters)) + text(length: int(0...40)) + String(pick(Self.letters).uppercased())
    }

    /// Label-value tuples, distinct even under Swift's canonical-equivalence `==`.
    mutating func labelTuples(_ count: Int, width: Int) -> [[String]] {
        var tuples: [[String]] = []
        var attempts = 0
        while tuples.count < count && attempts < 100 {
            attempts += 1
            let t = (0..<width).map { _ in labelValue() }
            if !tuples.contains(t) { tuples.append(t) }
        }
        return tuples
    }

    mutating func distinctStrings(_ count: Int) -> [String] {
        var out: [String] = []
        var attempts = 0
        while out.count < count && attempts < 100 {
            attempts += 1
            let s = labelValue()
            if !out.contains(s) { out.append(s) }
        }
        return out.isEmpty ? ["only"] : out
    }

    // MARK: - Numbers

    static let powersOfTen: [Double] = [1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12]
    static let notable: [Double] = [
        0, -0.0, 1, -1, 0.1, 0.5, 1e6, 1e-5, 1e16, 1e21, 1e22, .pi, .greatestFiniteMagnitude,
        .leastNonzeroMagnitude, .leastNormalMagnitude, 123_456.789, 1e-300, 1e300, 9_007_199_254_740_992,
        100_000, 0.0001, 1e-4, 2.5, 1e15 + 0.5,
    ]

    mutating func double(finite: Bool, nonNegative: Bool, maxMagnitude: Double = .greatestFiniteMagnitude) -> Double {
        while true {
            var x: Double
            switch int(0...12) {
            case 0: x = Double(bitPattern: rng.next())
            case 1: x = Double(bitPattern: rng.next() & 0x000F_FFFF_FFFF_FFFF)
            case 2: x = Double(int(-1_000_000...1_000_000))
            case 3: x = 9_007_199_254_740_992 + Double(int(-4...4)) * 2
            case 4: x = Double(rng.next())
            case 5: x = Double(int(-1_000_000...1_000_000)) / pick(Self.powersOfTen)
            case 6: x = pick(Self.notable)
            case 7: x = Double(sign: .plus, exponent: int(200...1023), significand: 1 + unit01())
            case 8: x = Double(sign: .plus, exponent: int(-1074 ... -900), significand: 1 + unit01())
            case 9: x = Double(nan: Double.RawSignificand(rng.next() & 0x3_FFFF_FFFF_FFFF), signaling: false)
            case 10: x = pick([Double.infinity, -Double.infinity])
            default: x = unit01() * 1000
            }
            if chance(0.3) { x = -x }
            if finite && !x.isFinite { continue }
            if nonNegative {
                if x.isNaN { continue }
                x = x.magnitude
            }
            if x.magnitude > maxMagnitude { continue }
            return x
        }
    }

    mutating func timestamp() -> Double? {
        chance(0.4) ? nil : Double(int(0...2_000_000_000_000)) / 1000
    }

    /// Exemplar labels: at most 128 code points in names and values together, no `"` in values.
    mutating func exemplar(value: Double) -> ExemplarPlan {
        var labels: [(String, String)] = []
        var used = 0
        for _ in 0..<int(0...3) {
            let name = identifier(tokens: 1...2)
            if labels.contains(where: { $0.0 == name }) { continue }
            let value = text(length: int(0...30), excluding: "\"")
            let size = name.unicodeScalars.count + value.unicodeScalars.count
            if used + size > 128 { break }
            used += size
            labels.append((name, value))
        }
        return ExemplarPlan(labels: labels, value: value, timestamp: timestamp())
    }

    // MARK: - Families

    mutating func bounds() throws -> [Double]? {
        var b: [Double]
        switch int(0...5) {
        case 0: return nil
        case 1, 2:
            let nonNegative = int(1...2) == 2
            var values: [Double] = []
            for _ in 0..<int(1...10) { values.append(double(finite: true, nonNegative: nonNegative)) }
            b = []
            for v in values.sorted() where b.last.map({ $0 < v }) ?? true { b.append(v) }
        case 3:
            b = try Buckets.linear(
                start: pick([0, 0.5, -1, 1e-3, 1e6]), width: pick([0.1, 0.25, 1, 1000]), count: int(1...10))
        case 4:
            b = try Buckets.exponential(
                start: pick([1e-6, 0.001, 1, 3]), factor: pick([1.5, 2, 10]), count: int(1...12))
        default:
            b = try Buckets.exponentialRange(min: 0.001, max: pick([1, 1000, 1e9]), count: int(2...10))
        }
        if chance(0.2) { b.append(.infinity) }
        return b
    }

    mutating func observations(allowNegative: Bool, bounds: [Double], exemplars: Bool) -> [Op] {
        var ops: [Op] = []
        for _ in 0..<int(0...25) {
            var v: Double
            switch int(0...99) {
            case 0..<3: v = .nan
            case 3..<6: v = .infinity
            case 6..<30 where !bounds.isEmpty: v = pick(bounds)
            default: v = double(finite: true, nonNegative: !allowNegative, maxMagnitude: 1e300)
            }
            if !allowNegative && v < 0 { v = -v }
            if exemplars && v.isFinite && chance(0.15) {
                ops.append(.observeExemplar(v, exemplar(value: v)))
            } else {
                ops.append(.observe(v))
            }
        }
        return ops
    }

    mutating func counterOps() -> [Op] {
        var ops: [Op] = []
        for _ in 0..<int(0...8) {
            switch int(0...9) {
            case 0, 1: ops.append(.inc)
            case 2: ops.append(.incInt(int(0...1000)))
            case 3: ops.append(.incInt(int(0...(1 << 40))))
            case 4: ops.append(.incInt(-int(1...10)))
            case 5: ops.append(.incDouble(pick([-1, -.infinity, .infinity, .nan, -0.5])))
            case 6:
                let d = double(finite: true, nonNegative: true, maxMagnitude: 1e300)
                ops.append(.incExemplar(d, exemplar(value: d)))
            default: ops.append(.incDouble(double(finite: true, nonNegative: true, maxMagnitude: 1e300)))
            }
        }
        return ops
    }

    mutating func gaugeOps() -> [Op] {
        var ops: [Op] = [.set(double(finite: false, nonNegative: false))]
        for _ in 0..<int(0...2) {
            let d = double(finite: false, nonNegative: false)
            ops.append(chance(0.5) ? .add(d) : .sub(d))
        }
        return ops
    }

    static let units = ["seconds", "bytes", "celsius", "meters", "ratio", "joules", "volts"]

    mutating func registered(_ kind: Kind) throws -> FamilyPlan {
        let unitAllowed = kind == .counter || kind == .gauge || kind == .histogram || kind == .summary
        let unit = unitAllowed && chance(0.25) ? pick(Self.units) : ""
        let name = metricName(unit: unit)
        var apiName = name
        if kind == .counter && chance(0.5) { apiName += "_total" }
        if kind == .info && chance(0.5) { apiName += "_info" }
        var plan = FamilyPlan(kind: kind, apiName: apiName, name: name, help: help(), unit: unit)
        let convenience = chance(0.3)
        plan.labelNames = convenience ? [] : labelNames(int(0...3), avoiding: name)
        let tuples = plan.labelNames.isEmpty ? [[]] : labelTuples(int(1...4), width: plan.labelNames.count)
        plan.style = convenience ? .convenience : (chance(0.5) ? .positional : .dictionary)
        switch kind {
        case .histogram:
            plan.buckets = try bounds()
            let finite = Truth.finiteBounds(plan.buckets ?? Buckets.defaultSeconds)
            let negative = finite.contains { $0 < 0 }
            plan.series = tuples.map {
                SeriesPlan(labelValues: $0, ops: observations(allowNegative: negative, bounds: finite, exemplars: true))
            }
        case .summary:
            if chance(0.7) {
                var qs: [Double] = []
                for _ in 0..<int(1...4) {
                    let q =
                        chance(0.5)
                        ? pick([0.5, 0.9, 0.95, 0.99, 0.999, 0.25, 0.75, 0.01, 0.001, 1e-05, 0.1]) : unit01()
                    if q > 0 && !qs.contains(q) { qs.append(q) }
                }
                plan.quantiles = qs
            }
            plan.series = tuples.map {
                SeriesPlan(labelValues: $0, ops: observations(allowNegative: false, bounds: [], exemplars: false))
            }
        case .counter:
            plan.series = tuples.map { SeriesPlan(labelValues: $0, ops: counterOps()) }
        case .gauge:
            plan.series = tuples.map { SeriesPlan(labelValues: $0, ops: gaugeOps()) }
        case .info:
            plan.series = tuples.map { SeriesPlan(labelValues: $0, ops: []) }
        case .stateset:
            plan.states = distinctStrings(int(1...6))
            plan.series = tuples.map { t in
                var ops: [Op] = []
                if chance(0.4) {
                    ops.append(.only(pick(plan.states)))
                } else {
                    for _ in 0..<int(0...5) { ops.append(.state(pick(plan.states), chance(0.6))) }
                }
                return SeriesPlan(labelValues: t, ops: ops)
            }
        case .unknown:
            break
        }
        return plan
    }

    mutating func collected(_ kind: Kind) throws -> CollectedFamilyPlan {
        let unitAllowed =
            kind == .counter || kind == .gauge || kind == .histogram || kind == .summary || kind == .unknown
        let unit = unitAllowed && chance(0.25) ? pick(Self.units) : ""
        let name = metricName(unit: unit)
        var emitName = name
        if kind == .counter && chance(0.5) { emitName += "_total" }
        if kind == .info && chance(0.5) { emitName += "_info" }
        var plan = CollectedFamilyPlan(kind: kind, name: name, emitName: emitName, help: help(), unit: unit)
        plan.labelNames = labelNames(int(0...3), avoiding: name)
        let tuples = plan.labelNames.isEmpty ? [[]] : labelTuples(int(1...4), width: plan.labelNames.count)
        for t in tuples {
            let point: CollectedPoint
            switch kind {
            case .counter:
                point = .counter(
                    double(finite: true, nonNegative: true),
                    created: chance(0.5) ? Double(int(0...2_000_000_000_000)) / 1000 : nil)
            case .gauge: point = .gauge(double(finite: false, nonNegative: false))
            case .unknown: point = .unknown(double(finite: false, nonNegative: false))
            case .info: point = .info
            case .stateset: point = .stateSet(distinctStrings(int(1...5)).map { ($0, chance(0.5)) })
            case .histogram:
                let b = try bounds() ?? Buckets.defaultSeconds
                let finite = Truth.finiteBounds(b)
                let ops = observations(allowNegative: finite.contains { $0 < 0 }, bounds: finite, exemplars: false)
                point = .histogram(bounds: b, observations: Truth.observations(ops))
            case .summary:
                var qs: [(Double, Double)] = []
                for _ in 0..<int(0...4) {
                    let q = unit01()
                    if q > 0 && !qs.contains(where: { $0.0 == q }) {
                        qs.append((q, chance(0.1) ? .nan : double(finite: true, nonNegative: true)))
                    }
                }
                point = .summary(
                    quantiles: qs, count: UInt64(int(0...1_000_000)),
                    sum: double(finite: true, nonNegative: true, maxMagnitude: 1e300))
            }
            plan.series.append((t, point))
        }
        return plan
    }

    mutating func plan(count: Int) throws -> RegistryPlan {
        var p = RegistryPlan()
        p.collectorName = "random_collector"
        let registeredKinds: [Kind] = [.counter, .gauge, .histogram, .summary, .info, .stateset]
        let collectedKinds: [Kind] = [.counter, .gauge, .histogram, .summary, .info, .stateset, .unknown]
        for _ in 0..<count {
            if chance(0.2) {
                p.collected.append(try collected(pick(collectedKinds)))
            } else {
                p.families.append(try registered(pick(registeredKinds)))
            }
        }
        return p
    }
}
