/// Where and how often the exporter checkpoints its models' state (`storage:` in the configuration file, or
/// `--storage.path` and `--storage.checkpoint-interval`, which take precedence). Read at start only: a reload that
/// changes it is applied at the next restart (docs/storage.md).
public struct StorageConfiguration: Sendable, Equatable {
    /// The storage directory (created, mode 0700, when missing).
    public var path: String
    /// Time between checkpoints (default 60 s).
    public var checkpointInterval: Duration

    /// The default interval.
    public static let defaultInterval: Duration = .seconds(60)
    /// The allowed intervals: 1 s to 1 day.
    public static let intervalRange: ClosedRange<Duration> = .seconds(1) ... .seconds(86_400)

    /// Creates a storage configuration.
    public init(path: String, checkpointInterval: Duration = StorageConfiguration.defaultInterval) {
        self.path = path
        self.checkpointInterval = checkpointInterval
    }
}
