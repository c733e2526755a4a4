import CCrypt
import COpenSSL
import ExporterConfig
import Foundation
import Synchronization

/// Checks `Authorization: Basic` credentials against the web configuration's bcrypt hashes.
///
/// bcrypt is slow on purpose (tens of milliseconds at cost 10), so, as exporter-toolkit does, a
/// successful check is remembered: the cache holds SHA-256 digests of user, hash and password (never
/// the password itself), so a scraper presenting the same credentials costs one digest, not a bcrypt
/// run. Failures are not remembered: a negative cache would answer a repeated wrong guess faster than a
/// fresh one, and bounding bcrypt work is the ``WebHandler``'s job (a bounded pool), not the cache's.
///
/// Contract:
/// - ``screen(authorization:)`` is cheap (base64, one SHA-256, one lock on the cache) and never runs
///   bcrypt; ``verify(_:)`` runs bcrypt and belongs on a worker thread.
/// - Credentials whose user or password contains NUL are refused by ``screen(authorization:)`` (and by
///   ``verify(password:hash:)``): `crypt_rn` takes C strings, so `secret\0junk` would be hashed as `secret`.
/// - An unknown user is checked against ``dummyHash``, a hash at the highest cost among the configured
///   users, so that a wrong user name takes as long as a wrong password (exactly so when all users have one
///   cost; a user with a lower cost than another answers faster than an unknown name).
/// - Hashes are verified by the system's libxcrypt (`crypt_rn`), which understands `$2y$`, `$2b$` and `$2a$`.
final class BasicAuth: Sendable {
    /// The realm named in `WWW-Authenticate`.
    static let realm = "mlops-exporter"
    /// Most cached successes; the cache is emptied when full.
    private static let cacheLimit = 1024
    /// The cost of the dummy hash when no configured hash names one.
    static let defaultCost = 10

    /// Credentials that passed the cheap checks and need a bcrypt run.
    struct Pending: Sendable {
        /// The password's bytes, as sent (bcrypt compares bytes, as exporter-toolkit's Go does: not only UTF-8).
        let password: [UInt8]
        /// The user's hash, or the dummy hash for an unknown user.
        let hash: String
        /// The cache key of a known user's credentials; nil for an unknown user.
        let cacheKey: [UInt8]?
    }

    /// What the cheap checks say about an `Authorization` value.
    enum Screening: Sendable {
        /// No `Basic` credentials (no header, another scheme, or not base64 of `user:password`).
        case missing
        /// Refused without hashing (a NUL in the user or the password).
        case invalid
        /// Known good: in the success cache.
        case cached
        /// Needs ``BasicAuth/verify(_:)``.
        case uncached(Pending)
    }

    private let users: [String: String]
    private let verified = Mutex<Set<[UInt8]>>([])
    /// A bcrypt hash nobody knows the password of, at the highest configured cost: unknown users are checked
    /// against it.
    let dummyHash: String

    /// Whether any user is configured (otherwise every request is let through).
    var isEnabled: Bool { !users.isEmpty }

    /// Creates a checker for `users` (user name to bcrypt hash), keeping the successes `previous` (the checker of the
    /// configuration before a reload) remembered: a key digests the user's hash too, so one can only be found again
    /// for a user whose hash is still the same. Before, every reload (a certificate rotation's SIGHUP) emptied the
    /// cache, and the legitimate scraper waited in the bcrypt queue behind a flood of wrong passwords.
    init(users: [String: String], carrying previous: BasicAuth? = nil) {
        self.users = users
        dummyHash = Self.makeDummyHash(cost: users.values.compactMap(Self.cost).max() ?? Self.defaultCost)
        if let previous { verified.withLock { $0 = previous.verified.withLock { $0 } } }
    }

    /// Sorts `authorization` (the header value) out without running bcrypt.
    func screen(authorization: String?) -> Screening {
        guard let (name, password) = Self.credentials(authorization) else { return .missing }
        guard !name.contains(0), !password.contains(0) else { return .invalid }
        // A user name that is no UTF-8 names no configured user (checked against the dummy hash, as an unknown name).
        guard let user = String(validating: name, as: UTF8.self), let hash = users[user] else {
            return .uncached(Pending(password: password, hash: dummyHash, cacheKey: nil))
        }
        let key = Self.cacheKey(user: user, password: password, hash: hash)
        if verified.withLock({ $0.contains(key) }) { return .cached }
        return .uncached(Pending(password: password, hash: hash, cacheKey: key))
    }

    /// Runs bcrypt for credentials ``screen(authorization:)`` could not decide, and caches a success. Slow:
    /// call it on a worker thread.
    func verify(_ pending: Pending) -> Bool {
        let matches = Self.verify(password: pending.password, hash: pending.hash)
        guard matches, let key = pending.cacheKey else { return false }
        verified.withLock { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll() }
            cache.insert(key)
        }
        return true
    }

    /// Whether `authorization` holds valid credentials: ``screen(authorization:)`` then, when needed,
    /// ``verify(_:)`` on the calling thread. May run bcrypt: call it off the event loop.
    func check(authorization: String?) -> Bool {
        switch screen(authorization: authorization) {
        case .cached: true
        case .missing, .invalid: false
        case .uncached(let pending): verify(pending)
        }
    }

    /// Whether `authorization` is known good without running bcrypt (cheap: one SHA-256).
    func isCached(authorization: String?) -> Bool {
        if case .cached = screen(authorization: authorization) { return true }
        return false
    }

    /// The user name and password bytes of a `Basic` authorization value, as sent: split at the first colon, not
    /// decoded as text (a password in Latin-1 is its bytes, as Go's `r.BasicAuth` gives them; a byte-order mark is
    /// part of the name). Before, credentials that were not UTF-8 were taken for none (`missing`), and a leading
    /// byte-order mark was dropped from the name.
    static func credentials(_ authorization: String?) -> (user: [UInt8], password: [UInt8])? {
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces))
        else { return nil }
        let bytes = [UInt8](data)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        return (Array(bytes[..<colon]), Array(bytes[(colon + 1)...]))
    }

    /// ``verify(password:hash:)-([UInt8],_)`` of a text password's UTF-8 bytes.
    static func verify(password: String, hash: String) -> Bool { verify(password: Array(password.utf8), hash: hash) }

    /// Whether `password` matches the modular-crypt `hash` (bcrypt here), compared in constant time. A
    /// password containing NUL never matches (C strings end there).
    static func verify(password: [UInt8], hash: String) -> Bool {
        guard !password.contains(0) else { return false }
        let phrase = password.map { CChar(bitPattern: $0) } + [0]
        var data = crypt_data()
        let size = Int32(MemoryLayout<crypt_data>.size)
        let output: String? = withUnsafeMutableBytes(of: &data) { raw in
            guard let result = crypt_rn(phrase, hash, raw.baseAddress, size) else { return nil }
            return String(cString: result)
        }
        guard let output else { return false }
        let left = Array(output.utf8)
        let right = Array(hash.utf8)
        guard left.count == right.count else { return false }
        // A bcrypt hash is compared by its 31 hash characters only, as Go's bcrypt does: its salt's last character
        // carries 2 bits and the rest are ignored, so a salt written with others set (not as bcrypt writes it)
        // names the same salt, and libxcrypt's output spells it canonically (the right password was refused).
        let start = Self.cost(hash) != nil && left.count == 60 ? 29 : 0
        var difference: UInt8 = 0
        for index in start..<left.count { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    /// The cost of a `$2?$NN$…` bcrypt hash, or nil.
    static func cost(_ hash: String) -> Int? {
        let bytes = Array(hash.utf8)
        guard bytes.count >= 7, bytes[0] == UInt8(ascii: "$"), bytes[3] == UInt8(ascii: "$"),
            bytes[6] == UInt8(ascii: "$")
        else { return nil }
        guard bytes[4] >= 0x30, bytes[4] <= 0x39, bytes[5] >= 0x30, bytes[5] <= 0x39 else { return nil }
        return Int(bytes[4] - 0x30) * 10 + Int(bytes[5] - 0x30)
    }

    /// A well-formed bcrypt hash at `cost` whose password nobody knows: a fresh salt from `crypt_gensalt_rn`
    /// (random bytes from the system) followed by 31 random characters of bcrypt's alphabet. bcrypt reads
    /// only the salt of the hash it checks against, so checking a password against this one costs exactly
    /// what checking it against a real hash of that cost does, and building it costs no bcrypt run (a cost-31
    /// hash would take days to make by hashing).
    static func makeDummyHash(cost: Int) -> String {
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        let prefix =
            crypt_gensalt_rn("$2y$", UInt(cost), nil, 0, &setting, Int32(setting.count)) != nil
            ? String(decoding: setting.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            : "$2y$\(cost < 10 ? "0" : "")\(cost)$ds77F71r3b2mKje32/hC3."  // no entropy source: a fixed salt
        let alphabet = Array("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var tail = (0..<30).map { _ in alphabet[Int.random(in: 0..<64)] }
        // 23 bytes are 184 bits: the 31st character carries 4 of them, its low 2 bits are zero.
        tail.append(Array(".Oeu".utf8)[Int.random(in: 0..<4)])
        return prefix + String(decoding: tail, as: UTF8.self)
    }

    private static func cacheKey(user: String, password: [UInt8], hash: String) -> [UInt8] {
        var material = Array(user.utf8)
        material.append(0)
        material.append(contentsOf: hash.utf8)
        material.append(0)
        material.append(contentsOf: password)
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        _ = SHA256(material, material.count, &digest)
        return digest
    }
}

extension Exporter {
    /// A user of ``Configuration/web``'s `basicAuthUsers` whose hash cannot be used
    /// (`WebConfigLoader.basicAuthHashProblem`): a configuration built in code is held to the file's checks.
    public struct InvalidBasicAuthUser: Error, Sendable, CustomStringConvertible {
        /// The user name.
        public let user: String
        /// What is wrong with its hash.
        public let problem: String
        /// The user, what is wrong, and where the configuration came from.
        public var description: String { "basic auth user \"\(user)\": \(problem) (Exporter.Configuration.web)" }
    }

    /// Throws ``InvalidBasicAuthUser`` for the first user (by name) whose hash cannot be used: unchecked, a
    /// `$2y$31$` hash made every unknown user's check run for days.
    static func checkBasicAuthUsers(_ users: [String: String]) throws(InvalidBasicAuthUser) {
        for (user, hash) in users.sorted(by: { $0.key < $1.key }) {
            if let problem = WebConfigLoader.basicAuthHashProblem(hash) {
                throw InvalidBasicAuthUser(user: user, problem: problem)
            }
        }
    }
}
