import ModelMonitoring
import Testing

@Suite("Event ids")
struct EventIDTests {
    @Test("a ULID is 48 bits of milliseconds then 80 random bits in Crockford base 32")
    func ulidEncoding() {
        // 1469918176385 ms is 01ARYZ6S41 (the ULID specification's example); the rest computed independently.
        #expect(
            EventID.ulid(milliseconds: 1_469_918_176_385, randomHigh: 0x0123, randomLow: 0x4567_89AB_CDEF_0123)
                == "01ARYZ6S4104HMASW9NF6YY093")
        #expect(EventID.ulid(milliseconds: 0, randomHigh: 0, randomLow: 0) == String(repeating: "0", count: 26))
        #expect(
            EventID.ulid(milliseconds: (1 << 48) - 1, randomHigh: .max, randomLow: .max)
                == "7" + String(repeating: "Z", count: 25))
        // Time bits above 48 are dropped, not spilled into the first digit.
        #expect(EventID.ulid(milliseconds: 1 << 48, randomHigh: 0, randomLow: 0) == String(repeating: "0", count: 26))
    }

    @Test("an id built from an instance's bytes is the instance, '~' and the ULID of the same bits")
    func generatedFromBytes() {
        var rng = SystemRandomNumberGenerator()
        for instance in ["a", "pod-a.ns_1", String(repeating: "x", count: 64)] {
            for _ in 0..<200 {
                let (ms, high, low) = (rng.next() >> 16, UInt16(truncatingIfNeeded: rng.next()), rng.next())
                let id = Array(instance.utf8).withUnsafeBufferPointer {
                    EventID.generate(prefix: $0, milliseconds: ms, randomHigh: high, randomLow: low)
                }
                #expect(id == instance + "~" + EventID.ulid(milliseconds: ms, randomHigh: high, randomLow: low))
            }
        }
    }

    @Test("generated ids are <instance>~<ULID>, carry their instance, and differ")
    func generatedIDsCarryTheirInstance() {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = EventID.generate(instance: "pod-a.ns_1")
            #expect(id.hasPrefix("pod-a.ns_1~") && id.utf8.count == "pod-a.ns_1~".utf8.count + 26)
            #expect(EventID.instance(of: id[...]) == "pod-a.ns_1")
            seen.insert(id)
        }
        #expect(seen.count == 1000)
        let longest = String(repeating: "x", count: 64)
        #expect(EventID.instance(of: EventID.generate(instance: longest)[...]) == longest[...])
    }

    @Test("only ids of exactly that shape name an instance")
    func onlyTheExactShapeNamesAnInstance() {
        let ulid = "01ARYZ6S4104HMASW9NF6YY093"
        #expect(EventID.instance(of: "pod-b~\(ulid)") == "pod-b")
        for id in [
            "order~123", "pod-b~", "~\(ulid)", "pod-b\(ulid)", "pod-b-\(ulid)", "a~b~\(ulid)", "pod b~\(ulid)",
            "pod-b~\(ulid.lowercased())", "pod-b~8\(ulid.dropFirst())", "pod-b~\(ulid.dropLast())",
            "pod-b~\(ulid)0", "pod-b~\(ulid.dropLast())U", "pod-b~\(ulid.dropLast())I",
            String(repeating: "x", count: 65) + "~\(ulid)", "pod-é~\(ulid)",
        ] {
            #expect(EventID.instance(of: id[...]) == nil, "\(id)")
        }
    }

    @Test("instance ids are 1 to 64 characters of [A-Za-z0-9._-]")
    func instanceValidation() {
        for valid in ["a", "pod-7", "web_1.eu-west", String(repeating: "z", count: 64)] {
            #expect(EventID.isValidInstance(valid) && EventID.instanceProblem(valid) == nil)
        }
        for invalid in ["", "a~b", "a b", "a/b", "é", String(repeating: "z", count: 65)] {
            #expect(!EventID.isValidInstance(invalid))
            #expect(EventID.instanceProblem(invalid) != nil)
        }
        #expect(EventID.instanceProblem("")?.contains("empty") == true)
        #expect(EventID.instanceProblem(String(repeating: "z", count: 65))?.contains("more than 64") == true)
        #expect(EventID.instanceProblem("a~b")?.contains("[A-Za-z0-9._-]") == true)
    }
}
