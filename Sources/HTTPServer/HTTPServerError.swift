import CSystemShims

/// Why the server could not start (or was used out of order). `description` is a complete sentence
/// suitable for a log line or an exit message, naming the address and the errno text when relevant.
public struct HTTPServerError: Error, Sendable, CustomStringConvertible {
    /// The category of failure.
    public enum Kind: Sendable, Hashable {
        /// A listen address could not be parsed.
        case invalidAddress
        /// A configuration value is out of range.
        case invalidConfiguration
        /// `socket`, `setsockopt`, `bind` or `listen` failed for a listen address.
        case bindFailed
        /// Creating the event loop's epoll or eventfd descriptors, or its thread, failed.
        case eventLoopFailed
        /// `start()` was called twice, or after `shutdown`.
        case invalidState
    }

    /// The category of failure.
    public var kind: Kind
    /// Human-readable details.
    public var message: String
    /// The `errno` of the failing system call, when there was one.
    public var errno: Int32?

    /// An error of `kind` saying `message` (and `errno`'s text): for a caller that wraps the server and reports its
    /// own misuse the same way.
    public init(_ kind: Kind, _ message: String, errno: Int32? = nil) {
        self.kind = kind
        self.message = message
        self.errno = errno
    }

    /// The message, followed by the errno text and number when there is one.
    public var description: String {
        guard let errno else { return message }
        return "\(message): \(Syscall.describe(errno)) (errno \(errno))"
    }
}
