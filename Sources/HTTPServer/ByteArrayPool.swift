/// Byte arrays kept for reuse on one event loop. The copies a proxied exchange makes of received bytes (the request's
/// and the response's field lines, the request body, the captured response body) are made in arrays taken from here,
/// and the arrays are given back when the exchange is done with them (``ProxyExchange``: once its record was
/// reported); the heads it writes (the upstream request's, the client's response's) are written in arrays taken from
/// here too, given back once written (``OutputQueue/write(to:scratch:arrays:completed:)``). A proxied request so
/// allocates and frees none of them.
///
/// Bounded: at most ``maxArrays`` arrays, each of capacity at most ``maxCapacity`` (a larger one is freed, not kept):
/// at most 32 × 16 KiB = 512 KiB per loop. An array kept holds its last bytes until it is reused. Confined to its
/// loop's thread, like everything the loop drives (no lock).
///
/// Safe whoever else holds an array given back: a kept array is written through copy-on-write when it is reused, so
/// storage still shared (an observer kept the bytes, for a worker on another thread perhaps) stays its other
/// holders' untouched, and the reuse gets a new storage instead.
final class ByteArrayPool {
    /// The most arrays kept.
    static let maxArrays = 32
    /// The largest capacity of an array kept.
    static let maxCapacity = 16 * 1024

    /// The arrays kept, `count` of them at the start: a fixed allocation, so that keeping and taking one moves it in
    /// and out with no reference counting and no array growth check (an array of arrays cost four calls to keep one).
    private let slots: UnsafeMutablePointer<[UInt8]>
    @exclusivity(unchecked) private var count = 0

    /// The number of arrays kept.
    var keptCount: Int { count }

    init() { slots = .allocate(capacity: Self.maxArrays) }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    @inline(__always)
    private func pop() -> [UInt8]? {
        guard count > 0 else { return nil }
        count &-= 1
        return (slots + count).move()
    }

    /// A copy of `bytes`, in a kept array when there is one (else a new one).
    @inline(__always)
    func copy(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> [UInt8] {
        guard var array = pop() else { return Array(bytes) }
        // The old bytes replaced in one call (emptying the array first, then appending, cost two).
        array.replaceSubrange(array.indices, with: UnsafeBufferPointer(rebasing: bytes))
        return array
    }

    /// An empty array: a kept one (with its capacity) when there is one, the latest kept of at least
    /// `minimumCapacity` if any (so that a head written in it is not moved to a larger one while the small copies
    /// take the larger arrays).
    @inline(__always)
    func take(minimumCapacity: Int = 0) -> [UInt8] {
        guard count > 0 else { return [] }
        var index = count &- 1
        while index > 0 && slots[index].capacity < minimumCapacity { index &-= 1 }
        if index != count &- 1 { swap(&slots[index], &slots[count &- 1]) }
        var array = pop()!
        array.removeAll(keepingCapacity: true)
        return array
    }

    /// Keeps `array` for reuse (within the bounds; freed otherwise); `array` is left empty.
    @inline(__always)
    func give(_ array: inout [UInt8]) {
        var kept: [UInt8] = []
        swap(&kept, &array)
        let capacity = kept.capacity
        guard capacity > 0, capacity <= Self.maxCapacity, count < Self.maxArrays else { return }
        (slots + count).initialize(to: consume kept)
        count &+= 1
    }

    /// ``give(_:)`` for an optional array (nothing when nil); `array` is left nil.
    @inline(__always)
    func give(_ array: inout [UInt8]?) {
        guard var bytes = array.take() else { return }
        give(&bytes)
    }

    /// ``give(_:)`` for the received field lines `headers` holds (``HTTPHeaders/receivedLines``), if any; `headers`
    /// is left empty.
    @inline(__always)
    func give(linesOf headers: inout HTTPHeaders) {
        guard var lines = headers.takeReceivedLines() else { return }
        give(&lines)
    }
}
