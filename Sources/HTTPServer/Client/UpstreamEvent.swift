/// What ``HTTP1ResponseParser`` made of the bytes an upstream sent, one event per call.
enum UpstreamEvent: Equatable, Sendable {
    /// The bytes given do not complete the next event; read more and call again with all unconsumed bytes.
    case needMore
    /// A 1xx response other than 101 (100 Continue, 103 Early Hints): it has no body, and the final response
    /// follows.
    case informational(status: Int, headers: HTTPHeaders)
    /// The head of the final response. Its body (if any) follows as ``body(_:)`` events, then ``end(trailers:)``.
    case head(UpstreamResponseHead)
    /// Body bytes, chunked coding removed: offsets into the input given to the call that returned this event
    /// (within the bytes it reports consumed), never empty, at most the call's `limit` long.
    case body(Range<Int>)
    /// The response is complete. `trailers`: the trailer fields of a chunked body, nil when there were none.
    case end(trailers: HTTPHeaders?)
    /// The response is malformed, over a limit, or was cut short: the connection must be closed. Final: the
    /// parser returns the same error from then on.
    case error(UpstreamParseError)
}

/// The status line and header section of an upstream's final response, with the framing of its body.
extension UpstreamEvent {
    /// The range of a ``body(_:)`` piece, nil for the other events.
    var bodyRange: Range<Int>? {
        if case .body(let range) = self { return range }
        return nil
    }
}

struct UpstreamResponseHead: Equatable, Sendable {
    /// How the body is delimited (RFC 9112 §6.3).
    enum Framing: Equatable, Sendable {
        /// No body: a response to HEAD, or a 204 or 304 (whatever its header fields say).
        case none
        /// Exactly this many bytes (0 included).
        case contentLength(Int)
        /// The chunked transfer coding, ending with its trailer section.
        case chunked
        /// Everything until the upstream closes the connection (no length given, or a transfer coding other
        /// than chunked last).
        case closeDelimited
    }

    /// `.http1_0` or `.http1_1` (another 1.x minor reads as 1.1).
    var version: HTTPVersion
    /// 200...599 (1xx are ``UpstreamEvent/informational(status:headers:)``).
    var status: Int
    /// The reason phrase, possibly empty.
    var reason: String
    /// The header fields as received, in order, hop-by-hop ones included.
    var headers: HTTPHeaders
    var framing: Framing
    /// How ``headers``' received lines are copied to an HTTP/1.x client, when that needs no rewriting (see
    /// ``FieldLineCopyPlan``); nil: through ``ForwardedFields``.
    var copyPlan: FieldLineCopyPlan? = nil
}

/// Why an upstream's response cannot be read; the connection must be closed.
struct UpstreamParseError: Error, Equatable, Sendable {
    enum Kind: Equatable, Sendable {
        /// Bad syntax or framing (including invalid or conflicting `Content-Length`).
        case malformed
        /// Over a header or trailer limit.
        case tooLarge
        /// The connection closed before the response was complete.
        case truncated
        /// Valid HTTP we do not speak: 101 Switching Protocols (we never ask for an upgrade), HTTP/2 and later.
        case unsupported
    }

    var kind: Kind
    /// One line of plain text, without a line break.
    var reason: String

    init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }
}
