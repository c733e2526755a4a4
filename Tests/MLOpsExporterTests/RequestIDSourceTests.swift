import ModelMonitoring
import Testing

@testable import MLOpsExporter

@Suite struct RequestIDSourceTests {
    @Test func idsAreGeneratedIdsOfTheInstanceAndNeverRepeat() {
        let source = RequestIDSource(instance: "pod-7")
        var seen = Set<String>()
        for _ in 0..<50_000 {
            let id = source.next()
            #expect(EventID.instance(of: id[...]) == "pod-7")
            seen.insert(String(id.suffix(16)))  // the ULID's 80 random bits (its last 16 characters)
        }
        #expect(seen.count == 50_000)
    }
}
