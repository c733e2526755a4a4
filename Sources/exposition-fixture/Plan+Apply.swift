import Exposition

extension RegistryPlan {
    /// Registers every family and the collector on `registry` and applies every update.
    func apply(to registry: Registry) throws {
        for family in families { try family.apply(to: registry) }
        if !collected.isEmpty { try registry.register(PlanCollector(name: collectorName, families: collected)) }
    }
}

extension FamilyPlan {
    func apply(to registry: Registry) throws {
        let r = registry
        switch kind {
        case .counter:
            if style == .convenience {
                try apply(try r.counter(apiName, help: help, unit: unit), series[0].ops)
            } else {
                let f = try r.counterFamily(apiName, help: help, unit: unit, labelNames: labelNames)
                for s in series { try apply(try handle(f, s), s.ops) }
            }
        case .gauge:
            if style == .convenience {
                apply(try r.gauge(apiName, help: help, unit: unit), series[0].ops)
            } else {
                let f = try r.gaugeFamily(apiName, help: help, unit: unit, labelNames: labelNames)
                for s in series { apply(try handle(f, s), s.ops) }
            }
        case .histogram:
            let bounds = buckets ?? Buckets.defaultSeconds
            if style == .convenience {
                try apply(try r.histogram(apiName, help: help, unit: unit, buckets: bounds), series[0].ops)
            } else {
                let f = try r.histogramFamily(
                    apiName, help: help, unit: unit, labelNames: labelNames, buckets: bounds)
                for s in series { try apply(try handle(f, s), s.ops) }
            }
        case .summary:
            let q = quantiles.map { SummaryQuantiles(quantiles: $0) }
            if style == .convenience {
                apply(try r.summary(apiName, help: help, unit: unit, quantiles: q), series[0].ops)
            } else {
                let f = try r.summaryFamily(apiName, help: help, unit: unit, labelNames: labelNames, quantiles: q)
                for s in series { apply(try handle(f, s), s.ops) }
            }
        case .info:
            if style == .convenience {
                try r.info(
                    apiName, help: help,
                    labels: Dictionary(uniqueKeysWithValues: zip(labelNames, series[0].labelValues)))
            } else {
                let f = try r.infoFamily(apiName, help: help, labelNames: labelNames)
                for s in series { _ = try handle(f, s) }
            }
        case .stateset:
            if style == .convenience {
                try apply(try r.stateSet(apiName, help: help, states: states), series[0].ops)
            } else {
                let f = try r.stateSetFamily(apiName, help: help, labelNames: labelNames, states: states)
                for s in series { try apply(try handle(f, s), s.ops) }
            }
        case .unknown:
            throw FixtureError("registered families cannot be of type unknown")
        }
    }

    private func handle<S>(_ family: MetricFamily<S>, _ s: SeriesPlan) throws -> S {
        if style == .dictionary {
            return try family.labels(Dictionary(uniqueKeysWithValues: zip(labelNames, s.labelValues)))
        }
        return try family.labels(s.labelValues)
    }

    private func apply(_ c: Counter, _ ops: [Op]) throws {
        for op in ops {
            switch op {
            case .inc: c.inc()
            case .incInt(let n): c.inc(by: n)
            case .incDouble(let d): c.inc(by: d)
            case .incExemplar(let d, let e): c.inc(by: d, exemplar: try e.make())
            default: preconditionFailure("not a counter operation: \(op)")
            }
        }
    }

    private func apply(_ g: Gauge, _ ops: [Op]) {
        for op in ops {
            switch op {
            case .set(let v): g.set(v)
            case .add(let v): g.inc(by: v)
            case .sub(let v): g.dec(by: v)
            default: preconditionFailure("not a gauge operation: \(op)")
            }
        }
    }

    private func apply(_ h: Histogram, _ ops: [Op]) throws {
        for op in ops {
            switch op {
            case .observe(let v): h.observe(v)
            case .observeExemplar(let v, let e): h.observe(v, exemplar: try e.make())
            default: preconditionFailure("not a histogram operation: \(op)")
            }
        }
    }

    private func apply(_ s: Summary, _ ops: [Op]) {
        for op in ops {
            guard case .observe(let v) = op else { preconditionFailure("not a summary operation: \(op)") }
            s.observe(v)
        }
    }

    private func apply(_ s: StateSet, _ ops: [Op]) throws {
        for op in ops {
            switch op {
            case .state(let name, let on): try s.set(name, on)
            case .only(let name): try s.setOnly(name)
            default: preconditionFailure("not a state-set operation: \(op)")
            }
        }
    }
}

/// A collector that emits what a plan says, in order, every time it runs.
struct PlanCollector: Collector {
    let name: String
    let families: [CollectedFamilyPlan]
    let schema: CollectorSchema
    /// The handle of each family, in plan order.
    let handles: [FamilyHandle]

    init(name: String, families: [CollectedFamilyPlan]) throws {
        self.name = name
        self.families = families
        var schema = CollectorSchema()
        handles = try families.map {
            try schema.declare(
                MetricDescriptor(
                    name: $0.name, type: $0.kind.metricType, help: $0.help, unit: $0.unit, labelNames: $0.labelNames))
        }
        self.schema = schema
    }

    func collect(into sink: inout CollectorSink) throws {
        for (family, n) in zip(families, handles) {
            for s in family.series {
                switch s.point {
                case .counter(let v, let created):
                    sink.counter(CounterHandle(n)!, s.labelValues, value: v, created: created)
                case .gauge(let v): sink.gauge(GaugeHandle(n)!, s.labelValues, value: v)
                case .unknown(let v): sink.unknown(UnknownHandle(n)!, s.labelValues, value: v)
                case .info: sink.info(InfoHandle(n)!, s.labelValues)
                case .stateSet(let states): sink.stateSet(StateSetHandle(n)!, s.labelValues, states: states)
                case .histogram(let bounds, let observations):
                    sink.histogram(
                        HistogramHandle(n)!, s.labelValues, bounds: bounds,
                        counts: Truth.perBucketCounts(bounds: bounds, observations: observations),
                        sum: Truth.sequentialSum(observations))
                case .summary(let quantiles, let count, let sum):
                    sink.summary(SummaryHandle(n)!, s.labelValues, quantiles: quantiles, count: count, sum: sum)
                }
            }
        }
    }
}

extension Kind {
    var metricType: MetricType {
        switch self {
        case .counter: return .counter
        case .gauge: return .gauge
        case .histogram: return .histogram
        case .summary: return .summary
        case .info: return .info
        case .stateset: return .stateset
        case .unknown: return .unknown
        }
    }
}
