/// The kind of model a schema describes, which decides the JSON type of `prediction` and `label`.
public enum TaskKind: Sendable, Equatable {
    /// `prediction` and `label` are JSON numbers.
    case regression
    /// `prediction` and `label` are class labels: strings, or integers/booleans turned into strings.
    case classification
}

/// The kind of an input feature, which decides how its JSON value is stored in a ``FeatureValue``.
public enum FeatureKind: Sendable, Equatable {
    /// A number (`true`/`false` are accepted as 1/0); strings are rejected as `wrong_type`.
    case numeric
    /// A category: strings as is, numbers as their JSON text, booleans as `"true"`/`"false"`.
    case categorical
}

/// One declared input feature of a model.
public struct FeatureSpec: Sendable, Equatable {
    /// The key of the feature in the event's `features` object.
    public var name: String
    /// How the value is interpreted.
    public var kind: FeatureKind

    /// Declares a feature named `name` of the given kind.
    public init(_ name: String, _ kind: FeatureKind) {
        self.name = name
        self.kind = kind
    }
}

/// A schema that cannot be built: two names collide within one of its lists.
public struct SchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Which list holds the duplicate: `"classes"`, `"features"` or `"attributes"`.
    public var list: String
    /// The duplicated name.
    public var name: String

    /// Creates the error for `name` duplicated in `list`.
    public init(list: String, name: String) {
        self.list = list
        self.name = name
    }

    /// A human-readable message naming the list and the duplicate.
    public var description: String { "duplicate name '\(name)' in \(list)" }
}

/// The decoding schema of one model, built once and shared by every batch for that model.
///
/// It lays out features, classes and attributes in declaration order ("schema order") and precomputes
/// byte-level lookup tables so that the decoder resolves a JSON key to its index without building a `String`:
/// it first tries the position after the previously matched key (events usually list keys in a fixed order),
/// then an open-addressing hash table keyed by the UTF-8 bytes.
public struct Schema: Sendable {
    /// Whether predictions are numbers (regression) or class labels (classification).
    public let task: TaskKind
    /// The classes, in the order used by ``PredictionEvent/probabilities`` and by array-form probabilities.
    public let classes: [String]
    /// The declared features, in the order used by ``PredictionEvent/features``.
    public let features: [FeatureSpec]
    /// The declared attributes, in the order used by ``PredictionEvent/attributes``.
    public let attributeNames: [String]
    /// For a two-class model, the index in ``classes`` of the positive class: a score derived from probabilities is
    /// its probability. The second class when not given.
    public let positiveClassIndex: Int

    let classTable: NameTable
    /// Classes spelled as numbers (`0.0`, `1`, `2.5`): their value and index, in class order, the first class of a
    /// value kept: how a number sent for a class finds the class spelled otherwise (`1.0` the class `1`), in the
    /// ingestion decoder and the capture decoders alike.
    package let numericClasses: [(value: Double, index: Int)]
    let featureTable: NameTable
    let attributeTable: NameTable
    let featureIsNumeric: [Bool]

    /// Builds a schema; throws ``SchemaError`` when a list contains the same name twice.
    ///
    /// `classes` is ignored for regression models except that it must not contain duplicates. `positiveClass`: the
    /// index of a two-class model's positive class (default: the second class).
    public init(
        task: TaskKind, classes: [String] = [], features: [FeatureSpec], attributeNames: [String] = [],
        positiveClass: Int? = nil
    )
        throws(SchemaError)
    {
        self.task = task
        self.classes = classes
        positiveClassIndex = positiveClass.flatMap { (0..<2).contains($0) ? $0 : nil } ?? 1
        self.features = features
        self.attributeNames = attributeNames
        classTable = try NameTable(classes, list: "classes")
        var numeric: [(value: Double, index: Int)] = []
        for (i, name) in classes.enumerated() {
            if let x = JSONNumber.parse(name), x.isFinite, !numeric.contains(where: { $0.value == x }) {
                numeric.append((x, i))
            }
        }
        numericClasses = numeric
        featureTable = try NameTable(features.map(\.name), list: "features")
        attributeTable = try NameTable(attributeNames, list: "attributes")
        featureIsNumeric = features.map { $0.kind == .numeric }
    }
}

extension Schema {
    /// The class spelled as a number equal to `value` (`1.0` for the class `1`, `1` for the class `1.0`), if any.
    func numericClassIndex(_ value: Double) -> Int? {
        numericClasses.first { $0.value == value }?.index
    }

    /// The index of the feature whose name has exactly the UTF-8 bytes `name` (a byte compare: for the capture
    /// decoders, which fall back to `String` comparison for non-ASCII names).
    @inline(__always)
    package func featureIndex(utf8 name: UnsafeBufferPointer<UInt8>) -> Int? {
        featureTable.lookup(name, hint: Int.max)
    }
}

/// Names stored as contiguous UTF-8 bytes with an open-addressing hash index over them.
struct NameTable: Sendable {
    /// All names' bytes, back to back.
    let bytes: [UInt8]
    /// `starts[i]..<starts[i + 1]` are the bytes of name `i`; `starts.count == count + 1`.
    let starts: [Int]
    /// Hash slots holding `index + 1`, or 0 when empty; the count is a power of two.
    let slots: [Int32]
    /// The same bytes and starts behind stable pointers, for comparisons without bounds checks.
    let storage: NameStorage
    var count: Int { starts.count - 1 }

    init(_ names: [String], list: String) throws(SchemaError) {
        var bytes: [UInt8] = []
        var starts: [Int] = [0]
        for name in names {
            bytes.append(contentsOf: name.utf8)
            starts.append(bytes.count)
        }
        var size = 4
        while size < names.count * 2 { size *= 2 }
        var slots = [Int32](repeating: 0, count: size)
        for (index, name) in names.enumerated() {
            let utf8 = Array(name.utf8)
            var slot = utf8.withUnsafeBufferPointer { NameTable.hash($0) } & (size - 1)
            while slots[slot] != 0 {
                let other = Int(slots[slot]) - 1
                if Array(bytes[starts[other]..<starts[other + 1]]) == utf8 {
                    throw SchemaError(list: list, name: name)
                }
                slot = (slot + 1) & (size - 1)
            }
            slots[slot] = Int32(index + 1)
        }
        self.bytes = bytes
        self.starts = starts
        self.slots = slots
        storage = NameStorage(bytes: bytes, starts: starts)
    }

    /// FNV-1a over the bytes.
    @inline(__always)
    static func hash(_ key: UnsafeBufferPointer<UInt8>) -> Int { FNV1a.slotHash(key) }

    /// Whether name `index` has exactly the bytes of `key`.
    @inline(__always)
    func matches(_ index: Int, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        let start = storage.starts[index]
        let n = storage.starts[index + 1] - start
        guard n == key.count else { return false }
        guard let keyBase = key.baseAddress else { return true }
        return bytesEqual(storage.bytes + start, keyBase, n)
    }

    /// The index of the name equal to `key`, trying `hint` first; nil when absent.
    @inline(__always)
    func lookup(_ key: UnsafeBufferPointer<UInt8>, hint: Int) -> Int? {
        if hint < count && matches(hint, key) { return hint }
        let mask = slots.count - 1
        var slot = NameTable.hash(key) & mask
        while true {
            let entry = Int(slots[slot])
            if entry == 0 { return nil }
            if matches(entry - 1, key) { return entry - 1 }
            slot = (slot + 1) & mask
        }
    }
}

/// The immutable bytes and starts of a ``NameTable``, and each name's JSON key pattern `"name":`, in manually
/// allocated memory, so that the decoder's hot path reads them through plain pointers (no array bounds checks or
/// `withUnsafeBufferPointer`).
final class NameStorage: @unchecked Sendable {
    // Sendable: written only in `init`, read-only afterwards.
    let count: Int
    let bytes: UnsafeMutablePointer<UInt8>
    let starts: UnsafeMutablePointer<Int>
    /// For each name, `"name":` (from `patternStarts[i]`, `patternLengths[i]` bytes); the length is -1 when the
    /// name contains '"', '\\' or a byte below 0x20 (its key needs escapes and is only matched after scanning).
    let patterns: UnsafeMutablePointer<UInt8>
    let patternStarts: UnsafeMutablePointer<Int>
    let patternLengths: UnsafeMutablePointer<Int>
    private let byteCount: Int

    init(bytes source: [UInt8], starts startList: [Int]) {
        count = startList.count - 1
        // The names, then the patterns (the names again, each with 3 more bytes).
        byteCount = max(source.count, 1) + source.count + 3 * count
        let all = UnsafeMutablePointer<UInt8>.allocate(capacity: byteCount)
        all.initialize(repeating: 0, count: byteCount)
        for (i, b) in source.enumerated() { all[i] = b }
        bytes = all
        starts = .allocate(capacity: count + 1)
        starts.initialize(from: startList, count: count + 1)
        patterns = all + max(source.count, 1)
        patternStarts = .allocate(capacity: count + 1)
        patternLengths = .allocate(capacity: count + 1)
        patternStarts.initialize(repeating: 0, count: count + 1)
        patternLengths.initialize(repeating: -1, count: count + 1)
        var at = 0
        for i in 0..<count {
            let name = source[startList[i]..<startList[i + 1]]
            patternStarts[i] = at
            patterns[at] = 0x22
            for (k, b) in name.enumerated() { patterns[at + 1 + k] = b }
            patterns[at + 1 + name.count] = 0x22
            patterns[at + 2 + name.count] = 0x3A
            let plain = !name.contains { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 }
            patternLengths[i] = plain ? name.count + 3 : -1
            at += name.count + 3
        }
    }

    deinit {
        bytes.deinitialize(count: byteCount)
        bytes.deallocate()
        starts.deinitialize(count: count + 1)
        starts.deallocate()
        patternStarts.deinitialize(count: count + 1)
        patternStarts.deallocate()
        patternLengths.deinitialize(count: count + 1)
        patternLengths.deallocate()
    }
}

/// A fixed list of names with a byte-level hash index: maps a string to its position without hashing a
/// `String` (FNV-1a over the UTF-8 bytes, open addressing). For hot paths that bin categorical values.
public struct NameIndex: Sendable {
    let table: NameTable

    /// Indexes `names`; throws when a name appears twice.
    public init(_ names: [String]) throws(SchemaError) {
        table = try NameTable(names, list: "names")
    }

    /// The number of names.
    public var count: Int { table.count }

    /// The position of `name`, or nil when it is not in the list.
    @inline(__always)
    public func index(of name: String) -> Int? {
        var copy = name
        return copy.withUTF8 { table.lookup($0, hint: Int.max) }
    }
}
