import Yams

/// The top-level `storage` section (see docs/storage.md).
extension Reader {
    /// The `storage` section: `path` (required; relative to the configuration file's folder) and
    /// `checkpoint_interval` and `lock_wait`.
    mutating func storage(_ node: Node, _ path: String) -> StorageConfiguration? {
        guard let fields = mapping(node, path, allowed: ["path", "checkpoint_interval", "lock_wait"]) else {
            return nil
        }
        // Every field is checked, so that one error does not hide the next.
        var valid = true
        var dir: String?
        if let p = fields.first(where: { $0.key == "path" })?.value {
            dir = string(p, "\(path).path")
            if dir?.isEmpty == true {
                fail(p, "\(path).path", "must not be empty")
                dir = nil
            }
        } else {
            fail(node, "\(path).path", "required: the storage directory")
        }
        var storage = StorageConfiguration(path: resolve(dir ?? "."))
        if let i = fields.first(where: { $0.key == "checkpoint_interval" })?.value {
            if let d = duration(i, "\(path).checkpoint_interval", range: StorageConfiguration.intervalRange) {
                storage.checkpointInterval = d
            } else {
                valid = false
            }
        }
        if let w = fields.first(where: { $0.key == "lock_wait" })?.value {
            if let s = w.scalar?.string, StorageConfiguration.lockWait(parsing: s) == .zero {
                storage.lockWait = .zero
            } else if let d = duration(w, "\(path).lock_wait", range: StorageConfiguration.lockWaitRange) {
                storage.lockWait = d
            } else {
                valid = false
            }
        }
        guard valid, dir != nil else { return nil }
        return storage
    }
}
