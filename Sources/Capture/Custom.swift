import Ingestion

/// A ``CustomMapping`` checked against the schema, its pointers parsed.
struct CompiledMapping: Sendable {
    enum Target: Sendable, Equatable {
        case feature(Int), attribute(Int), id, version, score, probabilities, prediction
    }

    struct Entry: Sendable {
        var target: Target
        var source: CustomMapping.Source
        /// For the bodies.
        var pointer: JSONPointer
        /// For headers: the name, lower-case; for the bodies the pointer's text (for messages).
        var name: String
    }

    /// In the order they are applied: the prediction last (an object prediction's keys win).
    let entries: [Entry]
    /// The distinct header names read, lower-case, in the order of their slots in the header document.
    let headerNames: [String]

    init(_ mapping: CustomMapping, schema: Schema) throws(CaptureConfigError) {
        guard let prediction = mapping.prediction else {
            throw CaptureConfigError(field: "custom.prediction", message: "is required")
        }
        let featureIndex = Dictionary(schema.features.enumerated().map { ($1.name, $0) }) { a, _ in a }
        let attributeIndex = Dictionary(schema.attributeNames.enumerated().map { ($1, $0) }) { a, _ in a }
        var listed: [(String, Target, CustomMapping.Pointer)] = []
        for (name, pointer) in mapping.features.sorted(by: { $0.key < $1.key }) {
            guard let index = featureIndex[name] else {
                throw CaptureConfigError(
                    field: "custom.features.\(name)", message: "the model has no feature '\(name)'")
            }
            listed.append(("custom.features.\(name)", .feature(index), pointer))
        }
        for (name, pointer) in mapping.attributes.sorted(by: { $0.key < $1.key }) {
            guard let index = attributeIndex[name] else {
                throw CaptureConfigError(
                    field: "custom.attributes.\(name)", message: "the model has no attribute '\(name)'")
            }
            listed.append(("custom.attributes.\(name)", .attribute(index), pointer))
        }
        let optional: [(String, Target, CustomMapping.Pointer?)] = [
            ("custom.id", .id, mapping.id), ("custom.version", .version, mapping.version),
            ("custom.score", .score, mapping.score), ("custom.probabilities", .probabilities, mapping.probabilities),
            ("custom.prediction", .prediction, prediction),
        ]
        for case let (field, target, pointer?) in optional { listed.append((field, target, pointer)) }
        if schema.task == .regression, mapping.probabilities != nil {
            throw CaptureConfigError(field: "custom.probabilities", message: "a regression model has no probabilities")
        }
        var entries: [Entry] = []
        var headerNames: [String] = []
        for (field, target, pointer) in listed {
            if pointer.source == .header {
                let name = pointer.path.lowercased()
                guard !name.isEmpty else { throw CaptureConfigError(field: field, message: "empty header name") }
                if target == .probabilities {
                    throw CaptureConfigError(field: field, message: "probabilities cannot come from a header")
                }
                if !headerNames.contains(name) { headerNames.append(name) }
                entries.append(Entry(target: target, source: .header, pointer: try JSONPointer(""), name: name))
                continue
            }
            do {
                entries.append(
                    Entry(
                        target: target, source: pointer.source, pointer: try JSONPointer(pointer.path),
                        name: pointer.path))
            } catch {
                throw CaptureConfigError(field: field, message: error.message)
            }
        }
        self.entries = entries
        self.headerNames = headerNames
    }

    /// The mapped headers' values as one JSON array, slot `i` for `headerNames[i]`: a value that is a JSON number
    /// as that number, anything else as a string, `null` when the header is absent (the first of repeated ones).
    func headerDocument(_ headers: [(name: String, value: String)]) -> [UInt8] {
        var out: [UInt8] = [0x5B]
        for (i, name) in headerNames.enumerated() {
            if i > 0 { out.append(0x2C) }
            guard let value = headers.first(where: { $0.name.lowercased() == name })?.value else {
                out.append(contentsOf: "null".utf8)
                continue
            }
            let trimmed = value.trimmingSpaces
            if let number = JSONNumber.parse(trimmed), number.isFinite {
                out.append(contentsOf: trimmed.utf8)
                continue
            }
            out.append(0x22)
            for byte in value.utf8 {
                switch byte {
                case 0x22, 0x5C: out.append(contentsOf: [0x5C, byte])
                case 0..<0x20: out.append(contentsOf: Array(String(format: byte).utf8))
                default: out.append(byte)
                }
            }
            out.append(0x22)
        }
        out.append(0x5D)
        return out
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return String(s)
    }

    /// `\u00XX` for a control byte.
    fileprivate init(format byte: UInt8) {
        let hex = String(byte, radix: 16, uppercase: true)
        self = "\\u00" + (hex.count == 1 ? "0" + hex : hex)
    }
}

extension CaptureDecoder {
    /// The values one entry yields: one per row (a `*` pointer) or one for every row.
    private enum Found {
        case every(Int?)
        case rows([Int?])
    }

    /// Custom mappings: each pointer resolved in its body (or the header document), rows from the `*` pointers.
    func decodeCustom(
        _ mapping: CompiledMapping, _ request: UnsafeRawBufferPointer, _ response: UnsafeRawBufferPointer,
        _ headers: [(name: String, value: String)], _ rows: inout Rows
    ) throws(CaptureError) {
        let sources = Set(mapping.entries.map(\.source))
        let requestTape = sources.contains(.request) ? try parse(request, "request") : nil
        let responseTape = sources.contains(.response) ? try parse(response, "response") : nil
        let headerBytes = mapping.headerDocument(headers)
        // The header tape points into `headerBytes`: it is read only inside this closure.
        let result = headerBytes.withUnsafeBytes { raw -> Result<Void, CaptureError> in
            do throws(CaptureError) {
                try customRows(mapping, requestTape, responseTape, parse(raw, "headers"), &rows)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    private func customRows(
        _ mapping: CompiledMapping, _ requestTape: JSONTape?, _ responseTape: JSONTape?, _ headerTape: JSONTape,
        _ rows: inout Rows
    ) throws(CaptureError) {
        var found: [(entry: CompiledMapping.Entry, tape: JSONTape, values: Found)] = []
        var count: Int?
        for entry in mapping.entries {
            let tape: JSONTape
            let values: Found
            switch entry.source {
            case .header:
                tape = headerTape
                let slot = mapping.headerNames.firstIndex(of: entry.name) ?? 0
                let node = tape.elements(0)[slot]
                values = .every(tape.nodes[node].kind == .null ? nil : node)
            case .request, .response:
                guard let body = entry.source == .request ? requestTape : responseTape else { continue }
                tape = body
                values = try resolve(entry, body)
            }
            if case .rows(let list) = values {
                if let count, count != list.count {
                    throw CaptureError(
                        .rowCountMismatch,
                        "\(entry.source.rawValue) \(entry.name) yields \(list.count) rows, not \(count)")
                }
                count = list.count
            }
            found.append((entry, tape, values))
        }
        try checkRowCount(count ?? 1)
        rows.reset(count: count ?? 1)
        for (entry, tape, values) in found {
            for row in 0..<rows.count {
                let node: Int?
                switch values {
                case .every(let n): node = n
                case .rows(let list): node = list[row]
                }
                guard let node else { continue }
                try apply(entry, tape, node, &rows, row, "\(entry.source.rawValue) \(entry.name) row \(row)")
                if entry.target == .id, case .every = values, rows.count > 1, let id = rows.info[row].id {
                    // One id for the whole batch (a header, or a pointer without `*`): row `r` gets `<id>/<r>`, as
                    // with the proxy's request id, so that every row can be labelled (the same id on every row kept
                    // only the last one joinable).
                    rows.info[row].id = "\(id)/\(row)"
                }
            }
        }
        try rows.checkPredictions()
    }

    private func resolve(_ entry: CompiledMapping.Entry, _ tape: JSONTape) throws(CaptureError) -> Found {
        let segments = entry.pointer.segments.count
        guard let star = entry.pointer.star else {
            return .every(entry.pointer.resolve(tape, from: 0, 0..<segments))
        }
        guard let array = entry.pointer.resolve(tape, from: 0, 0..<star), tape.nodes[array].kind == .array else {
            throw CaptureError(.missingField, "\(entry.source.rawValue) \(entry.name): no array at the '*'")
        }
        var list: [Int?] = []
        for element in tape.elements(array) {
            list.append(entry.pointer.resolve(tape, from: element, (star + 1)..<segments))
        }
        return .rows(list)
    }

    private func apply(
        _ entry: CompiledMapping.Entry, _ tape: JSONTape, _ node: Int, _ rows: inout Rows, _ row: Int,
        _ place: @autoclosure () -> String
    ) throws(CaptureError) {
        switch entry.target {
        case .feature(let index):
            rows.features[row * rows.featureCount + index] = try reader.feature(tape, node, index, place())
        case .attribute(let index):
            rows.attributes[row * rows.attributeCount + index] = try reader.text(tape, node, place())
        case .id: rows.info[row].id = try reader.text(tape, node, place())
        case .version: rows.info[row].version = try reader.text(tape, node, place())
        case .score: rows.info[row].score = try reader.number(tape, node, place())
        case .probabilities: try reader.probabilities(tape, node, &rows, row, place())
        case .prediction:
            if tape.nodes[node].kind != .null { try reader.prediction(tape, node, &rows, row, place()) }
        }
    }
}
