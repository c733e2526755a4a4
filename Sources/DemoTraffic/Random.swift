import Foundation

/// A small seeded random generator (SplitMix64): the same seed gives the same traffic on every run and machine.
public struct DemoRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator whose whole sequence is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal (Box-Muller).
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-300)
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * uniform())
    }

    /// Log-normal with the given log-mean and log-standard deviation.
    public mutating func logNormal(mu: Double, sigma: Double) -> Double { Foundation.exp(mu + sigma * normal()) }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { uniform() < p }

    /// One of `values`, drawn with the given weights (which need not sum to 1).
    public mutating func pick<T>(_ values: [T], weights: [Double]) -> T {
        let total = weights.reduce(0, +)
        var u = uniform() * total
        for (value, weight) in zip(values, weights) {
            if u < weight { return value }
            u -= weight
        }
        return values[values.count - 1]
    }
}
