import FuzzSupport

@testable import HTTPServer

/// Small limits, so that short inputs reach every limit check.
private let limits = HTTP1Parser.Limits(
    maxRequestTargetLength: 64, maxHeaderBytes: 256, maxHeaderCount: 8, maxBodySize: 1024, maxChunkLineLength: 32)

/// What a connection makes of a byte stream: the requests parsed, then the status of the error that stopped it,
/// if any (its reason names the limit met first, which may depend on how much had arrived).
private struct Outcome: Equatable {
    /// The `Content-Length` of each body announced before it was read (nil: chunked).
    var announcedBodies: [Int?] = []
    var requests: [HTTP1Parser.Request] = []
    var errorStatus: Int?
}

/// Feeds `HTTP1Parser` the payload as a connection does: the pieces arrive one after the other, each call
/// gets all the bytes not consumed yet, and a request is taken out before the next call.
///
/// Checks that no input crashes the parser, that it never consumes more than it was given, that an error is
/// final, that requests respect the limits, and that the result does not depend on how the stream was split
/// (the payload fed whole and in the pieces chosen by the control byte give the same requests and error status).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP1Parser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = FuzzInput(data, size)
    let whole = parse(input.payload, in: [0..<input.payload.count])
    let pieces = parse(input.payload, in: input.chunks())
    invariant(whole == pieces, "split input parsed differently: whole \(whole), in pieces \(pieces)")
    return 0
}

private func parse(_ payload: UnsafeBufferPointer<UInt8>, in pieces: [Range<Int>]) -> Outcome {
    var parser = HTTP1Parser(limits: limits)
    var buffer: [UInt8] = []
    var outcome = Outcome()
    var announced: HTTP1Parser.Head?
    for piece in pieces {
        buffer.append(contentsOf: payload[piece])
        while true {
            let (consumed, result) = buffer.withUnsafeBufferPointer { parser.parse($0) }
            invariant(consumed >= 0 && consumed <= buffer.count, "consumed \(consumed) of \(buffer.count) bytes")
            buffer.removeFirst(consumed)
            switch result {
            case .needMoreData:
                break
            case .bodyAnnounced(let head, let contentLength):
                invariant(
                    contentLength.map { $0 > 0 && $0 <= limits.maxBodySize } ?? true, "announced \(contentLength!)")
                invariant(!head.method.isEmpty, "empty method")
                outcome.announcedBodies.append(contentLength)
                announced = head
                continue
            case .body(let body):
                invariant(announced != nil, "a body without an announced head")
                let request = HTTP1Parser.Request(head: announced!, body: body)
                announced = nil
                check(request)
                outcome.requests.append(request)
                continue
            case .request(let request):
                check(request)
                outcome.requests.append(request)
                continue
            case .error(let error):
                check(error)
                let again = buffer.withUnsafeBufferPointer { parser.parse($0) }
                invariant(again.consumed == 0 && again.result == .error(error), "an error is not final: \(again)")
                outcome.errorStatus = error.status
                return outcome
            }
            break
        }
    }
    return outcome
}

private func check(_ request: HTTP1Parser.Request) {
    let head = request.head
    invariant(request.body.count <= limits.maxBodySize, "body of \(request.body.count) bytes")
    // An absolute-form target's authority stands for Host (RFC 9112 §3.2.2): added when no Host line came, one field
    // beyond the received lines' bound (the fuzzer found 8 lines + Host).
    invariant(head.headers.count <= limits.maxHeaderCount + 1, "\(head.headers.count) header fields")
    invariant(!head.method.isEmpty, "empty method")
    invariant(head.path.hasPrefix("/") || head.path == "*", "path \(head.path)")
    invariant(
        head.version != .http1_1 || head.headers.values(for: "Host").count == 1, "HTTP/1.1 request without one Host")
}

private func check(_ error: HTTP1ParseError) {
    invariant([400, 408, 413, 414, 431, 501, 505].contains(error.status), "status \(error.status)")
    invariant(!error.reason.contains("\n") && !error.reason.contains("\r"), "reason on several lines: \(error.reason)")
}
