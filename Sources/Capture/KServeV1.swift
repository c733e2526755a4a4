import Ingestion

extension CaptureDecoder {
    /// KServe v1: `instances` (or `inputs`) rows, as objects or arrays in feature order (or columns: an object of
    /// feature name → list); `predictions`, one per row.
    func decodeKServeV1(_ request: JSONTape, _ response: JSONTape, _ rows: inout Rows) throws(CaptureError) {
        guard let instances = request.member(0, "instances") ?? request.member(0, "inputs") else {
            throw CaptureError(.missingField, "request has no 'instances' or 'inputs'")
        }
        try rowList(request, instances, "request instances", &rows)
        try predictionList(response, &rows, bareList: false)
    }

    /// Rows given as a list of rows (objects or arrays) or as columns (an object of name → list of values).
    func rowList(_ tape: JSONTape, _ node: Int, _ place: String, _ rows: inout Rows) throws(CaptureError) {
        switch tape.nodes[node].kind {
        case .array:
            let count = tape.nodes[node].count
            try checkRowCount(count)
            rows.reset(count: count)
            var element = node + 1
            for row in 0..<count {
                try reader.anyRow(tape, element, &rows, row, "\(place)[\(row)]")
                element = tape.nodes[element].next
            }
        case .object:
            try columns(tape, node, place, &rows)
        default:
            throw CaptureError(
                .shapeMismatch,
                "\(place) must be a list of rows or an object of columns, found "
                    + reader.typeName(tape.nodes[node]))
        }
    }

    /// Columns: an object of feature name → list of values, all lists of one length (the row count).
    func columns(_ tape: JSONTape, _ node: Int, _ place: String, _ rows: inout Rows) throws(CaptureError) {
        let members = tape.members(node)
        var count: Int?
        for (key, value) in members {
            guard tape.nodes[value].kind == .array else {
                throw CaptureError(.shapeMismatch, "\(place) column '\(tape.string(key))' is not a list")
            }
            let length = tape.nodes[value].count
            if let count, count != length {
                throw CaptureError(
                    .shapeMismatch, "\(place) column '\(tape.string(key))' has \(length) values, not \(count)")
            }
            count = length
        }
        try checkRowCount(count ?? 0)
        rows.reset(count: count ?? 0)
        for (key, value) in members {
            let name = tape.string(key)
            guard let index = reader.featureIndex[name] else {
                for row in 0..<rows.count { rows.info[row].unknownFeatures += 1 }
                continue
            }
            for (row, element) in tape.elements(value).enumerated() {
                rows.features[row * rows.featureCount + index] = try reader.feature(
                    tape, element, index, "\(place) column '\(name)' row \(row)")
            }
        }
    }
}
