import Dispatch
import Glibc
import Synchronization
import Testing

@testable import HTTPServer

/// A ``TestHandler`` that decides bodies from the head: `/deny` is refused with 401, `/later` is admitted
/// from another thread after 50 ms, anything else at once.
final class AdmittingHandler: HTTPHandler {
    let inner = TestHandler()
    /// Heads put to ``admit(_:admission:)``.
    let asked = Atomic<Int>(0)

    func handle(_ request: HTTPRequest, respond: HTTPResponder) {
        inner.handle(request, respond: respond)
    }

    func admit(_ head: HTTPRequest, admission: HTTPAdmission) {
        asked.add(1, ordering: .sequentiallyConsistent)
        switch head.path {
        case "/deny":
            admission.reject(HTTPResponse(status: 401, text: "no credentials\n"))
        case "/later":
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(50)) { admission.accept() }
        default:
            admission.accept()
        }
    }
}

/// An ``AdmittingHandler`` that says it screens nothing (``HTTPHandler/screensRequestBodies`` false): the server must
/// admit every body without asking, so even `/deny` is served.
final class UnscreenedHandler: HTTPHandler {
    let inner = AdmittingHandler()

    func handle(_ request: HTTPRequest, respond: HTTPResponder) { inner.handle(request, respond: respond) }
    func admit(_ head: HTTPRequest, admission: HTTPAdmission) { inner.admit(head, admission: admission) }
    var screensRequestBodies: Bool { false }
}

/// Keeps every admission unanswered, so a test can watch it be cancelled.
final class AdmissionHoldingHandler: HTTPHandler {
    let held = Mutex<[HTTPAdmission]>([])

    func handle(_ request: HTTPRequest, respond: HTTPResponder) {
        respond(HTTPResponse(status: 200, text: "ok"))
    }

    func admit(_ head: HTTPRequest, admission: HTTPAdmission) {
        held.withLock { $0.append(admission) }
    }
}

/// Sends `piece` every 50 ms (60 times at most) until the server answers; returns the answer.
func trickle(_ piece: [UInt8], to client: RawClient) throws -> ClientResponse? {
    for _ in 0..<60 {
        try? client.send(piece)
        if client.hasInput(within: 0.05) { return try client.readResponse(timeout: 1) }
    }
    return nil
}

@Suite("Request bodies: admission, budgets, deadlines")
struct BodyLimitTests {
    @Test func anAdmissionIsCancelledWhenTheClientLeaves() throws {
        let handler = AdmissionHoldingHandler()
        try withServer(handler: handler) { _, port in
            let client = try RawClient(port: port)
            try client.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
            #expect(eventually { handler.held.withLock { $0.count } == 1 })
            let admission = handler.held.withLock { $0[0] }
            #expect(!admission.isCancelled)
            client.close()
            #expect(eventually { admission.isCancelled })
        }
    }

    @Test func aRefusedBodyIsAnsweredFromTheHeadAndNeverRead() throws {
        let handler = AdmittingHandler()
        try withServer(handler: handler) { server, port in
            let client = try RawClient(port: port)
            // 10 MB announced, none sent: the answer must not wait for the body.
            try client.send("POST /deny HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n")
            let response = try client.readResponse(timeout: 2)
            #expect(response.status == 401)
            #expect(response.header("connection") == "close")
            #expect(client.waitForClose(timeout: 5))
            #expect(handler.inner.started.load(ordering: .sequentiallyConsistent) == 0)
            #expect(server.bufferedBodyBytes == 0)
        }
    }

    @Test func anAdmittedBodyIsReceivedAfterAnAsynchronousDecision() throws {
        let handler = AdmittingHandler()
        try withServer(handler: handler) { server, port in
            let client = try RawClient(port: port)
            try client.send("POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
            try client.send(
                "POST /later HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
            let first = try client.readResponse()
            let second = try client.readResponse()
            #expect(first.text == "POST /later body=5")
            #expect(second.text == "POST /later body=3")
            #expect(handler.asked.load(ordering: .sequentiallyConsistent) == 2)
            #expect(eventually { server.bufferedBodyBytes == 0 })
        }
    }

    @Test func aHandlerThatScreensNothingIsNotAskedAndGetsEveryBody() throws {
        let handler = UnscreenedHandler()
        try withServer(handler: handler) { server, port in
            let client = try RawClient(port: port)
            try client.send("POST /deny HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
            try client.send("POST /deny HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
            #expect(try client.readResponse().text == "POST /deny body=5")
            #expect(try client.readResponse().text == "POST /deny body=3")
            let continued = try RawClient(port: port)
            try continued.send("POST /deny HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
            #expect(try continued.readResponse(bodyExpected: false).status == 100)
            try continued.send("abcd")
            #expect(try continued.readResponse().text == "POST /deny body=4")
            let h2 = try HTTP2Client(port: port)
            let stream = h2.request("POST", "/deny", body: Array("xyz".utf8))
            #expect(try h2.response(stream).text == "POST /deny body=3")
            #expect(handler.inner.asked.load(ordering: .sequentiallyConsistent) == 0)
            #expect(eventually { server.bufferedBodyBytes == 0 })
        }
    }

    @Test func expectContinueIsSentOnlyAfterAdmission() throws {
        try withServer(handler: AdmittingHandler()) { _, port in
            let denied = try RawClient(port: port)
            try denied.send("POST /deny HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
            #expect(try denied.readResponse().status == 401)

            let admitted = try RawClient(port: port)
            try admitted.send("POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
            #expect(try admitted.readResponse(bodyExpected: false).status == 100)
            try admitted.send("abcd")
            #expect(try admitted.readResponse().text == "POST /later body=4")
        }
    }

    @Test func bodiesBeyondTheProcessBudgetGet503WithRetryAfter() throws {
        let observer = RecordingObserver()
        try withServer(
            configure: {
                $0.maxBodySize = 1 << 20
                $0.maxBufferedBodyBytes = 3 << 20
            }, observer: observer
        ) { server, port in
            // Three unfinished 1 MiB bodies fill the budget.
            let holders = try (0..<3).map { _ in try RawClient(port: port) }
            for holder in holders {
                try holder.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\nx")
            }
            #expect(eventually { server.bufferedBodyBytes == 3 << 20 })
            let refused = try RawClient(port: port)
            try refused.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n")
            let response = try refused.readResponse(timeout: 2)
            #expect(response.status == 503)
            #expect(response.header("retry-after") == "1")
            #expect(observer.errors.contains("body_memory"))
            // A request without a body is still served, and the budget comes back when a holder leaves.
            let plain = try RawClient(port: port)
            try plain.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try plain.readResponse().status == 200)
            holders[0].close()
            #expect(eventually { server.bufferedBodyBytes == 2 << 20 })
            let later = try RawClient(port: port)
            try later.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
            #expect(try later.readResponse().text == "POST /x body=3")
        }
    }

    /// Two servers given the same ``SharedMemoryBounds`` (the exporter's web port and its proxy's) hold one budget:
    /// each had its own, and the two held twice the bound.
    @Test func serversSharingMemoryBoundsShareOneBodyBudget() throws {
        let shared = SharedMemoryBounds(maxBufferedBodyBytes: 2 << 20, maxUnreadAnswerBytes: 1 << 20)
        let configure: (inout HTTPServer.Configuration) -> Void = {
            $0.maxBodySize = 1 << 20
            $0.sharedMemory = shared
        }
        try withServer(configure: configure) { first, firstPort in
            try withServer(configure: configure) { second, secondPort in
                #expect(first.bufferedBodyLimit == 2 << 20 && second.unreadAnswerLimit == 1 << 20)
                let holders = try [firstPort, secondPort].map { port in
                    let holder = try RawClient(port: port)
                    try holder.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\nx")
                    return holder
                }
                #expect(eventually { first.bufferedBodyBytes == 2 << 20 && second.bufferedBodyBytes == 2 << 20 })
                for port in [firstPort, secondPort] {
                    let refused = try RawClient(port: port)
                    try refused.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n")
                    #expect(try refused.readResponse(timeout: 2).status == 503)
                }
                holders[1].close()
                #expect(eventually { first.bufferedBodyBytes == 1 << 20 })
            }
        }
    }

    @Test func aBodyTricklingBelowTheMinimumRateGets408() throws {
        let observer = RecordingObserver()
        try withServer(
            configure: {
                $0.minBodyRate = 1000
                $0.bodyRateGrace = .milliseconds(200)
                $0.bodyReadTimeout = .seconds(30)
            }, observer: observer
        ) { _, port in
            let client = try RawClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
            // One byte every 50 ms (20 B/s): each read would restart a gap timer, the rate catches it.
            let start = monotonicSeconds()
            let response = try trickle(Array("x".utf8), to: client)
            let elapsed = monotonicSeconds() - start
            #expect(response?.status == 408)
            #expect(elapsed < 2)
            #expect(observer.errors.contains("body_too_slow"))
        }
    }

    /// A body refused as too slow gives its reservation back with the 408, not when the connection has finished
    /// lingering (2 s later): heads that announce large bodies and send nothing held the budget that long longer
    /// (audit 13: 16 of them held the whole 256 MiB, 503 for everyone else for ~7 s per round).
    @Test func aBodyRefusedAsTooSlowGivesItsReservationBackAtOnce() throws {
        try withServer(
            configure: {
                $0.minBodyRate = 1000
                $0.bodyRateGrace = .milliseconds(200)
            }
        ) { server, port in
            let client = try RawClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
            #expect(eventually { server.bufferedBodyBytes == 1_000_000 })
            #expect(try client.readResponse(timeout: 3).status == 408)
            // The connection lingers (reading and dropping) for 2 s; the budget is back well before.
            #expect(eventually(timeout: 0.5) { server.bufferedBodyBytes == 0 })
        }
    }

    @Test func aBodyMustFinishWithinTheTotalTime() throws {
        try withServer(
            configure: {
                $0.minBodyRate = 0
                $0.bodyTimeout = .milliseconds(400)
            }
        ) { _, port in
            let client = try RawClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
            #expect(try trickle([UInt8](repeating: 0x78, count: 100), to: client)?.status == 408)
        }
    }

    @Test func aPipelinedBodyWaitsForTheConnectionsShareThenIsReceived() throws {
        // The first body holds the connection's whole share until its (late) response is delivered: the second body
        // waits, admitted, and is received once the share is back, with its own reservation (held until its own late
        // response).
        try withServer(configure: {
            $0.maxBodySize = 1000
            $0.maxConnectionBodyBytes = 1000
        }) { server, port in
            let client = try RawClient(port: port)
            let body = String(repeating: "x", count: 800)
            try client.send("POST /slow?ms=200 HTTP/1.1\r\nHost: t\r\nContent-Length: 800\r\n\r\n" + body)
            try client.send("POST /slow?ms=1000 HTTP/1.1\r\nHost: t\r\nContent-Length: 800\r\n\r\n" + body)
            #expect(eventually { server.bufferedBodyBytes == 800 })
            #expect(try client.readResponse(timeout: 5).text == "slow")
            #expect(eventually { server.bufferedBodyBytes == 800 })
            #expect(try client.readResponse(timeout: 5).text == "slow")
            #expect(eventually { server.bufferedBodyBytes == 0 })
        }
    }

    @Test func reservedConnectionsStillServeRequestsWithoutABody() throws {
        let observer = RecordingObserver()
        try withServer(
            configure: {
                $0.maxConnections = 4
                $0.reservedConnections = 1
            }, observer: observer
        ) { server, port in
            let uploaders = try (0..<3).map { _ in try RawClient(port: port) }
            for uploader in uploaders {
                try uploader.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nx")
            }
            #expect(eventually { server.connectionsReceivingBodies == 3 })
            let fourth = try RawClient(port: port)
            try fourth.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
            let refused = try fourth.readResponse(timeout: 2)
            #expect(refused.status == 503)
            #expect(refused.header("retry-after") == "1")
            #expect(observer.errors.contains("body_connections"))
            #expect(fourth.waitForClose())
            let scrape = try RawClient(port: port)
            try scrape.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try scrape.readResponse(timeout: 5).status == 200)
        }
    }

    @Test func http2BodiesAreBoundedPerConnectionByFlowControl() throws {
        let observer = RecordingObserver()
        try withServer(
            configure: {
                $0.maxBodySize = 1 << 20
                $0.maxConnectionBodyBytes = 2 << 20
            }, observer: observer
        ) { server, port in
            let client = try HTTP2Client(port: port)
            // 20 streams × 900 KB, none finished: 18 MB offered to one connection.
            let chunk = [UInt8](repeating: 0x61, count: 900_000)
            let ids = (0..<20).map { _ in client.request("POST", "/echo", body: chunk, endStream: false) }
            var peak = 0
            try client.run(timeout: 5) {
                peak = max(peak, server.bufferedBodyBytes)
                return ids.filter { client.responses[$0]?.status == 503 }.count >= 17
            }
            #expect(peak <= 2 << 20)
            #expect(server.bufferedBodyBytes <= 2 << 20)
            #expect(observer.errors.contains("body_memory"))
            // The connection still serves requests.
            let get = client.request("GET", "/x")
            #expect(try client.response(get).status == 200)
        }
    }

    @Test func http2RefusedBodyGetsItsAnswerAndTheConnectionGoesOn() throws {
        let handler = AdmittingHandler()
        try withServer(handler: handler) { server, port in
            let client = try HTTP2Client(port: port)
            let denied = client.request("POST", "/deny", body: [UInt8](repeating: 1, count: 200_000), endStream: false)
            let response = try client.response(denied)
            #expect(response.status == 401)
            #expect(response.text == "no credentials\n")
            #expect(response.errorCode == 0)  // RST_STREAM(NO_ERROR) after the response, or a clean close
            let admitted = client.request("POST", "/later", body: Array("abc".utf8))
            #expect(try client.response(admitted).text == "POST /later body=3")
            #expect(handler.inner.started.load(ordering: .sequentiallyConsistent) == 1)
            #expect(eventually { server.bufferedBodyBytes == 0 })
        }
    }

    @Test func anUpgradeRequestWithABodyReturnsItsReservation() throws {
        try withServer { server, port in
            let client = try RawClient(port: port)
            try client.send(
                "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                    + "HTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 5\r\n\r\nhello")
            #expect(try client.readResponse(bodyExpected: false).status == 101)
            #expect(eventually { server.bufferedBodyBytes == 0 && server.connectionsReceivingBodies == 0 })
        }
    }

    /// The upgraded request (stream 1) reaches the handler with its fields: they were lost once HTTP/2 streams kept
    /// their fields as received lines (an upgraded stream's came from HTTP/1.1, not as lines of its own).
    @Test func anUpgradedRequestKeepsItsFields() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            try client.send(
                "GET /headers HTTP/1.1\r\nHost: t\r\nX-Probe: here\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                    + "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
            #expect(try client.readResponse(bodyExpected: false).status == 101)
            try client.send(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0])
            var received: [UInt8] = []
            let found = eventually {
                received += (try? client.readAvailable(timeout: 0.05)) ?? []
                return String(decoding: received, as: UTF8.self).contains("X-Probe: here")
            }
            #expect(found, "\(String(decoding: received, as: UTF8.self))")
        }
    }

    @Test func http2SlowStreamGets408AndOthersAreServed() throws {
        try withServer(
            configure: {
                $0.minBodyRate = 100_000
                $0.bodyRateGrace = .milliseconds(200)
            }
        ) { _, port in
            let client = try HTTP2Client(port: port)
            let slow = client.request("POST", "/echo", body: Array("x".utf8), endStream: false)
            let response = try client.response(slow, timeout: 3)
            #expect(response.status == 408)
            let get = client.request("GET", "/y")
            #expect(try client.response(get).status == 200)
        }
    }
}
