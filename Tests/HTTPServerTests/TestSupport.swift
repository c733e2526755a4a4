import Dispatch
import Glibc
import HTTPServer
import Logging
import Synchronization
import Testing

/// A logger that discards everything (tests assert on behaviour, not on log lines).
let quietLogger = Logger(label: "http-server-tests") { _ in SwiftLogNoOpLogHandler() }

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Monotonic seconds, for measuring elapsed time in assertions.
func monotonicSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

/// Polls `condition` every few milliseconds until it holds or `timeout` passes; returns whether it held.
/// This is how tests wait for asynchronous effects: no fixed sleeps.
func eventually(timeout: Double = 5, _ condition: () -> Bool) -> Bool {
    let end = monotonicSeconds() + timeout
    while monotonicSeconds() < end {
        if condition() { return true }
        usleep(2_000)
    }
    return condition()
}

/// Runs `body`, then again every `interval` seconds (a sleep between runs: it paces a client, it synchronises
/// nothing), until `seconds` have passed or it ran `limit` times; returns how many times it ran.
@discardableResult
func paced(
    for seconds: Double, every interval: Double = 0.1, limit: Int = 100, _ body: () throws -> Void
) rethrows
    -> Int
{
    let start = monotonicSeconds()
    var runs = 0
    while true {
        try body()
        runs += 1
        if monotonicSeconds() - start >= seconds || runs >= limit { return runs }
        usleep(UInt32(interval * 1_000_000))
    }
}

/// A parsed response as seen by the raw test client.
struct ClientResponse {
    var status: Int
    var reason: String
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A blocking TCP client on raw sockets, so tests control every byte on the wire.
final class RawClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    /// `receiveBuffer`: `SO_RCVBUF` set before connecting (a small one keeps what the server writes in its own queue).
    init(host: String = "127.0.0.1", port: Int, ipv6: Bool = false, receiveBuffer: Int32? = nil) throws {
        fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket failed: \(errno)") }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var storage = sockaddr_storage()
        let length: socklen_t
        if ipv6 {
            length = withUnsafeMutableBytes(of: &storage) { raw in
                let address = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
                address.pointee.sin6_family = sa_family_t(AF_INET6)
                address.pointee.sin6_port = in_port_t(UInt16(port).bigEndian)
                inet_pton(AF_INET6, host, &address.pointee.sin6_addr)
                return socklen_t(MemoryLayout<sockaddr_in6>.size)
            }
        } else {
            length = withUnsafeMutableBytes(of: &storage) { raw in
                let address = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
                address.pointee.sin_family = sa_family_t(AF_INET)
                address.pointee.sin_port = in_port_t(UInt16(port).bigEndian)
                inet_pton(AF_INET, host, &address.pointee.sin_addr)
                return socklen_t(MemoryLayout<sockaddr_in>.size)
            }
        }
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
        guard result == 0 else {
            let error = errno
            Glibc.close(fd)
            throw TestFailure("connect to port \(port) failed: errno \(error)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    private var isClosed = false

    deinit {
        close()
    }

    func close() {
        if !isClosed {
            isClosed = true
            Glibc.close(fd)
        }
    }

    func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard written > 0 else { throw TestFailure("send failed: errno \(errno)") }
            offset += written
        }
    }

    func shutdownWrite() {
        Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Reads more bytes into the buffer; returns false on EOF or error, throws on timeout.
    private func fill(timeout: Double) throws -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, Int32(timeout * 1000))
        if ready == 0 { throw TestFailure("timed out waiting for data") }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { return false }
        buffer.append(contentsOf: chunk[0..<count])
        return true
    }

    /// Whether data (or EOF) arrives within `timeout` seconds, without consuming it.
    func hasInput(within timeout: Double) -> Bool {
        if !buffer.isEmpty { return true }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, Int32(timeout * 1000)) > 0
    }

    /// Reads one response. `bodyExpected: false` for answers to HEAD (Content-Length describes a body
    /// that is not sent).
    func readResponse(bodyExpected: Bool = true, timeout: Double = 5) throws -> ClientResponse {
        var headEnd: Int?
        while true {
            if let range = findHeadEnd() {
                headEnd = range
                break
            }
            guard try fill(timeout: timeout) else { throw TestFailure("connection closed before a response head") }
        }
        let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == "HTTP/1.1", let status = Int(parts[1]) else {
            throw TestFailure("bad status line: \(statusLine)")
        }
        let headers = lines.map { line -> (String, String) in
            let colon = line.firstIndex(of: ":")!
            return (
                String(line[..<colon]),
                String(line[line.index(after: colon)...]).trimmingCharacters(in: " ")
            )
        }
        buffer.removeFirst(headEnd! + 4)
        var response = ClientResponse(
            status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers, body: [])
        if bodyExpected, let length = response.header("content-length").flatMap(Int.init) {
            while buffer.count < length {
                guard try fill(timeout: timeout) else { throw TestFailure("connection closed inside a body") }
            }
            response.body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        }
        return response
    }

    private func findHeadEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for index in 0...(buffer.count - 4)
        where buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 {
            return index
        }
        return nil
    }

    /// Whatever arrives within `timeout` (buffered bytes first); empty when nothing did.
    func readAvailable(timeout: Double) throws -> [UInt8] {
        if buffer.isEmpty { _ = try fill(timeout: timeout) }
        defer { buffer.removeAll() }
        return buffer
    }

    /// Whether the server closes the connection (EOF or reset) within `timeout`, discarding any data.
    func waitForClose(timeout: Double = 5) -> Bool {
        let end = monotonicSeconds() + timeout
        buffer.removeAll()
        while monotonicSeconds() < end {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, (end - monotonicSeconds()) * 1000)))
            if ready <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { return true }
        }
        return false
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var result = Substring(self)
        while result.first == set { result.removeFirst() }
        while result.last == set { result.removeLast() }
        return String(result)
    }

    func components(separatedBy separator: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let range = rest.firstRange(of: separator) {
            parts.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }
}

/// Records observer calls for assertions.
final class RecordingObserver: HTTPServerObserver {
    struct Completed: Equatable {
        var method: String
        var status: Int
        var protocolName: String
        var responseBytes: Int
    }

    private let state = Mutex((opened: 0, closed: 0, completed: [Completed](), errors: [String]()))

    var opened: Int { state.withLock { $0.opened } }
    var closed: Int { state.withLock { $0.closed } }
    var completed: [Completed] { state.withLock { $0.completed } }
    var errors: [String] { state.withLock { $0.errors } }

    func connectionOpened() { state.withLock { $0.opened += 1 } }
    func connectionClosed() { state.withLock { $0.closed += 1 } }
    func requestCompleted(
        method: String, status: Int, protocolName: String, responseBytes: Int, durationSeconds: Double
    ) {
        state.withLock {
            $0.completed.append(
                Completed(method: method, status: status, protocolName: protocolName, responseBytes: responseBytes))
        }
    }
    func connectionError(reason: String) { state.withLock { $0.errors.append(reason) } }
}

/// The handler used by the end-to-end tests:
/// - `/slow?ms=N` answers "slow" from another thread after N ms;
/// - `/big?bytes=N` answers N bytes of "x";
/// - `/echo` answers the request body;
/// - `/headers` answers the request's header fields, one `name: value` line each;
/// - anything else answers "METHOD path?query" plus the body length.
final class TestHandler: HTTPHandler {
    /// Counts requests that reached the handler.
    let started = Atomic<Int>(0)

    func handle(_ request: HTTPRequest, respond: HTTPResponder) {
        started.add(1, ordering: .sequentiallyConsistent)
        let parameter = request.query.flatMap { query in
            query.split(separator: "=").last.flatMap { Int($0) }
        }
        switch request.path {
        case "/slow":
            let milliseconds = parameter ?? 100
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(milliseconds)) {
                respond(HTTPResponse(status: 200, text: "slow"))
            }
        case "/big":
            respond(HTTPResponse(status: 200, body: [UInt8](repeating: UInt8(ascii: "x"), count: parameter ?? 0)))
        case "/echo":
            respond(
                HTTPResponse(status: 200, headers: ["Content-Type": "application/octet-stream"], body: request.body))
        case "/headers":
            respond(HTTPResponse(status: 200, text: request.headers.map { "\($0.name): \($0.value)\n" }.joined()))
        default:
            let target = request.query.map { "\(request.path)?\($0)" } ?? request.path
            respond(HTTPResponse(status: 200, text: "\(request.method) \(target) body=\(request.body.count)"))
        }
    }
}

/// Runs `body` against a started server on 127.0.0.1 with a free port, then shuts it down.
func withServer(
    configure: (inout HTTPServer.Configuration) -> Void = { _ in },
    handler: some HTTPHandler = TestHandler(),
    observer: (any HTTPServerObserver)? = nil,
    _ body: (HTTPServer, Int) throws -> Void
) throws {
    var configuration = HTTPServer.Configuration(listenAddresses: ["127.0.0.1:0"])
    configuration.eventLoopCount = 2
    configure(&configuration)
    let server = HTTPServer(configuration: configuration, handler: handler, observer: observer, logger: quietLogger)
    try server.start()
    defer { server.shutdown(deadline: .seconds(2)) }
    try body(server, server.boundAddresses[0].port)
}

/// Whether this host can bind the IPv6 loopback address.
let ipv6LoopbackAvailable: Bool = {
    let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { Glibc.close(fd) }
    var address = sockaddr_in6()
    address.sin6_family = sa_family_t(AF_INET6)
    inet_pton(AF_INET6, "::1", &address.sin6_addr)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
        }
    }
}()
