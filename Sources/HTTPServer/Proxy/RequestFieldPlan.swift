/// How the reverse proxy forwards an HTTP/1.x request's field section (``HTTPHeaders/receivedLines``) upstream, worked
/// out by the request parser while it read the section (for a handler that ``HTTPHandler/forwardsRequests``): the
/// runs of lines to leave out (hop-by-hop and framing fields, `Host`, `X-Forwarded-*`), every other line copied as
/// received, and where the first `Host` value and the `X-Forwarded-For` value are. Fixed storage, no allocation.
///
/// Contract: for the section it was made for, copying the lines kept and then writing `Host` and `X-Forwarded-*` from
/// ``host`` and ``forwardedFor`` is byte for byte what
/// ``ForwardedFields/appendRequestFields(_:requestIDHeader:hostFallback:remoteAddress:forwardedProto:into:)`` writes,
/// whatever the request id field's name. A plan exists only when that holds by construction (``Builder``): every
/// line kept reads exactly `Name: value` CRLF with a value that is not empty (so no empty request id is among them:
/// the proxy replaces one), `Connection` lists no field names, and at most ``FieldLineCopyPlan/capacity`` runs are
/// left out. Otherwise the parser makes none and the proxy goes through ``ForwardedFields``.
struct RequestFieldPlan: Equatable, Sendable {
    /// The lines left out, and the copy of the others.
    let lines: FieldLineCopyPlan
    /// The first `Host` value and the `X-Forwarded-For` value, 16 bits per offset (`UInt32.max`: none).
    private let hostBits: UInt32
    private let forwardedForBits: UInt32
    /// The byte count of the section the plan was made for.
    private let sectionBytes: UInt16

    /// The byte count of the section the plan was made for.
    var sectionCount: Int { Int(sectionBytes) }
    /// The first `Host` value (offsets into the section).
    var host: Range<Int>? { Self.range(hostBits) }
    /// The `X-Forwarded-For` value (offsets into the section).
    var forwardedFor: Range<Int>? { Self.range(forwardedForBits) }

    private static func range(_ bits: UInt32) -> Range<Int>? {
        bits == .max ? nil : Int(bits & 0xFFFF)..<Int(bits >> 16)
    }

    private static func bits(_ range: Range<Int>?) -> UInt32 {
        range.map { UInt32($0.lowerBound) | UInt32($0.upperBound) << 16 } ?? .max
    }

    /// Makes a plan from the field lines of one request section, given in order as the parser reads them.
    struct Builder {
        private var lines: FieldLineCopyPlan.Builder
        private var host: Range<Int>?
        private var forwardedFor: Range<Int>?

        /// `sectionStart`: where the section starts in the parser's input.
        init(sectionStart: Int) { lines = FieldLineCopyPlan.Builder(sectionStart: sectionStart) }

        /// One field line: `name` and its trimmed `value`, slices of `input` (the parser's input). The kinds are
        /// ``ForwardedRequest/requestKind(_:)``'s, as for ``ForwardedFields``.
        @inline(__always)
        mutating func read(name: HTTP1Framing.Bytes, value: HTTP1Framing.Bytes, in input: UnsafeBufferPointer<UInt8>) {
            guard lines.usable else { return }
            let start = lines.sectionStart
            switch ForwardedRequest.requestKind(name) {
            case .endToEnd:
                // An empty value may be a request id the proxy replaces (and drops): ForwardedFields decides.
                guard !value.isEmpty else { return lines.refuse() }
                lines.keep(name: name, value: value, in: input)
            case .dropped:
                if name.count == 10 && ASCII.equalsLowercase(name, "connection") {
                    lines.readConnection(value, in: input)
                }
                lines.leaveOut(name)
            case .host:
                if host == nil { host = (value.startIndex - start)..<(value.endIndex - start) }
                lines.leaveOut(name)
            case .forwardedFor:
                // Several lines are joined in order (rare): ForwardedFields does it.
                guard forwardedFor == nil else { return lines.refuse() }
                forwardedFor = (value.startIndex - start)..<(value.endIndex - start)
                lines.leaveOut(name)
            case .forwardedProto, .forwardedHost:
                lines.leaveOut(name)
            }
        }

        /// The plan, once every line was read (`sectionEnd`: where the section ends in the input); nil when the
        /// section must go through ``ForwardedFields``.
        mutating func finish(sectionEnd: Int) -> RequestFieldPlan? {
            // Offsets are kept in 16 bits: a longer section goes through ForwardedFields.
            guard sectionEnd - lines.sectionStart <= 0xFFFF, let copy = lines.finish(sectionEnd: sectionEnd) else {
                return nil
            }
            return RequestFieldPlan(
                lines: copy, hostBits: RequestFieldPlan.bits(host),
                forwardedForBits: RequestFieldPlan.bits(forwardedFor),
                sectionBytes: UInt16(sectionEnd - lines.sectionStart))
        }
    }
}
