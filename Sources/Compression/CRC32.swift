import CLibdeflate

/// CRC-32 (the gzip and zlib polynomial) of a buffer, through libdeflate (several GB/s with carry-less multiply).
public enum CRC32 {
    /// The CRC-32 of `bytes`, continuing from `crc` (0 to start).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        return libdeflate_crc32(crc, base, bytes.count)
    }
}
