import Ingestion

/// Why a choice (or a response) finished, as the LLM metrics count it (`reason` label values, in this order).
public enum LLMFinishReason: Int, Sendable, CaseIterable {
    case stop, length, toolCalls, contentFilter, functionCall, error, other

    /// The label value.
    public var label: String {
        switch self {
        case .stop: "stop"
        case .length: "length"
        case .toolCalls: "tool_calls"
        case .contentFilter: "content_filter"
        case .functionCall: "function_call"
        case .error: "error"
        case .other: "other"
        }
    }

    /// The reason of an OpenAI `finish_reason` value (an unknown one is ``other``).
    static func of(_ tape: JSONTape, _ node: Int) -> LLMFinishReason {
        for reason in allCases where reason != .other && tape.string(node, is: reason.label) { return reason }
        return .other
    }
}

/// Token counts an OpenAI response reports (`usage`); each nil when absent.
public struct LLMUsage: Sendable, Equatable {
    /// `prompt_tokens` (`input_tokens`).
    public var promptTokens: Int?
    /// `completion_tokens` (`output_tokens`).
    public var completionTokens: Int?
    /// `prompt_tokens_details.cached_tokens` (`input_tokens_details.cached_tokens`).
    public var cachedTokens: Int?
    /// One of those members was present (not `null`) but no count: not a whole number in 0..<1e15 (a string, a
    /// fraction, a negative number, 1e18). Its count is nil; the exchange is counted as a capture failure.
    public var hasInvalidCount: Bool

    /// Creates usage counts.
    public init(
        promptTokens: Int? = nil, completionTokens: Int? = nil, cachedTokens: Int? = nil,
        hasInvalidCount: Bool = false
    ) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
        self.hasInvalidCount = hasInvalidCount
    }
}

/// What one OpenAI JSON document says for the metrics: a streamed event's data (a `chat.completion.chunk`, a
/// `text_completion` chunk, a Responses API event) or a whole non-streamed response (chat, completions, embeddings,
/// responses).
public struct OpenAIDocument: Sendable, Equatable {
    /// Choices (or Responses API deltas) in it that carry generated output: non-empty `delta.content`,
    /// `delta.reasoning_content`, `delta.refusal`, `delta.tool_calls`, `delta.function_call`, `delta.audio`'s
    /// `transcript` or `data`, `text`; `response.*.delta` events with a non-empty `delta`. In a stream each is one
    /// output token as far as the proxy can tell.
    public var contentChoices = 0
    /// Finish reasons given, one per choice that finished (or the response's outcome).
    public var finishReasons: [LLMFinishReason] = []
    /// The choice of each of ``finishReasons``, its `index` (-1: a Responses API outcome, or an `index` that is no
    /// integer in 0..<1,000,000): a stream may repeat a choice's finish reason in a later chunk (with `usage`),
    /// counted once.
    public var finishReasonChoices: [Int] = []
    /// The `usage` object, when present and not null.
    public var usage: LLMUsage?
    /// The document is an error (`error` member, an `error` event, a failed response).
    public var isError = false
    /// The choices (one bit per `index` below 64) that carried content in this document (a Responses API delta, or
    /// a choice of a higher index, sets none: it counts as choice 0's, for the gaps between tokens).
    public var contentChoiceBits: UInt64 = 0
    /// A Responses API event that ends its stream (`response.completed`, `response.incomplete`, `response.failed`).
    public var endsStream = false
    /// The choices in it, one bit per `index` (its position when it has none) below 64; no allocation per event.
    public var choices: UInt64 = 0
    /// The choices in it that gave a finish reason, as ``choices``.
    public var finishedChoices: UInt64 = 0
    /// The choices in it with an `index` from 64 to 999,999 (`n` > 64: rare; listed, not bits).
    public var highChoices: [Int] = []
    /// A choice in it has an `index` that is no integer in 0..<1,000,000 (not told apart).
    public var choiceUnidentified = false
    /// The choices of an index of 64 or more that gave a finish reason here (empty, unallocated, for most events).
    private var highFinished: Set<Int> = []

    /// A document that says nothing.
    public init() {}

    /// Reads `bytes` (one JSON document); nil when it is not JSON.
    public init?(parsing bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
            let tape = try? JSONTape(parsing: UnsafeBufferPointer(start: base, count: bytes.count))
        else { return nil }
        self.init()
        read(tape)
    }

    private mutating func read(_ t: JSONTape) {
        guard t.nodes[0].kind == .object else { return }
        if let e = t.member(0, "error"), t.nodes[e].kind != .null { isError = true }
        if let type = t.member(0, "type"), t.nodes[type].kind == .string {
            readResponsesEvent(t, type: type)
        }
        if let object = t.member(0, "object"), t.nodes[object].kind == .string, t.string(object, is: "response") {
            readResponse(t, 0)
        }
        if let choices = t.member(0, "choices"), t.nodes[choices].kind == .array {
            var c = choices + 1
            for position in 0..<t.nodes[choices].count {
                readChoice(t, c, position: position)
                c = t.nodes[c].next
            }
        }
        if let u = t.member(0, "usage"), t.nodes[u].kind == .object { usage = Self.usage(t, u) }
    }

    private mutating func readChoice(_ t: JSONTape, _ c: Int, position: Int) {
        guard t.nodes[c].kind == .object else { return }
        var index = position
        if let i = t.member(c, "index"), t.nodes[i].kind == .number {
            let x = t.nodes[i].number
            index = x >= 0 && x < 1_000_000 && x == x.rounded() ? Int(x) : -1
        }
        let bit: UInt64 = index >= 0 && index < 64 ? 1 &<< UInt64(index) : 0
        if index < 0 { choiceUnidentified = true } else if index >= 64 { highChoices.append(index) }
        choices |= bit
        var content = false
        if let delta = t.member(c, "delta"), t.nodes[delta].kind == .object {
            func nonEmpty(_ key: String, in object: Int? = nil) -> Bool {
                guard let v = t.member(object ?? delta, key) else { return false }
                return t.nodes[v].kind == .string && t.nodes[v].end > t.nodes[v].start
            }
            if nonEmpty("content") || nonEmpty("reasoning_content") || nonEmpty("reasoning") || nonEmpty("refusal") {
                content = true
            }
            // Audio output (`modalities: ["audio"]`): its transcript or its data.
            if let a = t.member(delta, "audio"), t.nodes[a].kind == .object,
                nonEmpty("transcript", in: a) || nonEmpty("data", in: a)
            {
                content = true
            }
            if let v = t.member(delta, "tool_calls"), t.nodes[v].kind == .array, t.nodes[v].count > 0 { content = true }
            if let v = t.member(delta, "function_call"), t.nodes[v].kind == .object { content = true }
        }
        if let v = t.member(c, "text"), t.nodes[v].kind == .string, t.nodes[v].end > t.nodes[v].start { content = true }
        if content {
            contentChoices += 1
            contentChoiceBits |= bit
        }
        // Not finished: null (or no member). Any other value is a reason: a string's own, `other` for the rest (a
        // number was counted nowhere).
        if let f = t.member(c, "finish_reason"), t.nodes[f].kind != .null {
            // Once per choice here too (a choice listed twice in one chunk).
            // A set for the high indices (a list searched would be quadratic: ~27,000 choices fit in a 1 MiB event).
            let repeated =
                index >= 64 ? !highFinished.insert(index).inserted : index >= 0 && finishedChoices & bit != 0
            if !repeated {
                let reason = t.nodes[f].kind == .string ? LLMFinishReason.of(t, f) : .other
                finishReasons.append(reason)
                finishReasonChoices.append(index)
                // A choice the server ended with an error (vLLM's `finish_reason: "error"`): the request failed, as
                // a Responses API `failed` event says (it was ok, and within every objective).
                if reason == .error { isError = true }
            }
            finishedChoices |= bit
        }
    }

    /// A Responses API streaming event (`type`).
    private mutating func readResponsesEvent(_ t: JSONTape, type: Int) {
        let raw = t.rawBytes(type)
        if Self.hasPrefix(raw, "response."), Self.hasSuffix(raw, ".delta") {
            if let d = t.member(0, "delta"), t.nodes[d].kind == .string, t.nodes[d].end > t.nodes[d].start {
                contentChoices += 1
            }
        } else if t.string(type, is: "response.completed") || t.string(type, is: "response.incomplete")
            || t.string(type, is: "response.failed")
        {
            endsStream = true
            if let r = t.member(0, "response"), t.nodes[r].kind == .object { readResponse(t, r) }
        } else if t.string(type, is: "error") {
            isError = true
        }
    }

    private static func hasPrefix(_ bytes: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        return bytes.count >= n && ServerSentEventParser.equals(UnsafeBufferPointer(rebasing: bytes[..<n]), text)
    }

    private static func hasSuffix(_ bytes: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        return bytes.count >= n
            && ServerSentEventParser.equals(UnsafeBufferPointer(rebasing: bytes[(bytes.count - n)...]), text)
    }

    /// A Responses API `response` object: its status and usage.
    private mutating func readResponse(_ t: JSONTape, _ r: Int) {
        if let s = t.member(r, "status"), t.nodes[s].kind == .string {
            if t.string(s, is: "completed") {
                finishReasons.append(.stop)
                finishReasonChoices.append(-1)
            } else if t.string(s, is: "incomplete") {
                var reason = LLMFinishReason.other
                if let d = t.member(r, "incomplete_details"), t.nodes[d].kind == .object,
                    let why = t.member(d, "reason"), t.nodes[why].kind == .string
                {
                    if t.string(why, is: "max_output_tokens") { reason = .length }
                    if t.string(why, is: "content_filter") { reason = .contentFilter }
                }
                finishReasons.append(reason)
                finishReasonChoices.append(-1)
            } else if t.string(s, is: "failed") {
                finishReasons.append(.error)
                finishReasonChoices.append(-1)
                isError = true
            }
        }
        if let u = t.member(r, "usage"), t.nodes[u].kind == .object { usage = Self.usage(t, u) }
    }

    /// `usage`: chat and completions (`prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`)
    /// or the Responses API (`input_tokens`, `output_tokens`, `input_tokens_details.cached_tokens`).
    static func usage(_ t: JSONTape, _ u: Int) -> LLMUsage {
        var invalid = false
        func count(_ node: Int, _ key: String) -> Int? {
            guard let v = t.member(node, key), t.nodes[v].kind != .null else { return nil }
            let x = t.nodes[v].kind == .number ? t.nodes[v].number : -1
            guard x >= 0, x < 1e15, x == x.rounded() else {
                invalid = true
                return nil
            }
            return Int(x)
        }
        func details(_ key: String) -> Int? {
            guard let d = t.member(u, key), t.nodes[d].kind == .object else { return nil }
            return count(d, "cached_tokens")
        }
        var usage = LLMUsage(
            promptTokens: count(u, "prompt_tokens") ?? count(u, "input_tokens"),
            completionTokens: count(u, "completion_tokens") ?? count(u, "output_tokens"),
            cachedTokens: details("prompt_tokens_details") ?? details("input_tokens_details"))
        usage.hasInvalidCount = invalid
        return usage
    }
}
