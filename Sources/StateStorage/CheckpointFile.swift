import Compression

#if canImport(Glibc)
    import Glibc
    private let systemRead = Glibc.read
    private let systemWrite = Glibc.write
#elseif canImport(Darwin)
    import Darwin
    private let systemRead = Darwin.read
    private let systemWrite = Darwin.write
#endif

/// The files of a storage directory: `checkpoint` (the last complete checkpoint), `checkpoint.tmp` (one being
/// written), `checkpoint.corrupt-<UTC time>` (unreadable checkpoints set aside, never overwritten), `lock` (held by
/// the process using the directory, with its id in it), `running` (made when a process takes the directory, removed
/// when it stops cleanly after its last checkpoint: found at start, the process before it did not stop cleanly).
///
/// A checkpoint is written atomically: to `checkpoint.tmp` (created anew with mode 0600, never through a link or into
/// something already there), `fsync`, renamed over `checkpoint`, then the directory is `fsync`ed; a crash at any
/// point leaves either the previous checkpoint or the new one, whole. Only regular files are read: a FIFO, a device
/// or a link at `lock` or `checkpoint.tmp` is never opened through (a FIFO there hung the exporter past SIGTERM, a
/// link had another file truncated).
public struct CheckpointFile: Sendable {
    /// The storage directory.
    public let directory: String
    /// The checkpoint's path.
    public var path: String { directory + "/checkpoint" }
    var temporaryPath: String { directory + "/checkpoint.tmp" }

    /// The files of `directory`.
    public init(directory: String) {
        self.directory = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
    }

    /// A failed file operation: what was done, and `errno`.
    public struct IOError: Error, Sendable, CustomStringConvertible {
        /// What failed, with the path.
        public var operation: String
        /// The `errno` value.
        public var code: Int32

        /// The `reason` label value: `no_space` (ENOSPC, EDQUOT, EFBIG), `permission` (EACCES, EPERM, EROFS),
        /// `not_a_directory` (ENOTDIR, ENOENT: the directory is missing or not one), `io` otherwise.
        public var reason: CheckpointFailureReason {
            switch code {
            case ENOSPC, EDQUOT, EFBIG: .noSpace
            case EACCES, EPERM, EROFS: .permission
            case ENOTDIR, ENOENT: .notADirectory
            default: .io
            }
        }

        /// Whether the failure says nothing of the file: the process or the system was short of descriptors or
        /// memory (EMFILE, ENFILE, ENOMEM, ENOBUFS), or the call was interrupted (EINTR, EAGAIN). Such a checkpoint is
        /// read again later, never set aside as unreadable (a start at a low open-file limit set a good one aside, and
        /// the next start began empty).
        public var isTransient: Bool {
            switch code {
            case EMFILE, ENFILE, ENOMEM, ENOBUFS, EINTR, EAGAIN: true
            default: false
            }
        }

        /// What is wrong, when the `errno` text would not say it (a FIFO is not "a directory").
        public var problem: String? = nil

        /// E.g. `write /var/lib/x/checkpoint.tmp: No space left on device`.
        public var description: String { "\(operation): \(problem ?? String(cString: strerror(code)))" }
    }

    /// Creates the directory (mode 0700) when it does not exist; fails when the path exists and is no directory.
    public func prepareDirectory() throws(IOError) {
        var info = stat()
        if stat(directory, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else { throw IOError(operation: "stat \(directory)", code: ENOTDIR) }
            return
        }
        guard errno == ENOENT else { throw IOError(operation: "stat \(directory)", code: errno) }
        // Parents too, like mkdir -p.
        var prefix = directory.hasPrefix("/") ? "" : "."
        for part in directory.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST { throw IOError(operation: "mkdir \(prefix)", code: errno) }
        }
        // mkdir says EEXIST for a symbolic link to nowhere (a volume not mounted yet): the path must be a directory now.
        guard stat(directory, &info) == 0 else { throw IOError(operation: "stat \(directory)", code: errno) }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw IOError(operation: "stat \(directory)", code: ENOTDIR) }
    }

    /// The lock file's path: held (a POSIX record lock on the whole file) by the process that uses the directory.
    var lockPath: String { directory + "/lock" }

    /// What ``lock()`` found.
    public enum LockResult: Sendable, Equatable {
        /// This process holds the lock now, through the open descriptor (kept open for the process's life: closing any
        /// descriptor of the file would release it).
        case acquired(Int32)
        /// Another process holds it; the process id it wrote there, if readable.
        case heldBy(String?)
    }

    /// Takes the directory's lock (`<directory>/lock`: an open file description lock, `F_OFD_SETLK`, a write lock on
    /// the whole file, non-blocking) and writes this process's id in it; another holder is ``LockResult/heldBy(_:)``.
    /// The lock belongs to the descriptor it returns, so another checkpointer of the same process (a second `Exporter`
    /// on the same path) is refused as another process is; it lasts until ``unlock(_:)`` or the process's exit.
    /// (Where the kernel has no such locks, `EINVAL`, a process-wide POSIX record lock is taken instead: there
    /// another checkpointer of the same process takes it too.)
    public func lock() throws(IOError) -> LockResult {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o600)
        guard fd >= 0 else { throw IOError(operation: "open \(lockPath)", code: errno) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw IOError(operation: "open \(lockPath) (not a regular file)", code: EINVAL)
        }
        var whole = flock()
        whole.l_type = Int16(F_WRLCK)
        whole.l_whence = Int16(SEEK_SET)
        var locked = fcntl(fd, Self.openFileDescriptionSetLock, &whole) == 0
        if !locked && errno == EINVAL { locked = fcntl(fd, F_SETLK, &whole) == 0 }
        guard locked else {
            let code = errno
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, 0) }
            // Not held through this descriptor: closing it releases nothing (an open file description lock belongs
            // to its own description; a POSIX record lock of this process would have been granted).
            close(fd)
            guard code == EACCES || code == EAGAIN else { throw IOError(operation: "lock \(lockPath)", code: code) }
            let holder = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).filter(\.isNumber) : ""
            return .heldBy(holder.isEmpty ? nil : holder)
        }
        let pid = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) == 0 { _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) } }
        return .acquired(fd)
    }

    /// Releases the lock ``lock()`` took through `fd` (closing it).
    public func unlock(_ fd: Int32) {
        close(fd)
    }

    /// `F_OFD_SETLK` (Linux 3.15; not exported by Glibc's Swift module).
    static let openFileDescriptionSetLock: Int32 = 37

    var runningPath: String { directory + "/running" }

    /// Whether the `running` marker (or anything under its name) is there: the process that held the directory last
    /// did not stop cleanly (it crashed, was killed, or its last checkpoint failed).
    public var runningMarkerExists: Bool {
        var info = stat()
        return lstat(runningPath, &info) == 0
    }

    /// Makes the `running` marker (this process's id in it), synced with the directory, unless something is there
    /// under its name already.
    public func markRunning() throws(IOError) {
        let fd = open(runningPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0 && errno == EEXIST { return }
        guard fd >= 0 else { throw IOError(operation: "open \(runningPath)", code: errno) }
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { systemWrite(fd, $0.baseAddress!, $0.count) }
        close(fd)
        try syncDirectory()
    }

    /// Removes the `running` marker (after the last checkpoint of a clean stop), synced with the directory.
    public func removeRunningMarker() throws(IOError) {
        guard unlink(runningPath) == 0 || errno == ENOENT else {
            throw IOError(operation: "unlink \(runningPath)", code: errno)
        }
        try syncDirectory()
    }

    /// Writes `bytes` as the new checkpoint, atomically (see the type's description).
    public func write(_ bytes: [UInt8]) throws(IOError) {
        // Whatever is there (a leftover, a FIFO, a link) goes; the file is made anew, exclusively. A directory (which
        // unlink cannot remove: every checkpoint failed, the last one too) is removed when empty, else renamed aside.
        if unlink(temporaryPath) != 0 && errno != ENOENT {
            let code = errno
            let aside = temporaryPath + ".aside-\(time(nil))"
            guard code == EISDIR, rmdir(temporaryPath) == 0 || rename(temporaryPath, aside) == 0 else {
                throw IOError(operation: "unlink \(temporaryPath)", code: code)
            }
        }
        try writeNew(temporaryPath, bytes)
        guard rename(temporaryPath, path) == 0 else {
            let code = errno
            unlink(temporaryPath)
            throw IOError(operation: "rename \(temporaryPath) to \(path)", code: code)
        }
        try syncDirectory()
    }

    /// Writes `bytes` to a new file at `target` (mode 0600; none may be there), synced; removed again on failure.
    private func writeNew(_ target: String, _ bytes: [UInt8]) throws(IOError) {
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw IOError(operation: "open \(target)", code: errno) }
        var failure: IOError? = nil
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = systemWrite(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = IOError(operation: "write \(target)", code: errno)
                    return
                }
                offset += n
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = IOError(operation: "fsync \(target)", code: errno) }
        if close(fd) != 0 && failure == nil { failure = IOError(operation: "close \(target)", code: errno) }
        if let failure {
            unlink(target)
            throw failure
        }
    }

    func syncDirectory() throws(IOError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw IOError(operation: "open \(directory)", code: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw IOError(operation: "fsync \(directory)", code: errno) }
    }

    /// Which checkpoint a name holds: device, inode, size, modification time and the last four bytes (the format's
    /// CRC-32 of the rest; for ``entryIdentity`` the file type, with the status change time). An inode number is
    /// reused once its file is removed, so another writer's checkpoint may have this one's inode; not its size, time
    /// and checksum as well.
    public struct Identity: Sendable, Equatable {
        let device: UInt64
        let inode: UInt64
        let size: Int64
        let modified: Int64
        let modifiedNanoseconds: Int
        let tail: UInt32
        var changed: Int64 = 0
        var changedNanoseconds = 0
    }

    /// Whether `fd` (``lock()``'s descriptor) is still the file at the lock's path: false when the lock file was
    /// removed or replaced (an operator clearing a "stale" lock), whose lock then guards nothing.
    public func lockIsCurrent(_ fd: Int32) -> Bool {
        var held = stat()
        var named = stat()
        guard fstat(fd, &held) == 0, lstat(lockPath, &named) == 0 else { return false }
        return held.st_dev == named.st_dev && held.st_ino == named.st_ino
    }

    /// The checkpoint file's identity, nil when there is none (or it cannot be opened).
    public var checkpointIdentity: Identity? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        var tail: UInt32 = 0
        if info.st_mode & S_IFMT == S_IFREG && info.st_size >= 4 {
            _ = withUnsafeMutableBytes(of: &tail) { pread(fd, $0.baseAddress!, 4, off_t(info.st_size - 4)) }
        }
        return Identity(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modified: Int64(info.st_mtim.tv_sec), modifiedNanoseconds: Int(info.st_mtim.tv_nsec), tail: tail)
    }

    /// What is under the checkpoint's name, told apart without opening it: the file a link leads to (`stat`), else
    /// the entry itself (`lstat`: a dangling link); nil when nothing is there. For "is it still the file that could not
    /// be set aside", which ``checkpointIdentity`` (nil for whatever cannot be opened) cannot tell. The status change
    /// time is in it (a backup copied over the file in place with `cp -p` keeps inode, size and mtime, not ctime),
    /// and of the mode only the file type (a `chmod` is no other file).
    public var entryIdentity: Identity? {
        var info = stat()
        guard stat(path, &info) == 0 || lstat(path, &info) == 0 else { return nil }
        return Identity(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modified: Int64(info.st_mtim.tv_sec), modifiedNanoseconds: Int(info.st_mtim.tv_nsec),
            tail: UInt32(info.st_mode & S_IFMT), changed: Int64(info.st_ctim.tv_sec),
            changedNanoseconds: Int(info.st_ctim.tv_nsec))
    }

    /// Whether a checkpoint file is there (or anything else under its name).
    public var exists: Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// The checkpoint's bytes, or nil when there is none. Throws when it exists but cannot be read, is no regular
    /// file, or is larger than `maxBytes` (reported as ``IOError`` with `EFBIG`). A file that does not start with
    /// `prefix` (the format's magic) is not read further: its first bytes are returned, which the format refuses, so
    /// that a big file of something else is never read whole into memory. A file over `checkAbove` bytes whose last
    /// four bytes are not the CRC-32 of the bytes before them is refused (``IOError`` with `EBADMSG`) after a
    /// streaming pass, before anything is read whole (a 4 GB sparse file with the magic took 4 GB, or aborted the
    /// process under a memory limit at every start); smaller ones are read, and their format says what is wrong.
    public func read(maxBytes: Int, prefix: [UInt8] = [], checkAbove: Int = .max) throws(IOError) -> [UInt8]? {
        // Non-blocking: a FIFO opens at once (it waited for a writer, past SIGTERM), then fails the regular-file check.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            let code = errno
            // A link whose target is missing is a checkpoint that cannot be read, not the absence of one: it was taken
            // for a first start, silently (a volume not mounted, a target deleted: a day of windows lost unsaid).
            var info = stat()
            if code == ENOENT, lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK {
                throw IOError(
                    operation: "read \(path)", code: code, problem: "a symbolic link to a file that does not exist")
            }
            if code == ENOENT { return nil }
            throw IOError(operation: "open \(path)", code: code)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw IOError(operation: "stat \(path)", code: errno) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            // Said as what it is (a FIFO was logged "Is a directory").
            let kind: String
            switch info.st_mode & S_IFMT {
            case S_IFDIR: kind = "a directory"
            case S_IFIFO: kind = "a FIFO"
            case S_IFSOCK: kind = "a socket"
            case S_IFCHR, S_IFBLK: kind = "a device"
            default: kind = "not a regular file"
            }
            throw IOError(operation: "read \(path)", code: EISDIR, problem: "\(kind), not a regular file")
        }
        let size = Int(info.st_size)
        if !prefix.isEmpty {
            var head = [UInt8](repeating: 0, count: Swift.min(size, prefix.count))
            let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0 { throw IOError(operation: "read \(path)", code: errno) }
            if n < head.count { head.removeLast(head.count - n) }
            if head != Array(prefix[0..<head.count]) { return head }
        }
        guard size <= maxBytes else { throw IOError(operation: "read \(path) (\(size) bytes)", code: EFBIG) }
        if size > checkAbove, size >= 4 {
            guard try checksumMatches(fd, size: size) else {
                throw IOError(operation: "read \(path) (its checksum does not match)", code: EBADMSG)
            }
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var offset = 0
        var failure: IOError? = nil
        bytes.withUnsafeMutableBytes { buffer in
            while offset < size {
                let n = systemRead(fd, buffer.baseAddress! + offset, size - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = IOError(operation: "read \(path)", code: errno)
                    return
                }
                if n == 0 { break }
                offset += n
            }
        }
        if let failure { throw failure }
        if offset < size { bytes.removeLast(size - offset) }  // the file shrank meanwhile
        return bytes
    }

    /// Whether the last four bytes of `fd`'s first `size` are the little-endian CRC-32 of the bytes before them, read
    /// in 1 MiB pieces.
    private func checksumMatches(_ fd: Int32, size: Int) throws(IOError) -> Bool {
        var piece = [UInt8](repeating: 0, count: Swift.min(size, 1 << 20))
        var crc: UInt32 = 0
        var offset = 0
        let body = size - 4
        while offset < body {
            let want = Swift.min(piece.count, body - offset)
            let n = piece.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, want, off_t(offset)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw IOError(operation: "read \(path)", code: errno)
            }
            if n == 0 { return false }  // shrank meanwhile
            crc = piece.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<n]), continuing: crc) }
            offset += n
        }
        var trailer = [UInt8](repeating: 0, count: 4)
        let n = trailer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, 4, off_t(body)) }
        guard n == 4 else { return false }
        let saved = trailer.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        return saved == crc
    }

    /// Renames the checkpoint to `checkpoint.corrupt-<UTC time of now>` (a number is added when that exists);
    /// returns the new path.
    public func setAside(now: Double) throws(IOError) -> String {
        let target = asidePath(now: now)
        guard rename(path, target) == 0 else { throw IOError(operation: "rename \(path) to \(target)", code: errno) }
        // Renamed: the checkpoint is aside whether or not the directory's sync succeeds (a failed sync, reported as a
        // failed rename, blocked checkpoints over a file that was no longer there). A crash before the directory
        // reaches the disk may bring the name back: read again then, and set aside again.
        try? syncDirectory()
        return target
    }

    /// Writes `bytes` (the checkpoint as read) to `checkpoint.unrestored-<its CRC-32, hex>` beside it, for a
    /// checkpoint that was read but one of whose models could not be: the next checkpoint replaces the file, and
    /// without the copy that model's saved state was gone. Named by content, so that restarts before the next
    /// checkpoint (a crash loop) keep one copy, not one each. Returns the copy's path.
    public func keepCopy(_ bytes: [UInt8]) throws(IOError) -> String {
        var crc: UInt32 = 0
        for (i, b) in bytes.suffix(4).enumerated() { crc |= UInt32(b) << (8 * UInt32(i)) }
        let hex = String(crc, radix: 16)
        let target = path + ".unrestored-" + String(repeating: "0", count: 8 - hex.count) + hex
        var info = stat()
        if lstat(target, &info) == 0 { return target }
        try writeNew(target, bytes)
        try syncDirectory()
        return target
    }

    /// `checkpoint.corrupt-<UTC time of now>`, with a number added when that exists.
    private func asidePath(now: Double) -> String {
        var t = time_t(now)
        var parts = tm()
        gmtime_r(&t, &parts)
        let stamp = String(
            format4(Int(parts.tm_year) + 1900) + format2(Int(parts.tm_mon) + 1) + format2(Int(parts.tm_mday)) + "T"
                + format2(Int(parts.tm_hour)) + format2(Int(parts.tm_min)) + format2(Int(parts.tm_sec)) + "Z")
        var target = path + ".corrupt-" + stamp
        var n = 1
        var info = stat()
        while stat(target, &info) == 0 {
            n += 1
            target = path + ".corrupt-" + stamp + "-\(n)"
        }
        return target
    }

    private func format2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    private func format4(_ v: Int) -> String { String(repeating: "0", count: max(0, 4 - "\(v)".count)) + "\(v)" }
}
