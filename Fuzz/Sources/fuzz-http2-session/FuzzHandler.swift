@testable import HTTPServer

/// Answers every request, either at once from inside `handle` (as a handler that responds synchronously on
/// the event loop, re-entering the session while it parses) or later, when the harness delivers the answers
/// it collected (as a handler that responds from another thread).
///
/// `@unchecked Sendable`: a harness runs on one thread, and so does everything it drives.
final class FuzzHandler: HTTPHandler, @unchecked Sendable {
    /// The connection being fuzzed, for synchronous answers.
    var connection: Connection?
    /// Answer inside `handle` rather than collect.
    var synchronous = false
    /// Requests waiting for their answer, in arrival order.
    private(set) var waiting: [(request: HTTPRequest, responder: HTTPResponder)] = []
    /// Heads waiting for the decision on their body, in arrival order.
    private(set) var admissions: [(head: HTTPRequest, admission: HTTPAdmission)] = []

    func admit(_ head: HTTPRequest, admission: HTTPAdmission) {
        if synchronous, let connection {
            Self.decide(head, admission, on: connection)
        } else {
            admissions.append((head, admission))
        }
    }

    /// Takes the heads waiting for a decision.
    func takeAdmissions() -> [(head: HTTPRequest, admission: HTTPAdmission)] {
        defer { admissions = [] }
        return admissions
    }

    /// Decides as the event loop delivers a decision (`EventLoop.decideAdmissionNow`): `/deny` is refused with
    /// 401 (the body is then discarded), anything else admitted.
    static func decide(_ head: HTTPRequest, _ admission: HTTPAdmission, on connection: Connection) {
        let rejection = head.path == "/deny" ? HTTPResponse(status: 401, text: "no\n") : nil
        connection.protocolHandler.admissionDecided(rejection, requestID: admission.requestID!, connection: connection)
    }

    func handle(_ request: HTTPRequest, respond: HTTPResponder) {
        if synchronous, let connection {
            Self.answer(request, respond, on: connection)
        } else {
            waiting.append((request, respond))
        }
    }

    /// Takes the requests waiting for an answer.
    func takeWaiting() -> [(request: HTTPRequest, responder: HTTPResponder)] {
        defer { waiting = [] }
        return waiting
    }

    /// Delivers the answer to `request` as the event loop does (`EventLoop.deliverNow`): straight to the
    /// connection's protocol handler. (Calling `respond` here would post it to a loop that never runs.)
    static func answer(_ request: HTTPRequest, _ respond: HTTPResponder, on connection: Connection) {
        connection.protocolHandler.deliver(response(to: request), requestID: respond.requestID, connection: connection)
    }

    /// `/big`: a body over the HTTP/2 output threshold; `/empty`: 204; anything else a short text.
    static func response(to request: HTTPRequest) -> HTTPResponse {
        switch request.path {
        case "/big": HTTPResponse(status: 200, body: [UInt8](repeating: 0x61, count: 70_000))
        case "/empty": HTTPResponse(status: 204)
        default: HTTPResponse(status: 200, text: "\(request.method) \(request.path) \(request.body.count)\n")
        }
    }
}
