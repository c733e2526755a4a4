import Glibc
import Synchronization

// MARK: - Collector

/// client_golang's process metrics (same names, types, help and `/proc` sources), for the exporter
/// itself and for the process it watches: the model server in the same pod, given by pid or by a
/// pidfile read at every scrape.
///
/// Every family has one label, `process`, naming the watched process (`exporter`, `target`):
///
/// | Family | Type | Source |
/// |---|---|---|
/// | `process_cpu_seconds_total` | counter | (utime + stime) / `_SC_CLK_TCK`, `/proc/<pid>/stat` |
/// | `process_resident_memory_bytes` | gauge | rss × page size, stat |
/// | `process_virtual_memory_bytes` | gauge | vsize, stat |
/// | `process_start_time_seconds` | gauge | `btime` of `/proc/stat` + starttime / `_SC_CLK_TCK` |
/// | `process_threads` | gauge | num_threads, stat |
/// | `process_open_fds` | gauge | entries of `/proc/<pid>/fd` (its size on Linux ≥ 6.2) |
/// | `process_max_fds` | gauge | soft "Max open files", `/proc/<pid>/limits` |
/// | `process_virtual_memory_max_bytes` | gauge | soft "Max address space", limits |
/// | `process_network_receive_bytes_total` | counter | IpExt InOctets, `/proc/<pid>/net/netstat` |
/// | `process_network_transmit_bytes_total` | counter | IpExt OutOctets, netstat |
/// | `mlops_exporter_process_target_up` | gauge | 1 if a watched pid / pidfile target was read |
///
/// A value that cannot be read is omitted rather than exported as a bogus number (writing_clientlibs):
/// an "unlimited" limit (where client_golang exports 2^64 - 1), the fd count of another user's
/// process, network counters without `/proc/<pid>/net/netstat`. A pid or pidfile target that is gone,
/// a zombie, unreadable, or named by a missing or malformed pidfile has none of its series, and
/// `mlops_exporter_process_target_up{process="<label>"}` is 0; the scrape itself still succeeds.
/// The exporter's own process has no `_up` series.
///
/// Each scrape reads every file once, with `open`/`read` into one buffer reused across scrapes.
public struct ProcessCollector: Collector {
    /// A process to watch and the `process` label value its series carry.
    public struct Target: Sendable, Hashable {
        /// How the process is found at each scrape.
        public enum Source: Sendable, Hashable {
            /// The exporter itself (`/proc/self`).
            case current
            /// A fixed pid.
            case pid(Int32)
            /// A file holding a pid in decimal (surrounding whitespace allowed), read at every scrape so
            /// that a restarted model server is followed.
            case pidFile(String)
        }

        /// The value of the `process` label.
        public var label: String
        /// Where the process is found.
        public var source: Source

        /// A target with the given label and source.
        public init(label: String, source: Source) {
            self.label = label
            self.source = source
        }

        /// The exporter itself, labelled `process="exporter"`.
        public static let exporter = Target(label: "exporter", source: .current)

        /// A process given by pid, labelled `process="target"` by default.
        public static func target(pid: Int32, label: String = "target") -> Target {
            Target(label: label, source: .pid(pid))
        }

        /// A process given by a pidfile read at every scrape, labelled `process="target"` by default.
        public static func target(pidFile: String, label: String = "target") -> Target {
            Target(label: label, source: .pidFile(pidFile))
        }
    }

    /// The watched processes, in the order given.
    public let targets: [Target]
    /// Where procfs is mounted (`/proc`; a directory tree laid out like it in tests).
    public let procRoot: String

    private let reader: ProcReader

    /// Watches `targets` (labels must be distinct: a repeated label traps, since its series would
    /// collide), reading procfs under `procRoot`.
    public init(targets: [Target] = [.exporter], procRoot: String = "/proc") {
        precondition(
            Set(targets.map(\.label)).count == targets.count,
            "ProcessCollector: target labels must be distinct: \(targets.map(\.label))")
        self.targets = targets
        self.procRoot = procRoot
        reader = ProcReader(procRoot: procRoot)
        for target in targets { reader.prepare(target.source) }
    }

    /// Watches the exporter and, if given, the model server by pid (preferred when both are given) or
    /// by pidfile, labelled `exporter` and `target`.
    public init(targetPID: Int32?, targetPIDFile: String?) {
        var targets: [Target] = [.exporter]
        if let targetPID {
            targets.append(.target(pid: targetPID))
        } else if let targetPIDFile {
            targets.append(.target(pidFile: targetPIDFile))
        }
        self.init(targets: targets)
    }

    /// `process`, the collector's name in the registry's self metrics.
    public var name: String { "process" }

    /// The ten `process_*` families and `mlops_exporter_process_target_up`, each labelled `process`.
    public var schema: CollectorSchema { Self.families.schema }

    /// Reads every target and emits its series (see the type's documentation for what is omitted).
    public func collect(into sink: inout CollectorSink) throws {
        let snapshots = targets.map { reader.snapshot(of: $0.source, keep: true) }
        let f = Self.families
        for (target, snapshot) in zip(targets, snapshots) {
            let labels = [target.label]
            if target.source != .current {
                sink.gauge(f.up, labels, value: snapshot == nil ? 0 : 1)
            }
            guard let s = snapshot else { continue }
            sink.counter(f.cpu, labels, value: s.cpuSeconds)
            sink.gauge(f.resident, labels, value: s.residentMemoryBytes)
            sink.gauge(f.virtual, labels, value: s.virtualMemoryBytes)
            sink.gauge(f.threads, labels, value: Double(s.threads))
            if let v = s.startTimeSeconds { sink.gauge(f.startTime, labels, value: v) }
            if let v = s.openFDs { sink.gauge(f.openFDs, labels, value: Double(v)) }
            if let v = s.maxFDs { sink.gauge(f.maxFDs, labels, value: v) }
            if let v = s.maxAddressSpaceBytes { sink.gauge(f.virtualMax, labels, value: v) }
            if let v = s.networkReceiveBytes { sink.counter(f.received, labels, value: v) }
            if let v = s.networkTransmitBytes { sink.counter(f.transmitted, labels, value: v) }
        }
    }

    /// Reads one process now; `nil` when it is gone, a zombie, unreadable, or its pidfile is missing
    /// or malformed. Optional fields are `nil` when their file is unreadable; a limit that is "unlimited" is 2^64 − 1.
    public func snapshot(of source: Target.Source) -> ProcessSnapshot? {
        reader.snapshot(of: source)
    }

    // MARK: Families

    struct Families {
        let schema: CollectorSchema
        let cpu: CounterHandle
        let openFDs: GaugeHandle
        let maxFDs: GaugeHandle
        let virtual: GaugeHandle
        let virtualMax: GaugeHandle
        let resident: GaugeHandle
        let startTime: GaugeHandle
        let threads: GaugeHandle
        let received: CounterHandle
        let transmitted: CounterHandle
        let up: GaugeHandle

        // Constant, valid names: a failure here is a typo caught by every test run.
        init() {
            var s = CollectorSchema()
            let l = ["process"]
            cpu = try! s.counter(
                "process_cpu_seconds", help: "Total user and system CPU time spent in seconds.", unit: "seconds",
                labels: l)
            openFDs = try! s.gauge("process_open_fds", help: "Number of open file descriptors.", labels: l)
            maxFDs = try! s.gauge("process_max_fds", help: "Maximum number of open file descriptors.", labels: l)
            virtual = try! s.gauge(
                "process_virtual_memory_bytes", help: "Virtual memory size in bytes.", unit: "bytes", labels: l)
            virtualMax = try! s.gauge(
                "process_virtual_memory_max_bytes", help: "Maximum amount of virtual memory available in bytes.",
                unit: "bytes", labels: l)
            resident = try! s.gauge(
                "process_resident_memory_bytes", help: "Resident memory size in bytes.", unit: "bytes", labels: l)
            startTime = try! s.gauge(
                "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.",
                unit: "seconds", labels: l)
            threads = try! s.gauge("process_threads", help: "Number of OS threads in the process.", labels: l)
            received = try! s.counter(
                "process_network_receive_bytes", help: "Number of bytes received by the process over the network.",
                unit: "bytes", labels: l)
            transmitted = try! s.counter(
                "process_network_transmit_bytes", help: "Number of bytes sent by the process over the network.",
                unit: "bytes", labels: l)
            up = try! s.gauge(
                "mlops_exporter_process_target_up",
                help:
                    "Whether the watched process could be read (1), or is gone, a zombie, unreadable or not named by its "
                    + "pidfile (0).", labels: l)
            schema = s
        }
    }

    static let families = Families()
}

// MARK: - Snapshot

/// One reading of a process, in the units the metrics are exported in.
public struct ProcessSnapshot: Sendable, Hashable {
    /// The pid, as `/proc/<pid>/stat` reports it.
    public var pid: Int32
    /// The command name (`comm`, at most 15 bytes, possibly with spaces and parentheses).
    public var command: String
    /// User plus system CPU time, in seconds.
    public var cpuSeconds: Double
    /// Resident set size, in bytes.
    public var residentMemoryBytes: Double
    /// Virtual memory size, in bytes.
    public var virtualMemoryBytes: Double
    /// Number of threads.
    public var threads: Int
    /// Start time, in seconds since the Unix epoch (`nil` if `/proc/stat` has no `btime`). Boot time
    /// has one-second resolution, so this may be up to a second early.
    public var startTimeSeconds: Double?
    /// Number of open file descriptors (`nil` if `/proc/<pid>/fd` is not readable, e.g. another user's).
    public var openFDs: Int?
    /// Soft limit on open files (`nil` if unlimited or unreadable).
    public var maxFDs: Double?
    /// Soft limit on address space, in bytes (`nil` if unlimited or unreadable).
    public var maxAddressSpaceBytes: Double?
    /// Bytes received over the network by the process's network namespace (IpExt InOctets).
    public var networkReceiveBytes: Double?
    /// Bytes sent over the network by the process's network namespace (IpExt OutOctets).
    public var networkTransmitBytes: Double?
}

// MARK: - /proc/<pid>/stat

/// The fields of `/proc/<pid>/stat` (proc(5)) that the process metrics use.
///
/// The second field, `comm`, is in parentheses and may itself contain spaces and parentheses (a
/// process can name itself `a) (b c`), so the fields after it are found from the LAST `)` on the line.
public struct ProcessStat: Sendable, Hashable {
    /// Field 1, the pid.
    public var pid: Int32
    /// Field 2, the command name without the surrounding parentheses.
    public var command: String
    /// Field 3, the state (`R`, `S`, `D`, `Z`, ...).
    public var state: Unicode.Scalar
    /// Field 14, user time in clock ticks.
    public var userTicks: UInt64
    /// Field 15, system time in clock ticks.
    public var systemTicks: UInt64
    /// Field 20, number of threads.
    public var threads: Int
    /// Field 22, start time in clock ticks after boot.
    public var startTicks: UInt64
    /// Field 23, virtual memory size in bytes.
    public var virtualMemoryBytes: UInt64
    /// Field 24, resident set size in pages.
    public var residentPages: UInt64

    /// Parses one stat line; `nil` if it is not one (no parentheses, too few fields, a field that is
    /// not a number).
    public init?(parsing line: String) {
        var copy = line
        guard let stat = copy.withUTF8({ ProcessStat(bytes: $0) }) else { return nil }
        self = stat
    }

    /// Parses one stat line given as bytes, e.g. as read from the file.
    public init?(parsing bytes: [UInt8]) {
        guard let stat = bytes.withUnsafeBufferPointer({ ProcessStat(bytes: $0) }) else { return nil }
        self = stat
    }

    init?(bytes: UnsafeBufferPointer<UInt8>) {
        guard let open = bytes.firstIndex(of: UInt8(ascii: "(")),
            let close = bytes.lastIndex(of: UInt8(ascii: ")")), open < close,
            let pid = ProcText.integer(ProcText.trimmed(bytes, bytes.startIndex, open)), pid > 0, pid <= Int32.max
        else { return nil }
        self.pid = Int32(pid)
        command = String(decoding: UnsafeBufferPointer(rebasing: bytes[(open + 1)..<close]), as: UTF8.self)
        // Fields after the command, counted from 3 (the state).
        var field = 3
        var state: Unicode.Scalar?
        var numbers: (utime: UInt64, stime: UInt64, threads: UInt64, start: UInt64, vsize: UInt64, rss: UInt64) =
            (0, 0, 0, 0, 0, 0)
        var i = close + 1
        while i < bytes.endIndex, field <= 24 {
            while i < bytes.endIndex, bytes[i] == UInt8(ascii: " ") { i += 1 }
            guard i < bytes.endIndex, bytes[i] != UInt8(ascii: "\n") else { break }
            var end = i
            while end < bytes.endIndex, bytes[end] != UInt8(ascii: " "), bytes[end] != UInt8(ascii: "\n") { end += 1 }
            switch field {
            case 3:
                guard end - i == 1 else { return nil }
                state = Unicode.Scalar(bytes[i])
            case 14, 15, 20, 22, 23, 24:
                guard let v = ProcText.unsigned(UnsafeBufferPointer(rebasing: bytes[i..<end])) else { return nil }
                switch field {
                case 14: numbers.utime = v
                case 15: numbers.stime = v
                case 20: numbers.threads = v
                case 22: numbers.start = v
                case 23: numbers.vsize = v
                default: numbers.rss = v
                }
            default:
                break
            }
            field += 1
            i = end
        }
        guard field > 24, let state else { return nil }
        self.state = state
        userTicks = numbers.utime
        systemTicks = numbers.stime
        threads = Int(clamping: numbers.threads)
        startTicks = numbers.start
        virtualMemoryBytes = numbers.vsize
        residentPages = numbers.rss
    }
}

// MARK: - Reading procfs

/// Reads procfs files into one reusable buffer. Thread-safe; one reading at a time.
///
/// On procfs, the files of the processes a collector watches are kept open and read again from their start at each
/// scrape (procfs makes a file's text anew for each read from offset 0), so that a scrape opens nothing: the exporter
/// itself at its open-file limit (clients holding every other descriptor) is when `process_open_fds` matters most,
/// and opening its files then failed, and every series of the exporter went missing (a probe found it). The
/// exporter's own are opened when the collector is made, before the server listens. At most three descriptors for
/// each watched process (`stat`, `limits`, `net/netstat`); a pidfile target's are closed when its pid changes or its
/// process is gone.
final class ProcReader: Sendable {
    let procRoot: String
    /// procfs reports the number of open fds as the size of `/proc/<pid>/fd` (Linux ≥ 6.2); a copy of
    /// the tree in a test directory does not.
    let isProcfs: Bool
    private let buffer = Mutex<[UInt8]>([UInt8](repeating: 0, count: 16 * 1024))
    private let bootTime = Mutex<Double?>(nil)
    /// The open files of each watched process directory (only the sources passed as `keep`).
    private let kept = Mutex<[ProcessCollector.Target.Source: OpenProcessFiles]>([:])

    static let clockTicksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    static let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))

    init(procRoot: String) {
        self.procRoot = procRoot
        // procfs's `self` is a link to the reader's own pid; a copy of the tree has no such link.
        var link = [CChar](repeating: 0, count: 32)
        let n = readlink(procRoot + "/self", &link, link.count - 1)
        isProcfs =
            n > 0 && String(decoding: link[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == String(getpid())
    }

    /// Opens the files of `source` now (the collector's own targets, at its making), so that its scrapes need no
    /// descriptor.
    func prepare(_ source: ProcessCollector.Target.Source) {
        guard isProcfs, source == .current else { return }
        _ = snapshot(of: source, keep: true)
        buffer.withLock { buffer in _ = bootTime(buffer: &buffer) }
    }

    /// One reading of `source`. `keep`: its files stay open for the next (a source the collector watches).
    func snapshot(of source: ProcessCollector.Target.Source, keep: Bool = false) -> ProcessSnapshot? {
        buffer.withLock { buffer in
            let directory: String
            switch source {
            case .current:
                directory = procRoot + "/self"
            case .pid(let pid):
                guard pid > 0 else { return nil }
                directory = procRoot + "/" + String(pid)
            case .pidFile(let path):
                guard let n = Self.read(path, into: &buffer, limit: 4096) else {
                    // Out of descriptors, the pidfile cannot be opened: the process it named last is read instead
                    // (its files are open), rather than taken for gone.
                    let short = errno == EMFILE || errno == ENFILE
                    guard short, keep, let last = kept.withLock({ $0[source]?.directory }) else { return nil }
                    directory = last
                    break
                }
                guard
                    let pid = buffer.withUnsafeBufferPointer({ b -> Int? in
                        let content = UnsafeBufferPointer(rebasing: b[0..<n])
                        return ProcText.integer(ProcText.trimmed(content, 0, n))
                    }), pid > 0, pid <= Int32.max
                else { return nil }
                directory = procRoot + "/" + String(pid)
            }
            guard keep && isProcfs else {
                let files = OpenProcessFiles(directory: directory)
                defer { files.close() }
                return read(files, buffer: &buffer)
            }
            return kept.withLock { kept in
                if let files = kept[source], files.directory != directory {
                    files.close()
                    kept[source] = nil
                }
                var files = kept[source] ?? OpenProcessFiles(directory: directory)
                files.openMissing()
                guard let snapshot = read(files, buffer: &buffer) else {
                    // Gone (or not readable now): opened again at the next scrape (a pid reused is another process).
                    files.close()
                    kept[source] = nil
                    return nil
                }
                kept[source] = files
                return snapshot
            }
        }
    }

    deinit {
        for files in kept.withLock({ $0.values }) { files.close() }
    }

    private func read(_ files: OpenProcessFiles, buffer: inout [UInt8]) -> ProcessSnapshot? {
        let directory = files.directory
        guard let n = Self.read(files.stat, into: &buffer),
            let stat = buffer.withUnsafeBufferPointer({ ProcessStat(bytes: UnsafeBufferPointer(rebasing: $0[0..<n])) }),
            stat.state != "Z", stat.state != "X"
        else { return nil }
        let ticks = Self.clockTicksPerSecond
        var snapshot = ProcessSnapshot(
            pid: stat.pid, command: stat.command,
            cpuSeconds: Double(stat.userTicks &+ stat.systemTicks) / ticks,
            residentMemoryBytes: Double(stat.residentPages &* Self.pageSize),
            virtualMemoryBytes: Double(stat.virtualMemoryBytes), threads: stat.threads)
        if let boot = bootTime(buffer: &buffer) {
            snapshot.startTimeSeconds = boot + Double(stat.startTicks) / ticks
        }
        snapshot.openFDs = countFDs(directory + "/fd")
        if let n = Self.read(files.limits, into: &buffer) {
            buffer.withUnsafeBufferPointer { b in
                let text = UnsafeBufferPointer(rebasing: b[0..<n])
                snapshot.maxFDs = ProcText.softLimit(text, "Max open files").map { Double($0) }
                snapshot.maxAddressSpaceBytes = ProcText.softLimit(text, "Max address space").map { Double($0) }
            }
        }
        if let n = Self.read(files.netstat, into: &buffer) {
            buffer.withUnsafeBufferPointer { b in
                let text = UnsafeBufferPointer(rebasing: b[0..<n])
                snapshot.networkReceiveBytes = ProcText.netstat(text, section: "IpExt", field: "InOctets").map {
                    Double($0)
                }
                snapshot.networkTransmitBytes = ProcText.netstat(text, section: "IpExt", field: "OutOctets").map {
                    Double($0)
                }
            }
        }
        return snapshot
    }

    /// `btime` from `/proc/stat`, read once: it is fixed for the life of the system.
    private func bootTime(buffer: inout [UInt8]) -> Double? {
        if let cached = bootTime.withLock({ $0 }) { return cached }
        guard let n = Self.read(procRoot + "/stat", into: &buffer),
            let btime = buffer.withUnsafeBufferPointer({
                ProcText.keyedValue(UnsafeBufferPointer(rebasing: $0[0..<n]), "btime")
            })
        else { return nil }
        let value = Double(btime)
        bootTime.withLock { $0 = value }
        return value
    }

    /// The number of entries of a `fd` directory: its size on procfs when the kernel reports it,
    /// otherwise counted (the count includes the descriptor used to list it, as client_golang's does).
    private func countFDs(_ path: String) -> Int? {
        if isProcfs {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            if st.st_size > 0 { return Int(st.st_size) }
        }
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let isDots = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".")
                    && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            }
            if !isDots { count += 1 }
        }
        return count
    }

    /// Reads a whole file into `buffer` (grown as needed, never shrunk) and returns its length, or
    /// `nil` if it cannot be opened or read or is longer than `limit` bytes (a pidfile pointing at
    /// `/dev/zero` must not exhaust memory). Non-blocking, so that a FIFO cannot hang a scrape.
    static func read(_ path: String, into buffer: inout [UInt8], limit: Int = 1 << 20) -> Int? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return read(fd, into: &buffer, limit: limit)
    }

    /// Reads the whole of the open file `fd` from its start (`pread`, so that a kept descriptor reads it anew);
    /// `nil` when `fd` is -1, the read fails, or the file is longer than `limit` bytes.
    static func read(_ fd: Int32, into buffer: inout [UInt8], limit: Int = 1 << 20) -> Int? {
        guard fd >= 0 else { return nil }
        var length = 0
        while true {
            if length > limit { return nil }
            if length == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
            let n = buffer.withUnsafeMutableBytes { b in
                pread(fd, b.baseAddress! + length, b.count - length, off_t(length))
            }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { return length }
            length += n
        }
    }
}

/// The procfs files of one process directory a reading uses, open (-1: could not be opened).
struct OpenProcessFiles: Sendable {
    let directory: String
    private(set) var stat: Int32 = -1
    private(set) var limits: Int32 = -1
    private(set) var netstat: Int32 = -1

    init(directory: String) {
        self.directory = directory
        openMissing()
    }

    /// Opens those not open (one that could not be opened before, out of descriptors, is tried again); none but
    /// `stat` while it cannot be (a process gone: one failed open a scrape, not three).
    mutating func openMissing() {
        if stat < 0 { stat = Self.open(directory + "/stat") }
        guard stat >= 0 else { return }
        if limits < 0 { limits = Self.open(directory + "/limits") }
        if netstat < 0 { netstat = Self.open(directory + "/net/netstat") }
    }

    private static func open(_ path: String) -> Int32 {
        Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    }

    func close() {
        for fd in [stat, limits, netstat] where fd >= 0 { Glibc.close(fd) }
    }
}

// MARK: - Parsing helpers

/// Allocation-free parsing of procfs text.
enum ProcText {
    static func isSpace(_ b: UInt8) -> Bool {
        b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r")
    }

    /// `bytes[from..<to]` without surrounding whitespace.
    static func trimmed(_ bytes: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> UnsafeBufferPointer<UInt8> {
        var start = from
        var end = to
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        return UnsafeBufferPointer(rebasing: bytes[start..<end])
    }

    /// A decimal number without sign, or `nil` (empty, other characters, overflow).
    static func unsigned(_ digits: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard !digits.isEmpty else { return nil }
        var value: UInt64 = 0
        for d in digits {
            guard d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(d - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            value = sum
        }
        return value
    }

    static func integer(_ digits: UnsafeBufferPointer<UInt8>) -> Int? {
        unsigned(digits).flatMap { $0 <= UInt64(Int.max) ? Int($0) : nil }
    }

    /// Calls `body` with each line (without its newline) until it returns false.
    static func forEachLine(_ text: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Bool) {
        var start = 0
        while start < text.count {
            var end = start
            while end < text.count, text[end] != UInt8(ascii: "\n") { end += 1 }
            if !body(UnsafeBufferPointer(rebasing: text[start..<end])) { return }
            start = end + 1
        }
    }

    /// Whitespace-separated fields of a line.
    static func fields(_ line: UnsafeBufferPointer<UInt8>) -> [UnsafeBufferPointer<UInt8>] {
        var out: [UnsafeBufferPointer<UInt8>] = []
        var i = 0
        while i < line.count {
            while i < line.count, isSpace(line[i]) { i += 1 }
            var end = i
            while end < line.count, !isSpace(line[end]) { end += 1 }
            if end > i { out.append(UnsafeBufferPointer(rebasing: line[i..<end])) }
            i = end
        }
        return out
    }

    static func hasPrefix(_ line: UnsafeBufferPointer<UInt8>, _ prefix: String) -> Bool {
        line.count >= prefix.utf8.count && line.prefix(prefix.utf8.count).elementsEqual(prefix.utf8)
    }

    /// The number after `key ` on the line that starts with it (`/proc/stat`'s `btime 1700000000`).
    static func keyedValue(_ text: UnsafeBufferPointer<UInt8>, _ key: String) -> UInt64? {
        var result: UInt64?
        forEachLine(text) { line in
            let f = fields(line)
            if f.count == 2, f[0].elementsEqual(key.utf8) {
                result = unsigned(f[1])
                return false
            }
            return true
        }
        return result
    }

    /// The soft limit on the `/proc/<pid>/limits` line named `name`; `nil` if unlimited or absent.
    static func softLimit(_ text: UnsafeBufferPointer<UInt8>, _ name: String) -> UInt64? {
        var result: UInt64?
        forEachLine(text) { line in
            guard hasPrefix(line, name + " ") else { return true }
            let rest = UnsafeBufferPointer(rebasing: line[name.utf8.count...])
            // "unlimited" is 2^64 − 1, as client_golang (procfs) reports it: before, the series was left out.
            result = fields(rest).first.flatMap { $0.elementsEqual("unlimited".utf8) ? UInt64.max : unsigned($0) }
            return false
        }
        return result
    }

    /// A value of `/proc/<pid>/net/netstat`, where each section is a header line of names followed by
    /// a line of values, both starting with `<section>:`.
    static func netstat(_ text: UnsafeBufferPointer<UInt8>, section: String, field: String) -> UInt64? {
        var header: [UnsafeBufferPointer<UInt8>]?
        var result: UInt64?
        forEachLine(text) { line in
            guard hasPrefix(line, section + ":") else { return true }
            let f = fields(line)
            guard let names = header else {
                header = f
                return true
            }
            if let i = names.firstIndex(where: { $0.elementsEqual(field.utf8) }), i < f.count {
                result = unsigned(f[i])
            }
            return false
        }
        return result
    }
}
