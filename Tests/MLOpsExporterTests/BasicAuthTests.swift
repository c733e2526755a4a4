import ExporterConfig
import Exposition
import Foundation
import Logging
import Testing

@testable import MLOpsExporter

@Suite("Basic authentication")
struct BasicAuthTests {
    /// bcrypt (cost 4, `$2y$`) of "secret", made by the system's crypt.
    static let hash = "$2y$04$Q.iuDQ/WjcjA1gUDRIeH9OYhdWJx/vtjFyc0ypSQiWk58jsVizjjK"

    static func header(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    @Test func bcryptHashesAreVerifiedByTheSystemCrypt() {
        #expect(BasicAuth.verify(password: "secret", hash: Self.hash))
        #expect(!BasicAuth.verify(password: "Secret", hash: Self.hash))
        #expect(!BasicAuth.verify(password: "secret", hash: "$2y$04$not-a-valid-hash"))
        // $2b$ is the same algorithm under another prefix.
        #expect(BasicAuth.verify(password: "secret", hash: "$2b$" + Self.hash.dropFirst(4)))
        // The salt's last character carries 2 bits: `P` names the salt `O` does (the hash Go's bcrypt accepts;
        // libxcrypt's output spells the salt with `O`, and the right password was refused).
        let salt = Array(Self.hash)
        #expect(salt[28] == "O")
        let otherSpelling = String(salt[..<28]) + "P" + String(salt[29...])
        #expect(BasicAuth.verify(password: "secret", hash: otherSpelling))
        #expect(!BasicAuth.verify(password: "Secret", hash: otherSpelling))
    }

    @Test func successesAreCachedFailuresAreNot() {
        let auth = BasicAuth(users: ["prom": Self.hash])
        let good = Self.header("prom", "secret")
        #expect(auth.isEnabled)
        #expect(!auth.isCached(authorization: good))
        #expect(auth.check(authorization: good))
        #expect(auth.isCached(authorization: good))
        let bad = Self.header("prom", "wrong")
        #expect(!auth.check(authorization: bad))
        #expect(!auth.isCached(authorization: bad))
        #expect(!auth.check(authorization: Self.header("nobody", "secret")))
        #expect(!auth.check(authorization: nil))
        #expect(!auth.check(authorization: "Bearer abc"))
    }

    /// A reload of the web configuration keeps the successes of users whose hash did not change (a certificate
    /// rotation's SIGHUP emptied the cache, and the scraper then waited in the bcrypt queue behind a flood of wrong
    /// passwords: hardening review); a changed hash is checked afresh.
    @Test func aReloadKeepsTheCachedSuccessesOfUnchangedUsers() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("web-\(UUID().uuidString).yml")
        defer { try? FileManager.default.removeItem(at: file) }
        try "basic_auth_users:\n  prom: \(Self.hash)\n  other: \(Self.hash)\n".write(
            to: file, atomically: true, encoding: .utf8)
        let state = try WebConfigState(
            path: file.path, initial: try WebConfigLoader.load(file: file.path), registry: Registry(),
            logger: Logger(label: "test"))
        let good = Self.header("prom", "secret")
        #expect(state.snapshot.auth.check(authorization: good))
        #expect(state.snapshot.auth.check(authorization: Self.header("other", "secret")))
        #expect(state.reload(trigger: "test") == nil)
        #expect(state.snapshot.auth.isCached(authorization: good))
        // `other` gets a new hash (of the same password, another salt): its success is not found again.
        let rehashed = "$2y$04$" + String(repeating: "A", count: 22) + String(Self.hash.suffix(31))
        try "basic_auth_users:\n  prom: \(Self.hash)\n  other: \(rehashed)\n".write(
            to: file, atomically: true, encoding: .utf8)
        #expect(state.reload(trigger: "test") == nil)
        #expect(state.snapshot.auth.isCached(authorization: good))
        #expect(!state.snapshot.auth.isCached(authorization: Self.header("other", "secret")))
    }

    /// A reload that would switch TLS on (it takes a restart) keeps recording what is in force: the next reload
    /// (the file watcher's, seconds later) compared with the file's TLS and turned TLS on for a listener serving plain
    /// HTTP (scrapes got 400). The rest of the file (users) applies at once, as before.
    @Test func aReloadThatSwitchesTLSOnKeepsTheStateInForce() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // Files the loader takes as a certificate and a key (it reads their PEM labels); no server is attached, so
        // nothing loads them.
        for (name, label) in [("c.pem", "CERTIFICATE"), ("k.pem", "EC PRIVATE KEY")] {
            try "-----BEGIN \(label)-----\nAAAA\n-----END \(label)-----\n".write(
                to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let file = folder.appendingPathComponent("web.yml")
        try "basic_auth_users:\n  prom: \(Self.hash)\n".write(to: file, atomically: true, encoding: .utf8)
        let state = try WebConfigState(
            path: file.path, initial: try WebConfigLoader.load(file: file.path), registry: Registry(),
            logger: Logger(label: "test"))
        try
            "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\nbasic_auth_users:\n  prom: \(Self.hash)\n  other: \(Self.hash)\n"
            .write(to: file, atomically: true, encoding: .utf8)
        for _ in 0..<2 {  // the signal's reload, then the watcher's
            #expect(state.reload(trigger: "test") == nil)
            #expect(state.snapshot.configuration.tls == nil)
            #expect(state.snapshot.configuration.basicAuthUsers.count == 2)
        }
    }

    /// A reload by SIGHUP takes the files as it read them: the file watcher's next look finds no change. Before, every
    /// SIGHUP after an edit was followed by the watcher's reload of the same files, and a rejected file counted a
    /// second failure (`mlops_exporter_web_config_reloads_total`).
    @Test func theWatcherDoesNotRepeatASignalledReload() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("web-\(UUID().uuidString).yml")
        defer { try? FileManager.default.removeItem(at: file) }
        try "basic_auth_users:\n  prom: \(Self.hash)\n".write(to: file, atomically: true, encoding: .utf8)
        let state = try WebConfigState(
            path: file.path, initial: try WebConfigLoader.load(file: file.path), registry: Registry(),
            logger: Logger(label: "test"))
        state.watchFiles()
        defer { state.stopWatching() }
        try "basic_auth_users: [\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(state.reload(trigger: "SIGHUP") != nil)
        #expect(!state.filesChanged())
        try "basic_auth_users:\n  prom: \(Self.hash)\n  other: \(Self.hash)\n".write(
            to: file, atomically: true, encoding: .utf8)
        #expect(state.reload(trigger: "SIGHUP") == nil)
        #expect(!state.filesChanged())
        #expect(state.snapshot.configuration.basicAuthUsers.count == 2)
        // A change after the reload is still seen.
        try "basic_auth_users:\n  prom: \(Self.hash)\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(state.filesChanged())
    }

    @Test func credentialsAreParsedFromTheHeader() {
        #expect(BasicAuth.credentials(Self.header("a", "b:c"))! == (Array("a".utf8), Array("b:c".utf8)))
        #expect(BasicAuth.credentials("basic " + Data("u:".utf8).base64EncodedString())! == (Array("u".utf8), []))
        #expect(BasicAuth.credentials("Basic !!!") == nil)
        #expect(BasicAuth.credentials("Basic " + Data("nocolon".utf8).base64EncodedString()) == nil)
        #expect(!BasicAuth(users: [:]).isEnabled)
    }

    /// Credentials are bytes, as exporter-toolkit's Go reads them: a password that is not UTF-8 (Latin-1 `caf\xe9`)
    /// matches the hash of its bytes, and a byte-order mark before a user name is part of the name. Before, such a
    /// password was taken for no credentials (`missing`) and the mark was dropped (hardening review).
    @Test func credentialsAreComparedAsBytes() {
        // bcrypt (cost 4) of the bytes 63 61 66 e9, by the system's libcrypt.
        let latin1 = "$2y$04$abcdefghijklmnopqrstuuIVcV7r.BF.Y3HDoPGvCPCm/5xORSH8a"
        let auth = BasicAuth(users: ["latin": latin1, "prom": Self.hash])
        func header(_ credentials: [UInt8]) -> String { "Basic " + Data(credentials).base64EncodedString() }
        #expect(auth.check(authorization: header(Array("latin:caf".utf8) + [0xE9])))
        #expect(auth.isCached(authorization: header(Array("latin:caf".utf8) + [0xE9])))
        #expect(!auth.check(authorization: header(Array("latin:caf".utf8) + [0xC3, 0xA9])))  // é in UTF-8: other bytes
        if case .uncached = auth.screen(authorization: header(Array("latin:".utf8) + [0xFF, 0xFE])) {
        } else {
            Issue.record("a password that is not UTF-8 was not taken for credentials")
        }
        #expect(!auth.check(authorization: header([0xEF, 0xBB, 0xBF] + Array("prom:secret".utf8))))
        #expect(auth.check(authorization: Self.header("prom", "secret")))
    }

    @Test func aNulInTheUserOrPasswordIsRefusedBeforeHashing() {
        let auth = BasicAuth(users: ["prom": Self.hash])
        // crypt_rn takes a C string: "secret\0junk" would be hashed as "secret".
        #expect(!auth.check(authorization: Self.header("prom", "secret\0junk")))
        #expect(!auth.check(authorization: Self.header("prom\0x", "secret")))
        #expect(!BasicAuth.verify(password: "secret\0junk", hash: Self.hash))
        #expect(auth.check(authorization: Self.header("prom", "secret")))
        // Once the real password is cached, the NUL variant is still refused.
        #expect(!auth.check(authorization: Self.header("prom", "secret\0junk")))
    }

    /// Median seconds of `runs` calls of `body`.
    static func medianSeconds(runs: Int, _ body: () -> Void) -> Double {
        var samples: [Double] = []
        for _ in 0..<runs {
            let start = ContinuousClock.now
            body()
            samples.append((ContinuousClock.now - start).seconds)
        }
        return samples.sorted()[runs / 2]
    }

    @Test func anUnknownUserCostsAsMuchAsAWrongPassword() {
        // Only a cost-4 user: an unknown user must not be checked against a costlier hash (it was cost 10,
        // ~64 times longer, which told an attacker which user names exist).
        let auth = BasicAuth(users: ["prom": Self.hash])
        let wrongPassword = Self.header("prom", "wrong")
        let unknownUser = Self.header("nobody", "wrong")
        _ = auth.check(authorization: wrongPassword)
        _ = auth.check(authorization: unknownUser)
        let known = Self.medianSeconds(runs: 15) { _ = auth.check(authorization: wrongPassword) }
        let unknown = Self.medianSeconds(runs: 15) { _ = auth.check(authorization: unknownUser) }
        let ratio = unknown / known
        #expect(ratio > 0.5 && ratio < 2, "unknown user \(unknown) s, wrong password \(known) s")
    }

    @Test func theDummyHashHasTheHighestConfiguredCost() {
        let cost12 = "$2y$12$" + String(Self.hash.dropFirst(7))
        #expect(BasicAuth(users: ["a": Self.hash]).dummyHash.hasPrefix("$2y$04$"))
        #expect(BasicAuth(users: ["a": Self.hash, "b": cost12]).dummyHash.hasPrefix("$2y$12$"))
        let dummy = BasicAuth(users: ["a": Self.hash]).dummyHash
        #expect(dummy.utf8.count == 60)
        #expect(dummy != BasicAuth(users: ["a": Self.hash]).dummyHash)  // a fresh salt each time
        #expect(!BasicAuth.verify(password: "", hash: dummy))
    }
}
