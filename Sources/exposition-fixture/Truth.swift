/// The expected exposition, computed from the plan: the values the fixture fed in, combined by the
/// rules the formats and the library's documentation state. Nothing here reads a metric object.
enum Truth {
    static let twoTo53: Double = 9_007_199_254_740_992

    // MARK: - Arithmetic on the inputs

    /// Sum of the non-NaN values, added in the order given (the order the fixture observed them).
    static func sequentialSum(_ values: [Double]) -> Double {
        var sum = 0.0
        for v in values where !v.isNaN { sum += v }
        return sum
    }

    /// Histogram bounds without the optional trailing `+Inf` (which the library accepts and drops).
    static func finiteBounds(_ bounds: [Double]) -> [Double] {
        var b = bounds
        if b.last == .infinity { b.removeLast() }
        return b
    }

    /// Cumulative bucket counts, `+Inf` last: for each bound, how many observations are `<=` it,
    /// counted over the sorted observations (NaN observations are refused by the library).
    static func cumulativeCounts(bounds: [Double], observations: [Double]) -> [UInt64] {
        let sorted = observations.filter { !$0.isNaN }.sorted()
        var counts = finiteBounds(bounds).map { bound in UInt64(sorted.prefix { $0 <= bound }.count) }
        counts.append(UInt64(sorted.count))
        return counts
    }

    /// Non-cumulative counts per bucket (`+Inf` last), what `CollectorSink.histogram` takes.
    static func perBucketCounts(bounds: [Double], observations: [Double]) -> [UInt64] {
        let b = finiteBounds(bounds)
        var counts = [UInt64](repeating: 0, count: b.count + 1)
        for v in observations where !v.isNaN { counts[bucketIndex(b, v)] += 1 }
        return counts
    }

    /// The bucket an observation lands in: the first bound `>=` it, else `+Inf`.
    static func bucketIndex(_ finite: [Double], _ v: Double) -> Int {
        finite.firstIndex { v <= $0 } ?? finite.count
    }

    /// Nearest-rank quantile (the library's documented definition): the smallest observation such that
    /// at least `q·n` observations are less than or equal to it. NaN without observations.
    static func nearestRank(_ q: Double, sorted: [Double]) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((q * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count, max(1, rank)) - 1]
    }

    /// A counter's total after `ops`, following `Counter`'s documented contract: negative, NaN and
    /// infinite increments are refused; whole increments below 2^53 are summed exactly as integers,
    /// other increments are summed as doubles in order, and the total is integer + fraction. A total
    /// with no fractional part is an exact integer.
    static func counterTotal(_ ops: [Op]) -> JSON {
        var whole: UInt64 = 0
        var fraction = 0.0
        func add(_ d: Double) {
            guard d >= 0 && d.isFinite else { return }
            if d.truncatingRemainder(dividingBy: 1) == 0 && d < twoTo53 {
                whole += UInt64(d)
            } else {
                fraction += d
            }
        }
        for op in ops {
            switch op {
            case .inc: whole += 1
            case .incInt(let n): if n >= 0 { whole += UInt64(n) }
            case .incDouble(let d): add(d)
            case .incExemplar(let d, _): add(d)
            default: break
            }
        }
        return fraction == 0 ? .uint(whole) : .double(Double(whole) + fraction)
    }

    static func gaugeValue(_ ops: [Op]) -> Double {
        var v = 0.0
        for op in ops {
            switch op {
            case .set(let x): v = x
            case .add(let x): v = v + x
            case .sub(let x): v = v - x
            default: break
            }
        }
        return v
    }

    static func observations(_ ops: [Op]) -> [Double] {
        ops.compactMap { op in
            switch op {
            case .observe(let v): return v
            case .observeExemplar(let v, _): return v
            default: return nil
            }
        }.filter { !$0.isNaN }
    }

    // MARK: - Expected families

    static func sample(
        _ name: String, _ labels: [(String, String)], _ value: JSON, extra: [(String, JSON)] = []
    ) -> JSON {
        .object([("name", .string(name)), ("labels", .labels(labels)), ("value", value)] + extra)
    }

    static func exemplarJSON(_ e: ExemplarPlan) -> JSON {
        .object([
            ("labels", .labels(e.labels)), ("value", .double(e.value)), ("timestamp", .optionalDouble(e.timestamp)),
        ])
    }

    static func family(_ f: FamilyPlan) -> JSON {
        var samples: [JSON] = []
        for s in f.series {
            let labels = Array(zip(f.labelNames, s.labelValues))
            switch f.kind {
            case .counter:
                var extra: [(String, JSON)] = []
                let lastExemplar = s.ops.reversed().lazy.compactMap { op -> ExemplarPlan? in
                    if case .incExemplar(let d, let e) = op, d >= 0, d.isFinite { return e }
                    return nil
                }.first
                if let e = lastExemplar { extra.append(("exemplar", exemplarJSON(e))) }
                samples.append(sample(f.name + "_total", labels, counterTotal(s.ops), extra: extra))
                samples.append(sample(f.name + "_created", labels, .null, extra: [("created", .bool(true))]))
            case .gauge:
                samples.append(sample(f.name, labels, .double(gaugeValue(s.ops))))
            case .histogram:
                let bounds = finiteBounds(f.buckets ?? [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
                let obs = observations(s.ops)
                let cumulative = cumulativeCounts(bounds: bounds, observations: obs)
                var exemplars = [ExemplarPlan?](repeating: nil, count: bounds.count + 1)
                for op in s.ops {
                    if case .observeExemplar(let v, let e) = op, !v.isNaN { exemplars[bucketIndex(bounds, v)] = e }
                }
                for (i, count) in cumulative.enumerated() {
                    var extra: [(String, JSON)] = [("le", .double(i < bounds.count ? bounds[i] : .infinity))]
                    if let e = exemplars[i] { extra.append(("exemplar", exemplarJSON(e))) }
                    samples.append(sample(f.name + "_bucket", labels, .uint(count), extra: extra))
                }
                samples.append(sample(f.name + "_sum", labels, .double(sequentialSum(obs))))
                samples.append(sample(f.name + "_count", labels, .uint(UInt64(obs.count))))
                samples.append(sample(f.name + "_created", labels, .null, extra: [("created", .bool(true))]))
            case .summary:
                let obs = observations(s.ops)
                let sorted = obs.sorted()
                for q in (f.quantiles ?? []).sorted() {
                    samples.append(
                        sample(
                            f.name, labels, .double(nearestRank(q, sorted: sorted)), extra: [("quantile", .double(q))]))
                }
                samples.append(sample(f.name + "_sum", labels, .double(sequentialSum(obs))))
                samples.append(sample(f.name + "_count", labels, .uint(UInt64(obs.count))))
                samples.append(sample(f.name + "_created", labels, .null, extra: [("created", .bool(true))]))
            case .info:
                samples.append(sample(f.name + "_info", labels, .uint(1)))
            case .stateset:
                var on = Set<Int>()
                for op in s.ops {
                    switch op {
                    case .state(let st, let value):
                        let i = f.states.firstIndex { Array($0.utf8) == Array(st.utf8) }!
                        if value { on.insert(i) } else { on.remove(i) }
                    case .only(let st):
                        on = [f.states.firstIndex { Array($0.utf8) == Array(st.utf8) }!]
                    default: break
                    }
                }
                for (i, st) in f.states.enumerated() {
                    samples.append(sample(f.name, labels + [(f.name, st)], .uint(on.contains(i) ? 1 : 0)))
                }
            case .unknown:
                break
            }
        }
        return familyJSON(name: f.name, kind: f.kind, help: f.help, unit: f.unit, source: "registry", samples: samples)
    }

    static func family(_ f: CollectedFamilyPlan) -> JSON {
        var samples: [JSON] = []
        for s in f.series {
            let labels = Array(zip(f.labelNames, s.labelValues))
            switch s.point {
            case .counter(let v, let created):
                samples.append(sample(f.name + "_total", labels, .double(v)))
                if let created {
                    samples.append(
                        sample(f.name + "_created", labels, .double(created), extra: [("created", .bool(true))]))
                }
            case .gauge(let v), .unknown(let v):
                samples.append(sample(f.name, labels, .double(v)))
            case .info:
                samples.append(sample(f.name + "_info", labels, .uint(1)))
            case .stateSet(let states):
                for (st, on) in states { samples.append(sample(f.name, labels + [(f.name, st)], .uint(on ? 1 : 0))) }
            case .histogram(let bounds, let observations):
                let b = finiteBounds(bounds)
                for (i, count) in cumulativeCounts(bounds: b, observations: observations).enumerated() {
                    samples.append(
                        sample(
                            f.name + "_bucket", labels, .uint(count),
                            extra: [("le", .double(i < b.count ? b[i] : .infinity))]))
                }
                let obs = observations.filter { !$0.isNaN }
                samples.append(sample(f.name + "_sum", labels, .double(sequentialSum(obs))))
                samples.append(sample(f.name + "_count", labels, .uint(UInt64(obs.count))))
            case .summary(let quantiles, let count, let sum):
                for (q, v) in quantiles {
                    samples.append(sample(f.name, labels, .double(v), extra: [("quantile", .double(q))]))
                }
                samples.append(sample(f.name + "_sum", labels, .double(sum)))
                samples.append(sample(f.name + "_count", labels, .uint(count)))
            }
        }
        return familyJSON(name: f.name, kind: f.kind, help: f.help, unit: f.unit, source: "collector", samples: samples)
    }

    static func familyJSON(
        name: String, kind: Kind, help: String, unit: String, source: String, samples: [JSON]
    ) -> JSON {
        familyJSON(name: name, kind: kind, help: .string(help), unit: unit, source: source, samples: samples)
    }

    static func familyJSON(name: String, kind: Kind, help: JSON, unit: String, source: String, samples: [JSON]) -> JSON
    {
        .object([
            ("family", .string(name)), ("type", .string(kind.rawValue)), ("help", help), ("unit", .string(unit)),
            ("source", .string(source)), ("samples", .array(samples)),
        ])
    }

    /// Expected families of a plan. Registered families without any series are listed under `absent`
    /// (the library writes nothing, not even metadata, for them).
    static func expected(_ plan: RegistryPlan) -> (families: [JSON], absent: [JSON]) {
        var families: [JSON] = []
        var absent: [JSON] = []
        for f in plan.families {
            if f.series.isEmpty { absent.append(.string(f.name)) } else { families.append(family(f)) }
        }
        for f in plan.collected {
            if f.series.isEmpty { absent.append(.string(f.name)) } else { families.append(family(f)) }
        }
        return (families, absent)
    }
}
