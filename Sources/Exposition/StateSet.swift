import Synchronization

/// A set of named boolean states (`feature_flags{feature_flags="a"} 1`), or an enum when exactly one
/// state is on. OpenMetrics type `stateset`; a gauge in text 0.0.4. States are fixed when the family is
/// created (at most 64) and written in sorted order; their on/off bits live in one atomic.
public final class StateSet: FamilySeries {
    /// Internal per-series data; not part of the API.
    public let _meta: SeriesMetaBox
    let states: StateSetLayout
    let bits = Atomic<UInt64>(0)

    init(meta: SeriesMeta, states: StateSetLayout) {
        _meta = SeriesMetaBox(meta: meta)
        self.states = states
    }

    /// Turns one state on or off. Throws for a state the family does not have.
    public func set(_ state: String, _ on: Bool) throws(ExpositionError) {
        let bit = try states.bit(of: state)
        if on {
            bits.bitwiseOr(bit, ordering: .relaxed)
        } else {
            bits.bitwiseAnd(~bit, ordering: .relaxed)
        }
        _meta.meta.touch(self)
    }

    /// Enum use: turns `state` on and every other state off, in one store.
    public func setOnly(_ state: String) throws(ExpositionError) {
        bits.store(try states.bit(of: state), ordering: .relaxed)
        _meta.meta.touch(self)
    }

    /// Whether `state` is on.
    public func isOn(_ state: String) throws(ExpositionError) -> Bool {
        bits.load(ordering: .relaxed) & (try states.bit(of: state)) != 0
    }

    func render(into out: inout ByteWriter, names: FamilyNames, context: RenderContext) {
        let value = bits.load(ordering: .relaxed)
        let labels = _meta.meta.renderedLabels
        for (i, stateLabel) in states.renderedLabels.enumerated() {
            out.appendSeries(names.main, labels, stateLabel)
            out.append(value & (1 << UInt64(states.bitIndex[i])) != 0 ? UInt8(ascii: "1") : UInt8(ascii: "0"))
            out.append(UInt8(ascii: "\n"))
        }
    }
}

/// The states of a state-set family: sorted for output, with their `name="state"` label text.
final class StateSetLayout: Sendable {
    /// The family name, for errors.
    let name: String
    /// States in the order given at creation; bit i belongs to `given[i]`.
    let given: [String]
    /// For each rendered (sorted) position, the bit index of that state.
    let bitIndex: [Int]
    let renderedLabels: [[UInt8]]

    init(name: String, states: [String]) throws(ExpositionError) {
        guard !states.isEmpty else { throw .invalidState(metric: name, reason: "at least one state is needed") }
        guard states.count <= 64 else { throw .invalidState(metric: name, reason: "at most 64 states are supported") }
        guard Set(states.map { LabelKey(values: [$0]) }).count == states.count else {
            throw .invalidState(metric: name, reason: "duplicate states")
        }
        self.name = name
        given = states
        let order = states.indices.sorted { LabelKey.precedes([states[$0]], [states[$1]]) }
        bitIndex = order
        renderedLabels = order.map { Escaping.renderLabelPairs(names: [name], values: [states[$0]]) }
    }

    func bit(of state: String) throws(ExpositionError) -> UInt64 {
        guard let i = given.firstIndex(where: { $0.sameBytes(state) }) else {
            throw .invalidState(metric: name, reason: "unknown state \"\(state)\"")
        }
        return 1 << UInt64(i)
    }
}
