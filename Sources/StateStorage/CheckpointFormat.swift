import Compression
import ModelMonitoring

/// The checkpoint file's layout (docs/storage.md):
///
/// ```
/// "MLXSTATE"                      8 bytes, the magic
/// format version                  4 bytes, little-endian (``currentVersion``)
/// header                          a section: exporter version (string), created (Unix time, Double), models (count)
/// per model                       name (string), state fingerprint (string), fingerprints (a section, from format
///                                 2 on: ``ModelMonitoring/StateFingerprints/writeParts(into:)``), state (a section)
/// CRC-32                          4 bytes, little-endian, of every byte before it
/// ```
/// Strings and sections are length-prefixed (``StateWriter``); a model's state is what
/// ``MonitoredModel/saveState(into:)`` wrote.
public enum CheckpointFormat {
    /// The magic at the start of every checkpoint.
    public static let magic: [UInt8] = Array("MLXSTATE".utf8)
    /// The format version this exporter writes; it reads it and format 1 (without the layout and collector
    /// fingerprints).
    public static let currentVersion: UInt32 = 2

    /// The header of a checkpoint.
    public struct Header: Sendable, Equatable {
        /// The format version.
        public var formatVersion: UInt32
        /// The version of the exporter that wrote it.
        public var exporterVersion: String
        /// When it was written (Unix time).
        public var created: Double
        /// How many models it holds.
        public var models: Int
    }

    /// One model's saved state, not yet interpreted.
    public struct ModelEntry: Sendable {
        /// The model's name.
        public var name: String
        /// The fingerprints of the configuration it was saved with (``ModelMonitoring/StateFingerprints``).
        public var fingerprints: StateFingerprints
        /// The model's state.
        public var state: StateReader
    }

    /// Why a file is not a checkpoint this exporter can read (`mlops_storage_restore_failures_total{reason}`).
    public enum ReadError: Error, Sendable, Equatable, CustomStringConvertible {
        /// Not a checkpoint (wrong magic, or too short to hold one).
        case foreign
        /// Written by a newer format version.
        case newerVersion(UInt32)
        /// Cut short: a length runs past the end.
        case truncated
        /// The checksum does not match, or the structure is broken.
        case corrupt(String)

        /// The `reason` label value.
        public var reason: RestoreFailureReason {
            switch self {
            case .foreign: .foreign
            case .newerVersion: .newerVersion
            case .truncated: .truncated
            case .corrupt: .corrupt
            }
        }

        /// One line.
        public var description: String {
            switch self {
            case .foreign: "not an mlops-exporter checkpoint (no MLXSTATE header)"
            case .newerVersion(let v):
                "written in checkpoint format \(v), newer than this exporter's \(CheckpointFormat.currentVersion)"
            case .truncated: "truncated (a length runs past the end of the file)"
            case .corrupt(let why): "corrupt (\(why))"
            }
        }
    }

    /// Encodes a checkpoint of `models` (each writes its state through `save`) into `w`, checksum included.
    public static func encode(
        exporterVersion: String, created: Double, models: [(name: String, fingerprints: StateFingerprints)],
        into w: inout StateWriter, save: (Int, inout StateWriter) -> Void
    ) {
        for b in magic { w.byte(b) }
        for i in 0..<4 { w.byte(UInt8(truncatingIfNeeded: currentVersion >> (8 * UInt32(i)))) }
        w.section { h in
            h.string(exporterVersion)
            h.double(created)
            h.count(models.count)
        }
        for (i, model) in models.enumerated() {
            w.string(model.name)
            w.string(model.fingerprints.state)
            w.section { model.fingerprints.writeParts(into: &$0) }
            w.section { save(i, &$0) }
        }
        let crc = w.bytes.withUnsafeBytes { CRC32.checksum($0) }
        for i in 0..<4 { w.byte(UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i)))) }
    }

    /// Checks and splits a checkpoint: its header and one entry per model.
    public static func decode(_ bytes: [UInt8]) throws(ReadError) -> (Header, [ModelEntry]) {
        // Empty, or the magic's first bytes and no more: what a lost or cut write leaves, not another program's file.
        let prefix = Swift.min(bytes.count, magic.count)
        guard bytes[0..<prefix].elementsEqual(magic[0..<prefix]) else { throw .foreign }
        guard bytes.count >= magic.count + 4 else { throw .truncated }
        var version: UInt32 = 0
        for i in 0..<4 { version |= UInt32(bytes[magic.count + i]) << (8 * UInt32(i)) }
        guard version <= currentVersion else { throw .newerVersion(version) }
        guard version >= 1 else { throw .corrupt("format version \(version)") }
        guard bytes.count >= magic.count + 8 else { throw .truncated }
        let body = bytes.count - 4
        var stored: UInt32 = 0
        for i in 0..<4 { stored |= UInt32(bytes[body + i]) << (8 * UInt32(i)) }
        let computed = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<body])) }
        let parsed: Result<(Header, [ModelEntry]), StateError>
        do throws(StateError) {
            var r = StateReader(bytes, range: (magic.count + 4)..<body)
            var h = try r.section()
            let header = Header(
                formatVersion: version, exporterVersion: try h.string(max: 256), created: try h.double(),
                models: try h.count(max: 1 << 20))
            // Every model's sections know when they were written: their windows move back by one difference.
            r.savedAt = header.created.isFinite ? header.created : nil
            var entries: [ModelEntry] = []
            for _ in 0..<header.models {
                let name = try r.string(max: 4096)
                var fingerprints = StateFingerprints(state: try r.string(max: 256))
                if version >= 2 {
                    var parts = try r.section()
                    try fingerprints.readParts(from: &parts)
                }
                entries.append(ModelEntry(name: name, fingerprints: fingerprints, state: try r.section()))
            }
            guard r.isAtEnd else { throw StateError.malformed("bytes after the last model") }
            parsed = .success((header, entries))
        } catch {
            parsed = .failure(error)
        }
        switch parsed {
        case .success(let decoded) where stored == computed: return decoded
        // A file cut short: a length runs past the end (and its last four bytes are no checksum). With a checksum that
        // holds, the file is whole and its structure broken.
        case .failure(.truncated) where stored != computed: throw .truncated
        case .failure(let error) where stored == computed: throw .corrupt("\(error)")
        default: throw .corrupt("checksum mismatch")
        }
    }
}
