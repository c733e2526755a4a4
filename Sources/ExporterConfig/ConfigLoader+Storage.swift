import Yams

/// The top-level `storage` section (see docs/storage.md).
extension Reader {
    /// The `storage` section: `path` (required; relative to the configuration file's folder) and
    /// `checkpoint_interval` and `lock_wait`.
    mutating func storage(_ node: Node, _ path: String) -> StorageConfiguration? {
        guard let fields = mapping(node, path, allowed: ["path", "checkpoint_interval", "lock_wait"]) else {
            return nil
        }
        guard let p = fields.first(where: { $0.key == "path" })?.value else {
            fail(node, "\(path).path", "required: the storage directory")
            return nil
        }
        guard let dir = string(p, "\(path).path") else { return nil }
        guard !dir.isEmpty else {
            fail(p, "\(path).path", "must not be empty")
            return nil
        }
        var storage = StorageConfiguration(path: resolve(dir))
        if let i = fields.first(where: { $0.key == "checkpoint_interval" })?.value {
            guard
                let d = duration(i, "\(path).checkpoint_interval", range: StorageConfiguration.intervalRange)
            else { return nil }
            storage.checkpointInterval = d
        }
        if let w = fields.first(where: { $0.key == "lock_wait" })?.value {
            if let s = w.scalar?.string, StorageConfiguration.lockWait(parsing: s) == .zero {
                storage.lockWait = .zero
            } else {
                guard let d = duration(w, "\(path).lock_wait", range: StorageConfiguration.lockWaitRange) else {
                    return nil
                }
                storage.lockWait = d
            }
        }
        return storage
    }
}
