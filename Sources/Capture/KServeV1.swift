import Ingestion

extension CaptureDecoder {
    /// KServe v1: `inputs` (or, without it, `instances`: KServe's own precedence) rows, as objects or arrays in feature
    /// order (or columns: an object of feature name → list); `predictions`, one per row. The DataFrame forms KServe's
    /// servers take are unwrapped: a list holding one list of row objects (`[[{…}, {…}]]`), and a list holding one
    /// object of columns (`[{"a": [1, 2]}]`).
    func decodeKServeV1(_ request: JSONTape, _ response: JSONTape, _ rows: inout Rows) throws(CaptureError) {
        guard let instances = request.member(0, "inputs") ?? request.member(0, "instances") else {
            throw CaptureError(.missingField, "request has no 'instances' or 'inputs'")
        }
        try rowList(request, Self.dataFrameUnwrapped(request, instances), "request instances", &rows)
        try predictionList(response, &rows, bareList: false)
    }

    /// `node`'s only element when `node` is a list of one element that is a list of objects (DataFrame records) or
    /// an object whose every value is a list (DataFrame columns); `node` otherwise. Neither is a row of features
    /// otherwise (a feature's value is no list).
    package static func dataFrameUnwrapped(_ tape: JSONTape, _ node: Int) -> Int {
        guard tape.nodes[node].kind == .array, tape.nodes[node].count == 1 else { return node }
        let only = node + 1
        switch tape.nodes[only].kind {
        case .array:
            guard tape.nodes[only].count > 0 else { return node }
            var element = only + 1
            for _ in 0..<tape.nodes[only].count {
                guard tape.nodes[element].kind == .object else { return node }
                element = tape.nodes[element].next
            }
            return only
        case .object:
            let members = tape.members(only)
            guard !members.isEmpty, members.allSatisfy({ tape.nodes[$0.value].kind == .array }) else { return node }
            return only
        default:
            return node
        }
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
