import COpenSSL
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

@testable import HTTPServer

/// A blocking TLS 1.3 client (OpenSSL) over a ``RawClient``'s socket.
final class TLSTestClient {
    let raw: RawClient
    private let context: OpaquePointer
    private let ssl: OpaquePointer

    /// Connects and completes the handshake (no certificate check: the server's is self-signed).
    init(port: Int) throws {
        raw = try RawClient(port: port)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(raw.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw TestFailure("SSL_CTX_new failed") }
        self.context = context
        guard let ssl = SSL_new(context) else { throw TestFailure("SSL_new failed") }
        self.ssl = ssl
        SSL_set_fd(ssl, raw.fd)
        guard SSL_connect(ssl) == 1 else { throw TestFailure("handshake failed") }
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
        raw.close()
    }

    /// Sends `GET path` (keep-alive) and reads the response to its end: its status line and body.
    func get(_ path: String) throws -> (status: String, body: String) {
        try send(Array("GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
        return try response()
    }

    /// Sends `request` whole.
    func send(_ request: [UInt8]) throws {
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
            guard count > 0 else { throw TestFailure("SSL_write failed after \(sent) bytes") }
            sent += Int(count)
        }
    }

    /// Reads one response to its end: its status line and body.
    func response() throws -> (status: String, body: String) {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        var headEnd: Int?
        var length = 0
        while true {
            if headEnd == nil, let end = TLSTestClient.headEnd(in: received) {
                headEnd = end
                let head = String(decoding: received[..<end], as: UTF8.self)
                length =
                    head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            }
            if let headEnd, received.count - headEnd - 4 >= length {
                let status = String(decoding: received[..<headEnd], as: UTF8.self).split(separator: "\r\n")[0]
                return (
                    String(status), String(decoding: received[(headEnd + 4)..<(headEnd + 4 + length)], as: UTF8.self)
                )
            }
            let count = SSL_read(ssl, &chunk, Int32(chunk.count))
            guard count > 0 else { throw TestFailure("SSL_read ended after \(received.count) bytes") }
            received += chunk[0..<Int(count)]
        }
    }

    /// Where the head ends (its blank line's CR), if it does.
    static func headEnd(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4)
        where bytes[index] == 0x0D && bytes[index + 1] == 0x0A && bytes[index + 2] == 0x0D && bytes[index + 3] == 0x0A {
            return index
        }
        return nil
    }
}

/// The handshake steps an offload was given, run only when the test says so.
final class HeldSteps: Sendable {
    private let state = Mutex<(holding: Bool, run: [@Sendable () -> Void], expire: [@Sendable () -> Void])>(
        (false, [], []))

    var offload: HTTPServer.TLSHandshakeOffload {
        { run, expired in
            let now = self.state.withLock { state -> Bool in
                guard state.holding else { return true }
                state.run.append(run)
                state.expire.append(expired)
                return false
            }
            if now { DispatchQueue.global().async { run() } }
            return true
        }
    }

    var held: Int { state.withLock { $0.run.count } }

    /// Runs the held steps on the calling thread.
    func runHeldHere() {
        let run = state.withLock { state in
            defer { state = (false, [], []) }
            return state.run
        }
        for job in run { job() }
    }
    func hold() { state.withLock { $0.holding = true } }

    /// Runs the held steps (or expires them), and those to come at once.
    func release(expiring: Bool = false) {
        let (run, expire) = state.withLock { state in
            defer { state = (false, [], []) }
            return (state.run, state.expire)
        }
        for job in expiring ? expire : run { DispatchQueue.global().async { job() } }
    }
}

/// An offload that runs each step `delay` seconds late, on another thread.
func delayedSteps(_ delay: Double) -> HTTPServer.TLSHandshakeOffload {
    { run, _ in
        // A thread of its own: Dispatch's pool, starved by the suites running beside it, ran the step too late.
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: delay)
            run()
        }
        return true
    }
}

@Suite("TLS handshakes off the event loop")
struct TLSHandshakeOffloadTests {
    /// A request right behind the client's Finished (TLS 1.3 allows it in one flight) is read while the step for the
    /// Finished waits, however large: it was counted toward the handshake's 256 KiB and failed it
    /// (`tls_handshake_failed`). The client's end of input behind a request ends nothing early: it was taken for an
    /// abort (`tls_handshake_aborted`), the request unanswered.
    @Test func dataAndEndOfInputBehindTheFinishedWaitForTheStep() throws {
        let folder = try TLSTests.selfSignedCertificate()
        defer { try? FileManager.default.removeItem(at: folder) }
        let observer = RecordingObserver()
        try withServer(
            configure: {
                Self.configure(&$0, folder: folder)
                $0.tlsHandshakeOffload = delayedSteps(0.2)
            }, observer: observer
        ) { _, port in
            let body = [UInt8]((0..<(1 << 20)).map { UInt8(ascii: "a") + UInt8($0 % 26) })
            let upload = try TLSTestClient(port: port)
            try upload.send(
                Array("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
            let echoed = try upload.response()
            #expect(echoed.status == "HTTP/1.1 200 OK")
            #expect(Array(echoed.body.utf8) == body)
            let closing = try TLSTestClient(port: port)
            try closing.send(Array("GET /closing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8))
            shutdown(closing.raw.fd, Int32(SHUT_WR))
            #expect(try closing.response().body == "GET /closing body=0")
            #expect(!observer.errors.contains { $0.hasPrefix("tls_") }, "\(observer.errors)")
        }
    }

    /// A step whose connection closed while it waited is not run (an attacker's ClientHellos, each reset at once, cost
    /// a signature each and queued real clients behind them): it comes back `tls_handshake_aborted`.
    @Test func aStepOfAClosedConnectionIsNotRun() throws {
        let folder = try TLSTests.selfSignedCertificate()
        defer { try? FileManager.default.removeItem(at: folder) }
        let context = try TLSContext(
            TLSConfiguration(certificateFile: folder.path + "/c.pem", privateKeyFile: folder.path + "/k.pem"),
            http2: false)
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { Glibc.close(pair[1]) }
        _ = fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK)
        let steps = HeldSteps()
        steps.hold()
        let made = TLSTransport(fileDescriptor: pair[0], context: context, offload: steps.offload)
        let transport = try #require(made)
        // A client's ClientHello on the other end.
        let clientContext = try #require(SSL_CTX_new(TLS_client_method()))
        defer { SSL_CTX_free(clientContext) }
        let client = try #require(SSL_new(clientContext))
        defer { SSL_free(client) }
        _ = fcntl(pair[1], F_SETFL, fcntl(pair[1], F_GETFL) | O_NONBLOCK)
        SSL_set_fd(client, pair[1])
        #expect(SSL_connect(client) == -1)  // sent, waits for the server
        var buffer = [UInt8](repeating: 0, count: 4096)
        let result = buffer.withUnsafeMutableBytes { transport.read(into: $0) }
        #expect(result == .wouldBlock)
        #expect(steps.held == 1)
        transport.close()
        steps.runHeldHere()
        guard case .failed(let reason, _)? = transport.stepOutcome else {
            Issue.record("the step ran: \(String(describing: transport.stepOutcome))")
            return
        }
        #expect(reason == "tls_handshake_aborted")
    }

    static func configure(_ configuration: inout HTTPServer.Configuration, folder: URL) {
        configuration.tls = TLSConfiguration(
            certificateFile: folder.path + "/c.pem", privateKeyFile: folder.path + "/k.pem")
        configuration.eventLoopCount = 1  // one loop: a handshake run on it would hold every connection
    }

    /// Served the same with the steps on the loop (no offload) and off it; several requests on one connection, and
    /// a request sent right behind the handshake (read from the memory BIO before the socket's takes over).
    @Test(arguments: [false, true])
    func tlsIsServedWithAndWithoutTheOffload(offloaded: Bool) throws {
        let folder = try TLSTests.selfSignedCertificate()
        defer { try? FileManager.default.removeItem(at: folder) }
        let steps = HeldSteps()
        try withServer(configure: {
            Self.configure(&$0, folder: folder)
            if offloaded { $0.tlsHandshakeOffload = steps.offload }
        }) { _, port in
            for _ in 0..<2 {
                let client = try TLSTestClient(port: port)
                for index in 0..<3 {
                    let (status, body) = try client.get("/n\(index)")
                    #expect(status == "HTTP/1.1 200 OK")
                    #expect(body == "GET /n\(index) body=0")
                }
            }
            let big = try TLSTestClient(port: port)
            let bigBody = try big.get("/big?bytes=300000").body
            #expect(bigBody.count == 300_000)
        }
    }

    /// While a handshake's step waits for the offload, the loop serves a connection already established: the step
    /// is not run on it. Released, the waiting client completes its handshake and is served.
    @Test func aHeldHandshakeDoesNotHoldTheLoop() throws {
        let folder = try TLSTests.selfSignedCertificate()
        defer { try? FileManager.default.removeItem(at: folder) }
        let steps = HeldSteps()
        try withServer(configure: {
            Self.configure(&$0, folder: folder)
            $0.tlsHandshakeOffload = steps.offload
        }) { _, port in
            let established = try TLSTestClient(port: port)
            #expect(try established.get("/a").status == "HTTP/1.1 200 OK")
            steps.hold()
            let second = Mutex<Result<String, any Error>?>(nil)
            let thread = Thread {
                let result = Result { try TLSTestClient(port: port).get("/b").body }
                second.withLock { $0 = result }
            }
            thread.start()
            #expect(eventually { steps.held == 1 })
            for index in 0..<3 {
                #expect(try established.get("/c\(index)").body == "GET /c\(index) body=0")
            }
            #expect(second.withLock { $0 } == nil)
            steps.release()
            #expect(eventually(timeout: 10) { second.withLock { $0 } != nil })
            let answer = try second.withLock { $0 }?.get()
            #expect(answer == "GET /b body=0")
        }
    }

    /// A step that waited too long is not run: the handshake fails, counted `tls_handshake_timeout`; an offload that
    /// refuses the step fails it at once (`tls_handshake_failed`). The server goes on serving.
    @Test func anExpiredOrRefusedStepFailsTheHandshake() throws {
        let folder = try TLSTests.selfSignedCertificate()
        defer { try? FileManager.default.removeItem(at: folder) }
        let steps = HeldSteps()
        let refuse = Atomic<Bool>(false)
        let observer = RecordingObserver()
        let offload = steps.offload
        try withServer(
            configure: {
                Self.configure(&$0, folder: folder)
                $0.tlsHandshakeOffload = { run, expired in
                    refuse.load(ordering: .relaxed) ? false : offload(run, expired)
                }
            }, observer: observer
        ) { _, port in
            steps.hold()
            let failed = Mutex<Bool?>(nil)
            let thread = Thread {
                let outcome = (try? TLSTestClient(port: port)) == nil
                failed.withLock { $0 = outcome }
            }
            thread.start()
            #expect(eventually { steps.held == 1 })
            steps.release(expiring: true)
            #expect(eventually(timeout: 10) { failed.withLock { $0 } == true })
            #expect(eventually { observer.errors.contains("tls_handshake_timeout") })
            refuse.store(true, ordering: .relaxed)
            #expect((try? TLSTestClient(port: port)) == nil)
            #expect(eventually { observer.errors.contains("tls_handshake_failed") })
            refuse.store(false, ordering: .relaxed)
            let after = try TLSTestClient(port: port)
            #expect(try after.get("/after").body == "GET /after body=0")
        }
    }
}
