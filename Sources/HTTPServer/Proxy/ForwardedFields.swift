/// The proxy's field lines copied as bytes from a header section as it was received (``HTTPHeaders/receivedLines``),
/// with no `String` per field: the request's to the upstream, the upstream response's to the client.
///
/// Contract: what it writes for a section is byte for byte what ``ForwardedRequest`` writes from the `String`s of
/// the same fields (`Name: value` CRLF, the value's surrounding whitespace dropped, a bare LF ending written as
/// CRLF), except that value bytes that are not UTF-8 pass unchanged (the `String`s hold U+FFFD instead). The same
/// fields are dropped (``ForwardedRequest/requestKind(_:)``, ``ForwardedRequest/isHopByHopResponseField(_:)``,
/// the fields `Connection` lists), names compared case-insensitively in place. Lines that read exactly
/// `Name: value` CRLF, the usual case, are copied whole, consecutive ones in one copy.
enum ForwardedFields {
    typealias Line = ReceivedFieldLines.Line

    /// Calls `body` with each line of `section`.
    @inline(__always)
    static func forEachLine(_ section: UnsafeBufferPointer<UInt8>, _ body: (Line) -> Void) {
        var lines = ReceivedFieldLines(section)
        while let line = lines.next() { body(line) }
    }

    /// Copies kept lines to an output, a run of consecutive canonical lines in one copy.
    struct Copier {
        let section: UnsafeBufferPointer<UInt8>
        private var run = 0..<0

        init(_ section: UnsafeBufferPointer<UInt8>) { self.section = section }

        /// Appends `line` (after the lines kept before it) as `Name: value` CRLF.
        mutating func keep(_ line: Line, into out: inout ByteWriter) {
            if line.isCanonical {
                if run.upperBound == line.whole.lowerBound && !run.isEmpty {
                    run = run.lowerBound..<line.whole.upperBound
                } else {
                    flush(into: &out)
                    run = line.whole
                }
                return
            }
            flush(into: &out)
            out.write(section[line.name])
            out.write(": ")
            out.write(section[line.value])
            out.write("\r\n")
        }

        /// Appends what is held back; call it before writing anything else to `out`.
        mutating func flush(into out: inout ByteWriter) {
            guard !run.isEmpty else { return }
            out.write(section[run])
            run = 0..<0
        }
    }

    /// The field names the `Connection` lines of a section list (RFC 9110 §7.6.1), as ranges of the section;
    /// `close` and `keep-alive`, the usual values, are no field names and are left out.
    struct ConnectionListed {
        private(set) var names: [Range<Int>] = []

        /// Reads `line` if it is a `Connection` field.
        mutating func read(_ line: Line, in section: UnsafeBufferPointer<UInt8>) {
            guard line.name.count == 10, ASCII.equalsLowercase(section[line.name], "connection") else { return }
            HTTP1Framing.forEachListElement(section[line.value]) { token in
                if !ASCII.equalsLowercase(token, "close") && !ASCII.equalsLowercase(token, "keep-alive") {
                    names.append(token.startIndex..<token.endIndex)
                }
            }
        }

        /// Whether `name` is one of the listed names.
        func contains(_ name: HTTP1Framing.Bytes, in section: UnsafeBufferPointer<UInt8>) -> Bool {
            names.contains { ASCII.equalsIgnoringCase(section[$0], name) }
        }
    }

    /// Appends the request fields of `section` to pass upstream (see ``ForwardedRequest/encode``), then `Host`,
    /// `X-Forwarded-For`, `-Proto` and `-Host`.
    ///
    /// - Parameter requestIDHeader: the request id field's name when the proxy sends its own (the client's, empty,
    ///   is dropped); nil when the client's is passed on.
    static func appendRequestFields(
        _ section: UnsafeBufferPointer<UInt8>, requestIDHeader: String?, hostFallback: String,
        remoteAddress: String, forwardedProto: String, into head: inout ByteWriter
    ) {
        let start = head.count
        var listed = ConnectionListed()
        var fields = requestPass(section, listed: nil, collecting: &listed, requestIDHeader: requestIDHeader, &head)
        if !listed.names.isEmpty {
            // `Connection` names other fields (rare): again, without them (some may have been copied already).
            head.truncate(to: start)
            var unused = ConnectionListed()
            fields = requestPass(section, listed: listed, collecting: &unused, requestIDHeader: requestIDHeader, &head)
        }
        appendForwarding(
            section, host: fields.host, forwardedFor: fields.forwardedFor,
            severalForwardedFor: fields.severalForwardedFor, hostFallback: hostFallback, remoteAddress: remoteAddress,
            forwardedProto: forwardedProto, into: &head)
    }

    /// Appends `Host`, `X-Forwarded-For`, `-Proto` and `-Host` (``ForwardedRequest/appendForwarding``) for the
    /// section's first `Host` value and its `X-Forwarded-For` value (`hostFallback` when there is no `Host`); with
    /// `severalForwardedFor`, the values of all its `X-Forwarded-For` lines instead, in order, joined with ", "
    /// (RFC 9110 §5.3: one list).
    static func appendForwarding(
        _ section: UnsafeBufferPointer<UInt8>, host: Range<Int>?, forwardedFor: Range<Int>?,
        severalForwardedFor: Bool = false, hostFallback: String, remoteAddress: String, forwardedProto: String,
        into head: inout ByteWriter
    ) {
        if severalForwardedFor {
            var joined: [UInt8] = []
            forEachLine(section) { line in
                guard ForwardedRequest.requestKind(section[line.name]) == .forwardedFor, !line.value.isEmpty else {
                    return
                }
                if !joined.isEmpty { joined.append(contentsOf: ", ".utf8) }
                joined.append(contentsOf: section[line.value])
            }
            joined.withUnsafeBufferPointer { joined in
                appendForwarding(
                    section, host: host, forwardedFor: joined, hostFallback: hostFallback, remoteAddress: remoteAddress,
                    forwardedProto: forwardedProto, into: &head)
            }
            return
        }
        appendForwarding(
            section, host: host, forwardedFor: forwardedFor.map { UnsafeBufferPointer(rebasing: section[$0]) },
            hostFallback: hostFallback, remoteAddress: remoteAddress, forwardedProto: forwardedProto, into: &head)
    }

    private static func appendForwarding(
        _ section: UnsafeBufferPointer<UInt8>, host: Range<Int>?, forwardedFor: UnsafeBufferPointer<UInt8>?,
        hostFallback: String, remoteAddress: String, forwardedProto: String, into head: inout ByteWriter
    ) {
        if let host {
            ForwardedRequest.appendForwarding(
                authority: UnsafeBufferPointer(rebasing: section[host]), forwardedFor: forwardedFor,
                remoteAddress: remoteAddress, forwardedProto: forwardedProto, to: &head)
        } else {
            var fallback = hostFallback
            fallback.withUTF8 { authority in
                ForwardedRequest.appendForwarding(
                    authority: authority, forwardedFor: forwardedFor, remoteAddress: remoteAddress,
                    forwardedProto: forwardedProto, forwardedHost: false, to: &head)
            }
        }
    }

    /// One pass of ``appendRequestFields``: copies the end-to-end lines not in `listed` and collects the
    /// `Connection` names into `collecting`; returns the first `Host` value and the `X-Forwarded-For` one (whether
    /// there are several).
    private static func requestPass(
        _ section: UnsafeBufferPointer<UInt8>, listed: ConnectionListed?, collecting: inout ConnectionListed,
        requestIDHeader: String?, _ head: inout ByteWriter
    ) -> (host: Range<Int>?, forwardedFor: Range<Int>?, severalForwardedFor: Bool) {
        var host: Range<Int>?
        var forwardedFor: Range<Int>?
        var severalForwardedFor = false
        var copier = Copier(section)
        forEachLine(section) { line in
            let name = section[line.name]
            switch ForwardedRequest.requestKind(name) {
            case .dropped:
                if listed == nil { collecting.read(line, in: section) }
            case .forwardedProto, .forwardedHost:
                break
            case .host:
                if host == nil { host = line.value }
            case .forwardedFor:
                // Named in `Connection`: the client's value is hop-by-hop, dropped (RFC 9110 §7.6.1) before the
                // proxy adds the peer's address.
                if let listed, listed.contains(name, in: section) { return }
                if forwardedFor != nil { severalForwardedFor = true }
                forwardedFor = line.value  // extended by the caller (joined with the others when several)
            case .endToEnd:
                if let listed, listed.contains(name, in: section) { return }
                // An empty request id is replaced by the generated one.
                if let requestIDHeader, ASCII.equalsIgnoringCase(name, requestIDHeader.utf8) { return }
                copier.keep(line, into: &head)
            }
        }
        copier.flush(into: &head)
        return (host, forwardedFor, severalForwardedFor)
    }

    /// Bytes enough for what ``appendRequestFields`` or ``appendResponseFields`` write for a section of `count`
    /// bytes in `lines` lines (each line grows by 2 at most: a space after the colon, a CR), not counting the
    /// fields ``appendRequestFields`` adds.
    static func capacity(sectionBytes count: Int, lines: Int) -> Int { count + 2 * lines }

    /// Appends the response fields of `section` to pass to the client: end-to-end ones only (see
    /// ``ForwardedRequest/responseFields(_:)``). Returns whether a `Date` field is among them.
    static func appendResponseFields(_ section: UnsafeBufferPointer<UInt8>, into out: inout ByteWriter) -> Bool {
        let start = out.count
        var listed = ConnectionListed()
        var hasDate = responsePass(section, listed: nil, collecting: &listed, &out)
        if !listed.names.isEmpty {
            out.truncate(to: start)
            var unused = ConnectionListed()
            hasDate = responsePass(section, listed: listed, collecting: &unused, &out)
        }
        return hasDate
    }

    private static func responsePass(
        _ section: UnsafeBufferPointer<UInt8>, listed: ConnectionListed?, collecting: inout ConnectionListed,
        _ out: inout ByteWriter
    ) -> Bool {
        var hasDate = false
        var copier = Copier(section)
        forEachLine(section) { line in
            let name = section[line.name]
            if ForwardedRequest.isHopByHopResponseField(name) {
                if listed == nil { collecting.read(line, in: section) }
                return
            }
            if let listed, listed.contains(name, in: section) { return }
            if ASCII.equalsLowercase(name, "date") { hasDate = true }
            copier.keep(line, into: &out)
        }
        copier.flush(into: &out)
        return hasDate
    }
}
