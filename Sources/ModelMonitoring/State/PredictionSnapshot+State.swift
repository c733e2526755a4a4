import Ingestion

extension PredictionSnapshot {
    /// Writes the snapshot compactly: a flags byte (bit 0: its time differs from the arrival time `arrival` and
    /// follows; bit 1: a value; bit 2: a score), version and class as varints, then probabilities and groups.
    func save(into w: inout StateWriter, arrival: Double) {
        let ownTime = time != arrival
        let flags: UInt8 = (ownTime ? 1 : 0) | (value.isNaN ? 0 : 2) | (score.isNaN ? 0 : 4)
        w.byte(flags)
        if ownTime { w.double(time) }
        w.count(version)
        w.signed(Int64(predictedClass))
        if !value.isNaN { w.double(value) }
        if !score.isNaN { w.double(score) }
        w.count(probabilities.count)
        for i in 0..<probabilities.count { w.double(probabilities[i]) }
        w.count(groups.count)
        for i in 0..<groups.count { w.count(groups[i]) }
    }

    /// Reads a snapshot written by ``save(into:arrival:)``, checking every index against `context` (so that a
    /// restored prediction can never address a slot its collectors do not have).
    static func restore(from r: inout StateReader, arrival: Double, context: ModelContext) throws(StateError) -> Self {
        let flags = try r.byte()
        guard flags < 8 else { throw .malformed("prediction flags \(flags)") }
        let time = flags & 1 != 0 ? try r.double() : arrival
        let version = try r.count(max: context.versionLabels.count - 1)
        let predictedClass = try r.signed()
        let classes = context.classLabels.count
        guard predictedClass >= -1 && predictedClass < Int64(classes) else {
            throw .malformed("predicted class \(predictedClass) of \(classes)")
        }
        let value = flags & 2 != 0 ? try r.double() : .nan
        let score = flags & 4 != 0 ? try r.double() : .nan
        let n = try r.count(max: Swift.max(classes, context.configuration.classes.count))
        var probabilities: [Double] = []
        probabilities.reserveCapacity(n)
        for _ in 0..<n { probabilities.append(try r.double()) }
        // What ingestion accepts, no more: a non-finite time, value or score, or a probability outside [0, 1] (which
        // a checksum that holds cannot rule out) would make the sums of the collectors it joins into invalid,
        // leaving them out of every scrape.
        guard time.isFinite, flags & 2 == 0 || SummedValueLimit.accepts(value), flags & 4 == 0 || score.isFinite,
            probabilities.allSatisfy({ $0 >= 0 && $0 <= 1 })
        else { throw .malformed("a prediction's time, value, score or probability that ingestion refuses") }
        let attributes = context.groupLabels.count
        let groupCount = try r.count(max: attributes)
        guard groupCount == attributes else { throw .mismatch("\(groupCount) groups saved, \(attributes) attributes") }
        let groups = try GroupIndices.read(count: groupCount) { a throws(StateError) in
            try r.count(max: context.groupLabels[a].count - 1)
        }
        return PredictionSnapshot(
            time: time, version: version, predictedClass: Int(predictedClass), value: value, score: score,
            probabilities: probabilities, groups: groups)
    }

    /// Reads past a snapshot without checking it.
    static func skip(from r: inout StateReader) throws(StateError) {
        let flags = try r.byte()
        if flags & 1 != 0 { _ = try r.fixed64() }
        _ = try r.varint()
        _ = try r.varint()
        if flags & 2 != 0 { _ = try r.fixed64() }
        if flags & 4 != 0 { _ = try r.fixed64() }
        for _ in 0..<(try r.count(max: 1 << 16)) { _ = try r.fixed64() }
        for _ in 0..<(try r.count(max: 1 << 16)) { _ = try r.varint() }
    }
}
