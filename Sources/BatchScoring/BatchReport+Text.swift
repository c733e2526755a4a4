import Foundation

extension BatchReport {
    /// The report as JSON (`--format json`): sorted keys, pretty-printed; NaN and infinities as the strings `NaN`,
    /// `+Inf`, `-Inf` (as Prometheus writes them).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "+Inf", negativeInfinity: "-Inf", nan: "NaN")
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// The report as text tables (`--format text`): counts, drift, quality, fairness.
    public var text: String {
        var out = "model \(model): \(input)\(labels.map { " + labels \($0)" } ?? "")\n\n"
        out += "rows read          \(counts.rows)\n"
        out += "accepted           \(Self.number(counts.accepted))\n"
        out += "rejected           \(Self.reasons(counts.rejected))\n"
        if let n = counts.unknownFeatures, n > 0 { out += "unknown features   \(Self.number(n)) (ignored)\n" }
        if let n = counts.duplicateIDs, n > 0 { out += "duplicate ids      \(Self.number(n)) (the last joins)\n" }
        for (attribute, n) in (counts.otherGroups ?? [:]).sorted(by: { $0.key < $1.key }) {
            out += "group __other__    \(attribute): \(Self.number(n)) (a value not among its groups, or none)\n"
        }
        if let n = counts.otherVersions {
            out += "version __other__  \(Self.number(n)) (a version the model does not list)\n"
        }
        if let n = counts.otherClasses {
            out += "class __other__    \(Self.number(n)) (a class the model does not list)\n"
        }
        if let n = counts.otherLabelClasses {
            out += "label __other__    \(Self.number(n)) (a label class the model does not list, joined)\n"
        }
        if let n = counts.inlineLabelsJoined { out += "inline labels joined \(Self.number(n))\n" }
        if let labelRows = counts.labelRows {
            out += "label rows read    \(labelRows)\n"
            out += "labels accepted    \(Self.number(counts.labelsAccepted))\n"
            if let rejected = counts.labelsRejected { out += "labels rejected    \(Self.reasons(rejected))\n" }
            out += "labels joined      \(Self.number(counts.labelsJoined))\n"
            out += "labels unmatched   \(Self.reasons(counts.labelsUnmatched ?? [:]))\n"
        }
        if let drift {
            out += "\ndataset drift: share \(Self.number(drift.share)), "
            out += drift.detected.map { $0 ? "DRIFT DETECTED" : "no drift" } ?? "no verdict (below min_observations)"
            out += "\n"
            var rows = [["feature", "method", "score", "threshold", "statistic", "verdict", "observations", "missing"]]
            for c in drift.features + drift.outputs {
                rows.append([
                    c.name, c.method, Self.number(c.score), Self.number(c.threshold), Self.number(c.statistic),
                    Self.verdict(c.detected), Self.number(c.observations), Self.number(c.missing),
                ])
            }
            out += Self.table(rows)
        }
        if !quality.isEmpty {
            out += "\nquality (over \(quality.count) version\(quality.count == 1 ? "" : "s"))\n"
            var rows = [["version", "figure", "value"]]
            for q in quality {
                rows.append([q.version, "outcomes", Self.number(q.outcomes)])
                let named = Self.qualityFigures.filter { q.figures[$0] != nil }
                let rest = q.figures.keys.filter { !Self.qualityFigures.contains($0) }.sorted()
                for name in named + rest { rows.append([q.version, name, Self.number(q.figures[name])]) }
            }
            out += Self.table(rows)
        }
        if !fairness.isEmpty {
            out += "\nfairness\n"
            var rows = [["attribute", "metric", "value", "lower", "upper", "verdict"]]
            for f in fairness {
                rows.append([
                    f.attribute, f.metric, Self.number(f.value), Self.number(f.lower), Self.number(f.upper),
                    f.violation.map { $0 ? "VIOLATION" : "ok" } ?? "-",
                ])
            }
            out += Self.table(rows)
        }
        if !skipped.isEmpty { out += "\nskipped (failed) parts: \(skipped.joined(separator: ", "))\n" }
        return out
    }

    static func verdict(_ detected: Bool?) -> String { detected.map { $0 ? "DRIFT" : "ok" } ?? "-" }

    static func reasons(_ byReason: [String: Double]) -> String {
        let total = byReason.values.reduce(0, +)
        guard total > 0 else { return "0" }
        let listed = byReason.sorted { $0.key < $1.key }.map { "\($0.key) \(number($0.value))" }
        return "\(number(total)) (\(listed.joined(separator: ", ")))"
    }

    /// A figure as the report shows it: integers without decimals, others with up to 6 significant digits.
    static func number(_ x: Double?) -> String {
        guard let x else { return "-" }
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x > 0 ? "+Inf" : "-Inf" }
        if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return String(format: "%.6g", x)
    }

    /// Rows as a table: columns left-aligned, padded to their widest cell, the first row a header.
    static func table(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        var out = ""
        for row in rows {
            let cells = row.enumerated().map { c, cell in
                c == row.count - 1 ? cell : cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
            }
            out += cells.joined(separator: "  ") + "\n"
        }
        return out
    }
}
