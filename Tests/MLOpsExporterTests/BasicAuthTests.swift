import Foundation
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

    @Test func credentialsAreParsedFromTheHeader() {
        #expect(BasicAuth.credentials(Self.header("a", "b:c"))! == ("a", "b:c"))
        #expect(BasicAuth.credentials("basic " + Data("u:".utf8).base64EncodedString())! == ("u", ""))
        #expect(BasicAuth.credentials("Basic !!!") == nil)
        #expect(BasicAuth.credentials("Basic " + Data("nocolon".utf8).base64EncodedString()) == nil)
        #expect(!BasicAuth(users: [:]).isEnabled)
    }
}
