import Foundation
import MLOpsExporter
import Testing

/// Renders `collector` alone in text format and returns the lines, failing if it was skipped.
private func render(_ collector: ProcessCollector) throws -> [String] {
    let registry = Registry(options: .init(selfMetricsPrefix: nil))
    try registry.register(collector)
    var out: [UInt8] = []
    let report = registry.render(format: .text, into: &out)
    #expect(report.skipped.isEmpty, "\(report.skipped)")
    return String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init)
}

/// The value of the sample line starting with `series` followed by a space.
private func value(_ lines: [String], _ series: String) -> Double? {
    lines.first { $0.hasPrefix(series + " ") }.flatMap { Double($0.dropFirst(series.count + 1)) }
}

private func burnCPU(milliseconds: Int) {
    let clock = ContinuousClock()
    let end = clock.now + .milliseconds(milliseconds)
    var x: UInt64 = 1
    while clock.now < end { for _ in 0..<10_000 { x = x &* 6_364_136_223_846_793_005 &+ 1 } }
    #expect(x != 0)
}

/// A child process (`sleep 30`) that is killed and reaped when the test is done with it.
private final class Sleeper {
    let process = Process()
    init() throws {
        process.executableURL = URL(fileURLWithPath: "/bin/sleep")
        process.arguments = ["30"]
        try process.run()
    }
    var pid: Int32 { process.processIdentifier }
    /// SIGKILL, since a test runner may leave SIGTERM blocked or ignored in the children it spawns;
    /// Foundation reaps the child, and `waitUntilExit` returns once it has.
    func killAndReap() {
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
    deinit { killAndReap() }
}

@Suite(.serialized) struct ProcessCollectorTests {
    // MARK: stat parsing

    @Test func statParserSplitsAtTheLastParenthesis() throws {
        let line =
            "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 1234 0 5 0 731 269 0 0 20 0 7 0 98765 123456789 2048 "
            + "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
        let stat = try #require(ProcessStat(parsing: line))
        #expect(stat.pid == 4242)
        #expect(stat.command == "a) (b c")
        #expect(stat.state == "S")
        #expect(stat.userTicks == 731)
        #expect(stat.systemTicks == 269)
        #expect(stat.threads == 7)
        #expect(stat.startTicks == 98765)
        #expect(stat.virtualMemoryBytes == 123_456_789)
        #expect(stat.residentPages == 2048)
        #expect(ProcessStat(parsing: Array(line.utf8)) == stat)

        // Every kind of comm: empty, only parentheses, spaces only.
        for comm in ["", ")", "((", ") ) )", "   ", "x (1) 2 3 4 5 6 7 8 9 10 11 12 13"] {
            let l = "7 (\(comm)) R 1 1 1 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 55 1000 10 0"
            let s = try #require(ProcessStat(parsing: l), "\(comm)")
            #expect(s.command == comm)
            #expect(s.userTicks == 3 && s.systemTicks == 4 && s.threads == 1 && s.startTicks == 55)
            #expect(s.virtualMemoryBytes == 1000 && s.residentPages == 10)
        }
    }

    @Test func statParserRejectsGarbage() {
        for line in [
            "", "garbage", "12 cat R 1", "12 (cat R 1 2 3",
            "x (cat) R 1 1 1 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 55 1000 10",
            "12 (cat) R 1 1 1 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 55 1000",  // field 24 missing
            "12 (cat) R 1 1 1 0 -1 0 0 0 0 0 x 4 0 0 20 0 1 0 55 1000 10",  // utime not a number
            "12 (cat) RR 1 1 1 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 55 1000 10",
            "-3 (cat) R 1 1 1 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 55 1000 10",
        ] {
            #expect(ProcessStat(parsing: line) == nil, "\(line)")
        }
    }

    // MARK: the exporter's own process

    @Test func ownValuesArePlausible() throws {
        burnCPU(milliseconds: 50)
        let collector = ProcessCollector()
        let s = try #require(collector.snapshot(of: .current))
        let now = Date().timeIntervalSince1970
        #expect(s.pid == getpid())
        #expect(s.cpuSeconds > 0)
        #expect(s.residentMemoryBytes > 1024 * 1024)
        #expect(s.virtualMemoryBytes > s.residentMemoryBytes)
        #expect(s.threads >= 1)
        let start = try #require(s.startTimeSeconds)
        #expect(start <= now && start > now - 3600, "start \(start), now \(now)")
        #expect(try #require(s.openFDs) >= 3)
        #expect(try #require(s.maxFDs) >= 3)
        #expect(s.networkReceiveBytes != nil && s.networkTransmitBytes != nil)

        // Through a registry: the right names, help and types, and only the exporter's series.
        let lines = try render(collector)
        for (name, type, help) in [
            ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds."),
            ("process_open_fds", "gauge", "Number of open file descriptors."),
            ("process_max_fds", "gauge", "Maximum number of open file descriptors."),
            ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes."),
            ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes."),
            ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds."),
            ("process_threads", "gauge", "Number of OS threads in the process."),
            (
                "process_network_receive_bytes_total", "counter",
                "Number of bytes received by the process over the network."
            ),
            (
                "process_network_transmit_bytes_total", "counter",
                "Number of bytes sent by the process over the network."
            ),
        ] {
            #expect(lines.contains("# HELP \(name) \(help)"), "\(name)")
            #expect(lines.contains("# TYPE \(name) \(type)"), "\(name)")
            #expect(value(lines, "\(name){process=\"exporter\"}") != nil, "\(name)")
        }
        #expect(try #require(value(lines, "process_cpu_seconds_total{process=\"exporter\"}")) > 0)
        #expect(!lines.contains { $0.contains("mlops_exporter_process_target_up{") })
        #expect(!lines.contains { $0.contains("process=\"target\"") })
    }

    @Test("the files kept open are read anew at each scrape")
    func keptFilesAreReadAnew() throws {
        // The collector opens its own procfs files when made and reads them again from their start at each scrape
        // (a scrape at the open-file limit opens nothing). A kept descriptor that returned the text of its first
        // read would report the same CPU time after this thread burned 50 ms of it.
        let collector = ProcessCollector()
        let first = try #require(value(try render(collector), "process_cpu_seconds_total{process=\"exporter\"}"))
        burnCPU(milliseconds: 50)
        let second = try #require(value(try render(collector), "process_cpu_seconds_total{process=\"exporter\"}"))
        #expect(second >= first + 0.04, "\(first) -> \(second)")
    }

    @Test func openFDsFollowOpenedFiles() throws {
        let collector = ProcessCollector()
        // Other suites run in parallel in this process and open files too: retry until one clean
        // measurement, where exactly our descriptor was added.
        var deltas: [Int] = []
        for _ in 0..<50 {
            let before = try #require(collector.snapshot(of: .current)?.openFDs)
            let fd = open("/dev/null", O_RDONLY)
            #expect(fd >= 0)
            let after = try #require(collector.snapshot(of: .current)?.openFDs)
            close(fd)
            deltas.append(after - before)
            if after - before == 1 { break }
        }
        #expect(deltas.last == 1, "open fd deltas: \(deltas)")
    }

    // MARK: a watched child process

    @Test func watchesAChildByPidAndByPidfileUntilItIsGone() throws {
        let testStart = Date().timeIntervalSince1970
        let child = try Sleeper()
        let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("mlops-pid-\(UUID().uuidString)")
        try "\(child.pid)\n".write(to: pidFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: pidFile) }

        let byPid = ProcessCollector(targetPID: child.pid, targetPIDFile: nil)
        let byFile = ProcessCollector(targetPID: nil, targetPIDFile: pidFile.path)
        for collector in [byPid, byFile] {
            #expect(collector.targets.map(\.label) == ["exporter", "target"])
            let s = try #require(collector.snapshot(of: collector.targets[1].source))
            #expect(s.pid == child.pid)
            #expect(s.command == "sleep")
            #expect(s.threads == 1)
            // Boot time has one-second resolution: the start time may read up to a second early.
            #expect(try #require(s.startTimeSeconds) >= testStart.rounded(.down) - 1)
            #expect(s.startTimeSeconds! <= Date().timeIntervalSince1970 + 1)

            let lines = try render(collector)
            #expect(value(lines, "mlops_exporter_process_target_up{process=\"target\"}") == 1)
            #expect(value(lines, "process_threads{process=\"target\"}") == 1)
            #expect(value(lines, "process_start_time_seconds{process=\"target\"}") == s.startTimeSeconds)
            #expect(value(lines, "process_resident_memory_bytes{process=\"target\"}") != nil)
            #expect(value(lines, "process_threads{process=\"exporter\"}") != nil)
        }

        child.killAndReap()
        for collector in [byPid, byFile] {
            #expect(collector.snapshot(of: collector.targets[1].source) == nil)
            let lines = try render(collector)
            #expect(value(lines, "mlops_exporter_process_target_up{process=\"target\"}") == 0)
            #expect(!lines.contains { $0.hasPrefix("process_") && $0.contains("process=\"target\"") })
            #expect(value(lines, "process_threads{process=\"exporter\"}") != nil)
        }
    }

    @Test func missingOrMalformedPidfileMeansTargetDown() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mlops-pidfiles-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var targets: [ProcessCollector.Target] = [
            .target(pidFile: dir.appendingPathComponent("absent").path, label: "absent")
        ]
        for (name, content) in [
            ("empty", ""), ("garbage", "abc\n"), ("negative", "-5"), ("zero", "0"), ("huge", "99999999999"),
        ] {
            let path = dir.appendingPathComponent(name)
            try content.write(to: path, atomically: true, encoding: .utf8)
            targets.append(.target(pidFile: path.path, label: name))
        }
        let fifo = dir.appendingPathComponent("fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        targets.append(.target(pidFile: fifo, label: "fifo"))  // no writer: must not block the scrape
        targets.append(.target(pidFile: "/dev/zero", label: "devzero"))
        targets.append(.target(pidFile: dir.path, label: "directory"))
        targets.append(.target(pid: 0, label: "pid0"))
        targets.append(.target(pid: Int32.max, label: "nopid"))
        let lines = try render(ProcessCollector(targets: targets))
        for target in targets {
            #expect(
                value(lines, "mlops_exporter_process_target_up{process=\"\(target.label)\"}") == 0, "\(target.label)")
        }
        #expect(!lines.contains { $0.hasPrefix("process_") })
    }

    // MARK: a procfs tree in a directory

    @Test func readsEveryFileOfAProcTree() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mlops-proc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        func write(_ path: String, _ content: String) throws {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url, atomically: true, encoding: .utf8)
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        try write("stat", "cpu  1 2 3 4\ncpu0 1 2 3 4\nintr 1 2\nctxt 99\nbtime 1700000000\nprocesses 5\n")
        try write(
            "42/stat",
            "42 (model server) S 1 42 42 0 -1 0 0 0 0 0 250 150 0 0 20 0 12 0 \(Int(ticks) * 30) 8000000 300 0\n")
        try write(
            "42/limits",
            """
            Limit                     Soft Limit           Hard Limit           Units     
            Max cpu time              unlimited            unlimited            seconds   
            Max open files            1024                 4096                 files     
            Max address space         unlimited            unlimited            bytes     

            """)
        try write(
            "42/net/netstat",
            """
            TcpExt: SyncookiesSent InOctets
            TcpExt: 7 8
            IpExt: InNoRoutes InTruncatedPkts InOctets OutOctets
            IpExt: 0 0 123456 654321

            """)
        for fd in ["0", "1", "2", "5"] { try write("42/fd/\(fd)", "") }
        try write("43/stat", "43 (zombie) Z 1 43 43 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 0 0 0\n")
        try write("44/stat", "44 (bare) R 1 44 44 0 -1 0 0 0 0 0 1 1 0 0 20 0 3 0 5 100 1 0\n")

        let collector = ProcessCollector(
            targets: [
                .target(pid: 42, label: "model"), .target(pid: 43, label: "zombie"), .target(pid: 44, label: "bare"),
            ],
            procRoot: root.path)
        let s = try #require(collector.snapshot(of: .pid(42)))
        #expect(s.command == "model server")
        #expect(s.cpuSeconds == 400 / ticks)
        #expect(s.residentMemoryBytes == 300 * page)
        #expect(s.virtualMemoryBytes == 8_000_000)
        #expect(s.threads == 12)
        #expect(s.startTimeSeconds == 1_700_000_030)
        #expect(s.openFDs == 4)
        #expect(s.maxFDs == 1024)
        // "unlimited": 2^64 − 1 as client_golang exports it (the series was missing before).
        #expect(s.maxAddressSpaceBytes == Double(UInt64.max))
        #expect(s.networkReceiveBytes == 123_456)
        #expect(s.networkTransmitBytes == 654_321)
        #expect(collector.snapshot(of: .pid(43)) == nil)  // zombie

        let bare = try #require(collector.snapshot(of: .pid(44)))
        #expect(bare.openFDs == nil && bare.maxFDs == nil && bare.networkReceiveBytes == nil)

        let lines = try render(collector)
        #expect(value(lines, "mlops_exporter_process_target_up{process=\"model\"}") == 1)
        #expect(value(lines, "mlops_exporter_process_target_up{process=\"zombie\"}") == 0)
        #expect(value(lines, "mlops_exporter_process_target_up{process=\"bare\"}") == 1)
        #expect(value(lines, "process_max_fds{process=\"model\"}") == 1024)
        #expect(value(lines, "process_open_fds{process=\"model\"}") == 4)
        #expect(value(lines, "process_network_receive_bytes_total{process=\"model\"}") == 123_456)
        #expect(value(lines, "process_start_time_seconds{process=\"model\"}") == 1_700_000_030)
        #expect(value(lines, "process_threads{process=\"bare\"}") == 3)
        // Unlimited address space: 2^64 − 1, as client_golang exports it (before: omitted, though the docs list the
        // series); unreadable files: omitted.
        #expect(value(lines, "process_virtual_memory_max_bytes{process=\"model\"}") == Double(UInt64.max))
        #expect(!lines.contains { $0.contains("process=\"zombie\"") && $0.hasPrefix("process_") })
        #expect(!lines.contains { $0.hasPrefix("process_open_fds{process=\"bare\"}") })
    }

    @Test func describesElevenFamiliesLabelledProcess() {
        let d = ProcessCollector().descriptors
        #expect(d.count == 11)
        #expect(d.allSatisfy { $0.labelNames == ["process"] })
        #expect(ProcessCollector().name == "process")
        #expect(ProcessCollector(targetPID: 5, targetPIDFile: "/x").targets[1].source == .pid(5))
        #expect(ProcessCollector(targetPID: nil, targetPIDFile: nil).targets == [.exporter])
    }
}
