import Capture
import Foundation
import Testing

/// The events of `text` fed in pieces cut at `cuts` (byte offsets), as (type, data) strings; `oversized` as
/// ("!oversized", "").
private func events(_ text: String, cuts: [Int] = [], maxEventBytes: Int = 1 << 20) -> [(String, String)] {
    var parser = ServerSentEventParser(maxEventBytes: maxEventBytes)
    var out: [(String, String)] = []
    let bytes = Array(text.utf8)
    var start = 0
    for end in cuts.filter({ $0 > 0 && $0 < bytes.count }).sorted() + [bytes.count] where end >= start {
        bytes[start..<end].withUnsafeBytes { piece in
            parser.feed(piece) { event in
                switch event {
                case .oversized: out.append(("!oversized", ""))
                case .data(let type, let data):
                    out.append((String(decoding: type, as: UTF8.self), String(decoding: data, as: UTF8.self)))
                }
            }
        }
        start = end
    }
    return out
}

@Suite("Server-sent events")
struct ServerSentEventTests {
    static let stream =
        ": keep-alive\n\ndata: {\"a\":1}\n\ndata: first\ndata: second\r\n\r\nevent: response.output_text.delta\r"
        + "data:no-space\r\rid: 7\nretry: 10\ndata:  two spaces\n\n\n\ndata: [DONE]\n\n"

    static let expected: [(String, String)] = [
        ("", "{\"a\":1}"), ("", "first\nsecond"), ("response.output_text.delta", "no-space"), ("", " two spaces"),
        ("", "[DONE]"),
    ]

    @Test("comments, CR/LF/CRLF line ends, multi-line data, event types, a leading space dropped")
    func whole() {
        let got = events(Self.stream)
        #expect(got.map(\.0) == Self.expected.map(\.0))
        #expect(got.map(\.1) == Self.expected.map(\.1))
    }

    @Test("the same events whatever the pieces: every single cut, and pieces of one byte")
    func everySplit() {
        let n = Self.stream.utf8.count
        for cut in 1..<n {
            let got = events(Self.stream, cuts: [cut])
            #expect(got.map(\.1) == Self.expected.map(\.1), "cut at \(cut)")
        }
        let bytewise = events(Self.stream, cuts: Array(1..<n))
        #expect(bytewise.map(\.0) == Self.expected.map(\.0))
        #expect(bytewise.map(\.1) == Self.expected.map(\.1))
    }

    /// One leading UTF-8 BOM is skipped, whatever the pieces, as the WHATWG parser does (the first event was lost: its
    /// field read `\u{FEFF}data`; review); a BOM later, or a start that only looks like one, is content.
    @Test func aLeadingBOMIsSkippedWhateverThePieces() {
        let text = "\u{FEFF}data: one\n\ndata: two\n\n"
        for cut in 0..<6 {
            #expect(events(text, cuts: [cut]).map(\.1) == ["one", "two"], "cut at \(cut)")
        }
        #expect(events(text, cuts: [1, 2, 3]).map(\.1) == ["one", "two"])
        #expect(events("data: a\u{FEFF}\n\n").map(\.1) == ["a\u{FEFF}"])
        // Bytes that start like a BOM but are not one: "\u{EF}" is C3 AF in UTF-8; EF BB then another byte.
        #expect(events(": c\ndata: x\n\n").map(\.1) == ["x"])
        let almost: [UInt8] = [0xEF, 0xBB, 0x41] + Array(": comment\ndata: y\n\n".utf8)
        var parser = ServerSentEventParser()
        var got: [String] = []
        almost.withUnsafeBytes { piece in
            parser.feed(piece) { if case .data(_, let d) = $0 { got.append(String(decoding: d, as: UTF8.self)) } }
        }
        #expect(got == ["y"])
    }

    @Test("an event over the limit is dropped whole and reported; the next one parses")
    func oversized() {
        let big = String(repeating: "x", count: 100)
        let text = "data: \(big)\n\ndata: small\n\ndata: \(big)\ndata: y\n\ndata: ok\n\n"
        let got = events(text, cuts: [3, 50, 60], maxEventBytes: 64)
        #expect(got.map(\.0) == ["!oversized", "", "!oversized", ""])
        #expect(got.map(\.1) == ["", "small", "", "ok"])
    }

    @Test("a comment or other field line over the limit, in pieces, is skipped: its event is kept")
    func longLinesThatAreNotData() {
        let long = String(repeating: "p", count: 200)
        // Cut inside each long line, so that it is held across pieces.
        let text = "data: a\n: \(long)\n\nid: \(long)\ndata: b\n\n\(long)\ndata: c\n\ndata: \(long)\n\ndata: d\n\n"
        let cuts = stride(from: 5, to: text.utf8.count, by: 37).map { $0 }
        let got = events(text, cuts: cuts, maxEventBytes: 64)
        #expect(got.map(\.0) == ["", "", "", "!oversized", ""])
        #expect(got.map(\.1) == ["a", "b", "c", "", "d"])
    }

    @Test("an event without data is not dispatched; an unterminated last event is not either")
    func noData() {
        #expect(events("event: ping\n\n: c\n\ndata: x\n").isEmpty)
    }

    /// A `data:` line with nothing after it is an event with empty data, as the standard dispatches it (the meter
    /// takes it for a keep-alive); two such lines are one newline.
    @Test func anEventWhoseDataIsEmptyIsDispatchedEmpty() {
        #expect(events("data:\n\ndata: \n\n").map(\.1) == ["", ""])
        #expect(events("data:\ndata:\n\n").map(\.1) == ["\n"])
    }

    /// llama.cpp's server reports an error in a stream as an `error:` field (not one of the standard's): read as an
    /// event of type `error` (it was dropped, and the failed request counted ok).
    @Test func llamaCppsErrorFieldIsAnErrorEvent() {
        let got = events("data: {\"a\":1}\n\nerror: {\"code\":400,\"message\":\"too long\"}\n\n")
        #expect(got.map(\.0) == ["", "error"])
        #expect(got.last?.1 == #"{"code":400,"message":"too long"}"#)
    }
}

@Suite("OpenAI request scanner")
struct OpenAIRequestScannerTests {
    private func scan(_ body: String, cuts: [Int] = []) -> OpenAIRequestScanner {
        var scanner = OpenAIRequestScanner()
        let bytes = Array(body.utf8)
        var start = 0
        for end in cuts.filter({ $0 > 0 && $0 < bytes.count }).sorted() + [bytes.count] {
            bytes[start..<end].withUnsafeBytes { scanner.feed($0) }
            start = end
        }
        return scanner
    }

    @Test("top-level model, stream and stream_options.include_usage; nested look-alikes ignored")
    func members() {
        let body = #"""
            {"messages":[{"role":"user","content":"say \"model\": x","model":"nested"}],
             "metadata":{"model":"nope","stream":true},"stream_options":{"include_usage":true,"model":"no"},
             "model":"meta-llama/Llama-3.1-8B-Instruct","temperature":0.2,"stream":true}
            """#
        let s = scan(body)
        #expect(s.model == "meta-llama/Llama-3.1-8B-Instruct")
        #expect(s.stream)
        #expect(s.includeUsage)
        #expect(s.isObject)
        let n = body.utf8.count
        for cut in stride(from: 1, to: n, by: 3) {
            let piece = scan(body, cuts: [cut, cut + 1])
            #expect(piece.model == s.model && piece.stream && piece.includeUsage, "cut at \(cut)")
        }
    }

    /// Go's JSON decoder (Ollama, LocalAI) matches keys without regard to case, the last one winning; Python's is exact.
    /// A `Model` beside `model` could have the request counted under another model than the one a Go server serves
    /// (before: `model` was read, whatever followed): a variant after the last `model` leaves no model.
    @Test("a model key in another letter case after model leaves no model")
    func modelInAnotherCase() {
        #expect(scan(#"{"model":"sql-lora","Model":"base"}"#).model == nil)
        #expect(scan(#"{"MODEL":"base"}"#).model == nil)
        // A `model` after the variant wins in both decoders.
        #expect(scan(#"{"mOdEl":1,"model":"base"}"#).model == "base")
        #expect(scan(#"{"MODEL":"x","model":"base"}"#).model == "base")
        #expect(scan(#"{"model":"base","MODEL":"x"}"#).model == nil)
        #expect(scan(#"{"model":"base","messages":[{"Model":"x"}],"meta":{"MODEL":"y"}}"#).model == "base")
        #expect(scan(#"{"models":"x","model":"base","mode":"y"}"#).model == "base")
    }

    @Test("escaped model names are decoded; not-a-string, absent and too long give none")
    func edges() {
        #expect(scan(#"{"model":"a\"b\\c\u00e9\ud83d\ude00"}"#).model == "a\"b\\cé😀")
        #expect(scan(#"{"model":42}"#).model == nil)
        #expect(scan(#"{"model":{"name":"x"}}"#).model == nil)
        #expect(scan(#"{"prompt":"x"}"#).model == nil)
        #expect(scan(#"["model","x"]"#).model == nil)
        let long = String(repeating: "m", count: OpenAIRequestScanner.maxModelBytes + 1)
        #expect(scan("{\"model\":\"\(long)\"}").model == nil)
        #expect(scan(#"{"stream":false,"model":"m"}"#).stream == false)
        #expect(scan(#"{"stream": true , "model":"m"}"#).stream)
    }

    @Test("a member given twice: the last wins, as JSON decoders read it; a key written with escapes is its name")
    func duplicatesAndEscapedKeys() {
        // The upstream (Python's json, Go, serde) serves the last `model`: a client cannot bill another model.
        #expect(scan(#"{"model":"served-a","messages":[],"model":"served-b"}"#).model == "served-b")
        #expect(scan(#"{"model":"served-a","model":7}"#).model == nil)
        #expect(scan(#"{"model":{"x":1},"model":"served-b"}"#).model == "served-b")
        #expect(scan(#"{"mod\u0065l":"served-b"}"#).model == "served-b")
        #expect(scan(#"{"model":"a","\u006d\u006f\u0064\u0065\u006c":"served-b"}"#).model == "served-b")
        #expect(scan(#"{"str\u0065am":true,"model":"m"}"#).stream)
        #expect(!scan(#"{"stream":true,"stream":false}"#).stream)
        #expect(!scan(#"{"stream":true,"stream":"yes"}"#).stream)
        #expect(scan(#"{"stream_options":{"include_usage":true},"stream_options":{}}"#).includeUsage == false)
        #expect(scan(#"{"stream_options":{"include_usage":true},"stream_options":null}"#).includeUsage == false)
        // In any pieces.
        let body = #"{"model":"served-a","mod\u0065l":"served-b"}"#
        for cut in 1..<body.utf8.count { #expect(scan(body, cuts: [cut]).model == "served-b", "cut at \(cut)") }
    }

    @Test("random bodies: the same members as Foundation's JSON parser, in any pieces")
    func randomAgainstFoundation() throws {
        var rng = SplitMix64(seed: 17)
        let names = ["gpt-4o", "llama", "a\"q", "ünï", "x/y:z", "model"]
        for round in 0..<300 {
            var object: [String: Any] = [:]
            if rng.next() % 4 != 0 { object["model"] = names[Int(rng.next() % UInt64(names.count))] }
            if rng.next() % 2 == 0 { object["stream"] = rng.next() % 2 == 0 }
            if rng.next() % 2 == 0 { object["stream_options"] = ["include_usage": rng.next() % 2 == 0, "model": "n"] }
            object["messages"] = [["role": "user", "content": "{\"model\": \"fake\", [\\]", "model": "inner"]]
            object["n"] = Int(rng.next() % 3)
            let data = try JSONSerialization.data(withJSONObject: object, options: [])
            let text = String(decoding: data, as: UTF8.self)
            let cuts = (0..<3).map { _ in Int(rng.next() % UInt64(max(1, data.count))) }
            let s = scan(text, cuts: cuts)
            let parsed = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect(s.model == parsed["model"] as? String, "round \(round): \(text)")
            #expect(s.stream == (parsed["stream"] as? Bool ?? false), "round \(round)")
            let options = parsed["stream_options"] as? [String: Any]
            #expect(s.includeUsage == (options?["include_usage"] as? Bool ?? false), "round \(round)")
        }
    }
}

@Suite("OpenAI documents")
struct OpenAIDocumentTests {
    private func read(_ json: String) -> OpenAIDocument? {
        Array(json.utf8).withUnsafeBytes { OpenAIDocument(parsing: $0) }
    }

    @Test("chat chunks: content, tool calls, reasoning, an empty delta, finish reasons, usage")
    func chat() throws {
        let d = try #require(
            read(
                #"{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null},{"index":1,"delta":{"tool_calls":[{"index":0}]},"finish_reason":"tool_calls"},{"index":2,"delta":{"content":""},"finish_reason":"length"},{"index":3,"delta":{"reasoning_content":"h"},"finish_reason":"weird"}],"usage":{"prompt_tokens":12,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":4}}}"#
            ))
        #expect(d.contentChoices == 3)
        #expect(d.finishReasons == [.toolCalls, .length, .other])
        #expect(d.usage == LLMUsage(promptTokens: 12, completionTokens: 7, cachedTokens: 4))
        #expect(!d.isError)
        let empty = try #require(read(#"{"choices":[],"usage":null}"#))
        #expect(empty.contentChoices == 0 && empty.usage == nil)
        // A reason that is no string is `other`, as the docs say of any other value (it was counted nowhere).
        let odd = try #require(read(#"{"choices":[{"index":0,"finish_reason":3},{"index":1,"finish_reason":{}}]}"#))
        #expect(odd.finishReasons == [.other, .other])
    }

    /// A count that is no token count is not taken and is said (the proxy counts the exchange `invalid_value`);
    /// `null` is an absent count. Before, it vanished without a trace.
    @Test("usage counts that are no token counts are flagged, null ones absent")
    func invalidUsageCounts() throws {
        for bad in ["1e18", "-1", "2.5", #""7""#, "true"] {
            let d = try #require(read(#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":"# + bad + "}}"))
            #expect(d.usage == LLMUsage(promptTokens: 3, hasInvalidCount: true), "\(bad)")
        }
        let cached = try #require(
            read(#"{"choices":[],"usage":{"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":1e16}}}"#))
        #expect(cached.usage == LLMUsage(promptTokens: 3, hasInvalidCount: true))
        let nulls = try #require(
            read(#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":null,"prompt_tokens_details":null}}"#))
        #expect(nulls.usage == LLMUsage(promptTokens: 3))
    }

    @Test("completions text, embeddings usage, errors, and not JSON")
    func others() throws {
        let c = try #require(read(#"{"object":"text_completion","choices":[{"text":" the","finish_reason":"stop"}]}"#))
        #expect(c.contentChoices == 1 && c.finishReasons == [.stop])
        let e = try #require(read(#"{"object":"list","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}"#))
        #expect(e.usage == LLMUsage(promptTokens: 8))
        #expect(try #require(read(#"{"error":{"message":"overloaded"}}"#)).isError)
        #expect(read("{\"choices\":[") == nil)
        #expect(read("[DONE]") == nil)
    }

    @Test("Responses API: deltas, completed, incomplete, failed, error events")
    func responses() throws {
        #expect(try #require(read(#"{"type":"response.output_text.delta","delta":"Hel"}"#)).contentChoices == 1)
        #expect(try #require(read(#"{"type":"response.output_text.delta","delta":""}"#)).contentChoices == 0)
        let done = try #require(
            read(
                #"{"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":5,"output_tokens":9,"input_tokens_details":{"cached_tokens":2}}}}"#
            ))
        #expect(done.finishReasons == [.stop])
        #expect(done.usage == LLMUsage(promptTokens: 5, completionTokens: 9, cachedTokens: 2))
        let cut = try #require(
            read(
                #"{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"}}}"#
            ))
        #expect(cut.finishReasons == [.length])
        let failed = try #require(read(#"{"type":"response.failed","response":{"status":"failed"}}"#))
        #expect(failed.isError && failed.finishReasons == [.error])
        #expect(try #require(read(#"{"type":"error","code":"server_error"}"#)).isError)
        let whole = try #require(
            read(#"{"object":"response","status":"completed","usage":{"input_tokens":3,"output_tokens":4}}"#))
        #expect(whole.finishReasons == [.stop] && whole.usage?.completionTokens == 4)
    }
}

@Suite("LLM exchange meter")
struct LLMExchangeMeterTests {
    private func chunk(_ content: String, finish: String? = nil) -> String {
        let reason = finish.map { "\"\($0)\"" } ?? "null"
        return
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\(content)\"},\"finish_reason\":\(reason)}]}\n\n"
    }

    private func feed(_ meter: inout LLMExchangeMeter, _ text: String, at t: Double) -> LLMExchangeMeter.Arrival {
        Array(text.utf8).withUnsafeBytes { meter.responseBody($0, elapsed: t) }
    }

    @Test("TTFT from the request's end, gaps between pieces, zero gaps inside one, tokens estimated")
    func stream() {
        var m = LLMExchangeMeter(endpoint: LLMExchangeMeter.Endpoint(path: "/v1/chat/completions"))
        #expect(m.endpoint == .chatCompletions)
        Array(#"{"model":"m","stream":true}"#.utf8).withUnsafeBytes { m.requestBody($0) }
        m.requestEnded(elapsed: 0.010)
        m.responseHead(status: 200, contentType: "text/event-stream; charset=utf-8")
        #expect(feed(&m, ": ping\n\n", at: 0.05) == .init())
        let first = feed(&m, chunk("a"), at: 0.210)
        #expect(abs(first.timeToFirstToken! - 0.2) < 1e-12 && first.gap == nil && first.zeroGaps == 0)
        let two = feed(&m, chunk("b") + chunk("c") + "data: {\"choi", at: 0.260)
        #expect(two.gap! == 0.260 - 0.210 && two.zeroGaps == 1 && two.timeToFirstToken == nil)
        let last = feed(&m, "ces\":[{\"delta\":{\"content\":\"d\"}}]}\n\n" + chunk("", finish: "stop"), at: 0.3)
        #expect(abs(last.gap! - 0.04) < 1e-12 && last.zeroGaps == 0)
        #expect(!m.streamEnded)
        _ = feed(&m, "data: not json\n\ndata: [DONE]\n\n", at: 0.31)
        #expect(m.streamEnded)
        m.finish()
        #expect(m.request.model == "m" && m.request.stream)
        #expect(m.completionTokens! == (4, true))
        #expect(m.finishReasons[LLMFinishReason.stop.rawValue] == 1)
        #expect(m.malformedEvents == 1)
        #expect(abs(m.timeToFirstToken! - 0.2) < 1e-12)
    }

    /// Data that starts with `[DONE]` ends the stream, as the SDKs read it (`[DONE] ` was counted malformed).
    @Test func aDoneFollowedBySpaceEndsTheStream() {
        var m = LLMExchangeMeter(endpoint: LLMExchangeMeter.Endpoint(path: "/v1/chat/completions"))
        m.requestEnded(elapsed: 0)
        m.responseHead(status: 200, contentType: "text/event-stream")
        _ = feed(&m, chunk("a", finish: "stop") + "data: [DONE] \n\n", at: 0.1)
        #expect(m.streamEnded && m.malformedEvents == 0)
    }

    /// n > 1: each choice's gaps are between its own tokens (vLLM counts inter-token latency per sequence): an event
    /// carrying a token of each choice gives each choice its gap, never a zero gap between its choices.
    @Test("n > 1: an event carrying a token of each choice gives each choice its own gap")
    func severalChoicesInOneEvent() {
        var m = LLMExchangeMeter(endpoint: LLMExchangeMeter.Endpoint(path: "/v1/chat/completions"))
        m.requestEnded(elapsed: 0)
        m.responseHead(status: 200, contentType: "text/event-stream")
        func both(_ a: String, _ b: String) -> String {
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\(a)\"}},"
                + "{\"index\":1,\"delta\":{\"content\":\"\(b)\"}}]}\n\n"
        }
        let first = feed(&m, both("a", "x"), at: 0.1)
        #expect(first.zeroGaps == 0 && first.timeToFirstToken != nil && first.gap == nil && first.moreGaps.isEmpty)
        let second = feed(&m, both("b", "y"), at: 0.15)
        #expect(second.zeroGaps == 0 && second.gap != nil && second.moreGaps.count == 1)
        // Two events in one read: each choice's second token has a zero gap.
        let two = feed(&m, both("c", "z") + both("d", "w"), at: 0.2)
        #expect(two.zeroGaps == 2 && two.moreGaps.count == 1)
        #expect(m.completionTokens! == (8, true))  // tokens still count every choice
    }

    /// Choices sent in turn, one per chunk (vLLM streams `n` > 1 so): each gap is the choice's own, 0.05 s here (they
    /// were the stream's: 0.01 and 0.04 s in turn, and p50/p99 understated).
    @Test func choicesSentInTurnHaveTheirOwnGaps() {
        var m = LLMExchangeMeter(endpoint: LLMExchangeMeter.Endpoint(path: "/v1/chat/completions"))
        m.requestEnded(elapsed: 0)
        m.responseHead(status: 200, contentType: "text/event-stream")
        func one(_ index: Int, _ t: String) -> String {
            "data: {\"choices\":[{\"index\":\(index),\"delta\":{\"content\":\"\(t)\"}}]}\n\n"
        }
        var gaps: [Double] = []
        for step in 0..<5 {
            let t0 = 0.1 + Double(step) * 0.05
            for (index, at) in [(0, t0), (1, t0 + 0.01)] {
                let arrival = feed(&m, one(index, "t"), at: at)
                if let gap = arrival.gap { gaps.append(gap) }
                gaps += arrival.moreGaps
            }
        }
        #expect(gaps.count == 8)
        #expect(gaps.allSatisfy { abs($0 - 0.05) < 1e-9 }, "\(gaps)")
    }

    /// A later chunk may repeat a choice's finish reason (some servers put it again beside `usage`): counted once per
    /// choice, as documented. Before, each occurrence counted (`stop` twice for one choice).
    @Test("a choice's finish reason repeated in a later chunk counts once")
    func repeatedFinishReason() {
        var m = LLMExchangeMeter(endpoint: LLMExchangeMeter.Endpoint(path: "/v1/chat/completions"))
        m.responseHead(status: 200, contentType: "text/event-stream")
        _ = feed(&m, chunk("a"), at: 0.1)
        _ = feed(&m, chunk("", finish: "stop"), at: 0.2)
        let usage = "{\"prompt_tokens\":3,\"completion_tokens\":1}"
        _ = feed(
            &m,
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"},"
                + "{\"index\":1,\"delta\":{},\"finish_reason\":\"length\"},"
                + "{\"index\":1,\"delta\":{},\"finish_reason\":\"length\"}],\"usage\":\(usage)}\n\ndata: [DONE]\n\n",
            at: 0.3)
        m.finish()
        #expect(m.finishReasons[LLMFinishReason.stop.rawValue] == 1)
        #expect(m.finishReasons[LLMFinishReason.length.rawValue] == 1)
    }

    /// The request's `n`: a stream whose server sends its choices one after another is all finished only once `n`
    /// choices finished (before, a client leaving after choice 0 finished, before choice 1 began, was counted `ok`:
    /// LLM review). The scanner reads `n` as the last whole number given; anything else is none.
    @Test("all choices finished counts the n the request asked for")
    func requestedChoices() {
        func choices(_ body: String) -> Int? {
            var scanner = OpenAIRequestScanner()
            Array(body.utf8).withUnsafeBytes { scanner.feed($0) }
            return scanner.choices
        }
        #expect(choices(#"{"model":"m","n":2,"stream":true}"#) == 2)
        #expect(choices(#"{"n": 12}"#) == 12)
        #expect(choices(#"{"n":1,"n":3}"#) == 3)
        #expect(choices(#"{"model":"m"}"#) == nil)
        #expect(choices(#"{"n":2.5}"#) == nil)
        #expect(choices(#"{"n":2e1}"#) == nil)
        #expect(choices(#"{"n":"2"}"#) == nil)
        #expect(choices(#"{"n":-2}"#) == nil)
        #expect(choices(#"{"n":0}"#) == nil)
        #expect(choices(#"{"x":{"n":5},"messages":[{"n":4}]}"#) == nil)
        #expect(choices(#"{"n":99999999999}"#) == nil)

        var m = LLMExchangeMeter(endpoint: LLMExchangeMeter.Endpoint(path: "/v1/chat/completions"))
        Array(#"{"model":"m","stream":true,"n":2}"#.utf8).withUnsafeBytes { m.requestBody($0) }
        m.responseHead(status: 200, contentType: "text/event-stream")
        func event(_ index: Int, _ content: String, finish: String? = nil) -> String {
            let reason = finish.map { "\"\($0)\"" } ?? "null"
            return "data: {\"choices\":[{\"index\":\(index),\"delta\":{\"content\":\"\(content)\"},"
                + "\"finish_reason\":\(reason)}]}\n\n"
        }
        _ = feed(&m, event(0, "a") + event(0, "", finish: "stop"), at: 0.1)
        #expect(!m.allChoicesFinished)  // choice 1 has not begun
        _ = feed(&m, event(1, "b") + event(1, "", finish: "stop"), at: 0.2)
        #expect(m.allChoicesFinished)
    }

    /// Choices of an index of 64 and more (`n` > 64) are told apart too: a repeated finish reason counts once, and
    /// the stream is known finished once every choice finished. Before, such a choice had no identity: each repeat
    /// counted (`stop` twice for index 70), and a stream with one was never all finished (a client leaving after
    /// the last finish reason, as the SDKs do, would be counted cancelled).
    @Test("choices of index 64 and more: a repeated finish reason counts once, and all finished is known")
    func highChoiceIndices() {
        var m = LLMExchangeMeter(endpoint: LLMExchangeMeter.Endpoint(path: "/v1/chat/completions"))
        m.responseHead(status: 200, contentType: "text/event-stream")
        func event(_ index: Int, _ content: String, finish: String? = nil) -> String {
            let reason = finish.map { "\"\($0)\"" } ?? "null"
            return "data: {\"choices\":[{\"index\":\(index),\"delta\":{\"content\":\"\(content)\"},"
                + "\"finish_reason\":\(reason)}]}\n\n"
        }
        _ = feed(&m, event(0, "a") + event(70, "b"), at: 0.1)
        #expect(m.choiceCount == 2)
        _ = feed(&m, event(70, "", finish: "stop"), at: 0.2)
        #expect(!m.allChoicesFinished)
        _ = feed(&m, event(0, "", finish: "length"), at: 0.25)
        #expect(m.allChoicesFinished)
        _ = feed(&m, event(70, "", finish: "stop") + event(0, "", finish: "length"), at: 0.3)
        m.finish()
        #expect(m.finishReasons[LLMFinishReason.stop.rawValue] == 1)
        #expect(m.finishReasons[LLMFinishReason.length.rawValue] == 1)
    }

    /// A refusal, or audio output (its transcript), reaches the user as a token does. Before, such a stream had no
    /// TTFT and no tokens.
    @Test("refusal and audio deltas carry output")
    func refusalAndAudio() {
        for delta in [
            #"{"refusal":"I can't"}"#, #"{"audio":{"id":"a1","transcript":"Hel"}}"#, #"{"audio":{"data":"UklG"}}"#,
        ] {
            var m = LLMExchangeMeter(endpoint: LLMExchangeMeter.Endpoint(path: "/v1/chat/completions"))
            m.requestEnded(elapsed: 0)
            m.responseHead(status: 200, contentType: "text/event-stream")
            let first = feed(&m, "data: {\"choices\":[{\"index\":0,\"delta\":\(delta)}]}\n\n", at: 0.1)
            #expect(first.timeToFirstToken != nil, "\(delta)")
            m.finish()
            #expect(m.completionTokens?.count == 1, "\(delta)")
        }
        var m = LLMExchangeMeter(endpoint: LLMExchangeMeter.Endpoint(path: "/v1/chat/completions"))
        m.responseHead(status: 200, contentType: "text/event-stream")
        let none = feed(
            &m, #"data: {"choices":[{"index":0,"delta":{"refusal":"","audio":{"id":"a1"}}}]}"# + "\n\n", at: 0.1)
        #expect(none.timeToFirstToken == nil)
    }

    @Test("an `event: error` is an error event whatever its data")
    func errorEventType() {
        var m = LLMExchangeMeter(endpoint: LLMExchangeMeter.Endpoint(path: "/v1/chat/completions"))
        m.responseHead(status: 200, contentType: "text/event-stream")
        _ = feed(&m, chunk("a"), at: 0.1)
        _ = feed(&m, "event: error\ndata: {\"message\":\"engine overloaded\",\"code\":503}\n\n", at: 0.2)
        #expect(m.errorEvents == 1)
        #expect(m.malformedEvents == 0)
    }

    /// A keep-alive event with empty data carries nothing: not malformed (it was counted so); an `event: error` is an
    /// error whatever its data, empty too, and so is llama.cpp's bare `error:` line.
    @Test func emptyDataIsAKeepAliveUnlessItIsAnError() {
        var m = LLMExchangeMeter(endpoint: LLMExchangeMeter.Endpoint(path: "/v1/chat/completions"))
        m.responseHead(status: 200, contentType: "text/event-stream")
        _ = feed(&m, "data:\n\n" + chunk("a") + "data: \n\n", at: 0.1)
        #expect(m.malformedEvents == 0 && m.errorEvents == 0)
        _ = feed(&m, "event: error\ndata:\n\n", at: 0.2)
        _ = feed(&m, "error:\n\n", at: 0.3)
        #expect(m.errorEvents == 2 && m.malformedEvents == 0)
    }

    /// A choice ended with `finish_reason: "error"` (vLLM's): an error, as a Responses API `failed` event is (it was
    /// counted ok, and within every objective).
    @Test func aChoiceFinishedWithAnErrorIsAnError() {
        var m = LLMExchangeMeter(endpoint: LLMExchangeMeter.Endpoint(path: "/v1/chat/completions"))
        m.responseHead(status: 200, contentType: "text/event-stream")
        _ = feed(&m, chunk("a"), at: 0.1)
        _ = feed(&m, chunk("", finish: "error"), at: 0.2)
        #expect(m.errorEvents == 1)
        #expect(m.finishReasons[LLMFinishReason.error.rawValue] == 1)
    }

    @Test("a non-streamed response is read whole at the end; an error status is not parsed")
    func whole() {
        var m = LLMExchangeMeter(endpoint: .completions)
        m.responseHead(status: 200, contentType: "application/json")
        _ = feed(&m, #"{"choices":[{"text":"x","finish_reason":"length"}],"#, at: 1)
        _ = feed(&m, #""usage":{"prompt_tokens":3,"completion_tokens":5}}"#, at: 1)
        m.finish()
        #expect(m.completionTokens! == (5, false))
        #expect(m.usage?.promptTokens == 3)
        #expect(m.finishReasons[LLMFinishReason.length.rawValue] == 1)
        #expect(m.timeToFirstToken == nil)
        var e = LLMExchangeMeter(endpoint: .chatCompletions)
        e.responseHead(status: 429, contentType: "application/json")
        _ = feed(&e, #"{"error":{"message":"slow down"}}"#, at: 1)
        e.finish()
        #expect(e.errorEvents == 0 && e.completionTokens == nil)
    }

    @Test("a non-streamed response over the limit gives no usage")
    func overLimit() {
        var m = LLMExchangeMeter(endpoint: .chatCompletions, maxResponseBytes: 16)
        m.responseHead(status: 200, contentType: "application/json")
        _ = feed(&m, #"{"usage":{"prompt_tokens":3,"completion_tokens":5}}"#, at: 1)
        m.finish()
        #expect(m.responseOverLimit && m.usage == nil)
    }
}

@Suite("include_usage injection")
struct IncludeUsageInjectionTests {
    private func rewrite(_ json: String) -> String? {
        IncludeUsageInjection.rewrite(Array(json.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    private func object(_ json: String) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? NSDictionary)
    }

    @Test("a streamed request without usage gets it; every other member is kept, byte for byte")
    func inserts() throws {
        let body = #"{"model":"m","messages":[{"role":"user","content":"{\"stream\":1}"}],"stream":true,"n":2}"#
        let out = try #require(rewrite(body))
        #expect(
            out
                == #"{"stream_options":{"include_usage":true},"model":"m","messages":[{"role":"user","content":"{\"stream\":1}"}],"stream":true,"n":2}"#
        )
        let before = try object(body).mutableCopy() as! NSMutableDictionary
        before["stream_options"] = ["include_usage": true]
        #expect(try object(out) == before)
    }

    @Test("stream_options without include_usage gets it; an empty one too")
    func intoOptions() throws {
        let out = try #require(rewrite(#"{ "stream" : true , "stream_options" : { "continuous_usage_stats": true } }"#))
        let options = try #require(try object(out)["stream_options"] as? NSDictionary)
        #expect(options["include_usage"] as? Bool == true && options["continuous_usage_stats"] as? Bool == true)
        let empty = try #require(rewrite(#"{"stream":true,"stream_options":{}}"#))
        #expect(empty == #"{"stream":true,"stream_options":{"include_usage":true}}"#)
    }

    /// `"stream_options": null` (the OpenAI SDKs send it) asks for nothing: replaced by the object (it was kept, and
    /// the server reported no usage); the bytes around it kept.
    @Test func aNullStreamOptionsIsReplaced() {
        #expect(
            rewrite(#"{"stream":true,"stream_options":null,"model":"m"}"#)
                == #"{"stream":true,"stream_options":{"include_usage":true},"model":"m"}"#)
        #expect(rewrite(#"{"stream":true,"stream_options":"x"}"#) == nil)
    }

    @Test("nothing changes: not streamed, already asked (even false), options not an object, not JSON")
    func leaves() {
        #expect(rewrite(#"{"model":"m","stream":false}"#) == nil)
        #expect(rewrite(#"{"model":"m"}"#) == nil)
        #expect(rewrite(#"{"stream":true,"stream_options":{"include_usage":false}}"#) == nil)
        #expect(rewrite(#"{"stream":true,"stream_options":{"include_usage":true}}"#) == nil)
        #expect(rewrite(#"{"stream":"true"}"#) == nil)
        #expect(rewrite(#"{"stream":true"#) == nil)
        #expect(rewrite(#"[{"stream":true}]"#) == nil)
    }
}
