#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The output of one render: a growable byte buffer written through a raw pointer.
///
/// Appending to `[UInt8]` piece by piece costs a uniqueness and capacity check and a generic call per
/// piece; a sample line has five to eight pieces. The writer checks capacity once per piece with an
/// inlined comparison and copies with `memcpy`. It is owned by exactly one render (never shared between
/// threads), and its memory is freed by ``free()`` at the end of that render, after the bytes were
/// copied into the caller's reused `[UInt8]`.
struct ByteWriter {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = Swift.max(capacity, 4096)
        base = .allocate(capacity: self.capacity)
    }

    /// Releases the memory; the writer must not be used afterwards.
    func free() { base.deallocate() }

    /// Forgets what was written, keeping the memory.
    mutating func reset() { count = 0 }

    /// The bytes written so far.
    var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }

    @inline(__always)
    mutating func reserve(_ n: Int) {
        if count &+ n > capacity { grow(n) }
    }

    @inline(never)
    mutating func grow(_ n: Int) {
        let newCapacity = Swift.max(capacity &* 2, count &+ n)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count &+= 1
    }

    @inline(__always)
    mutating func append(_ a: UInt8, _ b: UInt8) {
        reserve(2)
        base[count] = a
        base[count &+ 1] = b
        count &+= 2
    }

    @inline(__always)
    mutating func append(contentsOf bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func append(contentsOf bytes: UnsafeBufferPointer<UInt8>) {
        let n = bytes.count
        guard n > 0 else { return }
        reserve(n)
        memcpy(base + count, bytes.baseAddress!, n)
        count &+= n
    }

    /// Appends the decimal digits of `value`.
    @inline(__always)
    mutating func appendInteger(_ value: UInt64) {
        if value < 10 {
            append(UInt8(truncatingIfNeeded: value) &+ 48)
            return
        }
        reserve(20)
        var digits = 0
        var v = value
        while v > 0 {
            digits &+= 1
            v /= 10
        }
        v = value
        var i = count &+ digits
        while v > 0 {
            i &-= 1
            base[i] = UInt8(truncatingIfNeeded: v % 10) &+ 48
            v /= 10
        }
        count &+= digits
    }

    /// Appends a sample value (see `FloatFormatting.swift`: integers plainly, else shortest round trip).
    @inline(__always)
    mutating func appendSampleValue(_ value: Double) {
        if value == value.rounded(.towardZero) && Swift.abs(value) < FloatFormat.twoTo53 {
            if value < 0 {
                append(UInt8(ascii: "-"))
                appendInteger(UInt64(-value))
            } else {
                appendInteger(UInt64(value))
            }
            return
        }
        appendNonIntegral(value)
    }

    @inline(never)
    mutating func appendNonIntegral(_ value: Double) {
        if value.isNaN {
            append(contentsOf: FloatFormat.nanBytes)
            return
        }
        if value.isInfinite {
            append(contentsOf: value < 0 ? FloatFormat.minusInfBytes : FloatFormat.plusInfBytes)
            return
        }
        reserve(32)
        let start = base + count
        start.initialize(repeating: UInt8(ascii: "0"), count: 32)
        count &+= Int(_swiftFloat64ToString(start, 32, value, false))
    }

    /// Appends `name{labels,extra} ` (no braces when both are empty).
    @inline(__always)
    mutating func appendSeries(_ name: [UInt8], _ labels: [UInt8], _ extra: [UInt8] = []) {
        append(contentsOf: name)
        if labels.isEmpty && extra.isEmpty {
            append(UInt8(ascii: " "))
            return
        }
        append(UInt8(ascii: "{"))
        append(contentsOf: labels)
        if !labels.isEmpty && !extra.isEmpty { append(UInt8(ascii: ",")) }
        append(contentsOf: extra)
        append(UInt8(ascii: "}"), UInt8(ascii: " "))
    }

    /// Appends the `_sum` and `_count` samples of a histogram or summary, unless OpenMetrics forbids this
    /// sum (negative or NaN, or beside negative bucket bounds), in which case both are left out.
    mutating func appendSumAndCount(
        _ names: FamilyNames, _ labels: [UInt8], sum: Double, count: UInt64, negativeBounds: Bool,
        format: ExpositionFormat
    ) {
        guard format == .text || OpenMetricsRules.allowsSum(sum, negativeBounds: negativeBounds) else { return }
        appendSeries(names.sum, labels)
        appendSampleValue(sum)
        append(UInt8(ascii: "\n"))
        appendSeries(names.count, labels)
        appendInteger(count)
        append(UInt8(ascii: "\n"))
    }

    /// Appends the `_created` sample of a series when the format and options ask for it.
    mutating func appendCreated(_ names: FamilyNames, _ meta: SeriesMeta, _ context: RenderContext) {
        guard context.emitCreated && context.format == .openMetrics else { return }
        appendSeries(names.created, meta.renderedLabels)
        appendSampleValue(meta.created)
        append(UInt8(ascii: "\n"))
    }
}
