import Testing

@testable import Profiling

/// A CSV record longer than the bound is refused at its line before its text is made, as `batch` refuses it (a
/// 200 MiB record was read whole into 640 MB); one at the bound is read.
@Suite struct CSVRecordLimitTests {
    static func read(_ text: String, limit: Int) -> [String] {
        var parser = CSVParser(bytes: Array(text.utf8), file: "data.csv", maxRecordBytes: limit)
        var out: [String] = []
        do {
            while let (fields, line) = try parser.next() { out.append("\(line): \(fields.joined(separator: "|"))") }
        } catch {
            out.append(error.description)
        }
        return out
    }

    @Test func aRecordOverTheBoundIsRefusedAtItsLine() {
        // "a,b" then a record of 16 bytes, then one of 17.
        let atBound = "0123456,89abcdef"
        #expect(Self.read("a,b\n\(atBound)\n", limit: 16) == ["1: a|b", "2: 0123456|89abcdef"])
        #expect(
            Self.read("a,b\n\(atBound)\nx,0123456789abcdef\n", limit: 16) == [
                "1: a|b", "2: 0123456|89abcdef", "data.csv:3: record longer than 16 bytes",
            ])
        // A quoted field over several lines: named at the line its record starts on.
        #expect(
            Self.read("a,b\n\"x\n\ny\nzzzzzzzzzzzzzzzzzz\",1\n", limit: 16) == [
                "1: a|b", "data.csv:2: record longer than 16 bytes",
            ])
        // A quoted field of doubled quotes, closed at the end of the input: counted too.
        let quotes = "\"" + String(repeating: "\"\"", count: 12) + "\""
        #expect(Self.read("a,b\n1,\(quotes)", limit: 16) == ["1: a|b", "data.csv:2: record longer than 16 bytes"])
        #expect(Self.read("a,b\n1,\"\"\"\"", limit: 16) == ["1: a|b", "2: 1|\""])
        #expect(Profiler.bound(Profiler.maxRecordBytes) == "64 MiB" && Profiler.bound(16) == "16 bytes")
    }
}
