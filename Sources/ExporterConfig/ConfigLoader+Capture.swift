import Yams

/// A model's `capture` section and the top-level `cloudevents` section (see docs/proxy.md).
extension Reader {
    /// `capture: {protocol, inference_service, fields, features, attributes}` of `model`.
    mutating func capture(_ node: Node, _ path: String, model: ModelConfiguration) -> CaptureConfiguration? {
        guard
            let fields = mapping(
                node, path, allowed: ["protocol", "inference_service", "fields", "features", "attributes"])
        else { return nil }
        let errorsBefore = errors.count
        func value(_ key: String) -> Node? { fields.first { $0.key == key }?.value }
        guard let p = value("protocol"), let name = string(p, "\(path).protocol") else {
            if value("protocol") == nil {
                fail(
                    node, "\(path).protocol",
                    "required: one of \(CaptureConfiguration.protocols.joined(separator: ", "))")
            }
            return nil
        }
        guard CaptureConfiguration.protocols.contains(name) else {
            fail(
                p, "\(path).protocol",
                "unknown protocol \"\(name)\" (known: \(CaptureConfiguration.protocols.joined(separator: ", ")))")
            return nil
        }
        var capture = CaptureConfiguration(protocolName: name)
        if let s = value("inference_service"), let service = string(s, "\(path).inference_service") {
            // The logger never sends an empty ce-inferenceservicename (the receiver refuses one): such a model could
            // receive no event.
            if service.isEmpty {
                fail(s, "\(path).inference_service", "empty: the InferenceService whose logger events this model takes")
            } else {
                capture.inferenceService = service
            }
        }
        let known = (
            fields: Set(CaptureConfiguration.customFields), features: Set(model.features.map(\.name)),
            attributes: Set(model.sensitiveAttributes.map(\.name))
        )
        for (key, allowed) in [
            ("fields", known.fields), ("features", known.features), ("attributes", known.attributes),
        ] {
            guard let n = value(key) else { continue }
            guard name == "custom" else {
                fail(n, "\(path).\(key)", "only the custom protocol maps fields (\(name) has a fixed mapping)")
                continue
            }
            // An attribute is one of the model's `sensitive_attributes`: with none declared, say so (the list of the
            // names allowed was empty: "expected one of: ").
            if key == "attributes" && allowed.isEmpty, case .mapping(let m) = n, let first = m.first {
                fail(
                    first.key, "\(path).attributes.\(first.key.string ?? "?")",
                    "unknown attribute: the model declares no sensitive_attributes (declare it there, with its groups)")
                continue
            }
            guard let entries = mapping(n, "\(path).\(key)", allowed: allowed.sorted()) else { continue }
            var out: [String: String] = [:]
            for (entry, where_) in entries {
                let field = "\(path).\(key).\(entry)"
                guard let text = string(where_, field) else { continue }
                if let problem = Self.locationProblem(text) {
                    fail(where_, field, problem)
                    continue
                }
                out[entry] = text
            }
            switch key {
            case "fields": capture.fields = out
            case "features": capture.features = out
            default: capture.attributes = out
            }
        }
        if name == "custom" && capture.fields["prediction"] == nil && errors.count == errorsBefore {
            fail(node, "\(path).fields.prediction", "required with the custom protocol: where the prediction is")
        }
        return errors.count == errorsBefore ? capture : nil
    }

    /// Why `text` is not `request:<pointer>`, `response:<pointer>` or `header:<name>`, or nil.
    static func locationProblem(_ text: String) -> String? {
        guard let colon = text.firstIndex(of: ":") else {
            return "\"\(text)\" is not request:<JSON pointer>, response:<JSON pointer> or header:<name>"
        }
        let source = text[..<colon]
        let rest = text[text.index(after: colon)...]
        switch source {
        case "request", "response":
            guard rest.isEmpty || rest.hasPrefix("/") else {
                return "\"\(rest)\" is not a JSON pointer (RFC 6901: empty, or starting with /)"
            }
            return nil
        case "header":
            return rest.isEmpty ? "a header name is required after header:" : nil
        default:
            return "unknown source \"\(source)\" (request, response or header)"
        }
    }

    /// `cloudevents: {max_pending, max_pending_bytes, ttl}`.
    mutating func cloudEvents(_ node: Node, _ path: String) -> CloudEventsConfiguration? {
        guard let fields = mapping(node, path, allowed: ["max_pending", "max_pending_bytes", "ttl"]) else { return nil }
        var c = CloudEventsConfiguration()
        for (key, value) in fields {
            switch key {
            case "max_pending":
                c.maxPending = int(value, "\(path).max_pending", range: 1...10_000_000) ?? c.maxPending
            case "max_pending_bytes":
                c.maxPendingBytes =
                    int(value, "\(path).max_pending_bytes", range: 1024...(64 << 30)) ?? c.maxPendingBytes
            default:
                c.ttl = duration(value, "\(path).ttl", range: .seconds(1) ... .seconds(86_400)) ?? c.ttl
            }
        }
        return c
    }
}
