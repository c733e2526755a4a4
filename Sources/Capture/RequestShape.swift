import Ingestion

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif

/// Where the direct reader took a feature from a short plain number (``Scanner/shortNumber()``) in a v2 request: the
/// number's bytes and the slot of ``Rows/features`` it went to. Logged while a request is read (``Rows/leafLog``).
struct FeatureLeaf {
    /// Offsets into the request (below ``RequestShape/maxBytes``).
    var start: UInt16
    var end: UInt16
    var slot: UInt32
}

/// The feature leaves one reading of a request took from short numbers, in the order read.
struct FeatureLeafLog {
    var leaves: [FeatureLeaf] = []
    /// False once the reading did something a replay would not repeat (cleared features, leaves out of order).
    private(set) var usable = true

    mutating func begin() {
        leaves.removeAll(keepingCapacity: true)
        usable = true
    }

    /// A leaf taken; one that starts before the last one's end (a tensor's data read again), past
    /// ``RequestShape/maxBytes`` or past ``RequestShape/maxLeaves`` leaves makes the log unusable (its memory bounded).
    @inline(__always)
    mutating func append(start: Int, end: Int, slot: Int) {
        guard usable else { return }
        guard end <= RequestShape.maxBytes, leaves.count < RequestShape.maxLeaves, slot <= Int(UInt32.max),
            leaves.last.map({ start >= Int($0.end) }) ?? true
        else {
            usable = false
            return
        }
        leaves.append(FeatureLeaf(start: UInt16(start), end: UInt16(end), slot: UInt32(slot)))
    }

    mutating func refuse() { usable = false }
}

/// The last v2 request a workspace read in full, kept as its bytes between the feature leaves taken from short
/// numbers: a request that has the same bytes there, and short numbers where those leaves were, is the same request
/// to the direct reader but for those numbers (the reader's path depends on the bytes it compares and on whether
/// each such leaf is a short number, nothing else), so its rows are the kept request's with the new numbers as
/// features. Clients send the same structure again and again (one serializer, one model): reading one then costs a
/// comparison of its bytes and the numbers' parsing, not a walk of its JSON.
///
/// Bounded: a request of at most ``maxBytes`` bytes and ``maxLeaves`` leaves is kept, one per workspace (a decoder's):
/// with the log it is read with, at most 24 KiB a workspace.
///
/// Contract: ``replay(_:_:_:)`` sets `rows` and `state` exactly as ``CaptureDecoder``'s direct reading of the
/// request would (tested against it on random pairs of requests), or returns false with `rows` meaningless.
struct RequestShape {
    /// The longest request kept.
    static let maxBytes = 8 * 1024
    /// The most feature leaves of a request kept.
    static let maxLeaves = 1024

    private var bytes: [UInt8] = []
    private var leaves: [FeatureLeaf] = []
    private var rowCount = 0
    private var unknownFeatures = 0
    private var exchangeID: String?
    private var state = DirectV2State()
    private(set) var isEmpty = true

    /// Keeps `request`, read in full into `rows` (its log) and `state`, when nothing but the logged leaves set a
    /// feature and the rows hold nothing a request sets beyond its features, unknown-feature count and id; else
    /// forgets any kept request.
    mutating func keep(_ request: UnsafeBufferPointer<UInt8>, _ rows: inout Rows, _ state: DirectV2State) {
        isEmpty = true
        guard rows.leafLog.usable, request.count <= Self.maxBytes, rows.count > 0 else { return }
        // Every feature set is a logged leaf's, each leaf's slot set once (so no other write, and none cleared).
        var set = 0
        for value in rows.features {
            if case .missing = value { continue }
            guard case .number = value else { return }
            set += 1
        }
        guard set == rows.leafLog.leaves.count else { return }
        for leaf in rows.leafLog.leaves {
            guard case .number = rows.features[Int(leaf.slot)] else { return }
        }
        let unknown = rows.info[0].unknownFeatures
        for row in 0..<rows.count {
            let info = rows.info[row]
            guard info.unknownFeatures == unknown, info.prediction == nil, info.predictionClass == nil,
                info.score == nil, !info.hasProbabilities, info.id == nil, info.version == nil
            else { return }
        }
        guard rows.probabilities.isEmpty, rows.attributes.allSatisfy({ $0 == nil }) else { return }
        bytes.removeAll(keepingCapacity: true)
        bytes.append(contentsOf: request)
        swap(&leaves, &rows.leafLog.leaves)
        rowCount = rows.count
        unknownFeatures = unknown
        exchangeID = rows.exchangeID
        self.state = state
        isEmpty = false
    }

    /// Reads `request` as the kept one with other numbers: true with `rows` and `state` as the direct reading sets
    /// them after the request; false when its bytes differ from the kept request's outside the leaves, or a leaf is no
    /// short number ending where the kept bytes go on.
    func replay(_ request: UnsafeBufferPointer<UInt8>, _ rows: inout Rows, _ state: inout DirectV2State) -> Bool {
        guard !isEmpty, let body = request.baseAddress else { return false }
        return bytes.withUnsafeBufferPointer { kept -> Bool in
            guard let known = kept.baseAddress else { return false }
            // The first piece (the envelope up to the first leaf) before the rows are touched: a request of another
            // structure is told apart here.
            let first = leaves.first.map { Int($0.start) } ?? kept.count
            guard request.count >= first, Self.same(body, known, first) else { return false }
            rows.reset(count: rowCount)
            var s = Scanner(request)
            var at = first
            var from = first
            var k = 0
            let done = rows.features.withUnsafeMutableBufferPointer { features -> Bool in
                leaves.withUnsafeBufferPointer { leaves -> Bool in
                    guard let slots = features.baseAddress else { return false }
                    while k < leaves.count {
                        let leaf = leaves[k]
                        let piece = Int(leaf.start) &- from
                        guard request.count &- at >= piece, Self.same(body + at, known + from, piece) else {
                            return false
                        }
                        s.pos = at &+ piece
                        guard let value = s.shortNumber() else { return false }
                        Rows.overwrite(slots + Int(leaf.slot), with: .number(value))
                        at = s.pos
                        from = Int(leaf.end)
                        k &+= 1
                    }
                    return true
                }
            }
            guard done else { return false }
            let last = kept.count &- from
            guard request.count &- at == last, Self.same(body + at, known + from, last) else { return false }
            if unknownFeatures > 0 {
                for row in 0..<rowCount { rows.info[row].unknownFeatures = unknownFeatures }
            }
            if let exchangeID { rows.setRequestID(exchangeID) }
            state = self.state
            return true
        }
    }

    /// Whether the `count` bytes at `a` and `b` are equal (short pieces, most of one or two bytes, compared inline).
    @inline(__always)
    private static func same(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        if count <= 8 {
            var i = 0
            while i < count {
                guard a[i] == b[i] else { return false }
                i &+= 1
            }
            return true
        }
        return memcmp(a, b, count) == 0
    }
}
