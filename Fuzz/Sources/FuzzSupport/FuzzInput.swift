/// The bytes libFuzzer hands a harness, read as one control byte followed by the payload.
///
/// Harnesses take their options from bits of the control byte and cut the payload into the pieces a peer or
/// a socket might deliver with ``chunks(maxLength:)``, so that the fuzzer mutates the splitting like any
/// other byte and a crash input replays the same splits.
public struct FuzzInput {
    /// The first byte (0 for an empty input).
    public let control: UInt8
    /// The bytes after the first.
    public let payload: UnsafeBufferPointer<UInt8>

    /// Reads the arguments of `LLVMFuzzerTestOneInput`.
    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        guard let data, size > 0 else {
            control = 0
            payload = UnsafeBufferPointer(start: nil, count: 0)
            return
        }
        control = data[0]
        payload = UnsafeBufferPointer(start: data + 1, count: size - 1)
    }

    /// Whether bit `index` (0...7) of the control byte is set.
    public func flag(_ index: Int) -> Bool {
        control & (1 << index) != 0
    }

    /// Consecutive non-empty ranges that cover the payload, of 1...`maxLength` bytes each, drawn from a
    /// generator seeded with the control byte (control 0: the whole payload as one range).
    public func chunks(maxLength: Int = 64) -> [Range<Int>] {
        chunks(of: payload.count, maxLength: maxLength)
    }

    /// ``chunks(maxLength:)`` for `count` bytes derived from the payload.
    public func chunks(of count: Int, maxLength: Int = 64) -> [Range<Int>] {
        if control == 0 || count == 0 { return [0..<count] }
        var generator = SplitMix64(seed: UInt64(control))
        var ranges: [Range<Int>] = []
        var start = 0
        while start < count {
            let length = 1 + Int(generator.next() % UInt64(maxLength))
            let end = min(count, start + length)
            ranges.append(start..<end)
            start = end
        }
        return ranges
    }
}

/// The whole input as text (invalid UTF-8 repaired), for harnesses whose input is a text file or header.
public func fuzzText(_ data: UnsafePointer<UInt8>?, _ size: Int) -> String {
    guard let data, size > 0 else { return "" }
    return String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
}

/// A small deterministic generator (SplitMix64).
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
