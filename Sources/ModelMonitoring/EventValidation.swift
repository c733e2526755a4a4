import Ingestion

/// The semantic checks the JSON decoder applies, for events built in process: the same rejections with
/// the same reasons, so that embedding and the HTTP API count alike. Also derives class indices.
enum EventValidation {
    /// Returns the reason `event` must be rejected, or nil after filling `predictionClass` and `labelClass`.
    static func check(_ event: inout PredictionEvent, schema: Schema) -> RejectReason? {
        if event.version.isEmpty { return .missingVersion }
        guard event.features.count == schema.features.count, event.attributes.count == schema.attributeNames.count
        else { return .wrongType }
        var numberForCategory = false
        for (value, spec) in zip(event.features, schema.features) {
            switch (value, spec.kind) {
            case (.number(let x), .numeric): if !x.isFinite { return .invalidNumber }
            case (.category, .numeric): return .wrongType
            case (.number(let x), _):
                if !x.isFinite { return .invalidNumber }
                numberForCategory = true
            default: break
            }
        }
        if numberForCategory {
            // A number for a categorical feature is the category it names, as the JSON decoder reads `"country": 3`
            // (it was kept a number, which no category bin takes: counted missing, though it was sent).
            for i in event.features.indices where schema.features[i].kind != .numeric {
                if case .number(let x) = event.features[i] { event.features[i] = .category(ProfileBuilder.text(of: x)) }
            }
        }
        switch (schema.task, event.prediction) {
        case (.regression, .number(let x)): if !SummedValueLimit.accepts(x) { return .invalidNumber }
        case (.classification, .label(let l)):
            // A class index already given (a decoder that read the class by its index) is checked, not searched for:
            // one comparison of the same string, where the search compares every class before it.
            if let given = event.predictionClass, given >= 0, given < schema.classes.count, schema.classes[given] == l {
                break
            }
            event.predictionClass = schema.classes.firstIndex(of: l)
        default: return .wrongType
        }
        if let label = event.label {
            switch (schema.task, label) {
            case (.regression, .number(let x)): if !SummedValueLimit.accepts(x) { return .invalidNumber }
            case (.classification, .label(let l)): event.labelClass = schema.classes.firstIndex(of: l)
            default: return .wrongType
            }
        } else {
            event.labelClass = nil
        }
        if let s = event.score, !s.isFinite { return .invalidNumber }
        if let t = event.timestamp, !EventTimestamp.accepts(t) { return .invalidNumber }
        if let l = event.latencySeconds, !(l >= 0 && SummedValueLimit.accepts(l)) { return .invalidNumber }
        if !event.probabilities.isEmpty {
            guard schema.task == .classification, event.probabilities.count == schema.classes.count,
                event.probabilities.allSatisfy({ $0 >= 0 && $0 <= 1 })
            else { return .invalidProbabilities }
        }
        return nil
    }

    /// Returns the reason `label` must be rejected, or nil after filling `labelClass`.
    static func check(_ label: inout LabelEvent, schema: Schema) -> RejectReason? {
        if label.id.isEmpty { return .missingID }
        if let t = label.timestamp, !EventTimestamp.accepts(t) { return .invalidNumber }
        switch (schema.task, label.label) {
        case (.regression, .number(let x)): return SummedValueLimit.accepts(x) ? nil : .invalidNumber
        case (.classification, .label(let l)):
            label.labelClass = schema.classes.firstIndex(of: l)
            return nil
        default: return .wrongType
        }
    }
}
