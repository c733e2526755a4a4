import ExporterConfig
import Foundation
import ModelMonitoring

/// Reads a reference profile and checks it against the model it is configured for.
public enum ProfileLoader {
    /// The profile at `path`, checked against `model`: format version, model name, a profile of the right
    /// kind for every configured feature, consistent bins (`counts.count == edges.count + 3`, edges
    /// strictly increasing and strictly inside `(min, max)`, `min <= max`, a finite mean and a finite non-negative
    /// `std` that the values can have (``checkMoments(_:_:)``), a fine histogram of 1 to ``maxFineBins`` bins, as
    /// many in every numeric column in use, bin and fine counts summing to `count` where the column's own values put
    /// them (``checkBins(_:_:)``), consistent distinct values (``checkValues(_:_:)``); `counts.count == values.count + 1`
    /// and no value `__other__`, empty or listed twice for categorical columns (``checkCategories(_:_:)``); values plus
    /// missing equal to `rows`) and, when the configuration lists a categorical feature's values, the same values (byte
    /// for byte).
    /// Profile features the configuration does not list are allowed (and unused).
    public static func load(path: String, model: ModelConfiguration) throws(ProfilingError) -> ReferenceProfile {
        try load(bytes: try Profiler.read(path, maxBytes: maxProfileBytes), path: path, model: model)
    }

    /// ``load(path:model:)`` on the file's bytes already read (so that a caller hashing them hashes what was parsed).
    public static func load(
        bytes: [UInt8], path: String, model: ModelConfiguration
    ) throws(ProfilingError)
        -> ReferenceProfile
    {
        // Strict JSON first: Foundation's decoder takes the first of a key given twice (`"model"`, `"features"`) where
        // Python's json, which may have written or edited the file, takes the last; such a profile is refused, at the
        // key's line and column.
        // A byte order mark (editors on Windows write one) is no JSON, and Foundation skips it: so does the check.
        let text = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        if let syntax = syntaxError(in: text, file: path) { throw syntax }
        let profile: ReferenceProfile
        do {
            profile = try JSONDecoder().decode(ReferenceProfile.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw Self.error(error, file: path)
        } catch {
            throw ProfilingError(file: path, message: "not a reference profile: \(error)")
        }
        try check(profile, model: model, file: path)
        return profile
    }

    /// Checks a decoded `profile` against `model`, naming `file` in errors.
    public static func check(
        _ profile: ReferenceProfile, model: ModelConfiguration, file: String
    )
        throws(ProfilingError)
    {
        func fail(_ field: String, _ message: String) -> ProfilingError {
            ProfilingError(file: file, field: field, message: message)
        }
        guard profile.format == ReferenceProfile.formatVersion else {
            throw fail("format", "\"\(profile.format)\" is not \"\(ReferenceProfile.formatVersion)\"")
        }
        guard profile.model == model.name else {
            throw fail("model", "the profile is of model \"\(profile.model)\", not \"\(model.name)\"")
        }
        for feature in model.features {
            guard let i = profile.features.firstIndex(where: { $0.name == feature.name }) else {
                throw fail("features", "no profile for feature \"\(feature.name)\"")
            }
            try check(
                profile.features[i], kind: feature.kind, values: feature.values,
                field: "features[\(i)] (\(feature.name))", file: file, rows: profile.rows)
        }
        if let prediction = profile.prediction {
            let kind: FeatureKind = model.task == .regression ? .numeric : .categorical
            try check(
                prediction, kind: kind, values: model.classes.isEmpty ? nil : model.classes, field: "prediction",
                file: file, rows: profile.rows)
        }
        if let score = profile.score {
            try check(score, kind: .numeric, values: nil, field: "score", file: file, rows: profile.rows)
        }
        // One fine bin count per profile (its `--fine-bins`): the fine histograms of the columns in use agree.
        var fine: (field: String, bins: Int)?
        let used =
            model.features.compactMap { feature in
                profile.features.firstIndex { $0.name == feature.name }.map {
                    ("features[\($0)] (\(feature.name))", profile.features[$0])
                }
            } + [("prediction", profile.prediction), ("score", profile.score)].compactMap { f, c in c.map { (f, $0) } }
        for (field, column) in used {
            guard let bins = column.numeric?.fine.count else { continue }
            guard let first = fine else {
                fine = (field, bins)
                continue
            }
            guard bins == first.bins else {
                throw fail(
                    field,
                    "\(bins) fine bins, where \(first.field) has \(first.bins) (a profile has one fine bin count)")
            }
        }
    }

    static func check(
        _ column: ColumnProfile, kind: FeatureKind, values: [String]?, field: String, file: String, rows: Int
    )
        throws(ProfilingError)
    {
        func fail(_ message: String) -> ProfilingError { ProfilingError(file: file, field: field, message: message) }
        guard column.missing >= 0 else { throw fail("missing is negative") }
        switch kind {
        case .numeric:
            guard let numeric = column.numeric, column.categorical == nil else {
                throw fail("expected a numeric profile")
            }
            guard numeric.counts.count == numeric.edges.count + 3 else {
                throw fail("\(numeric.counts.count) counts for \(numeric.edges.count) edges (expected edges + 3)")
            }
            guard !numeric.fine.isEmpty else { throw fail("the fine histogram is empty") }
            guard numeric.fine.count <= maxFineBins else {
                throw fail("\(numeric.fine.count) fine bins, more than \(maxFineBins) (the most --fine-bins takes)")
            }
            guard numeric.min <= numeric.max else { throw fail("min \(numeric.min) is above max \(numeric.max)") }
            guard numeric.mean.isFinite else { throw fail("mean \(numeric.mean) is not finite") }
            guard numeric.std.isFinite, numeric.std >= 0 else {
                throw fail("std \(numeric.std) is not a standard deviation (finite, not negative)")
            }
            guard zip(numeric.edges, numeric.edges.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw fail("edges are not strictly increasing")
            }
            guard (numeric.counts + numeric.fine).allSatisfy({ $0 >= 0 }), numeric.count >= 0 else {
                throw fail("negative count")
            }
            guard numeric.edges.allSatisfy({ $0 > numeric.min && $0 < numeric.max }) else {
                throw fail("edges are not all strictly between min and max")
            }
            for (name, bins) in [("counts", numeric.counts), ("fine", numeric.fine)] {
                // Counts are non-negative here: a sum beyond Int.max cannot be `count` (and must not trap).
                guard let sum = Self.sum(bins) else {
                    throw fail("\(name) sum to more than \(Int.max), not count \(numeric.count)")
                }
                guard sum == numeric.count else { throw fail("\(name) sum to \(sum), not count \(numeric.count)") }
            }
            try checkMoments(numeric, fail)
            try checkBins(numeric, fail)
            try checkValues(numeric, fail)
        case .categorical:
            guard let categorical = column.categorical, column.numeric == nil else {
                throw fail("expected a categorical profile")
            }
            guard categorical.counts.count == categorical.values.count + 1 else {
                throw fail(
                    "\(categorical.counts.count) counts for \(categorical.values.count) values "
                        + "(expected values + 1 for __other__)")
            }
            try checkCategories(categorical.values, fail)
            if values == nil,
                let i = categorical.values.firstIndex(where: { $0.utf8.count > CategoryCounts.maxLearnedBytes })
            {
                throw fail(
                    "values[\(i)] is \(categorical.values[i].utf8.count) bytes long, more than the "
                        + "\(CategoryCounts.maxLearnedBytes) a learned category may have: it would be a label value "
                        + "(rebuild the profile: mlops-exporter profile counts such values in __other__)")
            }
            // Byte for byte, as live values are matched (`String`'s `==` calls NFC and NFD spellings equal).
            if let values, values.map({ Array($0.utf8) }) != categorical.values.map({ Array($0.utf8) }) {
                throw fail(
                    "values \(categorical.values) differ from the configured \(values) (rebuild the profile)")
            }
            guard categorical.counts.allSatisfy({ $0 >= 0 }) else { throw fail("negative count") }
            guard Self.sum(categorical.counts) != nil else { throw fail("counts sum to more than \(Int.max)") }
        }
        let (present, overflow) = column.count.addingReportingOverflow(column.missing)
        guard !overflow, present == rows else {
            throw fail("\(column.count) values and \(column.missing) missing are not the profile's \(rows) rows")
        }
    }

    /// Most fine bins a profile may have: what `mlops-exporter profile --fine-bins` takes at most (the window keeps each
    /// KS or Wasserstein column's fine counts per slice).
    public static let maxFineBins = 1_000_000

    /// The largest profile file read (512 MiB; ~20,000 features at `profile`'s default 1,000 fine bins): read whole
    /// at start and at every reload, it had no bound.
    public static let maxProfileBytes = 512 << 20

    /// A non-empty numeric column's `mean` within `[min, max]` and its population `std` at most `max − min` (it is at
    /// most half that), both up to a rounding slack of 1e-9 of the larger of `|min|` and `|max|`. (Wasserstein's score
    /// is divided by the std: an edited one hides or invents drift.)
    static func checkMoments(_ numeric: NumericProfile, _ fail: (String) -> ProfilingError) throws(ProfilingError) {
        guard numeric.count > 0 else { return }
        let slack = 1e-9 * Swift.max(abs(numeric.min), abs(numeric.max))
        guard numeric.mean >= numeric.min - slack, numeric.mean <= numeric.max + slack else {
            throw fail("mean \(numeric.mean) is not between min \(numeric.min) and max \(numeric.max)")
        }
        guard numeric.std <= (numeric.max - numeric.min) + slack else {
            throw fail("std \(numeric.std) exceeds max − min (\(numeric.max - numeric.min))")
        }
    }

    /// A numeric column's counts where its own values put them (its counts, fine counts and `count` agree already): none
    /// in underflow or overflow (below its own `min`, above its own `max`), at least one in the quantile bins holding
    /// `min` (`counts[1]`) and `max` (the last quantile bin), and with `min == max` every value in `fine[0]` (the drift
    /// collector bins a live value equal to them there; numpy would widen the range).
    static func checkBins(_ numeric: NumericProfile, _ fail: (String) -> ProfilingError) throws(ProfilingError) {
        guard numeric.count > 0 else { return }
        let counts = numeric.counts
        guard counts[0] == 0, counts[counts.count - 1] == 0 else {
            throw fail(
                "counts[0] (underflow, below min) is \(counts[0]) and counts[\(counts.count - 1)] (overflow, above max) "
                    + "is \(counts[counts.count - 1]): the reference's own values are never there")
        }
        guard counts[1] > 0, counts[counts.count - 2] > 0 else {
            throw fail(
                "counts[1] (the bin of min) or counts[\(counts.count - 2)] (the bin of max) is 0: min and max are values "
                    + "of the reference")
        }
        guard numeric.min < numeric.max || numeric.fine[0] == numeric.count else {
            throw fail("min equals max and fine[0] is not count \(numeric.count): every value is in fine bin 0")
        }
    }

    /// A numeric column's `distinct`, `values` and `value_counts`: all absent (a profile written before them), or
    /// `distinct` in `0...count` (0 only for an empty column) with the values listed exactly when there are at most
    /// ``NumericProfile/maxListedValues``: `distinct` of them, finite, strictly increasing, from `min` to `max`, each
    /// counted at least once, the counts summing to `count`.
    static func checkValues(_ numeric: NumericProfile, _ fail: (String) -> ProfilingError) throws(ProfilingError) {
        guard let distinct = numeric.distinct else {
            guard numeric.values == nil, numeric.valueCounts == nil else {
                throw fail("values without distinct (the number of distinct values)")
            }
            return
        }
        guard distinct >= 0, distinct <= numeric.count, (distinct == 0) == (numeric.count == 0) else {
            throw fail("distinct \(distinct) is not a number of distinct values among \(numeric.count)")
        }
        guard distinct <= NumericProfile.maxListedValues else {
            guard numeric.values == nil, numeric.valueCounts == nil else {
                let most = NumericProfile.maxListedValues
                throw fail("values listed for \(distinct) distinct values (listed only up to \(most))")
            }
            return
        }
        guard let values = numeric.values, let counts = numeric.valueCounts else {
            throw fail("values and value_counts are required with \(distinct) distinct values")
        }
        guard values.count == distinct, counts.count == distinct else {
            throw fail("\(values.count) values and \(counts.count) value_counts for distinct \(distinct)")
        }
        guard values.allSatisfy(\.isFinite), zip(values, values.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw fail("values are not finite and strictly increasing")
        }
        guard distinct == 0 || (values.first == numeric.min && values.last == numeric.max) else {
            throw fail("values do not run from min to max")
        }
        guard counts.allSatisfy({ $0 > 0 }) else { throw fail("a value_count is not positive") }
        guard Self.sum(counts) == numeric.count else { throw fail("value_counts do not sum to count \(numeric.count)") }
    }

    /// A categorical column's values: none is `__other__` (the bin of every other value: the drift collector would name
    /// two bins `__other__`, and a running exporter died on it at start or reload), none is empty (live traffic's empty
    /// string is a missing value: such a bin never fills), and none is listed twice, byte for byte (values are told apart by their UTF-8 bytes, as live values are: `café` in NFC and in NFD are two values).
    static func checkCategories(_ values: [String], _ fail: (String) -> ProfilingError) throws(ProfilingError) {
        if let i = values.firstIndex(of: ModelContext.other) {
            throw fail(
                "values[\(i)] is \"\(ModelContext.other)\", the name of the bin of every value outside the list "
                    + "(rebuild the profile: mlops-exporter profile counts such rows in it)")
        }
        if let i = values.firstIndex(of: "") {
            throw fail("values[\(i)] is empty: an empty string is a missing value, never a category")
        }
        var seen = Set<[UInt8]>()
        for (i, value) in values.enumerated() where !seen.insert(Array(value.utf8)).inserted {
            throw fail("values[\(i)] \(ColumnMapping.quoted(value)) is listed twice")
        }
    }

    /// The sum of `counts`, nil when it overflows `Int`.
    static func sum(_ counts: [Int]) -> Int? {
        var total = 0
        for c in counts {
            let (next, overflow) = total.addingReportingOverflow(c)
            if overflow { return nil }
            total = next
        }
        return total
    }

    /// Where and why `bytes` are not JSON, by line and column (Foundation's decoder says only that they are not: a
    /// truncated profile was "not a JSON reference profile", with no place); nil when they parse.
    static func syntaxError(in bytes: [UInt8], file: String) -> ProfilingError? {
        if let bad = InvalidUTF8.firstIndex(in: bytes, 0..<bytes.count) {
            let at = InvalidUTF8Location.position(of: bad, in: bytes, from: 0, line: 1)
            return ProfilingError(
                file: file, line: at.line, column: at.column,
                message: InvalidUTF8Location.describe(bytes[bad]) + "; the input must be UTF-8 text")
        }
        do {
            _ = try StrictJSONParser.parse(bytes[...])
            return nil
        } catch {
            let at = InvalidUTF8Location.position(of: min(error.offset, bytes.count), in: bytes, from: 0, line: 1)
            return ProfilingError(
                file: file, line: at.line, column: at.column, field: error.field,
                message: "not a JSON reference profile: "
                    + error.message.replacingOccurrences(of: "the line ends", with: "the file ends"))
        }
    }

    static func error(_ error: DecodingError, file: String) -> ProfilingError {
        func path(_ keys: [any CodingKey]) -> String {
            keys.reduce("") { text, key in
                if let i = key.intValue { return text + "[\(i)]" }
                return text.isEmpty ? key.stringValue : text + "." + key.stringValue
            }
        }
        switch error {
        case .keyNotFound(let key, let context):
            return ProfilingError(
                file: file, field: path(context.codingPath + [key]), message: "required, missing")
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return ProfilingError(file: file, field: path(context.codingPath), message: "expected \(type)")
        case .dataCorrupted(let context):
            return ProfilingError(
                file: file, field: path(context.codingPath), message: "not a JSON reference profile")
        @unknown default:
            return ProfilingError(file: file, message: "not a reference profile: \(error)")
        }
    }
}

extension ProfileLoader {
    /// The reference profiles of `configuration`'s models, keyed by their `reference` path as
    /// ``ModelMonitor/prepare(_:references:)`` takes them: each file read once, checked against its model, and hashed
    /// (the hash is of the very bytes that were parsed). Problems are returned one per model, as
    /// `model "NAME": reference: ERROR` with where the model's `reference` is in its file (when read from one), rather
    /// than thrown, so that a caller reports them all.
    public static func references(
        for configuration: ExporterConfiguration
    ) -> (references: [String: LoadedReference], problems: [ReferenceProblem]) {
        var references: [String: LoadedReference] = [:]
        var problems: [ReferenceProblem] = []
        for (index, model) in configuration.models.enumerated() {
            guard let path = model.reference else { continue }
            do {
                let bytes = try Profiler.read(path, maxBytes: maxProfileBytes)
                let profile = try load(bytes: bytes, path: path, model: model)
                references[path] = LoadedReference(profile: profile, sha256: SHA256.hex(bytes))
            } catch {
                let location = model.locations.reference ?? model.locations.entry
                problems.append(
                    ReferenceProblem(
                        message: "model \"\(model.name)\": reference: \(error)", location: location,
                        field: location == nil ? "models[\(index)].reference" : "",
                        fieldMessage: "model \"\(model.name)\": \(error)"))
            }
        }
        return (references, problems)
    }

    /// A reference profile that cannot be used: a line naming the model, and where it is configured (in a file: its
    /// location; built in code: the field, `models[0].reference`, with ``fieldMessage`` the line without it).
    public struct ReferenceProblem: Sendable {
        /// `model "m": reference: <what is wrong>`.
        public var message: String
        /// The `reference` value's place in the file (else the model's entry); nil when built in code.
        public var location: ConfigLocation?
        /// `models[<index>].reference` when built in code (no location), else empty.
        public var field: String
        /// `model "m": <what is wrong>`: the line to show after ``field``.
        public var fieldMessage: String
    }
}
