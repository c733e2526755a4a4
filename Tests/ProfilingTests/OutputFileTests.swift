import Foundation
import Testing

@testable import Profiling

/// Where `profile --out` writes: through links and into devices, never replacing them.
@Suite struct OutputFileTests {
    private func folder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("out-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A link is written through: its target gets the bytes (keeping its mode), the link stays a link. Before, the
    /// rename put a file in the link's place and left the target as it was.
    @Test func aLinkIsWrittenThroughAndTheTargetKeepsItsMode() throws {
        let dir = try folder()
        let target = dir + "/real.json"
        try Data("old".utf8).write(to: URL(fileURLWithPath: target))
        chmod(target, 0o600)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.json", withDestinationPath: "real.json")
        try Profiler.write(Array("new".utf8), to: dir + "/link.json")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "new")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/link.json") == "real.json")
        var info = stat()
        #expect(stat(target, &info) == 0 && info.st_mode & 0o777 == 0o600)
    }

    /// A path of one of the process's own descriptors is written through the descriptor as it is open (`--out
    /// /dev/stdout >> app.log` appends): resolved, it named the file, which the rename replaced, losing what was in it
    /// (review).
    @Test func anOpenDescriptorIsWrittenAsItIsOpen() throws {
        let file = try folder() + "/app.log"
        try Data("old\n".utf8).write(to: URL(fileURLWithPath: file))
        let fd = open(file, O_WRONLY | O_APPEND)
        try #require(fd >= 0)
        defer { close(fd) }
        try Profiler.write(Array("new\n".utf8), to: "/dev/fd/\(fd)")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "old\nnew\n")
        #expect(Profiler.standardDescriptor("/dev/stdout") == 1 && Profiler.standardDescriptor("/proc/self/fd/7") == 7)
        #expect(Profiler.standardDescriptor("/dev/null") == nil)
    }

    /// A device is written into, not replaced (as root, `--out /dev/null` turned /dev/null into a regular file);
    /// a device that refuses the bytes is an error naming it.
    @Test func aDeviceIsWrittenIntoNotReplaced() throws {
        try Profiler.write(Array("x".utf8), to: "/dev/null")
        var info = stat()
        #expect(stat("/dev/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)
        #expect(throws: ProfilingError.self) { try Profiler.write(Array("x".utf8), to: "/dev/full") }
        #expect(stat("/dev/full", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)
    }
}
