import Compression
import HTTPServer

/// The content coding of a captured body (RFC 9110 §8.4, `Content-Encoding`): what the capture undoes before it
/// decodes the JSON. The client and the upstream get the bytes as they were sent, whatever this says.
enum CapturedBodyCoding: Equatable, Sendable {
    /// No `Content-Encoding`, or `identity`: the bytes are the JSON.
    case identity
    /// `gzip`, `x-gzip` or `deflate` (the zlib format; a gzip stream under that name is read too): inflated on a
    /// decoding worker, to at most `capture.max_body_bytes` (beyond: `too_large`; a stream that does not inflate:
    /// `invalid_encoding`).
    case inflate
    /// Any other coding (`br`, `zstd`, `compress`…), or more than one applied: not decoded
    /// (`unsupported_encoding`).
    case unsupported

    /// The coding of a body sent with `headers` (nil: none). Only a message that has the field costs more than one
    /// scan for its name.
    init(_ headers: HTTPHeaders?) {
        guard let headers, headers["content-encoding"] != nil else {
            self = .identity
            return
        }
        var applied = 0
        var inflatable = true
        for value in headers.values(for: "content-encoding") {
            for element in value.lowercased().split(separator: ",", omittingEmptySubsequences: false) {
                let coding = element.filter { $0 != " " && $0 != "\t" }
                if coding.isEmpty || coding == "identity" { continue }
                applied += 1
                inflatable = inflatable && (coding == "gzip" || coding == "x-gzip" || coding == "deflate")
            }
        }
        self = applied == 0 ? .identity : applied == 1 && inflatable ? .inflate : .unsupported
    }

    /// `body` without this coding, at most `limit` bytes; `.identity` returns it as it is.
    func undo(_ body: [UInt8], limit: Int) throws(GzipError) -> [UInt8] {
        self == .inflate ? try Gzip.gunzip(body, maxOutputSize: limit) : body
    }
}
