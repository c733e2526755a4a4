import FuzzSupport
import Ingestion

@testable import MLOpsExporter

/// The header readers of the exporter's endpoints on the input's lines (a missing line is an absent header):
/// line 1 `Accept` (exposition format), line 2 `Accept-Encoding` (gzip), line 3
/// `X-Prometheus-Scrape-Timeout-Seconds`, line 4 `Content-Type` of an ingestion request whose body is the
/// rest of the input (`IngestEndpoint.format`).
///
/// Checks that every reader is total (no crash, whatever the bytes), that the media ranges it parses are
/// normalised as documented, that the one-header and several-field-line entry points agree, and that a
/// scrape timeout is positive and bounded.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNegotiation(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let lines = fuzzText(data, size).split(separator: "\n", maxSplits: 4, omittingEmptySubsequences: false)
    func line(_ index: Int) -> String? { index < lines.count ? String(lines[index]) : nil }

    let accept = line(0)
    let ranges = accept.map(ContentNegotiation.parseAccept) ?? []
    for range in ranges { check(range) }
    let format = ContentNegotiation.format(accept: accept)
    invariant(format == ContentNegotiation.format(ranges: ranges), "format(accept:) is not format(ranges:)")
    invariant(
        format == ContentNegotiation.format(acceptLines: accept.map { [$0] } ?? []),
        "format(accept:) is not format(acceptLines:)")

    let acceptEncoding = line(1)
    invariant(
        ContentNegotiation.acceptsGzip(acceptEncoding)
            == ContentNegotiation.acceptsGzip(acceptEncodingLines: acceptEncoding.map { [$0] } ?? []),
        "acceptsGzip(_:) is not acceptsGzip(acceptEncodingLines:)")

    if let timeout = ContentNegotiation.scrapeTimeout(line(2)) {
        invariant(timeout > .zero && timeout <= .seconds(1e12), "scrape timeout \(timeout)")
    }

    let contentType = line(3)
    let body = Array((line(4) ?? "").utf8)
    let bodyFormat = IngestEndpoint.format(contentType, body: body)
    if contentType == nil {
        invariant(bodyFormat != nil, "no format for a body without Content-Type")
    } else if let contentType, contentType.utf8.allSatisfy({ $0 < 0x80 }) {
        invariant(
            IngestEndpoint.format(contentType.lowercased(), body: body) == bodyFormat,
            "Content-Type is read case-sensitively: \(contentType)")
    }
    return 0
}

private func check(_ range: MediaRange) {
    invariant(range.quality >= 0 && range.quality <= 1, "quality \(range.quality)")
    invariant(range.type != "*" || range.subtype == "*", "\(range.type)/\(range.subtype)")
    invariant(range.parameters["q"] == nil, "q among the parameters")
    let names = [range.type, range.subtype] + range.parameters.keys
    invariant(names.allSatisfy { $0 == $0.lowercased() && !$0.isEmpty }, "not lowercased: \(range)")
}
