import ExporterConfig
import Exposition
import Foundation
import ModelMonitoring
import StateStorage
import Testing

@Suite struct FaultTests {
    /// A directory with one valid checkpoint of the fraud model, and its bytes.
    func validCheckpoint() throws -> (String, [UInt8]) {
        let dir = temporaryDirectory()
        let a = try Node([Models.fraud()], directory: dir)
        var traffic = Traffic(seed: 1)
        traffic.predictions(a.model("fraud"), 200, prefix: "p", t0: WallClock.now() - 50)
        try #require(a.stop() != nil)
        let bytes = try #require(try CheckpointFile(directory: dir).read(maxBytes: 1 << 30))
        return (dir, bytes)
    }

    func write(_ bytes: [UInt8], to dir: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/checkpoint"))
    }

    /// Each unreadable file: counted by reason, set aside with its bytes intact, the models start empty and the next
    /// checkpoint is written anew. An empty file, or one holding the magic's bytes and no more (what a lost write
    /// leaves), is truncated, not foreign.
    @Test(arguments: ["truncated", "corrupt", "foreign", "newer_version", "empty", "magic_only", "half_magic"])
    func anUnreadableCheckpointIsSetAsideAndTheExporterStartsEmpty(fault: String) throws {
        let (dir, valid) = try validCheckpoint()
        var bad = valid
        switch fault {
        case "truncated": bad = Array(valid[0..<(valid.count / 2)])
        case "corrupt": bad[valid.count / 2] ^= 0x40
        case "foreign": bad = Array(#"{"not": "a checkpoint"}"#.utf8)
        case "newer_version": bad[8] = 3
        case "magic_only": bad = Array(valid[0..<8])
        case "half_magic": bad = Array(valid[0..<3])
        default: bad = []
        }
        try write(bad, to: dir)
        let b = try Node([Models.fraud()], directory: dir)
        let report = b.checkpointer.restore()
        let reason = ["empty", "magic_only", "half_magic"].contains(fault) ? "truncated" : fault
        #expect(report.failure?.rawValue == reason)
        #expect(b.value(#"mlops_storage_restore_failures_total{reason="\#(reason)"}"#) == 1)
        #expect(b.value(#"mlops_labels_pending{model="fraud"}"#) == 0)
        let aside = try #require(report.setAside)
        #expect(aside.hasPrefix(dir + "/checkpoint.corrupt-"))
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: aside))) == bad)
        // The next checkpoint writes a fresh file; the one set aside stays.
        try #require(b.checkpoint() != nil)
        #expect(FileManager.default.fileExists(atPath: aside))
        let fresh = try #require(try CheckpointFile(directory: dir).read(maxBytes: 1 << 30))
        #expect(throws: Never.self) { try CheckpointFormat.decode(fresh) }
    }

    /// A lock that cannot be used in a writable directory (here a directory in its place; a link, another user's
    /// file) makes the directory locked: nothing restored, nothing written, counted. Before, the directory was used
    /// without a lock, so two exporters restored the same state and wrote over each other. (A directory this process
    /// cannot write is still restored from: root, which runs the tests, can write anywhere.)
    @Test func aLockThatCannotBeUsedInAWritableDirectoryLocksIt() throws {
        let (dir, saved) = try validCheckpoint()
        try FileManager.default.removeItem(atPath: dir + "/lock")
        try FileManager.default.createDirectory(atPath: dir + "/lock", withIntermediateDirectories: false)
        let b = try Node([Models.fraud()], directory: dir)
        let report = b.checkpointer.restore()
        #expect(report.failure == .locked)
        #expect(report.results.isEmpty)
        #expect(b.value(#"mlops_storage_restore_failures_total{reason="locked"}"#) == 1)
        #expect(b.checkpoint() == nil)
        #expect(b.value(#"mlops_storage_checkpoint_failures_total{reason="locked"}"#) == 1)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoint"))) == saved)
    }

    /// Two checkpointers of one process on one directory (two `Exporter`s embedded in one service): the second is
    /// refused as another process would be, until the first is done with it. Before, POSIX record locks being the
    /// process's, both took the lock, both restored the same state and wrote over each other.
    @Test func aSecondCheckpointerOfThisProcessFindsTheDirectoryLocked() throws {
        let (dir, saved) = try validCheckpoint()
        let a = try Node([Models.fraud()], directory: dir)
        #expect(a.checkpointer.restore().failure == nil)
        let b = try Node([Models.fraud()], directory: dir)
        let refused = b.checkpointer.restore()
        #expect(refused.failure == .locked)
        #expect(refused.results.isEmpty)
        #expect(b.checkpoint() == nil)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoint"))) == saved)
        // Once the first has stopped, the directory is free for a third.
        try #require(a.stop() != nil)
        let c = try Node([Models.fraud()], directory: dir)
        #expect(c.checkpointer.restore().results.map(\.result) == [.restored])
        #expect(c.value(#"mlops_ingest_events_total{kind="predictions",model="fraud"}"#) == 200)
    }

    /// The lock file removed while this process holds it (an operator clearing a "stale" lock): the next checkpoint
    /// takes the lock again (another exporter started meanwhile would have found the directory free); and when the
    /// checkpoint is no longer the one this process wrote, another process wrote there: its state is restored before
    /// anything is written over it. Before, the process went on as if it held the lock: no lock file, and the other
    /// exporter's checkpoint overwritten unread.
    @Test func aLockFileRemovedWhileHeldIsTakenAgainAndAnotherWritersStateRestoredFirst() throws {
        let (dir, _) = try validCheckpoint()
        let a = try Node([Models.fraud()], directory: dir)
        _ = a.checkpointer.restore()
        var traffic = Traffic(seed: 2)
        traffic.predictions(a.model("fraud"), 10, prefix: "a", t0: WallClock.now() - 5)
        try #require(a.checkpoint() != nil)
        // Removed; the checkpoint still A's own: taken again, nothing restored.
        try FileManager.default.removeItem(atPath: dir + "/lock")
        try #require(a.checkpoint() != nil)
        #expect(FileManager.default.fileExists(atPath: dir + "/lock"))
        let ownEvents = #"mlops_ingest_events_total{kind="predictions",model="fraud"}"#
        #expect(a.value(ownEvents) == 210)
        // Removed, and another process's checkpoint (here of 7 predictions) written there meanwhile.
        let other = temporaryDirectory()
        let b = try Node([Models.fraud()], directory: other)
        traffic.predictions(b.model("fraud"), 7, prefix: "b", t0: WallClock.now() - 5)
        try #require(b.stop() != nil)
        let written = try #require(try CheckpointFile(directory: other).read(maxBytes: 1 << 30))
        try FileManager.default.removeItem(atPath: dir + "/lock")
        try FileManager.default.removeItem(atPath: dir + "/checkpoint")
        try write(written, to: dir)
        try #require(a.checkpoint() != nil)
        #expect(a.value(ownEvents) == 7)
        let after = try Node([Models.fraud()], directory: other)
        try FileManager.default.removeItem(atPath: other + "/checkpoint")
        try Data(try #require(try CheckpointFile(directory: dir).read(maxBytes: 1 << 30))).write(
            to: URL(fileURLWithPath: other + "/checkpoint"))
        _ = after.checkpointer.restore()
        #expect(after.value(ownEvents) == 7)
    }

    /// The lock file removed, and another exporter taking the directory before this one's next checkpoint: that
    /// checkpoint finds the lock held (counted `locked`); once the other has written and gone, the lock taken back does
    /// not make the directory this process's again: the other's checkpoint is restored before it is written over.
    /// Before, the identity of the checkpoint was compared only when the lost lock was noticed (still this process's
    /// then), and the other exporter's state was overwritten unread.
    @Test func aLockTakenBackAfterAnotherExporterHeldItRestoresThatExportersCheckpointFirst() throws {
        let (dir, _) = try validCheckpoint()
        let a = try Node([Models.fraud()], directory: dir)
        _ = a.checkpointer.restore()
        var traffic = Traffic(seed: 3)
        traffic.predictions(a.model("fraud"), 10, prefix: "a", t0: WallClock.now() - 5)
        try #require(a.checkpoint() != nil)
        try FileManager.default.removeItem(atPath: dir + "/lock")
        let b = try Node([Models.fraud()], directory: dir)
        _ = b.checkpointer.restore()
        let events = #"mlops_ingest_events_total{kind="predictions",model="fraud"}"#
        #expect(a.checkpoint() == nil)  // B holds the lock now
        // (B found A's running marker: its counters restarted from zero, as after a crash; A's 210 are not B's.)
        traffic.predictions(b.model("fraud"), 7, prefix: "b", t0: WallClock.now() - 5)
        let written = try #require(b.value(events))
        #expect(written != a.value(events))
        try #require(b.stop() != nil)
        try #require(a.checkpoint() != nil)
        #expect(a.value(events) == written)
        let after = try Node([Models.fraud()], directory: dir)
        a.crash()
        _ = after.checkpointer.restore()
        #expect(after.value(events) == written)
    }

    /// A FIFO in the checkpoint's place is refused at once as unreadable and set aside: the restore opened it and
    /// waited for a writer forever (the exporter never listened, and SIGTERM did not end it).
    @Test func aFIFOInTheCheckpointsPlaceIsUnreadableAtOnce() throws {
        let dir = temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        #expect(mkfifo(dir + "/checkpoint", 0o600) == 0)
        // Said as what it is (it was logged "Is a directory").
        let error = #expect(throws: CheckpointFile.IOError.self) {
            _ = try CheckpointFile(directory: dir).read(maxBytes: 1 << 20)
        }
        #expect(error?.description == "read \(dir)/checkpoint: a FIFO, not a regular file")
        let b = try Node([Models.fraud()], directory: dir)
        let report = b.checkpointer.restore()
        #expect(report.failure == .unreadable)
        #expect(report.setAside?.hasPrefix(dir + "/checkpoint.corrupt-") == true)
    }

    /// A link at `checkpoint` whose target is missing is an unreadable checkpoint (counted, set aside), not a first
    /// start: it was read as no checkpoint at all, logged at info and counted nowhere.
    @Test func aDanglingLinkInTheCheckpointsPlaceIsUnreadable() throws {
        let dir = temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/checkpoint", withDestinationPath: dir + "/gone")
        let error = #expect(throws: CheckpointFile.IOError.self) {
            _ = try CheckpointFile(directory: dir).read(maxBytes: 1 << 20)
        }
        #expect(error?.description == "read \(dir)/checkpoint: a symbolic link to a file that does not exist")
        let b = try Node([Models.fraud()], directory: dir)
        let report = b.checkpointer.restore()
        #expect(report.failure == .unreadable)
        #expect(report.setAside?.hasPrefix(dir + "/checkpoint.corrupt-") == true)
    }

    /// Whatever is at `checkpoint.tmp` (a FIFO, a link to another file) is replaced, never opened through: a FIFO
    /// there blocked every checkpoint and the shutdown; a link had its target overwritten with checkpoint bytes.
    @Test func aFIFOOrALinkAtTheTemporaryPathIsNotOpenedThrough() throws {
        let (dir, _) = try validCheckpoint()
        let victim = dir + "/victim.txt"
        try Data("keep".utf8).write(to: URL(fileURLWithPath: victim))
        for plant in ["fifo", "link"] {
            try? FileManager.default.removeItem(atPath: dir + "/checkpoint.tmp")
            if plant == "fifo" {
                #expect(mkfifo(dir + "/checkpoint.tmp", 0o600) == 0)
            } else {
                try FileManager.default.createSymbolicLink(atPath: dir + "/checkpoint.tmp", withDestinationPath: victim)
            }
            let b = try Node([Models.fraud()], directory: dir)
            _ = b.checkpointer.restore()
            try #require(b.checkpoint() != nil, "\(plant)")
            #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep")
            let written = try #require(try CheckpointFile(directory: dir).read(maxBytes: 1 << 30))
            #expect(throws: Never.self) { try CheckpointFormat.decode(written) }
            b.crash()
        }
    }

    /// A directory at `checkpoint.tmp` (which `unlink` cannot remove) is removed when empty, else renamed aside with
    /// what it holds. Before, every checkpoint failed (`io`), the last one too, and the next start took the clean stop
    /// for a crash.
    @Test func aDirectoryAtTheTemporaryPathIsMovedOutOfTheWay() throws {
        let (dir, _) = try validCheckpoint()
        for full in [false, true] {
            try FileManager.default.createDirectory(
                atPath: dir + "/checkpoint.tmp/sub", withIntermediateDirectories: true)
            if !full { try FileManager.default.removeItem(atPath: dir + "/checkpoint.tmp/sub") }
            let b = try Node([Models.fraud()], directory: dir)
            _ = b.checkpointer.restore()
            try #require(b.checkpoint() != nil, "\(full)")
            let kept = try FileManager.default.contentsOfDirectory(atPath: dir).filter {
                $0.hasPrefix("checkpoint.tmp.aside-")
            }
            #expect(kept.count == (full ? 1 : 0))
            if full { #expect(FileManager.default.fileExists(atPath: dir + "/" + kept[0] + "/sub")) }
            b.crash()
        }
    }

    /// A big file with the magic whose checksum does not match is refused as corrupt after a streaming pass, before
    /// it is read whole (a 4 GB sparse file took 4 GB of memory, or aborted the process under a limit, at every start).
    @Test func aBigFileWithAWrongChecksumIsRefusedBeforeItIsRead() throws {
        let dir = temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/checkpoint"
        try Data(CheckpointFormat.magic + [1, 0, 0, 0]).write(to: URL(fileURLWithPath: path))
        #expect(truncate(path, 80 << 20) == 0)  // sparse
        // The file is refused by its checksum before it is read whole (it was read, 80 MB, and refused by the format).
        #expect {
            _ = try CheckpointFile(directory: dir).read(
                maxBytes: 1 << 30, prefix: CheckpointFormat.magic, checkAbove: 1024)
        } throws: { ($0 as? CheckpointFile.IOError)?.code == EBADMSG }
        // A valid checkpoint passes the same streaming check and reads whole.
        let (validDir, valid) = try validCheckpoint()
        let checked = try CheckpointFile(directory: validDir).read(
            maxBytes: 1 << 30, prefix: CheckpointFormat.magic, checkAbove: 0)
        #expect(checked == valid)
        let b = try Node([Models.fraud()], directory: dir)
        let report = b.checkpointer.restore()
        #expect(report.failure == .corrupt)
        #expect(b.value(#"mlops_storage_restore_failures_total{reason="corrupt"}"#) == 1)
    }

    /// A checkpoint that reads but one of whose models does not is kept as a copy: the next checkpoint replaces the
    /// file, and that model's saved state was gone with it (review).
    @Test func aModelThatCannotBeRestoredKeepsTheCheckpointAsACopy() throws {
        let dir = temporaryDirectory()
        let node = try Node([Models.fraud()], directory: dir)
        var w = StateWriter()
        CheckpointFormat.encode(
            exporterVersion: "t", created: 1,
            models: [("fraud", StateFingerprints(of: node.model("fraud").context))], into: &w
        ) { _, w in w.section { $0.byte(7) } }  // a state that is not one
        try write(w.bytes, to: dir)
        let report = node.checkpointer.restore()
        #expect(report.results.map(\.result) == [.failed])
        let copy = try #require(report.setAside)
        #expect(copy.hasPrefix(dir + "/checkpoint.unrestored-"))
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: copy))) == w.bytes)
        // Another start before the next checkpoint (a crash loop) keeps the one copy, not one more.
        node.crash()
        let second = try Node([Models.fraud()], directory: dir)
        let again = second.checkpointer.restore()
        second.crash()
        #expect(again.setAside == copy)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("checkpoint.") }
        #expect(files.sorted() == ["checkpoint.unrestored-" + copy.split(separator: "-").last!], "\(files)")
        try #require(node.checkpoint() != nil)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: copy))) == w.bytes)
    }

    /// Two files set aside in the same second keep both.
    @Test func aSecondFileSetAsideDoesNotOverwriteTheFirst() throws {
        let dir = temporaryDirectory()
        let file = CheckpointFile(directory: dir)
        try write([1, 2, 3], to: dir)
        let first = try file.setAside(now: 1_800_000_000)
        try write([4, 5], to: dir)
        let second = try file.setAside(now: 1_800_000_000)
        #expect(first == dir + "/checkpoint.corrupt-20270115T080000Z")
        #expect(second == first + "-2")
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: first))) == [1, 2, 3])
    }

    /// A storage path that is a file: the restore says unreadable, checkpoints fail as not_a_directory, the models
    /// keep recording.
    @Test func aStoragePathThatIsNoDirectoryIsReportedNotFatal() throws {
        let base = temporaryDirectory()
        let path = base + "/file"
        try Data([1]).write(to: URL(fileURLWithPath: path))
        let node = try Node([Models.fraud()], directory: path)
        #expect(node.checkpointer.restore().failure == .unreadable)
        #expect(node.checkpoint() == nil)
        #expect(node.value(#"mlops_storage_checkpoint_failures_total{reason="not_a_directory"}"#) == 1)
        #expect(node.model("fraud").record(version: "v1", prediction: .label("fraud")) == nil)
        // Under a file: the same.
        let under = try Node([Models.fraud()], directory: path + "/state")
        #expect(under.checkpoint() == nil)
        #expect(under.value(#"mlops_storage_checkpoint_failures_total{reason="not_a_directory"}"#) == 1)
    }

    /// A checkpoint that cannot be read at all (here a directory in its place) is set aside too, never replaced by
    /// the next checkpoint.
    @Test func anUnreadableCheckpointIsSetAsideNotOverwritten() throws {
        let dir = temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/checkpoint", withIntermediateDirectories: false)
        try write([7, 7, 7], to: dir + "/checkpoint")
        let node = try Node([Models.fraud()], directory: dir)
        let report = node.checkpointer.restore()
        #expect(report.failure == .unreadable)
        let aside = try #require(report.setAside)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: aside + "/checkpoint"))) == [7, 7, 7])
        try #require(node.checkpoint() != nil)
        #expect(FileManager.default.fileExists(atPath: aside + "/checkpoint"))
    }

    /// Stopping a checkpointer that never started (an embedding host that did not call startStorage) writes nothing:
    /// its empty state must not replace a checkpoint it never read.
    @Test func aCheckpointerThatNeverStartedDoesNotOverwriteOnStop() throws {
        let (dir, valid) = try validCheckpoint()
        let node = try Node([Models.fraud()], directory: dir)
        node.checkpointer.stop()
        #expect(Array(try #require(try CheckpointFile(directory: dir).read(maxBytes: 1 << 30))) == valid)
    }

    /// Random damage anywhere in a valid file never traps: the restore reports a failure (the configured model left in
    /// place, never a half-restored copy), or restores; past the checksum too (damaged model states read directly).
    @Test func randomDamageNeverTraps() throws {
        let (dir, valid) = try validCheckpoint()
        let (_, entries) = try CheckpointFormat.decode(valid)
        var traffic = Traffic(seed: 99)
        for _ in 0..<40 {
            var bad = valid
            let flips = 1 + Int(traffic.next() * 4)
            for _ in 0..<flips { bad[Int(traffic.next() * Double(bad.count))] ^= UInt8(1 + traffic.next() * 254) }
            if traffic.next() < 0.2 { bad = Array(bad[0..<Int(traffic.next() * Double(bad.count))]) }
            // Past the checksum: a damaged state read as a file with a matching checksum would be.
            let node = try Node([Models.fraud()], directory: dir)
            for entry in entries {
                let configured = node.model(entry.name)
                var raw = valid
                let at = entry.state.position + Int(traffic.next() * Double(valid.count - entry.state.position - 4))
                raw[min(at, raw.count - 5)] ^= 0xFF
                var state = StateReader(raw, range: entry.state.position..<(raw.count - 4))
                let (result, _) = node.monitor.restore(
                    model: entry.name, fingerprints: entry.fingerprints, state: &state, now: 0)
                #expect(result != .removed)
                if result == .failed { #expect(node.model(entry.name) === configured) }
            }
            try write(bad, to: dir)
            let fresh = try Node([Models.fraud()], directory: dir)
            let report = fresh.checkpointer.restore()
            #expect(report.failure != nil || report.results.map(\.result) != [])
            try? FileManager.default.removeItem(atPath: dir + "/checkpoint")
        }
    }
}
