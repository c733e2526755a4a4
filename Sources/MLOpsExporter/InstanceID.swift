import Foundation
import ModelMonitoring

#if canImport(Glibc)
    import Glibc
#endif

extension Exporter {
    /// This host's name (`gethostname`), the default ``Configuration/instanceID``; `localhost` when it cannot be
    /// read.
    public static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }()

    /// An ``Configuration/instanceID`` that is not 1 to 64 characters of `[A-Za-z0-9._-]`.
    public struct InvalidInstanceID: Error, Sendable, CustomStringConvertible {
        /// The id given.
        public let instanceID: String
        /// What is wrong with it, and what to do.
        public var description: String {
            (EventID.instanceProblem(instanceID) ?? "instance id \"\(instanceID)\" is invalid")
                + "; set --instance.id (Exporter.Configuration.instanceID) to 1 to \(EventID.maximumInstanceLength) characters of [A-Za-z0-9._-]"
        }
    }

    /// Throws ``InvalidInstanceID`` unless `instanceID` is valid (``EventID/isValidInstance(_:)``).
    static func checkInstanceID(_ instanceID: String) throws(InvalidInstanceID) {
        guard EventID.isValidInstance(instanceID) else { throw InvalidInstanceID(instanceID: instanceID) }
    }
}
