import ModelMonitoring
import Testing

/// The four-bins-at-a-time KS and Wasserstein over running totals (what the drift collector evaluates at each
/// scrape) against a bin-by-bin walk written here, on histograms with every length remainder, empty stretches,
/// many sign changes of F_ref − F_cur and values outside the range.
@Suite("DriftStatistics over running totals")
struct CumulativeDriftStatisticsTests {
    /// The definitions walked one fine bin at a time; `below` and `above` are (count, total distance from the range).
    static func walk(
        reference: [Double], current: [Double], lower: Double, upper: Double, below: (Double, Double),
        above: (Double, Double)
    ) -> (ks: Double, wasserstein: Double) {
        let n = reference.reduce(0, +)
        let m = current.reduce(0, +) + below.0 + above.0
        var fRef = 0.0
        var fCur = below.0 / m
        var d = fCur
        var a = -fCur
        var integral = 0.0
        for i in reference.indices {
            fRef += reference[i] / n
            fCur += current[i] / m
            let b = fRef - fCur
            d = max(d, abs(b))
            // |F_ref − F_cur| is linear inside the bin: a trapezoid, or two triangles where the sign changes.
            integral += a * b < 0 ? (a * a + b * b) / (2 * (abs(a) + abs(b))) : (abs(a) + abs(b)) / 2
            a = b
        }
        let width = (upper - lower) / Double(reference.count)
        return (d, (below.1 + above.1) / m + integral * width)
    }

    static func cumulative(_ values: [Double]) -> [Double] {
        var running = 0.0
        return values.map { v in
            running += v
            return running
        }
    }

    @Test(
        "equal the bin-by-bin walk for every length and shape", arguments: [1, 2, 3, 4, 5, 7, 8, 9, 13, 64, 999, 1000])
    func equalTheWalk(bins: Int) {
        var random = SeededRandom(seed: UInt64(bins))
        for shape in 0..<6 {
            let reference = (0..<bins).map { i -> Double in
                shape == 1 && i % 3 == 0 ? 0 : Double(Int.random(in: 0...40, using: &random))
            }
            let current = (0..<bins).map { i -> Double in
                switch shape {
                case 2: return reference[i]  // the same shape: F_ref − F_cur changes sign in many bins
                case 3: return i < bins / 2 ? 0 : Double(Int.random(in: 0...90, using: &random))
                default: return Double(Int.random(in: 0...40, using: &random))
                }
            }
            guard reference.reduce(0, +) > 0 else { continue }
            // Three values summing to −12.5 below −1, two summing to 31 above 10: total distances 9.5 and 11.
            let below = shape == 4 ? (3.0, 9.5) : (0.0, 0.0)
            let above = shape >= 4 ? (2.0, 11.0) : (0.0, 0.0)
            let expected = Self.walk(
                reference: reference, current: current, lower: -1, upper: 10, below: below, above: above)
            let r = Self.cumulative(reference)
            let c = Self.cumulative(current)
            let (ks, w) = r.withUnsafeBufferPointer { r in
                c.withUnsafeBufferPointer { c in
                    (
                        DriftStatistics.ksStatistic(
                            referenceCumulative: r, currentCumulative: c, currentBelow: below.0,
                            currentAbove: above.0),
                        DriftStatistics.wasserstein(
                            referenceCumulative: r, lower: -1, upper: 10, currentCumulative: c,
                            currentBelow: (below.0, below.1 / DriftStatistics.tailUnit),
                            currentAbove: (above.0, above.1 / DriftStatistics.tailUnit))
                    )
                }
            }
            let label = Comment(
                rawValue: "bins \(bins) shape \(shape): KS \(ks) vs \(expected.ks), W \(w) vs \(expected.wasserstein)")
            #expect(abs(ks - expected.ks) <= 1e-12 * max(1, expected.ks), label)
            #expect(abs(w - expected.wasserstein) <= 1e-12 * max(1, expected.wasserstein), label)
            if shape == 2 && below.0 == 0 {
                #expect(ks == 0 && w == 0, label)
            }
        }
    }

    @Test("empty and mismatched inputs are NaN")
    func emptyInputs() {
        let empty: [Double] = []
        let some: [Double] = [1, 2, 3]
        let zeros: [Double] = [0, 0, 0]
        empty.withUnsafeBufferPointer { e in
            some.withUnsafeBufferPointer { s in
                zeros.withUnsafeBufferPointer { z in
                    #expect(
                        DriftStatistics.ksStatistic(
                            referenceCumulative: e, currentCumulative: e, currentBelow: 0, currentAbove: 0
                        ).isNaN)
                    #expect(
                        DriftStatistics.ksStatistic(
                            referenceCumulative: s, currentCumulative: z, currentBelow: 0, currentAbove: 0
                        ).isNaN)
                    #expect(
                        DriftStatistics.ksStatistic(
                            referenceCumulative: s, currentCumulative: e, currentBelow: 1, currentAbove: 0
                        ).isNaN)
                    #expect(
                        DriftStatistics.wasserstein(
                            referenceCumulative: z, lower: 0, upper: 1, currentCumulative: s, currentBelow: (0, 0),
                            currentAbove: (0, 0)
                        ).isNaN)
                }
            }
        }
    }
}
