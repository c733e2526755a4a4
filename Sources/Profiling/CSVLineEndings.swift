/// What CSV readers say of line endings they do not take.
public enum CSVLineEndings {
    /// A carriage return outside quotes that is not followed by a line feed (RFC 4180 ends lines with CRLF; LF is
    /// taken too): a file with classic Mac (CR-only) line endings.
    public static let bareCRMessage =
        "a carriage return without a line feed outside quotes: lines must end with LF or CRLF (CR-only line endings "
        + "can be converted with tr '\\r' '\\n')"
}
