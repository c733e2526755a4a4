import Ingestion

extension ModelContext {
    /// Notes in `notices` what of the accepted `event` this model records otherwise than sent: a version not
    /// configured, a predicted or inline label class not configured, a sensitive attribute value outside its groups
    /// (`__other__`, all three), a timestamp far in the future.
    func note(_ event: PredictionEvent, receivedAt: Double, in notices: inout IngestNotices) {
        if versionIndex(event.version) == configuration.versions.count { notices.unknownVersions.note(event.version) }
        if !configuration.classes.isEmpty {
            if event.predictionClass == nil, case .label(let label) = event.prediction {
                notices.unknownClasses.note(label)
            }
            if event.labelClass == nil, case .label(let label)? = event.label { notices.unknownClasses.note(label) }
        }
        for (i, value) in event.attributes.enumerated() {
            guard let value, groupIndex(attribute: i, value: value) == groupLabels[i].count - 1 else { continue }
            notices.unknownGroups.note("\(schema.attributeNames[i])=\(value)")
        }
        notices.check(timestamp: event.timestamp, receivedAt: receivedAt)
    }

    /// ``note(_:receivedAt:in:)`` for a label posted alone: its class, its timestamp.
    func note(_ label: LabelEvent, receivedAt: Double, in notices: inout IngestNotices) {
        if !configuration.classes.isEmpty, label.labelClass == nil, case .label(let text) = label.label {
            notices.unknownClasses.note(text)
        }
        notices.check(timestamp: label.timestamp, receivedAt: receivedAt)
    }
}
