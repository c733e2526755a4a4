/// Where and how often the exporter checkpoints its models' state (`storage:` in the configuration file, or
/// `--storage.path` and `--storage.checkpoint-interval`, which take precedence). Read at start only: a reload that
/// changes it is applied at the next restart (docs/storage.md).
public struct StorageConfiguration: Sendable, Equatable {
    /// The storage directory (created, mode 0700, when missing).
    public var path: String
    /// Time between checkpoints (default 60 s).
    public var checkpointInterval: Duration
    /// How long the restore at start waits for the storage directory's lock while another process holds it (default
    /// 10 s; 0: not at all), before the exporter starts with empty state (docs/storage.md, "One process per
    /// directory").
    public var lockWait: Duration

    /// The default interval.
    public static let defaultInterval: Duration = .seconds(60)
    /// The allowed intervals: 1 s to 1 day.
    public static let intervalRange: ClosedRange<Duration> = .seconds(1) ... .seconds(86_400)
    /// The default wait for the lock.
    public static let defaultLockWait: Duration = .seconds(10)
    /// The allowed waits for the lock: none to 1 hour.
    public static let lockWaitRange: ClosedRange<Duration> = .zero ... .seconds(3_600)

    /// A lock wait as written (`30s`, `2m`; `0`, `0s` or `0ms` for none, which durations elsewhere refuse), or nil.
    public static func lockWait(parsing text: String) -> Duration? {
        ["0", "0s", "0ms"].contains(text) ? .zero : DurationParser.parse(text)
    }

    /// Creates a storage configuration.
    public init(
        path: String, checkpointInterval: Duration = StorageConfiguration.defaultInterval,
        lockWait: Duration = StorageConfiguration.defaultLockWait
    ) {
        self.path = path
        self.checkpointInterval = checkpointInterval
        self.lockWait = lockWait
    }
}
