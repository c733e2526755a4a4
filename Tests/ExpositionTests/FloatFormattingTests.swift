import Foundation
import Testing

@testable import Exposition

@Suite("Float formatting")
struct FloatFormattingTests {
    /// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: shortest digits; %e when the decimal exponent is
    /// below -4 or at least 6 (two-digit minimum exponent), %f otherwise.
    static let goCases: [(Double, String)] = [
        (1, "1"), (0, "0"), (-0.0, "-0"), (-1, "-1"), (10, "10"), (100_000, "100000"), (999_999, "999999"),
        (1e6, "1e+06"), (123_456, "123456"), (1_234_567, "1.234567e+06"), (123_456.7, "123456.7"),
        (1_234_567.8, "1.2345678e+06"), (-1_234_567, "-1.234567e+06"), (1e-5, "1e-05"), (0.0001, "0.0001"),
        (0.00012345, "0.00012345"), (1.2345e-5, "1.2345e-05"), (0.1, "0.1"), (0.005, "0.005"), (2.5, "2.5"),
        (-2.5e-7, "-2.5e-07"), (1e21, "1e+21"), (1e20, "1e+20"), (1.5e300, "1.5e+300"), (1e100, "1e+100"),
        (Double.leastNonzeroMagnitude, "5e-324"), (Double("1e-310")!, "1e-310"),
        (2.2250738585072014e-308, "2.2250738585072014e-308"),
        (Double.greatestFiniteMagnitude, "1.7976931348623157e+308"), (9_007_199_254_740_992, "9.007199254740992e+15"),
        (0.30000000000000004, "0.30000000000000004"), (1.0 / 3, "0.3333333333333333"),
        (Double.infinity, "+Inf"), (-Double.infinity, "-Inf"), (Double.nan, "NaN"),
    ]

    @Test("goString matches Go's FormatFloat(v, 'g', -1, 64)", arguments: goCases)
    func goString(value: Double, expected: String) {
        #expect(FloatFormat.goString(value) == expected)
    }

    @Test("openMetricsString: the OpenMetrics canonical lists")
    func openMetricsLists() {
        let first: [Double] = [0, 0.001, 0.01, 0.1, 0.9, 0.95, 0.99, 0.999, 1, 1.7, 10]
        #expect(
            first.map(FloatFormat.openMetricsString).joined(separator: " ")
                == "0.0 0.001 0.01 0.1 0.9 0.95 0.99 0.999 1.0 1.7 10.0")
        let second: [Double] = [1e-10, 1e-9, 1e-5, 1e-4, 0.1, 1, 1e5, 1e6, 1e10]
        #expect(
            second.map(FloatFormat.openMetricsString).joined(separator: " ")
                == "1e-10 1e-09 1e-05 0.0001 0.1 1.0 100000.0 1e+06 1e+10")
    }

    @Test(
        "openMetricsString: .0 only where Go's form has neither point nor exponent",
        arguments: [
            (1.0, "1.0"), (100_000, "100000.0"), (1e6, "1e+06"), (-1, "-1.0"), (-0.0, "-0.0"), (2.5, "2.5"),
            (1e16, "1e+16"), (Double.infinity, "+Inf"), (-Double.infinity, "-Inf"), (Double.nan, "NaN"),
        ] as [(Double, String)])
    func openMetrics(value: Double, expected: String) {
        #expect(FloatFormat.openMetricsString(value) == expected)
    }

    /// Checks one value against Go's rules, using only the text (no second formatter as oracle).
    func checkGoForm(_ v: Double) {
        let s = FloatFormat.goString(v)
        #expect(Double(s) == v, "\(v.bitPattern): \(s)")
        let unsigned = s.hasPrefix("-") ? s.dropFirst() : Substring(s)
        #expect(s.hasPrefix("-") == (v < 0))
        if let e = unsigned.firstIndex(of: "e") {
            // %e: one non-zero digit, optional fraction, sign and at least two exponent digits.
            let mantissa = unsigned[..<e]
            let exponentText = unsigned[unsigned.index(after: e)...]
            #expect(mantissa.first.map { "123456789".contains($0) } == true, "\(s)")
            #expect(mantissa.count == 1 || mantissa.dropFirst().first == ".", "\(s)")
            #expect(!mantissa.hasSuffix("0") && !mantissa.hasSuffix("."), "\(s)")
            #expect(exponentText.first == "+" || exponentText.first == "-", "\(s)")
            #expect(exponentText.dropFirst().count >= 2, "\(s)")
            let exp = Int(exponentText) ?? 0
            #expect(exp < -4 || exp >= 6, "\(s)")
        } else {
            // %f: the decimal exponent is in [-4, 6).
            let parts = unsigned.split(separator: ".", omittingEmptySubsequences: false)
            #expect(parts.count <= 2, "\(s)")
            if parts[0] == "0" {
                let zeros = parts.count == 2 ? parts[1].prefix(while: { $0 == "0" }).count : 0
                #expect(zeros <= 3, "\(s)")
            } else {
                #expect(parts[0].count <= 6 && !parts[0].hasPrefix("0"), "\(s)")
            }
            if parts.count == 2 { #expect(!parts[1].hasSuffix("0") && !parts[1].isEmpty, "\(s)") }
        }
        let om = FloatFormat.openMetricsString(v)
        #expect(om == (s.contains("e") || s.contains(".") ? s : s + ".0"))
    }

    @Test("goString, property: random bit patterns parse back exactly and follow Go's %e/%f rule")
    func goStringProperty() {
        var rng = SplitMix64(seed: 0x60_57_81_46)
        for _ in 0..<100_000 {
            let v = Double(bitPattern: rng.next())
            guard v.isFinite, v != 0 else { continue }
            checkGoForm(v)
        }
    }

    @Test("goString, property: values around the %e/%f boundaries")
    func goStringBoundaries() {
        var rng = SplitMix64(seed: 4)
        for _ in 0..<50_000 {
            let v = pow(10, Double.random(in: -6...8, using: &rng)) * (Bool.random(using: &rng) ? 1 : -1)
            checkGoForm(v)
        }
        for e in -6...8 {
            let p = pow(10, Double(e))
            for v in [p, p.nextUp, p.nextDown, p * 0.999_999_9, p * 9.999_999] { checkGoForm(v) }
        }
    }

    func sample(_ v: Double) -> String {
        var out = ByteWriter(capacity: 64)
        defer { out.free() }
        out.appendSampleValue(v)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    @Test(
        "sample values: integers without .0, others in shortest form, specials spelled for Prometheus",
        arguments: [
            (0, "0"), (1, "1"), (-1, "-1"), (42, "42"), (1e6, "1000000"), (123_456_789, "123456789"),
            (9_007_199_254_740_991, "9007199254740991"), (-9_007_199_254_740_991, "-9007199254740991"),
            (9_007_199_254_740_992, "9007199254740992.0"), (18_014_398_509_481_984, "1.8014398509481984e+16"),
            (1e300, "1e+300"), (0.5, "0.5"), (-0.25, "-0.25"),
            (1e-5, "1e-05"), (0.0001, "0.0001"), (3.14159, "3.14159"), (100.5, "100.5"),
            (Double.nan, "NaN"), (Double.infinity, "+Inf"), (-Double.infinity, "-Inf"),
        ] as [(Double, String)])
    func sampleValues(value: Double, expected: String) {
        #expect(sample(value) == expected)
    }

    @Test("negative zero is written as a zero")
    func negativeZero() {
        #expect(Double(sample(-0.0)) == 0)
    }

    @Test("sample values, property: ~1e6 random bit patterns equal description and parse back")
    func sampleValueProperty() {
        var rng = SplitMix64(seed: 20_240_601)
        var out = ByteWriter(capacity: 64)
        defer { out.free() }
        var failures = 0
        for _ in 0..<1_000_000 {
            let v = Double(bitPattern: rng.next())
            out.reset()
            out.appendSampleValue(v)
            let s = String(decoding: out.bytes, as: UTF8.self)
            let expected: String
            if v.isNaN {
                expected = "NaN"
            } else if v.isInfinite {
                expected = v < 0 ? "-Inf" : "+Inf"
            } else if v == v.rounded(.towardZero) && abs(v) < 9_007_199_254_740_992 {
                expected = String(Int64(v))
            } else {
                expected = v.description
            }
            let parsed = Double(s)
            let roundTrips = v.isNaN ? parsed?.isNaN == true : parsed == v
            if s != expected || !roundTrips {
                failures += 1
                if failures <= 5 { Issue.record("bits \(v.bitPattern): wrote \(s), expected \(expected)") }
            }
        }
        #expect(failures == 0)
    }

    @Test("sample values, property: integers below 2^53 print exactly, without .0")
    func integerProperty() {
        var rng = SplitMix64(seed: 99)
        for _ in 0..<100_000 {
            let i = Int64.random(in: -9_007_199_254_740_991...9_007_199_254_740_991, using: &rng)
            let s = sample(Double(i))
            #expect(s == String(i))
        }
        for shift in 0..<53 {
            let i = Int64(1) << shift
            #expect(sample(Double(i)) == String(i))
            #expect(sample(Double(i - 1)) == String(i - 1))
        }
    }

    @Test("the runtime's shortest formatter writes what description writes")
    func runtimeFormatter() {
        let values: [Double] = [
            0.5, 0.001, 1e-7, 100.25, 1234500000.5, 1e16, 1.5e16, 123e300, Double.leastNonzeroMagnitude, -0.1, -1e-300,
            2.5e-5, 1e22,
            9_007_199_254_740_994, 0.1 + 0.2,
        ]
        for v in values {
            let text = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
                buffer.initialize(repeating: UInt8(ascii: "0"))
                let n = Int(_swiftFloat64ToString(buffer.baseAddress!, 32, v, false))
                return String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<n]), as: UTF8.self)
            }
            #expect(text == v.description)
        }
    }

    @Test("integers of every magnitude", arguments: [0, 9, 10, 99, 100, 12_345, UInt64(UInt32.max), UInt64.max])
    func integers(value: UInt64) {
        var out = ByteWriter(capacity: 64)
        defer { out.free() }
        out.appendInteger(value)
        #expect(String(decoding: out.bytes, as: UTF8.self) == String(value))
    }

    @Test("le and quantile labels use Go form in text and canonical form in OpenMetrics")
    func labelForms() throws {
        let registry = plainRegistry()
        _ = try registry.histogram("h", help: "", buckets: [1e-3, 1, 1e5, 1e6, 2.5e9])
        #expect(
            lines(rendered(registry, .text), startingWith: "h_bucket").map { $0.split(separator: "\"")[1] } == [
                "0.001", "1", "100000", "1e+06", "2.5e+09", "+Inf",
            ])
        #expect(
            lines(rendered(registry, .openMetrics), startingWith: "h_bucket").map { $0.split(separator: "\"")[1] } == [
                "0.001", "1.0", "100000.0", "1e+06", "2.5e+09", "+Inf",
            ])
    }

    @Test("text 0.0.4 writes le=\"1\" and whole values without .0, as client_golang does (swift-prometheus defect 8)")
    func goCompatibleText() throws {
        let registry = plainRegistry()
        let h = try registry.histogram("h", help: "", buckets: [1, 2.5])
        h.observe(1)
        h.observe(2)
        try registry.counter("c", help: "").inc(by: 3)
        try registry.gauge("g", help: "").set(3)
        #expect(
            rendered(registry, .text) == """
                # TYPE c_total counter
                c_total 3
                # TYPE g gauge
                g 3
                # TYPE h histogram
                h_bucket{le="1"} 1
                h_bucket{le="2.5"} 2
                h_bucket{le="+Inf"} 2
                h_sum 3
                h_count 2

                """)
    }
}
