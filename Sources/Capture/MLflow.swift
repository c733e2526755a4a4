import Ingestion

extension CaptureDecoder {
    /// The MLflow scoring server: `dataframe_split` (`columns` and `data` rows; without `columns` the rows are in
    /// feature order), `dataframe_records` (a list of objects), `instances` and `inputs` (a list of rows or an
    /// object of columns); `{"predictions": [...]}` or a bare list, one per row.
    func decodeMLflow(_ request: JSONTape, _ response: JSONTape, _ rows: inout Rows) throws(CaptureError) {
        if let split = request.member(0, "dataframe_split") {
            try dataframeSplit(request, split, &rows)
        } else if let records = request.member(0, "dataframe_records") {
            guard request.nodes[records].kind == .array else {
                throw CaptureError(.shapeMismatch, "request 'dataframe_records' must be a list of objects")
            }
            try rowList(request, records, "request dataframe_records", &rows)
        } else if let instances = request.member(0, "instances") {
            try rowList(request, instances, "request instances", &rows)
        } else if let inputs = request.member(0, "inputs") {
            try rowList(request, inputs, "request inputs", &rows)
        } else {
            throw CaptureError(
                .missingField, "request has none of 'dataframe_split', 'dataframe_records', 'instances', 'inputs'")
        }
        try predictionList(response, &rows, bareList: true)
    }

    private func dataframeSplit(_ tape: JSONTape, _ split: Int, _ rows: inout Rows) throws(CaptureError) {
        guard let data = tape.member(split, "data"), tape.nodes[data].kind == .array else {
            throw CaptureError(.missingField, "request 'dataframe_split' has no 'data' list")
        }
        let dataRows = tape.elements(data)
        try checkRowCount(dataRows.count)
        rows.reset(count: dataRows.count)
        guard let columns = tape.member(split, "columns"), tape.nodes[columns].kind == .array else {
            for (row, node) in dataRows.enumerated() {
                try reader.anyRow(tape, node, &rows, row, "request dataframe_split data[\(row)]")
            }
            return
        }
        var indices: [Int?] = []
        var unknown = 0
        for column in tape.elements(columns) {
            let name = tape.nodes[column].kind == .string ? tape.string(column) : tape.numberText(column)
            let index = reader.featureIndex[name]
            if index == nil { unknown += 1 }
            indices.append(index)
        }
        for (row, node) in dataRows.enumerated() {
            let values = tape.elements(node)
            guard tape.nodes[node].kind == .array, values.count == indices.count else {
                throw CaptureError(
                    .shapeMismatch,
                    "request dataframe_split data[\(row)] has \(values.count) values for \(indices.count) columns")
            }
            rows.info[row].unknownFeatures = unknown
            for (value, index) in zip(values, indices) {
                guard let index else { continue }
                rows.features[row * rows.featureCount + index] = try reader.feature(
                    tape, value, index, "request dataframe_split data[\(row)]")
            }
        }
    }
}
