import ExporterConfig
import Ingestion
import ModelMonitoring
import Profiling

/// Reads a batch's labels (ground truth joined to the predictions by `id`) into a model, after its predictions and
/// at the same instant, with the labels endpoint's rules: CSV with `id` and `label` columns (and optionally
/// `timestamp`), or NDJSON label events (`{"id": ..., "label": ...}`) decoded by the ingestion API's decoder. A label
/// without `id` or with a label of the wrong type is counted as rejected by reason; one whose `id` matches no
/// prediction is counted in `mlops_labels_unmatched_total`.
enum LabelReader {
    static func csv(file: String, model: MonitoredModel, receivedAt: Double) throws(ProfilingError) -> Int {
        var records = try CSVRecords(file: file)
        defer { records.close() }
        guard try records.next() else {
            throw ProfilingError(file: file, message: "the labels file is empty (no header, no data rows)")
        }
        let header = records.fields.map { records.text($0) }
        records.header = header
        let headerLine = records.recordLine
        for name in header where !["id", "label", "timestamp"].contains(name) {
            throw ProfilingError(
                file: file, line: headerLine,
                message: "column \"\(name)\" is not id, label or timestamp (a labels file has id,label[,timestamp])")
        }
        var seen = Set<String>()
        for name in header where !seen.insert(name).inserted {
            throw ProfilingError(file: file, line: headerLine, message: "column \"\(name)\" appears twice")
        }
        guard let idColumn = header.firstIndex(of: "id"), let labelColumn = header.firstIndex(of: "label") else {
            throw ProfilingError(file: file, line: headerLine, message: "a labels file needs the columns id and label")
        }
        let timeColumn = header.firstIndex(of: "timestamp")
        let regression = model.context.configuration.task == .regression
        let classes = model.context.configuration.classes
        var rows = 0
        while try records.next() {
            let line = records.recordLine
            guard records.fields.count == header.count else {
                throw ProfilingError(
                    file: file, line: line, message: "\(records.fields.count) fields, the header has \(header.count)")
            }
            rows += 1
            func number(_ c: Int) throws(ProfilingError) -> Double? {
                let field = records.fields[c]
                if field.start == field.end { return nil }
                guard let x = records.withBytes(field, { CSVColumn.number($0) }) else {
                    throw ProfilingError(
                        file: file, line: line, column: records.column(field), field: "column \"\(header[c])\"",
                        message: records.withBytes(field) {
                            CSVColumn.notANumber($0, shown: PredictionReader.quoted(records.text(field)))
                        })
                }
                return x.isNaN ? nil : x
            }
            let labelField = records.fields[labelColumn]
            let label: Outcome?
            if regression {
                label = try number(labelColumn).map(Outcome.number)
            } else {
                // As the predictions' CSV reads a class (`1.0` is `1`, `True` is `true`).
                label =
                    labelField.start == labelField.end
                    ? nil
                    : .label(CSVCategory.text(records.text(labelField), configured: classes.isEmpty ? nil : classes))
            }
            guard let label else {
                model.counters.rejected(.missingLabel)
                continue
            }
            let event = LabelEvent(
                id: records.text(records.fields[idColumn]), label: label,
                timestamp: try timeColumn.flatMap { c throws(ProfilingError) in try number(c) })
            model.record(label: event, receivedAt: receivedAt)
        }
        return rows
    }
}
