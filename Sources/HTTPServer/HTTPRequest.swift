/// The HTTP protocol version a request arrived with.
public enum HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    /// HTTP/1.0: connections close after each response unless the client sends `Connection: keep-alive`.
    case http1_0
    /// HTTP/1.1: persistent connections by default, pipelining allowed.
    case http1_1
    /// HTTP/2 (h2 over TLS, h2c in cleartext): many concurrent streams over one connection.
    case http2

    /// The version as written on the request line, e.g. `HTTP/1.1`.
    public var description: String {
        switch self {
        case .http1_0: "HTTP/1.0"
        case .http1_1: "HTTP/1.1"
        case .http2: "HTTP/2"
        }
    }
}

/// A complete HTTP request as handed to an ``HTTPHandler``: head and fully received body.
///
/// The server has already enforced the framing rules and the size limits of
/// ``HTTPServer/Configuration`` before a request is built, so every field is well formed.
public struct HTTPRequest: Sendable {
    /// The method token exactly as sent (methods are case-sensitive): `GET`, `HEAD`, `POST`, ...
    public var method: String
    /// The path of the request target without the query, not percent-decoded (e.g. `/metrics`).
    /// For an absolute-form target (`http://host/x`) it is the path part; for `OPTIONS *` it is `*`.
    public var path: String
    /// The raw query string after the first `?`, without the `?`; `nil` when the target has no `?`.
    public var query: String?
    /// The protocol version of the request line.
    public var version: HTTPVersion
    /// The header fields in the order received, duplicates preserved.
    public var headers: HTTPHeaders
    /// The request body after removing any chunked transfer coding; empty when there is none.
    public var body: [UInt8]
    /// The protocol spoken on the connection (`http/1.0`, `http/1.1`, `h2`), for labelling self metrics:
    /// the only way a handler can tell which protocol carried the request.
    public var protocolName: String
    /// The peer as `address:port` (`127.0.0.1:50312`, `[::1]:50312`).
    public var remoteAddress: String
    /// For a handler that ``HTTPHandler/streamsRequestBodies``: the body still to come (`body` is then empty).
    var bodyStream: HTTPRequestBodyStream?
    // The server builds its requests with the implicit memberwise initializer (all nine properties), kept by declaring
    // the public initializer in an extension: an initializer written out here builds the request in a temporary, then
    // copies it out and destroys the temporary (retains and releases of every field).
}

extension HTTPRequest {
    /// Creates a request; the server builds these, tests of handlers may too.
    public init(
        method: String, path: String, query: String? = nil, version: HTTPVersion = .http1_1,
        headers: HTTPHeaders = [:], body: [UInt8] = [], protocolName: String? = nil, remoteAddress: String = ""
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.protocolName =
            protocolName
            ?? {
                switch version {
                case .http1_0: "http/1.0"
                case .http1_1: "http/1.1"
                case .http2: "h2"
                }
            }()
        self.remoteAddress = remoteAddress
    }
}

/// A response produced by an ``HTTPHandler``.
///
/// The server owns the framing: it sets `Content-Length` from `body`, adds `Date` (unless the handler
/// set one) and `Connection` when needed, and drops any `Content-Length`, `Transfer-Encoding` or
/// `Connection` field set here. Fields whose name is not a token or whose value contains CR, LF or NUL
/// are dropped too (no response splitting). The body array is shared with the write path, not copied.
public struct HTTPResponse: Sendable {
    /// The status code, 100...999. 1xx (other than as a final response), 204 and 304 are sent without a body.
    public var status: Int
    /// Header fields to send, in order.
    public var headers: HTTPHeaders
    /// The payload. Ignored on the wire for `HEAD` requests, but still sets their `Content-Length`.
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int = 200, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Creates a `text/plain; charset=utf-8` response, e.g. for one-line error reasons.
    public init(status: Int, text: String) {
        self.init(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(text.utf8))
    }
}
