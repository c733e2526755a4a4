/// How an upstream response's field section (``HTTPHeaders/receivedLines``) is copied to an HTTP/1.x client, worked
/// out while the response parser read it: the byte runs to leave out (its hop-by-hop lines, merged when adjacent),
/// every other line copied as it is. Fixed storage, no allocation.
///
/// Contract: the copy is byte for byte what ``ForwardedFields/appendResponseFields(_:into:)`` writes for the same
/// section, and ``hasDate`` what it returns. A plan exists only when that holds by construction (``Builder``): every
/// line kept reads exactly `Name: value` CRLF (so it is written as received), `Connection` lists no field names
/// (only `close` or `keep-alive`), and at most ``capacity`` runs are left out. Otherwise the parser makes none and
/// the proxy goes through ``ForwardedFields``.
struct FieldLineCopyPlan: Equatable, Sendable {
    /// Most runs a plan leaves out.
    static let capacity = 4

    private var start0: Int32 = 0, end0: Int32 = 0
    private var start1: Int32 = 0, end1: Int32 = 0
    private var start2: Int32 = 0, end2: Int32 = 0
    private var start3: Int32 = 0, end3: Int32 = 0
    /// The runs left out, in order, not overlapping.
    private(set) var skippedCount = 0
    /// Whether a line kept is a `Date` field.
    private(set) var hasDate = false

    /// The `index`th run left out (offsets into the section).
    func skipped(_ index: Int) -> Range<Int> {
        switch index {
        case 0: Int(start0)..<Int(end0)
        case 1: Int(start1)..<Int(end1)
        case 2: Int(start2)..<Int(end2)
        default: Int(start3)..<Int(end3)
        }
    }

    /// Leaves out `run`, after the runs added before; false when the plan is full.
    fileprivate mutating func skip(_ run: Range<Int>) -> Bool {
        let start = Int32(run.lowerBound)
        let end = Int32(run.upperBound)
        switch skippedCount {
        case 0: (start0, end0) = (start, end)
        case 1: (start1, end1) = (start, end)
        case 2: (start2, end2) = (start, end)
        case 3: (start3, end3) = (start, end)
        default: return false
        }
        skippedCount += 1
        return true
    }

    /// The bytes the copy of a section of `sectionCount` bytes writes.
    func keptCount(of sectionCount: Int) -> Int {
        var count = sectionCount
        for index in 0..<skippedCount { count -= skipped(index).count }
        return count
    }

    /// Appends the lines kept of `section` to `buffer`, each run in one copy.
    func copy<Sink: ByteSink>(_ section: [UInt8], into sink: inout Sink) {
        section.withUnsafeBufferPointer { bytes in
            var from = 0
            for index in 0..<skippedCount {
                let run = skipped(index)
                if run.lowerBound > from {
                    sink.write(UnsafeBufferPointer(rebasing: bytes[from..<run.lowerBound]))
                }
                from = run.upperBound
            }
            if bytes.count > from { sink.write(UnsafeBufferPointer(rebasing: bytes[from...])) }
        }
    }

    /// Makes a plan from the field lines of one section, given in order as the parser reads them.
    struct Builder {
        /// Where the section starts in the parser's input.
        let sectionStart: Int
        private var plan = FieldLineCopyPlan()
        private var usable = true
        /// The start of a run of lines left out that is still open.
        private var openRun: Int?

        init(sectionStart: Int) { self.sectionStart = sectionStart }

        /// One field line of the section: `name` and its trimmed `value`, slices of `input` (the parser's input).
        mutating func read(name: HTTP1Framing.Bytes, value: HTTP1Framing.Bytes, in input: UnsafeBufferPointer<UInt8>) {
            guard usable, let base = input.baseAddress else { return }
            let start = name.startIndex - sectionStart
            let colon = name.endIndex
            var isDate = false
            switch Self.kind(of: UnsafeBufferPointer(start: base + name.startIndex, count: name.count)) {
            case .kept: break
            case .date: isDate = true
            case .connection:
                let list = UnsafeBufferPointer(start: base + value.startIndex, count: value.count)
                if !ASCII.equalsLowercase(list, "keep-alive") && !ASCII.equalsLowercase(list, "close") {
                    HTTP1Framing.forEachListElement(value) { token in
                        if !ASCII.equalsLowercase(token, "close") && !ASCII.equalsLowercase(token, "keep-alive") {
                            usable = false  // a listed field is dropped too: ForwardedFields finds it
                        }
                    }
                }
                fallthrough
            case .hopByHop:
                if openRun == nil { openRun = start }
                return
            }
            if let run = openRun {
                openRun = nil
                guard plan.skip(run..<start) else {
                    usable = false
                    return
                }
            }
            // Kept: copied as received only when it is `Name: value` CRLF (as ``ReceivedFieldLines`` decides).
            guard value.startIndex == colon + 2, input[colon + 1] == UInt8(ascii: " "), value.endIndex < input.count,
                input[value.endIndex] == UInt8(ascii: "\r")
            else {
                usable = false
                return
            }
            if isDate { plan.hasDate = true }
        }

        private enum Kind { case kept, date, connection, hopByHop }

        /// What a field name is to the copy: hop-by-hop (``ForwardedRequest/isHopByHopResponseField(_:)``, the one
        /// list; `Connection` among them), `Date`, or another field.
        @inline(__always)
        private static func kind(of name: UnsafeBufferPointer<UInt8>) -> Kind {
            if name.count == 4 { return ASCII.equalsLowercase(name, "date") ? .date : .kept }
            guard ForwardedRequest.isHopByHopResponseField(name) else { return .kept }
            return name.count == 10 && ASCII.equalsLowercase(name, "connection") ? .connection : .hopByHop
        }

        /// The plan, once every line was read (`sectionEnd`: where the section ends in the input); nil when the
        /// section must go through ``ForwardedFields``.
        mutating func finish(sectionEnd: Int) -> FieldLineCopyPlan? {
            if usable, let run = openRun {
                openRun = nil
                if !plan.skip(run..<(sectionEnd - sectionStart)) { usable = false }
            }
            return usable ? plan : nil
        }
    }
}
