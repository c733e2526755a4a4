/// Why an exchange could not be decoded: a small fixed set, suitable as a Prometheus `reason` label value.
public enum CaptureFailure: String, Sendable, CaseIterable {
    /// The request or the response is not valid JSON.
    case invalidJSON = "invalid_json"
    /// A value does not have the shape the protocol gives it: a row array whose length differs from the number of
    /// features, a v2 tensor whose `shape` does not match its `data` or whose width does not fit, probabilities
    /// that do not have one value per class.
    case shapeMismatch = "shape_mismatch"
    /// The response does not have one prediction per request row (or `*` pointers of a custom mapping yield
    /// different row counts).
    case rowCountMismatch = "row_count_mismatch"
    /// A field the protocol requires is absent: the rows (`instances`, `inputs`…), the predictions, a row's
    /// prediction.
    case missingField = "missing_field"
    /// A value of the right shape but of a type or range that cannot be used: a string for a numeric feature or a
    /// regression prediction, an object where a scalar is expected, a probability outside [0, 1].
    case invalidValue = "invalid_value"
    /// Valid traffic this decoder does not read: BYTES tensors for a numeric feature, an MLflow response that is
    /// not a list of predictions.
    case unsupported
    /// More rows than ``CaptureDecoder/maxRows``.
    case tooManyRows = "too_many_rows"
}

/// An exchange that was not decoded: nothing of it was delivered.
public struct CaptureError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The reason label.
    public var reason: CaptureFailure
    /// A human-readable explanation (names the body, the field, the row).
    public var message: String

    /// Creates the error.
    public init(_ reason: CaptureFailure, _ message: String) {
        self.reason = reason
        self.message = message
    }

    /// `<reason>: <message>`.
    public var description: String { "\(reason.rawValue): \(message)" }
}

/// A decoder that cannot be built from its configuration.
public struct CaptureConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The configuration field at fault, e.g. `custom.features.age` or `custom.prediction`.
    public var field: String
    /// What is wrong with it.
    public var message: String

    /// Creates the error.
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    /// `<field>: <message>`.
    public var description: String { "\(field): \(message)" }
}
