import FuzzSupport

@testable import HTTPServer

/// Small limits, so that short inputs reach every limit check.
private let limits = (maxHeaderBytes: 128, maxHeaderCount: 6)

/// What the proxy's upstream client makes of a byte stream: the events with body pieces joined, each end with the
/// parser's reuse verdict, then the kind of the error that stopped it, if any (its reason names the limit met
/// first, which may depend on how much had arrived).
private enum Seen: Equatable {
    case informational(Int, HTTPHeaders)
    case head(UpstreamResponseHead)
    case body([UInt8])
    case end(HTTPHeaders?, reusable: Bool)
    case error(UpstreamParseError.Kind)
}

/// Feeds `HTTP1ResponseParser` the payload as a connection does: the pieces arrive one after the other, each call
/// gets all the bytes not consumed yet; control bit 0 says the requests were HEAD, bit 1 that the connection then
/// closes (`inputEnded`).
///
/// Checks that no input crashes the parser, that it never consumes more than it was given, that body pieces are
/// non-empty, inside the consumed bytes and within the call's limit, that heads respect the limits and the
/// framing rules, that an error is final and forbids reuse, and that the result does not depend on how the stream
/// was split nor on the body limit (whole with no limit, and in the pieces chosen by the control byte with a limit
/// of 1...8 bytes, give the same events).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP1ResponseParser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = FuzzInput(data, size)
    let isHEAD = input.flag(0)
    let closes = input.flag(1)
    let whole = parse(input.payload, in: [0..<input.payload.count], isHEAD: isHEAD, limit: .max, closes: closes)
    let limit = 1 + Int(input.control >> 5)
    let pieces = parse(input.payload, in: input.chunks(), isHEAD: isHEAD, limit: limit, closes: closes)
    invariant(whole == pieces, "split input parsed differently: whole \(whole), in pieces \(pieces)")
    return 0
}

private func parse(
    _ payload: UnsafeBufferPointer<UInt8>, in pieces: [Range<Int>], isHEAD: Bool, limit: Int, closes: Bool
) -> [Seen] {
    var parser = HTTP1ResponseParser(limits: limits)
    var buffer: [UInt8] = []
    var seen: [Seen] = []
    for piece in pieces {
        buffer.append(contentsOf: payload[piece])
        while true {
            let (consumed, event) = buffer.withUnsafeBufferPointer { parser.parse($0, isHEAD: isHEAD, limit: limit) }
            invariant(consumed >= 0 && consumed <= buffer.count, "consumed \(consumed) of \(buffer.count) bytes")
            if case .body(let range) = event {
                invariant(!range.isEmpty && range.upperBound <= consumed, "body \(range), consumed \(consumed)")
                invariant(range.count <= limit, "body of \(range.count) bytes, limit \(limit)")
                if case .body(let earlier) = seen.last {
                    seen[seen.count - 1] = .body(earlier + buffer[range])
                } else {
                    seen.append(.body(Array(buffer[range])))
                }
            }
            buffer.removeFirst(consumed)
            switch event {
            case .needMore:
                break
            case .body:
                continue
            case .error(let error):
                check(error, &parser, buffer)
                seen.append(.error(error.kind))
                return seen
            default:
                record(event, parser, isHEAD: isHEAD, into: &seen)
                continue
            }
            break
        }
    }
    if closes {
        let event = parser.inputEnded()
        invariant(parser.inputEnded() == event, "inputEnded is not final")
        if case .error(let error) = event {
            check(error, &parser, buffer)
            seen.append(.error(error.kind))
        } else {
            invariant(event == .end(trailers: nil), "inputEnded gave \(event)")
            invariant(!parser.canReuseConnection, "reusable after the connection closed")
            seen.append(.end(nil, reusable: false))
        }
    }
    return seen
}

private func record(_ event: UpstreamEvent, _ parser: HTTP1ResponseParser, isHEAD: Bool, into seen: inout [Seen]) {
    switch event {
    case .informational(let status, let headers):
        invariant((100...199).contains(status) && status != 101, "informational \(status)")
        invariant(headers.count <= limits.maxHeaderCount, "\(headers.count) header fields")
        seen.append(.informational(status, headers))
    case .head(let head):
        invariant((200...599).contains(head.status), "final status \(head.status)")
        invariant(head.headers.count <= limits.maxHeaderCount, "\(head.headers.count) header fields")
        let noBody = isHEAD || head.status == 204 || head.status == 304
        invariant(noBody == (head.framing == .none), "framing \(head.framing) for status \(head.status)")
        invariant(!parser.canReuseConnection, "reusable before the end")
        seen.append(.head(head))
    case .end(let trailers):
        invariant(trailers.map { !$0.isEmpty && $0.count <= limits.maxHeaderCount } ?? true, "trailers \(trailers!)")
        seen.append(.end(trailers, reusable: parser.canReuseConnection))
    case .needMore, .body, .error:
        invariant(false, "\(event) is not recorded here")
    }
}

private func check(_ error: UpstreamParseError, _ parser: inout HTTP1ResponseParser, _ buffer: [UInt8]) {
    invariant(!error.reason.isEmpty && !error.reason.contains("\n"), "reason \(error.reason)")
    invariant(!parser.canReuseConnection, "reusable after an error")
    let again = buffer.withUnsafeBufferPointer { parser.parse($0, isHEAD: false, limit: 1) }
    invariant(again.consumed == 0 && again.event == .error(error), "an error is not final: \(again)")
}
