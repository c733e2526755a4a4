import ExporterConfig
import Exposition
import Ingestion
import ModelMonitoring
import Testing

@Suite struct ServiceCollectorTests {
    @Test func countsRequestsByVersionStatusAndClass() throws {
        let h = try Harness([fraud])
        let m = h.model("fraud")
        #expect(m.record(version: "v1", prediction: .label("fraud"), latencySeconds: 0.005) == nil)
        #expect(m.record(version: "v1", prediction: .label("legit"), latencySeconds: 0.5) == nil)
        #expect(m.record(version: "v9", prediction: .label("maybe"), status: .error, errorKind: "timeout") == nil)
        #expect(h.value(#"mlops_model_requests_total{model="fraud",status="ok",version="v1"}"#) == 2)
        #expect(h.value(#"mlops_model_requests_total{model="fraud",status="error",version="__other__"}"#) == 1)
        #expect(h.value(#"mlops_model_requests_total{model="fraud",status="ok",version="v2"}"#) == 0)
        #expect(h.value(#"mlops_model_errors_total{kind="timeout",model="fraud",version="__other__"}"#) == 1)
        #expect(h.value(#"mlops_model_predicted_class_total{class="fraud",model="fraud",version="v1"}"#) == 1)
        #expect(
            h.value(#"mlops_model_predicted_class_total{class="__other__",model="fraud",version="__other__"}"#) == 1)
        #expect(h.value(#"mlops_model_latency_seconds_bucket{model="fraud",version="v1",le="0.01"}"#) == 1)
        #expect(h.value(#"mlops_model_latency_seconds_bucket{model="fraud",version="v1",le="1"}"#) == 2)
        #expect(h.value(#"mlops_model_latency_seconds_count{model="fraud",version="v1"}"#) == 2)
        #expect(h.value(#"mlops_model_latency_seconds_sum{model="fraud",version="v1"}"#) == 0.505)
        #expect(h.value(#"mlops_ingest_events_total{kind="predictions",model="fraud"}"#) == 3)
        let last = try #require(h.value(#"mlops_model_last_event_timestamp_seconds{model="fraud",version="v1"}"#))
        #expect(abs(last - WallClock.now()) < 60)
        #expect(h.value(#"mlops_model_last_event_timestamp_seconds{model="fraud",version="v2"}"#) == nil)
        #expect(
            h.value(#"mlops_model_info{model="fraud",reference_sha256="",task="binary_classification",version="v2"}"#)
                == 1)
        #expect(!h.samples().contains { $0.hasPrefix("mlops_model_info") && $0.contains("__other__") })
    }

    /// Events while the wall clock ran a day ahead, then the clock set right (an NTP step back): the last event's time
    /// is now's, at the next event or the next scrape, not a day ahead (a staleness alert, `time() - …`, was silent
    /// for the day). Receipt times a little out of order (concurrent recorders) still keep the latest.
    @Test func aWallClockSteppedBackDoesNotLeaveTheLastEventInTheFuture() throws {
        let h = try Harness([fraud])
        let m = h.model("fraud")
        let name = #"mlops_model_last_event_timestamp_seconds{model="fraud",version="v1"}"#
        let now = WallClock.now()
        #expect(m.record(version: "v1", prediction: .label("fraud"), receivedAt: now + 86_400) == nil)
        #expect(m.record(version: "v1", prediction: .label("fraud"), receivedAt: now) == nil)
        #expect(try abs(#require(h.value(name)) - now) < 1)
        #expect(m.record(version: "v1", prediction: .label("fraud"), receivedAt: now - 2) == nil)
        #expect(try abs(#require(h.value(name)) - now) < 1)
        // No event after the step: the scrape brings it back to now.
        #expect(m.record(version: "v1", prediction: .label("fraud"), receivedAt: now + 86_400) == nil)
        #expect(try abs(#require(h.value(name)) - WallClock.now()) < 60)
    }

    @Test func regressionPredictionHistogramUsesTheConfiguredBuckets() throws {
        let h = try Harness([eta])
        let m = h.model("eta")
        for value in [5.0, 20, 30, 100] { #expect(m.record(version: "2024.06", prediction: .number(value)) == nil) }
        #expect(h.value(#"mlops_model_prediction_value_bucket{model="eta",version="2024.06",le="10"}"#) == 1)
        #expect(h.value(#"mlops_model_prediction_value_bucket{model="eta",version="2024.06",le="60"}"#) == 3)
        #expect(h.value(#"mlops_model_prediction_value_bucket{model="eta",version="2024.06",le="+Inf"}"#) == 4)
        #expect(h.value(#"mlops_model_prediction_value_sum{model="eta",version="2024.06"}"#) == 155)
        #expect(!h.samples().contains { $0.hasPrefix("mlops_model_predicted_class_total") })
    }

    @Test func errorKindsAreLearnedUpToTheLimitThenOther() throws {
        var model = fraud
        model.collectors = [
            CollectorConfiguration(
                name: "service", options: ["error_kinds": .list([.string("oom")]), "max_error_kinds": .number(2)])
        ]
        let h = try Harness([model])
        let m = h.model("fraud")
        for kind in ["oom", "a", "b", "c", "d", "a"] {
            m.record(version: "v1", prediction: .label("fraud"), status: .error, errorKind: kind)
        }
        m.record(version: "v1", prediction: .label("fraud"), status: .error)
        let errors = h.samples().filter { $0.hasPrefix("mlops_model_errors_total{") && $0.contains("v1") }
        #expect(
            errors.sorted() == [
                #"mlops_model_errors_total{kind="__other__",model="fraud",version="v1"} 2"#,
                #"mlops_model_errors_total{kind="a",model="fraud",version="v1"} 2"#,
                #"mlops_model_errors_total{kind="b",model="fraud",version="v1"} 1"#,
                #"mlops_model_errors_total{kind="oom",model="fraud",version="v1"} 1"#,
                #"mlops_model_errors_total{kind="unspecified",model="fraud",version="v1"} 1"#,
            ])
    }

    /// A kind sent as `__other__` counts under the overflow series, never as a learned kind: learned, it made the
    /// collector emit `kind="__other__"` twice once a kind overflowed, and every scrape then dropped the model's
    /// service series whole.
    @Test func anErrorKindNamedOtherIsTheOverflowNotALearnedKind() throws {
        var model = fraud
        model.collectors = [CollectorConfiguration(name: "service", options: ["max_error_kinds": .number(1)])]
        let h = try Harness([model])
        let m = h.model("fraud")
        for kind in ["__other__", "a", String(repeating: "x", count: 5000), "b"] {
            m.record(version: "v1", prediction: .label("fraud"), status: .error, errorKind: kind)
        }
        let errors = h.samples().filter { $0.hasPrefix("mlops_model_errors_total{") && $0.contains("v1") }
        #expect(
            errors.sorted() == [
                #"mlops_model_errors_total{kind="__other__",model="fraud",version="v1"} 3"#,
                #"mlops_model_errors_total{kind="a",model="fraud",version="v1"} 1"#,
                #"mlops_model_errors_total{kind="unspecified",model="fraud",version="v1"} 0"#,
            ])
        #expect(h.value(#"mlops_model_requests_total{model="fraud",status="error",version="v1"}"#) == 4)
    }

    /// `__other__` or an empty name among the configured kinds is refused (a configured `__other__` took a slot of its
    /// own, and the first unlisted kind made a second `kind="__other__"` series: the model's service series dropped
    /// from every scrape); an empty kind sent is `unspecified`, not a `kind=""` series.
    @Test func otherOrEmptyConfiguredKindsAreRefusedAndAnEmptyKindIsUnspecified() throws {
        for kinds in [["oom", "__other__"], [""]] {
            var model = fraud
            model.collectors = [
                CollectorConfiguration(name: "service", options: ["error_kinds": .list(kinds.map { .string($0) })])
            ]
            #expect(throws: ModelSetupErrors.self) { try Harness([model]) }
        }
        let h = try Harness([fraud])
        let m = h.model("fraud")
        m.record(version: "v1", prediction: .label("fraud"), status: .error, errorKind: "")
        #expect(h.value(#"mlops_model_errors_total{kind="unspecified",model="fraud",version="v1"}"#) == 1)
        #expect(!h.samples().contains { $0.contains(#"kind="""#) })
    }

    @Test func concurrentRecordingLosesNothing() async throws {
        let h = try Harness([fraud])
        let m = h.model("fraud")
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for i in 0..<10_000 {
                        m.record(
                            version: writer % 2 == 0 ? "v1" : "v2", prediction: .label(i % 2 == 0 ? "fraud" : "legit"),
                            latencySeconds: 0.05)
                    }
                }
            }
        }
        #expect(h.value(#"mlops_model_requests_total{model="fraud",status="ok",version="v1"}"#) == 40_000)
        #expect(h.value(#"mlops_model_requests_total{model="fraud",status="ok",version="v2"}"#) == 40_000)
        #expect(h.value(#"mlops_model_latency_seconds_count{model="fraud",version="v2"}"#) == 40_000)
        let sum = try #require(h.value(#"mlops_model_latency_seconds_sum{model="fraud",version="v1"}"#))
        #expect(abs(sum - 2000) < 1e-6)
        #expect(h.value(#"mlops_ingest_events_total{kind="predictions",model="fraud"}"#) == 80_000)
    }
}
