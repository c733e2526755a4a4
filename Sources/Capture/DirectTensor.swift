import Ingestion

/// One Open Inference Protocol v2 tensor object as the direct reader reads it from the bytes: its name (a token
/// into the body), its shape's figures and where its data is. Every member it reads appears once at most (the tape
/// reads the last of repeated keys: a repeat falls back).
struct DirectTensor {
    /// Bits of the members read: ``name``, ``shape``, ``datatype``, ``data``, ``parameters``.
    struct Members: OptionSet {
        let rawValue: UInt8
        static let name = Members(rawValue: 1)
        static let shape = Members(rawValue: 2)
        static let datatype = Members(rawValue: 4)
        static let data = Members(rawValue: 8)
        static let parameters = Members(rawValue: 16)
        /// What ``Tensor`` requires.
        static let required: Members = [.name, .shape, .datatype, .data]
    }

    var members: Members = []
    /// Set with ``Members/name``.
    var name: StringToken?
    /// `shape[0]`, the product of the other dimensions (no overflow: it falls back), the rank.
    var rows = 0
    var width = 1
    var rank = 0
    var isBytes = false
    /// The offset of the data's value, and whether its leaves were read where they stood.
    var data = 0
    var dataRead = false
    /// Every leaf was taken by its sink (see ``CaptureDecoder/directLeaves(_:_:_:_:)``).
    var valuesTaken = true

    /// Notes `member`; a member met twice falls back.
    mutating func note(_ member: Members) throws(Fallback) {
        guard !members.contains(member) else { throw Fallback() }
        members.insert(member)
    }

    /// The leaves the data must hold.
    var count: Int { rows &* width }
}

/// Where the leaves of one tensor's data go (leaf `k` is value `k % width` of row `k / width`).
enum LeafSink {
    /// Validated and counted only.
    case none
    /// Row-major features in the schema's order (one input `[N, F]`).
    case matrix
    /// Feature `index` of each row (one input per feature).
    case column(Int)
    /// The row's class probabilities, in [0, 1].
    case probabilities
    /// Probabilities checked (in [0, 1]) but not kept: others replace them.
    case probabilityCheck
    /// The row's score (null: none).
    case score
    /// The row's prediction (null falls back: the tape path refuses it).
    case outcome
}

/// Where the next leaf of a tensor's data goes: leaf `k` of `expected`, value `column` of row `row`.
struct LeafPosition {
    let expected: Int
    let width: Int
    var k = 0
    var row = 0
    var column = 0

    init(expected: Int, width: Int) {
        self.expected = expected
        self.width = width
    }

    /// To the next leaf.
    @inline(__always) mutating func advance() {
        k &+= 1
        column &+= 1
        if column == width {
            column = 0
            row &+= 1
        }
    }
}

extension CaptureDecoder {
    /// Reads the tensor object at the cursor (entry `index` of its list, at nesting level 3) into `tensor`, its data
    /// into `rows` through ``directSink(_:_:_:_:_:)``: where it stands when the name and shape came first, otherwise
    /// once the object is read (its bytes validated first by skipping).
    func directTensor(
        _ s: inout Scanner, _ tensor: inout DirectTensor, _ index: Int, _ state: inout DirectV2State,
        _ rows: inout Rows
    ) throws(Fallback) {
        try s.consume(0x7B)
        guard !s.take(0x7D) else { throw Fallback() }
        repeat {
            let key = try s.plainKey()
            switch key.end &- key.start {
            case 4 where s.token(key, is: "name"):
                try tensor.note(.name)
                tensor.name = try s.plainString()
            case 5 where s.token(key, is: "shape"):
                try tensor.note(.shape)
                try directShape(&s, &tensor)
            case 8 where s.token(key, is: "datatype"):
                try tensor.note(.datatype)
                let type = try s.plainString()
                guard let isBytes = Tensor.isBytes(packed: s.packed(type)) else { throw Fallback() }
                tensor.isBytes = isBytes
            case 10 where s.token(key, is: "parameters"):
                try tensor.note(.parameters)
                if try s.flag("binary_data_size", presence: true, depth: 4) { throw Fallback() }
            case 4 where s.token(key, is: "data"):
                try tensor.note(.data)
                _ = s.nextByte()
                tensor.data = s.pos
                if tensor.members.isSuperset(of: [.name, .shape]) {
                    let sink = try directSink(s, tensor, index, &state, &rows)
                    tensor.valuesTaken = try directLeaves(&s, sink, tensor, &rows)
                    tensor.dataRead = true
                } else {
                    try s.skip(depth: 4)
                }
            default:
                try s.skip(depth: 4)
            }
        } while try s.moreMembers()
        guard tensor.members.isSuperset(of: .required) else { throw Fallback() }
        if !tensor.dataRead {
            var data = s
            data.pos = tensor.data
            let sink = try directSink(s, tensor, index, &state, &rows)
            tensor.valuesTaken = try directLeaves(&data, sink, tensor, &rows)
        }
    }

    /// A tensor's `shape`: a non-empty list of integers in [0, 10^15) (as ``Tensor`` requires), whose product does
    /// not overflow.
    private func directShape(_ s: inout Scanner, _ tensor: inout DirectTensor) throws(Fallback) {
        try s.consume(0x5B)
        repeat {
            let first = s.nextByte()
            guard first == 0x2D || (first >= 0x30 && first <= 0x39) else { throw Fallback() }
            let value: Int
            if let short = s.shortInteger() {
                value = short
            } else {
                let n = try s.numberToken()
                guard n.isInteger, n.value >= 0, n.value < 1e15 else { throw Fallback() }
                value = Int(n.value)
            }
            if tensor.rank == 0 {
                tensor.rows = value
            } else {
                let (product, overflow) = tensor.width.multipliedReportingOverflow(by: value)
                guard !overflow else { throw Fallback() }
                tensor.width = product
            }
            tensor.rank += 1
        } while try s.moreElements()
        guard !tensor.rows.multipliedReportingOverflow(by: tensor.width).overflow else { throw Fallback() }
    }

    /// The data at the cursor (a value at nesting level 4): its leaves, every value that is not an array in order
    /// (nested arrays entered whatever their shape, as ``Tensor`` counts them), to `sink`; exactly
    /// ``DirectTensor/count`` of them. False when a ``LeafSink/matrix`` value was no feature value (the rest were
    /// validated only).
    func directLeaves(
        _ s: inout Scanner, _ sink: LeafSink, _ tensor: DirectTensor, _ rows: inout Rows
    )
        throws(Fallback) -> Bool
    {
        var sink = sink
        var taken = true
        var leaves = LeafPosition(expected: tensor.count, width: tensor.width)
        // The feature a leaf goes to when the sink is features (the leaf's column for the matrix; -1: none).
        var fixedFeature = -1
        var featureByColumn = false
        switch sink {
        case .matrix: featureByColumn = true
        case .column(let index): fixedFeature = index
        default: break
        }
        var level = 0
        repeat {
            if s.nextByte() == 0x5B {
                s.pos &+= 1
                level += 1
                guard level + 3 <= maximumDepth else { throw Fallback() }
                if s.nextByte() != 0x5D { continue }
                s.pos &+= 1
                level -= 1
            } else {
                guard leaves.k < leaves.expected else { throw Fallback() }
                if featureByColumn || fixedFeature >= 0,
                    let atNext = directNumericRun(
                        &s, &leaves, &rows.features, rows.featureCount, &rows.leafLog, byColumn: featureByColumn,
                        fixed: fixedFeature, nested: level > 0)
                {
                    // Short plain numbers for numeric features, read in a run; at the next element after a ',', or
                    // after the last one read.
                    if atNext { continue }
                } else {
                    let start = s.pos
                    do throws(Fallback) {
                        try directLeaf(&s, sink, leaves.row, leaves.column, depth: 4 + level, &rows)
                    } catch {
                        // The first input read as the features in case it is the only one: a value no feature takes
                        // refuses it as such, and it is only validated from here.
                        guard case .matrix = sink else { throw error }
                        s.pos = start
                        try s.skip(depth: 4 + level)
                        sink = .none
                        featureByColumn = false
                        taken = false
                    }
                    leaves.advance()
                }
            }
            while level > 0 {
                if try s.moreElements() { break }
                level -= 1
            }
        } while level > 0
        guard leaves.k == leaves.expected else { throw Fallback() }
        return taken
    }

    /// Reads leaves from the cursor (at a leaf, below the count) while each is a short plain number
    /// (``Scanner/shortNumber()``) for a numeric feature, storing each as ``directFeature(_:_:)`` would; `fixed` is
    /// the feature of a column sink, `byColumn` a matrix's (the leaf's column). Within an array (`nested`) a ','
    /// after a leaf is consumed and the run goes on with the next element unless it is an array or the count is
    /// reached. Returns nil when the first leaf is none of those (nothing read), true when the cursor is at an
    /// element after a ',', false when it is after a leaf, not at a ','.
    ///
    /// The features are written in place (one uniqueness check for the run, not one per leaf), each leaf logged in
    /// `log` (``RequestShape``).
    @inline(__always)
    private func directNumericRun(
        _ s: inout Scanner, _ leaves: inout LeafPosition, _ features: inout [FeatureValue], _ featureCount: Int,
        _ log: inout FeatureLeafLog, byColumn: Bool, fixed: Int, nested: Bool
    ) -> Bool? {
        let isNumeric = reader.featureIsNumeric
        return features.withUnsafeMutableBufferPointer { features -> Bool? in
            var read = false
            while true {
                let feature = byColumn ? leaves.column : fixed
                let index = leaves.row &* featureCount &+ feature
                let start = s.pos
                guard isNumeric[feature], index < features.count,
                    let value = s.shortNumber()
                else { return read ? true : nil }
                Rows.overwrite(features.baseAddress! + index, with: .number(value))
                log.append(start: start, end: s.pos, slot: index)
                read = true
                leaves.advance()
                guard nested, s.take(0x2C) else { return false }
                // The next element: read on when a short number (nothing else is, '[' and whitespace included).
                guard leaves.k < leaves.expected else { return true }
            }
        }
    }

    /// One leaf at the cursor, value `column` of row `row`, read as the tape path reads it (``ValueReader``) for
    /// `sink`; whatever the tape path refuses falls back.
    @inline(__always)
    private func directLeaf(
        _ s: inout Scanner, _ sink: LeafSink, _ row: Int, _ column: Int, depth: Int, _ rows: inout Rows
    ) throws(Fallback) {
        switch sink {
        case .none:
            try s.skip(depth: depth)
        case .matrix:
            let value = try directFeature(&s, column)
            if case .missing = value {} else { rows.leafLog.refuse() }
            rows.features[row &* rows.featureCount &+ column] = value
        case .column(let index):
            let value = try directFeature(&s, index)
            if case .missing = value {} else { rows.leafLog.refuse() }
            rows.features[row &* rows.featureCount &+ index] = value
        case .probabilities:
            let value = try directNumber(&s)
            guard value >= 0 && value <= 1 else { throw Fallback() }
            rows.setProbability(value, row: row, index: column)
        case .probabilityCheck:
            let value = try directNumber(&s)
            guard value >= 0 && value <= 1 else { throw Fallback() }
        case .score:
            if s.nextByte() == 0x6E {
                guard try s.literalValue() == nil else { throw Fallback() }
            } else {
                rows.info[row].score = try directNumber(&s)
            }
        case .outcome:
            let (outcome, index) = try directOutcome(&s)
            rows.info[row].prediction = outcome
            rows.info[row].predictionClass = index
        }
    }

    /// A number value (finite: an infinite one falls back, as every use of it here refuses it).
    @inline(__always)
    private func directNumber(_ s: inout Scanner) throws(Fallback) -> Double {
        let first = s.nextByte()
        guard first == 0x2D || (first >= 0x30 && first <= 0x39) else { throw Fallback() }
        let value = try s.numberToken().value
        guard value.isFinite else { throw Fallback() }
        return value
    }

    /// Feature `index` as ``ValueReader/feature(_:_:_:_:)`` reads it: numbers and booleans for numeric features;
    /// strings, number text and booleans as text for categorical ones; null missing.
    @inline(__always)
    private func directFeature(_ s: inout Scanner, _ index: Int) throws(Fallback) -> FeatureValue {
        let first = s.nextByte()
        if reader.featureIsNumeric[index] {
            switch first {
            case 0x2D, 0x30...0x39:
                let value = try s.numberToken().value
                guard value.isFinite else { throw Fallback() }
                return .number(value)
            case 0x74, 0x66, 0x6E:
                guard let flag = try s.literalValue() else { return .missing }
                return .number(flag ? 1 : 0)
            default:
                throw Fallback()
            }
        }
        switch first {
        case 0x22:
            return .category(try s.stringText())
        case 0x2D, 0x30...0x39:
            let n = try s.numberToken()
            return .category(s.text(n.start, n.end))
        case 0x74, 0x66, 0x6E:
            guard let flag = try s.literalValue() else { return .missing }
            return .category(flag ? "true" : "false")
        default:
            throw Fallback()
        }
    }

    /// A prediction value as ``ValueReader/outcome(_:_:_:)`` reads it, with its class index; null falls back.
    private func directOutcome(_ s: inout Scanner) throws(Fallback) -> (Outcome, Int?) {
        let first = s.nextByte()
        guard reader.isClassification else { return (.number(try directNumber(&s)), nil) }
        let text: String
        switch first {
        case 0x22:
            text = try s.stringText()
        case 0x2D, 0x30...0x39:
            // A plain integer naming a class (the usual prediction) is read here: its value is `numberToken()`'s.
            let start = s.pos
            if let integer = s.shortInteger(), let index = reader.numericClass(Double(integer)) {
                return (.label(schema.classes[index]), index)
            }
            s.pos = start
            let n = try s.numberToken()
            if let index = reader.numericClass(n.value) { return (.label(schema.classes[index]), index) }
            text = s.text(n.start, n.end)
        case 0x74, 0x66:
            text = try s.literalValue() == true ? "true" : "false"
        default:
            throw Fallback()
        }
        return (.label(text), reader.classIndex(text))
    }
}
