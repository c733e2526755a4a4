extension ModelConfiguration {
    /// The columns `batch` and `profile` files give a meaning of their own (the event's id, label, prediction,
    /// score, timestamp and version).
    public static let fileColumns = ["id", "label", "prediction", "score", "timestamp", "version"]

    /// Why this model's CSV or NDJSON files cannot be read by `batch` and `profile`: a feature or sensitive attribute
    /// named like one of ``fileColumns`` would be read as the event's own field (every row of a batch was refused
    /// `missing_prediction` with a `prediction` feature). Live traffic nests features and attributes, so the
    /// configuration stays valid for `serve`; nil when there is no such name.
    public var fileColumnClash: String? {
        let clashing =
            features.map { ("feature", $0.name) } + sensitiveAttributes.map { ("sensitive attribute", $0.name) }
        guard let (what, name) = clashing.first(where: { Self.fileColumns.contains($0.1) }) else { return nil }
        return "model \(self.name): \(what) \"\(name)\" has the name of a column batch and profile files read as the "
            + "event's \(name) (\(Self.fileColumns.joined(separator: ", "))): its files cannot be read; rename it"
    }
}
