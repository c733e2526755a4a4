import Exposition
import Foundation
import ModelMonitoring
import Testing

@testable import StateStorage

@Suite struct CheckpointFaultTests {
    /// A checkpoint cut short (a copy or a disk that stopped part-way) is reported as `truncated`, wherever the cut
    /// falls: in the header, in a model's state (its section's length then runs past the end of the file) or in
    /// the checksum; the restore counts it as such and keeps the file aside.
    @Test func aCheckpointCutShortIsTruncated() throws {
        let dir = temporaryDirectory()
        let a = try Node([Models.fraud(), Models.eta], directory: dir)
        var traffic = Traffic(seed: 5)
        traffic.predictions(a.model("fraud"), 1000, prefix: "p", t0: WallClock.now() - 10)
        try #require(a.checkpoint() != nil)
        let file = CheckpointFile(directory: dir)
        let whole = try #require(try file.read(maxBytes: 1 << 30))
        for cut in [20, whole.count / 2, whole.count - 5, whole.count - 1] {
            #expect(throws: CheckpointFormat.ReadError.truncated, "cut at \(cut) of \(whole.count)") {
                try CheckpointFormat.decode(Array(whole[0..<cut]))
            }
        }

        let half = Array(whole[0..<whole.count / 2])
        try Data(half).write(to: URL(fileURLWithPath: file.path))
        let b = try Node([Models.fraud(), Models.eta], directory: dir)
        let report = b.checkpointer.restore()
        #expect(report.failure == .truncated)
        #expect(b.value(#"mlops_storage_restore_failures_total{reason="truncated"}"#) == 1)
        #expect(b.value(#"mlops_storage_restore_failures_total{reason="corrupt"}"#) == 0)
        let aside = try #require(report.setAside)
        #expect(FileManager.default.contents(atPath: aside) == Data(half))
    }
}

@Suite struct StorageReasonTests {
    @Test func reasonsAreTheLabelsInOrderAndSlotsTheirPositions() {
        #expect(
            StorageMetrics.checkpointFailureReasons == [
                "no_space", "permission", "not_a_directory", "io", "blocked", "locked",
            ])
        #expect(
            StorageMetrics.restoreFailureReasons == [
                "foreign", "newer_version", "truncated", "corrupt", "unreadable", "too_large", "locked",
            ])
        #expect(CheckpointFailureReason.allCases.map(\.slot) == Array(0..<6))
        #expect(RestoreFailureReason.allCases.map(\.slot) == Array(0..<7))
    }
}
