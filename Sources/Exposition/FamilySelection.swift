import Synchronization

/// Families picked by their sample name (as ``MetricSnapshot`` keys them: a counter by `x_total`), for a reader
/// that needs only those: ``Registry/snapshot(of:timeout:families:)`` runs the parts so that they keep only
/// the selected families' samples, and converts only those.
///
/// Make one selection per set of names and keep it: each part remembers the flags it computed for the last
/// selection it ran with (compared by identity), so a page does not look every family up at every render.
public final class FamilySelection: Sendable {
    /// The selected sample names.
    public let names: Set<String>

    /// A selection of `names`.
    public init(_ names: Set<String>) { self.names = names }

    /// Whether `descriptor`'s family is selected.
    public func contains(_ descriptor: MetricDescriptor) -> Bool {
        names.contains(MetricSnapshot.sampleName(descriptor))
    }

    /// A new selection of these names and `more`.
    public func union(_ more: some Sequence<String>) -> FamilySelection { FamilySelection(names.union(more)) }
}

extension CollectorPart {
    /// Per family of this part's schema, whether `selection` has it; nil when it has every one (a run for it
    /// is a full run, which scrapes can join).
    func wanted(by selection: FamilySelection) -> [Bool]? {
        selectionFlags.withLock { last in
            if let last, last.selection === selection { return last.flags }
            let flags = schema.descriptors.map(selection.contains)
            let result = flags.allSatisfy { $0 } ? nil : flags
            last = (selection, result)
            return result
        }
    }
}
