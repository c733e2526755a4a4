import Glibc

/// Writes bytes into memory sized beforehand (``array(capacity:_:)``): a plain copy per piece, without the capacity,
/// uniqueness and growth checks `Array.append(contentsOf:)` pays on every call (the proxy writes a head in some
/// thirty pieces per request). Contract: the capacity is an upper bound the caller computed; a piece that does not
/// fit traps.
struct ByteWriter {
    private let start: UnsafeMutablePointer<UInt8>
    /// The bytes that fit.
    let capacity: Int
    /// The bytes written.
    private(set) var count = 0

    private init(_ buffer: UnsafeMutableBufferPointer<UInt8>) {
        start = buffer.baseAddress!
        capacity = buffer.count
    }

    /// The bytes `body` writes, in an array of capacity `capacity` (at least 1): room left behind them stays
    /// available for appending. Allocated by `reserveCapacity(_:)`, whose storage type is resolved once, and filled
    /// through an output span: `Array(unsafeUninitializedCapacity:initializingWith:)` allocates through the standard
    /// library's unspecialized entry point, which looks the storage class up at run time (~360 instructions an array).
    /// `reusing`: an empty array to write in (``ByteArrayPool/take(minimumCapacity:)``), its capacity raised when short.
    @inline(__always)
    static func array(capacity: Int, reusing: consuming [UInt8] = [], _ body: (inout ByteWriter) -> Void) -> [UInt8] {
        var array = reusing
        array.reserveCapacity(max(capacity, 1))
        array.append(addingCapacity: max(capacity, 1)) { span in
            span.withUnsafeMutableBufferPointer { buffer, initialized in
                var writer = ByteWriter(buffer)
                body(&writer)
                initialized = writer.count
            }
        }
        return array
    }

    @inline(__always)
    mutating func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        precondition(bytes.count <= capacity - count, "ByteWriter: capacity exceeded")
        memcpy(start + count, source, bytes.count)
        count += bytes.count
    }

    @inline(__always)
    mutating func write(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) {
        write(UnsafeBufferPointer(rebasing: bytes))
    }

    @inline(__always)
    mutating func write(_ byte: UInt8) {
        precondition(count < capacity, "ByteWriter: capacity exceeded")
        start[count] = byte
        count += 1
    }

    /// The UTF-8 bytes of `string`.
    @inline(__always)
    mutating func write(_ string: String) {
        if string.utf8.withContiguousStorageIfAvailable({ write($0) }) == nil {
            for byte in string.utf8 { write(byte) }
        }
    }

    /// Drops what was written after the first `count` bytes.
    mutating func truncate(to count: Int) {
        precondition(count >= 0 && count <= self.count)
        self.count = count
    }
}

/// Where the HTTP/1 encoders write: a ``ByteWriter`` (sized beforehand: plain copies) or an array (grows as needed).
protocol ByteSink {
    mutating func write(_ bytes: UnsafeBufferPointer<UInt8>)
}

extension ByteSink {
    @inline(__always)
    mutating func write(_ literal: StaticString) {
        write(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    @inline(__always)
    mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { write($0) }
    }

    /// The decimal digits of `value` (not negative).
    @inline(__always)
    mutating func writeDecimal(_ value: Int) {
        HTTP1ResponseEncoder.withDecimalDigits(value) { write($0) }
    }
}

extension ByteWriter: ByteSink {}

extension Array: ByteSink where Element == UInt8 {
    @inline(__always)
    mutating func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        append(contentsOf: bytes)
    }
}
