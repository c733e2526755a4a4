import CCrypt
import COpenSSL
import Foundation
import Synchronization

/// Checks `Authorization: Basic` credentials against the web configuration's bcrypt hashes.
///
/// bcrypt is slow on purpose (tens of milliseconds at cost 10), so, as exporter-toolkit does, a
/// successful check is remembered: the cache holds SHA-256 digests of user, hash and password (never
/// the password itself), so a scraper presenting the same credentials costs one digest, not a bcrypt
/// run. Unknown users are checked against a dummy hash, so that the answer takes as long as for a
/// known user with a wrong password. Hashes are verified by the system's libxcrypt (`crypt_rn`), which
/// understands `$2y$`, `$2b$` and `$2a$`.
final class BasicAuth: Sendable {
    /// The realm named in `WWW-Authenticate`.
    static let realm = "mlops-exporter"
    private static let cacheLimit = 1024
    /// A valid bcrypt hash of a random string, for timing-equal failures on unknown users.
    private static let dummyHash = "$2y$10$ds77F71r3b2mKje32/hC3.gbXxcieipg.XUmM1S2ihhU6FA0WlQ5S"

    private let users: [String: String]
    private let verified = Mutex<Set<[UInt8]>>([])

    /// Whether any user is configured (otherwise every request is let through).
    var isEnabled: Bool { !users.isEmpty }

    /// Creates a checker for `users` (user name to bcrypt hash).
    init(users: [String: String]) {
        self.users = users
    }

    /// Whether `authorization` (the header value) holds valid credentials. May run bcrypt: call it off
    /// the event loop unless ``isCached(authorization:)`` said yes.
    func check(authorization: String?) -> Bool {
        guard let (user, password) = Self.credentials(authorization) else { return false }
        guard let hash = users[user] else {
            _ = Self.verify(password: password, hash: Self.dummyHash)
            return false
        }
        let key = Self.cacheKey(user: user, password: password, hash: hash)
        if verified.withLock({ $0.contains(key) }) { return true }
        guard Self.verify(password: password, hash: hash) else { return false }
        verified.withLock { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll() }
            cache.insert(key)
        }
        return true
    }

    /// Whether `authorization` is known good without running bcrypt (cheap: one SHA-256).
    func isCached(authorization: String?) -> Bool {
        guard let (user, password) = Self.credentials(authorization), let hash = users[user] else { return false }
        let key = Self.cacheKey(user: user, password: password, hash: hash)
        return verified.withLock { $0.contains(key) }
    }

    /// The user name and password of a `Basic` authorization value.
    static func credentials(_ authorization: String?) -> (user: String, password: String)? {
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    /// Whether `password` matches the modular-crypt `hash` (bcrypt here), compared in constant time.
    static func verify(password: String, hash: String) -> Bool {
        var data = crypt_data()
        let size = Int32(MemoryLayout<crypt_data>.size)
        let output: String? = withUnsafeMutableBytes(of: &data) { raw in
            guard let result = crypt_rn(password, hash, raw.baseAddress, size) else { return nil }
            return String(cString: result)
        }
        guard let output else { return false }
        let left = Array(output.utf8)
        let right = Array(hash.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    private static func cacheKey(user: String, password: String, hash: String) -> [UInt8] {
        var material = Array(user.utf8)
        material.append(0)
        material.append(contentsOf: hash.utf8)
        material.append(0)
        material.append(contentsOf: password.utf8)
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        _ = SHA256(material, material.count, &digest)
        return digest
    }
}
