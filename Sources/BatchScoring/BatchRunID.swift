import Foundation
import ModelMonitoring

/// The default `run_id` of a push: the same for a rerun on the same files, so that pushing again replaces.
public enum BatchRunID {
    /// The first 16 hex digits of the SHA-256 of the model's name and each file's absolute path, size and
    /// modification time (not of the files' bytes, which would mean reading them twice).
    public static func derived(model: String, files: [String]) -> String {
        var text = model
        for file in files {
            let url = URL(fileURLWithPath: file).standardizedFileURL
            let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
            let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            text += "\u{0}\(url.path)\u{0}\(size)\u{0}\(modified)"
        }
        return String(SHA256.hex(Array(text.utf8)).prefix(16))
    }
}
