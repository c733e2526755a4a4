/// How an upstream response's field section (``HTTPHeaders/receivedLines``) is copied to an HTTP/1.x client, worked
/// out while the response parser read it: the byte runs to leave out (its hop-by-hop lines, merged when adjacent),
/// every other line copied as it is. Fixed storage, no allocation.
///
/// Contract: the copy is byte for byte what ``ForwardedFields/appendResponseFields(_:into:)`` writes for the same
/// section, and ``hasDate`` what it returns. A plan exists only when that holds by construction (``Builder``): every
/// line kept reads exactly `Name: value` CRLF (so it is written as received), `Connection` lists no field names
/// (only `close` or `keep-alive`), and at most ``capacity`` runs are left out. Otherwise the parser makes none and
/// the proxy goes through ``ForwardedFields``. A request's plan (``RequestFieldPlan``) holds one of these for its runs,
/// made by the same ``Builder`` with the request's kinds of fields.
struct FieldLineCopyPlan: Equatable, Sendable {
    /// Most runs a plan leaves out.
    static let capacity = 4

    /// The runs left out, 16 bits per offset, two runs a word (a plan is moved with every head that holds one: kept
    /// small, it is moved in registers, not by `memcpy`).
    private var runs01: UInt64 = 0
    private var runs23: UInt64 = 0
    private var runCount: UInt8 = 0
    /// Whether a line kept is a `Date` field.
    fileprivate(set) var hasDate = false

    /// The number of runs left out, in order, not overlapping.
    var skippedCount: Int { Int(runCount) }

    /// The `index`th run left out (offsets into the section).
    func skipped(_ index: Int) -> Range<Int> {
        let word = index < 2 ? runs01 : runs23
        let bits = index & 1 == 0 ? word : word >> 32
        return Int(bits & 0xFFFF)..<Int((bits >> 16) & 0xFFFF)
    }

    /// Leaves out `run`, after the runs added before; false when the plan is full or the run ends past 65,535.
    mutating func skip(_ run: Range<Int>) -> Bool {
        guard runCount < Self.capacity, run.upperBound <= 0xFFFF else { return false }
        let bits = UInt64(run.lowerBound) | UInt64(run.upperBound) << 16
        switch runCount {
        case 0: runs01 |= bits
        case 1: runs01 |= bits << 32
        case 2: runs23 |= bits
        default: runs23 |= bits << 32
        }
        runCount += 1
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
        /// False once the section cannot have a plan.
        private(set) var usable = true
        /// The start of a run of lines left out that is still open.
        private var openRun: Int?

        init(sectionStart: Int) { self.sectionStart = sectionStart }

        /// One field line of a response's section: `name` and its trimmed `value`, slices of `input` (the parser's
        /// input).
        mutating func read(name: HTTP1Framing.Bytes, value: HTTP1Framing.Bytes, in input: UnsafeBufferPointer<UInt8>) {
            guard usable, let base = input.baseAddress else { return }
            switch Self.kind(of: UnsafeBufferPointer(start: base + name.startIndex, count: name.count)) {
            case .kept: keep(name: name, value: value, in: input)
            case .date: if keep(name: name, value: value, in: input) { plan.hasDate = true }
            case .connection:
                readConnection(value, in: input)
                leaveOut(name)
            case .hopByHop: leaveOut(name)
            }
        }

        /// The line named `name` is left out.
        @inline(__always)
        mutating func leaveOut(_ name: HTTP1Framing.Bytes) {
            if openRun == nil { openRun = name.startIndex - sectionStart }
        }

        /// The line of `name` and `value` is kept; false (and no plan for the section) when it is not
        /// `Name: value` CRLF (as ``ReceivedFieldLines`` decides) or the runs left out before it are too many.
        @discardableResult @inline(__always)
        mutating func keep(
            name: HTTP1Framing.Bytes, value: HTTP1Framing.Bytes, in input: UnsafeBufferPointer<UInt8>
        ) -> Bool {
            let start = name.startIndex - sectionStart
            let colon = name.endIndex
            if let run = openRun {
                openRun = nil
                guard plan.skip(run..<start) else {
                    usable = false
                    return false
                }
            }
            guard value.startIndex == colon + 2, input[colon + 1] == UInt8(ascii: " "), value.endIndex < input.count,
                input[value.endIndex] == UInt8(ascii: "\r")
            else {
                usable = false
                return false
            }
            return true
        }

        /// A `Connection` line's `value`: the section has a plan only when it lists no field names (a listed field is
        /// dropped too, which ``ForwardedFields`` finds), only `close` or `keep-alive`.
        @inline(__always)
        mutating func readConnection(_ value: HTTP1Framing.Bytes, in input: UnsafeBufferPointer<UInt8>) {
            guard let base = input.baseAddress else { return }
            let list = UnsafeBufferPointer(start: base + value.startIndex, count: value.count)
            if ASCII.equalsLowercase(list, "keep-alive") || ASCII.equalsLowercase(list, "close") { return }
            HTTP1Framing.forEachListElement(value) { token in
                if !ASCII.equalsLowercase(token, "close") && !ASCII.equalsLowercase(token, "keep-alive") {
                    usable = false
                }
            }
        }

        /// The section gets no plan.
        mutating func refuse() { usable = false }

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
