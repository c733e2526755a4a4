import ModelMonitoring
import Profiling
import Testing

/// The error of profiling input `bytes` for the fraud model, or `no error`.
private func failure(_ bytes: [UInt8], _ format: InputFormat = .csv, file: String = "data.csv") -> String {
    do {
        _ = try Profiler.profile(bytes, file: file, format: format, model: fraud, options: .init(bins: 2, fineBins: 4))
        return "no error"
    } catch {
        return error.description
    }
}

/// `text` as UTF-8, with each `%` replaced by byte `bad`.
private func bytes(_ text: String, bad: [UInt8] = [0xFF]) -> [UInt8] {
    text.split(separator: "%", omittingEmptySubsequences: false).map { Array($0.utf8) }.joined(separator: bad).map {
        $0
    }
}

private let invalid = "invalid UTF-8 (byte 0xFF); the input must be UTF-8 text"

@Suite("Input that is not UTF-8")
struct EncodingTests {
    @Test("a CSV byte that is not UTF-8 is an error at its line and column, never a replacement character")
    func csv() {
        let header = "amount,country,channel\n"
        #expect(failure(bytes(header + "1,D%E,web\n")) == "data.csv:2:4: column \"country\": \(invalid)")
        // The column counts characters: é is one.
        #expect(failure(bytes(header + "1,\"é%\",web\n")) == "data.csv:2:5: column \"country\": \(invalid)")
        // In a quoted field across lines, the line and column are those of the byte.
        #expect(failure(bytes(header + "1,\"a\nbc%\",web\n")) == "data.csv:3:3: column \"country\": \(invalid)")
        #expect(failure(bytes(header + "1,\"a\"\"\nb\"\"%\",web\n")) == "data.csv:3:4: column \"country\": \(invalid)")
        // In the header, after a byte order mark (not a character of the line).
        #expect(failure(bytes("\u{FEFF}amount,coun%try,channel\n1,DE,web\n")) == "data.csv:1:12: field 2: \(invalid)")
        // A sequence cut short, at the end of the file; an overlong encoding; a lone continuation byte.
        #expect(
            failure(bytes(header + "1,DE,web%", bad: [0xE2, 0x82]))
                == "data.csv:2:9: column \"channel\": invalid UTF-8 (byte 0xE2); the input must be UTF-8 text")
        #expect(
            failure(bytes(header + "1,%,web\n", bad: [0xC0, 0xAF]))
                == "data.csv:2:3: column \"country\": invalid UTF-8 (byte 0xC0); the input must be UTF-8 text")
        #expect(
            failure(bytes(header + "%,DE,web\n", bad: [0x80]))
                == "data.csv:2:1: column \"amount\": invalid UTF-8 (byte 0x80); the input must be UTF-8 text")
        #expect(failure(bytes(header + "1,Zürich,web\n2,日本,app\n")) == "no error")
    }

    @Test("an NDJSON byte that is not UTF-8 is an error at its line and column")
    func ndjson() {
        func fail(_ text: String) -> String { failure(bytes(text), .ndjson, file: "d.ndjson") }
        let ok = #"{"amount": 1, "country": "DE", "channel": "web"}"#
        #expect(fail("\(ok)\n{\"amount\": 2, \"country\": \"D%E\"}\n") == "d.ndjson:2:28: \(invalid)")
        #expect(fail("{\"amount\": NaN, \"cöuntry%\": \"DE\"}\n") == "d.ndjson:1:25: \(invalid)")
        #expect(fail("\(ok)\r\n{\"amount\": 2}%\r\n") == "d.ndjson:2:14: \(invalid)")
    }
}
