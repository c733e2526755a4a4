/// Decoding state worth keeping from one body to the next: the Strings of recently seen short values (categorical
/// values, attributes, labels, versions) and the order in which events listed their keys.
///
/// Passing one to ``decodePredictions(body:format:schema:maxEvents:cache:visit:)`` (or ``decodeLabels``) saves
/// building that state for every body (a 256-entry cache, then a miss for each distinct value). Not thread-safe:
/// only one decoding call may use a cache at a time (a server keeps a pool and hands each request its own). Any
/// schema may use any cache.
public final class DecoderCache: @unchecked Sendable {
    // @unchecked Sendable: the contract above gives every use exclusive access.

    /// Keys in the order of ``Field``: the successor of each is the next one.
    static let initialFieldSuccessors: UInt64 = 0xCBA_9876_5432_1

    let strings = StringCache()
    var fieldSuccessors = DecoderCache.initialFieldSuccessors

    /// An empty cache.
    public init() {}
}
