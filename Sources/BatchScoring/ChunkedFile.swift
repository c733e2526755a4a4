import Foundation
import Profiling

/// Reads a file in pieces of about `chunkSize` bytes, so that a batch's memory does not grow with its input.
struct ChunkedFile {
    let path: String
    private let handle: FileHandle
    let chunkSize: Int
    private(set) var atEnd = false
    /// Whether nothing was read yet (the first piece loses a UTF-8 byte-order mark).
    private var atStart = true
    /// The longest line (NDJSON) or record (CSV) a reader holds whole while it reads it (``Profiler/maxRecordBytes``,
    /// `profile`'s too).
    static let maxLineBytes = Profiler.maxRecordBytes

    /// Opens `path` (a ``ProfilingError`` naming it when it is missing, a directory or unreadable).
    init(path: String, chunkSize: Int = 4 << 20) throws(ProfilingError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ProfilingError(file: path, message: "cannot read: no such file")
        }
        guard !isDirectory.boolValue else { throw ProfilingError(file: path, message: "cannot read: is a directory") }
        // A batch reads its input more than once (to size the label join, to tell the NDJSON shape): a pipe, a FIFO
        // or a device would give each reader another part of the stream (or block in open); refused before opening.
        try Self.requireRegular(path)
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ProfilingError(file: path, message: "cannot read: permission denied")
        }
        self.path = path
        self.handle = handle
        self.chunkSize = chunkSize
    }

    /// Appends the next piece of the file to `buffer`; sets ``atEnd`` (and appends nothing) at the end. A UTF-8
    /// byte-order mark that starts the file is left out, for every reader (profile skips it: batch read an NDJSON file
    /// with one as another shape, refused at its second line).
    mutating func read(appendingTo buffer: inout [UInt8]) throws(ProfilingError) {
        do {
            if atStart {
                // The three bytes a mark would take are read on their own first, whatever the piece size (a first
                // piece of one or two bytes would not show it): they are the first piece unless they are the mark.
                atStart = false
                let head = try handle.read(upToCount: 3)
                if let head, head.starts(with: [0x1F, 0x8B]) {
                    // Read as text it failed at its first bytes as something else ("a quote inside an unquoted
                    // field", "invalid UTF-8"): said as what it is.
                    throw ProfilingError(file: path, message: "gzip-compressed: decompress it first (gunzip)")
                }
                if let head, !head.isEmpty, !head.elementsEqual([0xEF, 0xBB, 0xBF]) {
                    buffer.append(contentsOf: head)
                    return
                }
            }
            guard let data = try handle.read(upToCount: chunkSize), !data.isEmpty else {
                atEnd = true
                return
            }
            buffer.append(contentsOf: data)
        } catch let error as ProfilingError {
            throw error
        } catch {
            throw ProfilingError(file: path, message: "cannot read: \(error.localizedDescription)")
        }
    }

    /// Closes the file.
    func close() { try? handle.close() }
    /// Throws unless `path`, when it exists, is a regular file: a batch reads its input more than once, so a pipe, a
    /// FIFO or a device would give each reader another part of the stream (or block in open).
    static func requireRegular(_ path: String) throws(ProfilingError) {
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & S_IFMT != S_IFREG, info.st_mode & S_IFMT != S_IFDIR {
            throw ProfilingError(
                file: path,
                message: "cannot read: not a regular file (a pipe, FIFO or device): write it to a file first")
        }
    }

}

/// Where a byte offset lies in a text: its 1-based line and column (in characters).
enum TextPosition {
    /// The column (from 1, in UTF-8 characters) of byte `offset` of `bytes`, whose line starts at `lineStart`.
    static func column(_ bytes: UnsafeBufferPointer<UInt8>, lineStart: Int, offset: Int) -> Int {
        var column = 1
        var i = lineStart
        while i < offset && i < bytes.count {
            if bytes[i] & 0xC0 != 0x80 { column += 1 }
            i += 1
        }
        return column
    }
}
