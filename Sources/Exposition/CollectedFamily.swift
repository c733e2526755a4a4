/// How a family written by collectors is rendered: its metadata once, then the series of every part that
/// emitted into it, in part order, each part's in emission order.
struct CollectedFamily: Sendable {
    let names: FamilyNames

    init(_ descriptor: MetricDescriptor) { names = FamilyNames(descriptor) }

    var descriptor: MetricDescriptor { names.descriptor }

    /// Writes the family; nothing when no part emitted a series.
    func render(_ chunks: [[CollectedSeries]], into out: inout ByteWriter, context: RenderContext) {
        guard chunks.contains(where: { !$0.isEmpty }) else { return }
        out.append(contentsOf: context.format == .openMetrics ? names.metadataOpenMetrics : names.metadataText)
        for chunk in chunks { render(chunk, into: &out, context: context) }
    }

    private func render(_ series: [CollectedSeries], into out: inout ByteWriter, context: RenderContext) {
        let om = context.format == .openMetrics
        // Through a buffer pointer, the plain samples (most of them) first: their fields are read in place, not
        // copied (a copy of a series retains its labels).
        series.withUnsafeBufferPointer { series in
            for i in series.indices {
                switch series[i].value {
                case .gauge(let v), .unknown(let v), .counter(let v, created: nil):
                    out.appendSeries(names.main, series[i].labels)
                    out.appendSampleValue(v)
                    out.append(UInt8(ascii: "\n"))
                    continue
                default: break
                }
                let s = series[i]
                let labels = s.labels
                switch s.value {
                case .counter(let v, let created):
                    out.appendSeries(names.main, labels)
                    out.appendSampleValue(v)
                    out.append(UInt8(ascii: "\n"))
                    if let created, om, context.emitCreated {
                        out.appendSeries(names.created, labels)
                        out.appendSampleValue(created)
                        out.append(UInt8(ascii: "\n"))
                    }
                case .gauge(let v), .unknown(let v):
                    out.appendSeries(names.main, labels)
                    out.appendSampleValue(v)
                    out.append(UInt8(ascii: "\n"))
                case .lines(let bytes, _):
                    out.append(contentsOf: bytes)
                case .formatted(let bytes):
                    out.appendSeries(names.main, labels)
                    out.append(contentsOf: bytes)
                    out.append(UInt8(ascii: "\n"))
                case .info:
                    out.appendSeries(names.main, labels)
                    out.append(UInt8(ascii: "1"), UInt8(ascii: "\n"))
                case .stateSet(let states):
                    for state in states {
                        out.appendSeries(names.main, labels, state.label)
                        out.append(state.on ? UInt8(ascii: "1") : UInt8(ascii: "0"))
                        out.append(UInt8(ascii: "\n"))
                    }
                case .histogram(let layout, let counts, let sum, let negativeObserved):
                    let le = om ? layout.leOpenMetrics : layout.leText
                    var running: UInt64 = 0
                    for i in counts.indices {
                        running &+= counts[i]
                        out.appendSeries(names.main, labels, le[i])
                        out.appendInteger(running)
                        out.append(UInt8(ascii: "\n"))
                    }
                    out.appendSumAndCount(
                        names, labels, sum: sum, count: running,
                        negativeBounds: layout.hasNegativeBound || negativeObserved, format: context.format)
                case .summary(let quantiles, let count, let sum):
                    for q in quantiles where !om || OpenMetricsRules.allowsQuantile(q.value) {
                        out.appendSeries(
                            names.main, labels, Array("quantile=\"\(FloatFormat.goString(q.quantile))\"".utf8))
                        out.appendSampleValue(q.value)
                        out.append(UInt8(ascii: "\n"))
                    }
                    out.appendSumAndCount(
                        names, labels, sum: sum, count: count, negativeBounds: false, format: context.format)
                }
            }
        }
    }
}

/// What one run of a part emitted, once checked: the series per family of its schema, and per family the
/// combined hash of its label sets in emission order (0 when it emitted none).
struct PartOutput: Sendable {
    let chunks: [[CollectedSeries]]
    let hashes: [UInt64]
}

extension CollectorSink {
    /// The emitted series per family of the schema, once checked: no recorded problem, and no series twice in
    /// a family. A family whose label sets come in the same sequence as at the part's last successful check
    /// is not checked again (the sequence is compared by a combined hash).
    func finish(verified: inout [UInt64]) -> Result<PartOutput, CollectorFailure> {
        if let problem { return .failure(.invalid(problem)) }
        if verified.count != chunks.count { verified = Array(repeating: 0, count: chunks.count) }
        var hashes = [UInt64](repeating: 0, count: chunks.count)
        for (i, chunk) in chunks.enumerated() where !chunk.isEmpty {
            var sequence = HashSequence()
            for s in chunk { sequence.add(s.hash) }
            let combined = sequence.value
            hashes[i] = combined
            if (chunk.count == 1 && !chunk[0].isBlock) || combined == verified[i] { continue }
            if let duplicate = Self.duplicate(in: chunk) {
                return .failure(
                    .invalid(
                        "family \"\(descriptors[i].name)\": series {\(String(decoding: duplicate, as: UTF8.self))} emitted twice"
                    ))
            }
            verified[i] = combined
        }
        return .success(PartOutput(chunks: chunks, hashes: hashes))
    }

    /// The labels of a series emitted twice, if any: sorted by hash, equal hashes compared byte for byte (a
    /// block of constant lines takes part by the hashes of its lines' labels, so a hash it shares counts as
    /// the same series).
    static func duplicate(in chunk: [CollectedSeries]) -> [UInt8]? {
        var entries: [(hash: UInt64, labels: [UInt8]?)] = []
        for s in chunk {
            if case .lines(_, let hashes) = s.value {
                for h in hashes { entries.append((h, nil)) }
            } else {
                entries.append((s.hash, s.labels))
            }
        }
        entries.sort { $0.hash < $1.hash }
        var i = 1
        while i < entries.count {
            var j = i - 1
            // Every earlier series with the same hash.
            while j >= 0 && entries[j].hash == entries[i].hash {
                if entries[j].labels == nil || entries[i].labels == nil || entries[j].labels == entries[i].labels {
                    return entries[i].labels ?? entries[j].labels ?? Array("(a constant series)".utf8)
                }
                j -= 1
            }
            i += 1
        }
        return nil
    }
}
