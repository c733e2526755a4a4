/// For ``CaptureProtocol/custom``: where each field of an event is found in an exchange.
///
/// A pointer is an RFC 6901 JSON pointer into the request or the response body (`/instances/0/age`, `~1` for `/`,
/// `~0` for `~`), where a `*` segment matches every element of an array, or the name of a request header. One event
/// is made per element of the `*` array; pointers without `*` give every event the same value. A pointer has at
/// most one `*`, and all `*` pointers of one exchange must yield the same number of rows
/// (``CaptureFailure/rowCountMismatch`` otherwise); without any `*` pointer an exchange is one event.
public struct CustomMapping: Sendable, Equatable {
    /// Where a pointer looks.
    public enum Source: String, Sendable {
        /// The request body.
        case request
        /// The response body.
        case response
        /// A request header; ``Pointer/path`` is its name (compared case-insensitively).
        case header
    }

    /// One location in an exchange.
    public struct Pointer: Sendable, Equatable {
        /// The body or the headers.
        public var source: Source
        /// The JSON pointer (`""` is the whole body), or the header's name.
        public var path: String

        /// Creates a pointer into `source`.
        public init(_ source: Source, _ path: String) {
            self.source = source
            self.path = path
        }
    }

    /// Feature name (one of the schema's) → where its value is; features not listed are missing.
    public var features: [String: Pointer]
    /// Where the prediction is (required): a scalar, an array of probabilities or an object, read like a KServe v1
    /// prediction.
    public var prediction: Pointer?
    /// Where the score is (a number).
    public var score: Pointer?
    /// Where the probabilities are: an array in the schema's class order, or an object class → probability.
    public var probabilities: Pointer?
    /// Where the event id is (a string or an integer).
    public var id: Pointer?
    /// Where the model version is (a string or a number).
    public var version: Pointer?
    /// Attribute name (one of the schema's) → where its value is.
    public var attributes: [String: Pointer]

    /// Creates a mapping.
    public init(
        features: [String: Pointer] = [:], prediction: Pointer? = nil, score: Pointer? = nil,
        probabilities: Pointer? = nil, id: Pointer? = nil, version: Pointer? = nil, attributes: [String: Pointer] = [:]
    ) {
        self.features = features
        self.prediction = prediction
        self.score = score
        self.probabilities = probabilities
        self.id = id
        self.version = version
        self.attributes = attributes
    }
}
