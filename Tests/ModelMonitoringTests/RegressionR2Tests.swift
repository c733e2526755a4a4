import Foundation
import Testing

@testable import ModelMonitoring

/// R² from the window's plain sums (SS_tot = Σy² − (Σy)²/n) against a two-pass computation (the mean first, then
/// Σ(y − mean)², as scikit-learn's `r2_score`), on actuals whose mean is large against their spread. Before, the
/// sums' cancellation gave wrong values with nothing to say so (a review measured 0.998 and 0.99999999 where
/// `r2_score` gave about 0.76, and 0.663 for 0.763); now R² is exact to three digits or absent (NaN).
@Suite("Regression R² from sums")
struct RegressionR2Tests {
    /// Deterministic normal-ish noise (sum of uniforms), so that the test needs no random seed from outside.
    private func noise(_ count: Int, seed: UInt64) -> [Double] {
        var state = seed
        func next() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53)
        }
        return (0..<count).map { _ in (0..<12).reduce(0.0) { sum, _ in sum + next() } - 6 }
    }

    /// (the collector's R², the two-pass R²) for actuals `offset + spread·z` and predictions off by `spread/2·z'`.
    private func r2(offset: Double, spread: Double, count: Int = 1000, seed: UInt64) -> (Double, Double) {
        let y = noise(count, seed: seed).map { offset + spread * $0 }
        return r2(actuals: y, predictions: zip(y, noise(count, seed: seed &+ 1)).map { $0 + spread / 2 * $1 })
    }

    /// (the collector's R² from its sums, the two-pass R²: the mean first, then Σ(y − mean)², as `r2_score`).
    private func r2(actuals y: [Double], predictions p: [Double]) -> (Double, Double) {
        let errors = zip(p, y).map { $0 - $1 }
        // The collector's sums: plain Double additions in arrival order.
        var (sumY, sumY2, sumE2, sumAbs, sumE) = (0.0, 0.0, 0.0, 0.0, 0.0)
        for (value, e) in zip(y, errors) {
            sumY += value
            sumY2 += value * value
            sumE2 += e * e
            sumAbs += abs(e)
            sumE += e
        }
        let n = Double(y.count)
        let scores = RegressionQuality.scores(
            count: n, absoluteError: sumAbs, squaredError: sumE2, error: sumE, actual: sumY,
            actualSquared: sumY2, absolutePercentageError: 0, skipped: n, constant: false)
        let mean = y.reduce(0, +) / n
        let ssTot = y.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        let ssRes = errors.reduce(0) { $0 + $1 * $1 }
        return (scores.r2, 1 - ssRes / ssTot)
    }

    @Test("R² is exact to three digits or absent, whatever the actuals' offset")
    func exactOrAbsent() {
        var given = 0
        for (offset, spread) in [
            (0.0, 1.0), (100.0, 10.0), (3e5, 1e5), (1e7, 1.0), (1e8, 1.0), (1e9, 1.0), (1e9, 0.01), (1.7e9, 300.0),
        ] {
            for seed in UInt64(1)...UInt64(5) {
                let (collector, exact) = r2(offset: offset, spread: spread, seed: seed)
                if collector.isNaN { continue }
                given += 1
                #expect(
                    abs(collector - exact) < 1e-3,
                    "offset \(offset) ± \(spread), seed \(seed): \(collector) vs \(exact)")
            }
        }
        // The ordinary cases are all given (15 of them), and exactly.
        #expect(given >= 15)
        for seed in UInt64(1)...UInt64(5) {
            let (collector, exact) = r2(offset: 100, spread: 10, seed: seed)
            #expect(abs(collector - exact) <= 1e-9 * abs(exact))
        }
        // The cases the review measured wrong are absent.
        #expect(r2(offset: 1e9, spread: 1, seed: 5).0.isNaN)
        #expect(r2(offset: 1e9, spread: 0.01, seed: 9).0.isNaN)
    }
    /// Actuals whose rounding errors do not cancel (a level shift: the first half above the mean, the second below;
    /// sorted; one repeated pair), swept across the spreads where R² goes from absent to given, for a model that
    /// predicts the mean (R² = 0 exactly) and one with some error. Before, R² was given with its third digit wrong (a
    /// probe read −0.0198 for 0: the bound took the sums' rounding as a random walk, √n·ε, where these add up, n·ε).
    @Test("R² is exact to three digits or absent when the sums' rounding errors add up")
    func exactOrAbsentForOrderedActuals() {
        var checked = 0
        var given = 0
        for n in [1_000, 5_000, 20_000] {
            for pattern in 0..<3 {
                for step in 0..<24 {
                    let spread = 0.01 * pow(2, Double(step) / 2)
                    let offset = 54_321.5
                    let z: [Double] = (0..<n).map { i in
                        switch pattern {
                        case 0: i < n / 2 ? 1 : -1
                        case 1: -1 + 2 * Double(i) / Double(n - 1)
                        default: i % 2 == 0 ? 0.75 : -0.75
                        }
                    }
                    let y = z.map { offset + spread * $0 }
                    let mean = y.reduce(0, +) / Double(n)
                    for predictsMean in [true, false] {
                        let p = y.enumerated().map { i, v in
                            predictsMean ? mean : v + spread * (i % 3 == 0 ? 0.3 : -0.2)
                        }
                        let (r2, exact) = r2(actuals: y, predictions: p)
                        checked += 1
                        if r2.isNaN { continue }
                        given += 1
                        #expect(
                            abs(r2 - exact) < 1e-3,
                            "n \(n), pattern \(pattern), \(offset) ± \(spread): \(r2) vs \(exact)")
                    }
                }
            }
        }
        // The wide spreads of the sweep are given.
        #expect(given > checked / 4)
    }
}
