import ExporterConfig

/// Everything wrong with a configuration's models that only building their collectors reveals.
public struct ModelSetupErrors: Error, Sendable, CustomStringConvertible {
    /// One problem: a line of text, and where it is in the configuration file when known (a collector's
    /// option, or its entry); without a location (a configuration built in code), the field at fault when known.
    public struct Problem: Sendable, Equatable {
        /// What is wrong, naming the model (and the collector and option): a line that stands alone.
        public var message: String
        /// Where in the configuration file, if known.
        public var location: ConfigLocation?
        /// The field at fault as the configuration file's reader names fields
        /// (`models[1].collectors[0].options.prediction_buckets`), empty when not known. Set only for a problem
        /// without a location.
        public var field: String
        /// What is wrong with ``field`` (`model "m": collector "service": expected a list of numbers`, the option
        /// left to the field); ``message`` when ``field`` is empty.
        public var fieldMessage: String

        /// Creates a problem; `fieldMessage` defaults to `message`.
        public init(
            _ message: String, at location: ConfigLocation? = nil, field: String = "", fieldMessage: String? = nil
        ) {
            self.message = message
            self.location = location
            self.field = field
            self.fieldMessage = fieldMessage ?? message
        }

        /// A problem of model `model` (`model "m": ` before `message`), at `field` when given.
        init(model: String, _ message: String, at location: ConfigLocation?, field: String?) {
            let text = "model \"\(model)\": \(message)"
            self.init(text, at: location, field: field ?? "", fieldMessage: text)
        }
    }

    /// The problems, in configuration order.
    public var located: [Problem]

    /// One line per problem.
    public var problems: [String] { located.map(\.message) }

    /// Creates the list.
    public init(_ problems: [Problem]) { located = problems }
    /// Creates the list of problems without locations.
    public init(problems: [String]) { located = problems.map { Problem($0) } }
    /// The problems, one per line.
    public var description: String { problems.joined(separator: "\n") }
}

extension ModelCollectorError {
    /// The description without the option (`model "m": collector "service": expected a list of numbers`): what is
    /// wrong with the field that names the option.
    var atField: String { "model \"\(model)\": collector \"\(collector)\": \(message)" }
}
