import Testing

@testable import DemoTraffic

@Suite struct DemoScheduleTests {
    @Test func parsesPhasesAndDurations() throws {
        let s = try DemoSchedule(parsing: "stable:30s,drift:2m,bias", cycles: false)
        #expect(
            s.steps == [
                DemoStep(phase: .stable, seconds: 30), DemoStep(phase: .drift, seconds: 120),
                DemoStep(phase: .bias, seconds: nil),
            ])
        #expect(s.phase(at: 0).phase == .stable)
        #expect(s.phase(at: 45).phase == .drift)
        #expect(s.phase(at: 45).progress == 15.0 / 120)
        #expect(s.phase(at: 1e9).phase == .bias)
    }

    @Test func cyclesAndHoldsTheLastPhase() throws {
        let cycling = try DemoSchedule(parsing: "stable:10,degraded:10", cycles: true)
        #expect(cycling.phase(at: 25).phase == .stable)
        let holding = try DemoSchedule(parsing: "stable:10,degraded:10", cycles: false)
        #expect(holding.phase(at: 25).phase == .degraded)
        #expect(holding.phase(at: 25).progress == 1)
    }

    @Test func theDefaultScheduleCyclesThroughEveryPhase() {
        let s = DemoSchedule.default
        #expect(s.cycles)
        #expect(Set(s.steps.map(\.phase)) == Set(DemoPhase.allCases))
        #expect(s.phase(at: 0).phase == .stable)
        #expect(s.phase(at: 200).phase == .drift)
        #expect(s.phase(at: 39 * 60 + 200).phase == .drift)
    }

    @Test func rejectsBadSchedules() {
        #expect(throws: DemoError.self) { try DemoSchedule(parsing: "calm:10s", cycles: false) }
        #expect(throws: DemoError.self) { try DemoSchedule(parsing: "stable,drift:10s", cycles: false) }
        #expect(throws: DemoError.self) { try DemoSchedule(parsing: "stable:-1s", cycles: false) }
        #expect(throws: DemoError.self) { try DemoSchedule(parsing: "stable", cycles: true) }
    }

    @Test func theSameSeedGivesTheSameTraffic() {
        var a = Scenario(seed: 7)
        var b = Scenario(seed: 7)
        var c = Scenario(seed: 8)
        let csv = a.referenceCSV(model: "fraud", rows: 50)
        #expect(csv == b.referenceCSV(model: "fraud", rows: 50))
        #expect(csv != c.referenceCSV(model: "fraud", rows: 50))  // the seed matters
        #expect(csv.split(separator: "\n").count == 51)  // a header and 50 rows
        #expect(a.fraud(.incident, progress: 0.5).line == b.fraud(.incident, progress: 0.5).line)
    }

    @Test func targetURLs() throws {
        let client = try DemoHTTPClient(target: "http://127.0.0.1:9747/")
        #expect(client.host == "127.0.0.1" && client.port == 9747 && client.basePath.isEmpty)
        #expect(client.hostHeader == "127.0.0.1:9747")
        // An IPv6 address keeps its brackets in the Host header (they were dropped: every request refused 400).
        let v6 = try DemoHTTPClient(target: "http://[::1]:9748")
        #expect(v6.host == "::1" && v6.port == 9748 && v6.hostHeader == "[::1]:9748")
        #expect(throws: DemoError.self) { try DemoHTTPClient(target: "https://x:1") }
        #expect(throws: DemoError.self) { try DemoHTTPClient(target: "http://x:0") }
    }
}
