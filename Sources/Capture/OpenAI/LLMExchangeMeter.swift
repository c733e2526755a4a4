/// Measures one request to an OpenAI-compatible server as it passes through the proxy (issue 17, docs/llm.md):
/// reads the request body's `model` and `stream` on the way, the response's events as they arrive (time to first
/// token, gaps between tokens, finish reasons, usage) or a non-streamed response whole at the end. Pure: fed bytes
/// and times (seconds since the request arrived) by its owner, one exchange, one thread.
///
/// Memory is bounded: the request is scanned, not held; a stream's events are parsed one at a time (each at most
/// 1 MiB); a non-streamed response is held up to `maxResponseBytes` (beyond, its usage is unknown).
public struct LLMExchangeMeter {
    /// Which OpenAI API a request is for (the `endpoint` label), from its path's ending.
    public enum Endpoint: Int, Sendable, CaseIterable {
        case chatCompletions, completions, embeddings, responses, other

        /// The label value.
        public var label: String {
            switch self {
            case .chatCompletions: "chat_completions"
            case .completions: "completions"
            case .embeddings: "embeddings"
            case .responses: "responses"
            case .other: "other"
            }
        }

        /// The endpoint of request path `path` (without its query): by its last segments.
        public init(path: some StringProtocol) {
            if path.hasSuffix("/chat/completions") {
                self = .chatCompletions
            } else if path.hasSuffix("/completions") {
                self = .completions
            } else if path.hasSuffix("/embeddings") {
                self = .embeddings
            } else if path.hasSuffix("/responses") {
                self = .responses
            } else {
                self = .other
            }
        }
    }

    /// What one piece of a streamed response brought: the first token's time, the gap since the previous token,
    /// and how many more tokens came in the same piece (gaps of 0: they were read together).
    public struct Arrival: Sendable, Equatable {
        /// Seconds from the request's last byte to this first content-bearing event (only once per exchange).
        public var timeToFirstToken: Double?
        /// Seconds since the previous content-bearing event (not for the first).
        public var gap: Double?
        /// Further content-bearing events in the same piece.
        public var zeroGaps = 0
        /// With `n` > 1, the gaps of the other choices that had a token in this piece (each choice's gap is from its
        /// own previous token: vLLM counts inter-token latency per sequence).
        public var moreGaps: [Double] = []

        /// Creates an arrival.
        public init(timeToFirstToken: Double? = nil, gap: Double? = nil, zeroGaps: Int = 0) {
            self.timeToFirstToken = timeToFirstToken
            self.gap = gap
            self.zeroGaps = zeroGaps
        }
    }

    /// The API the request is for.
    public let endpoint: Endpoint
    /// The request body's members read so far.
    public private(set) var request = OpenAIRequestScanner()
    /// When the request's last byte arrived (seconds since its first).
    public private(set) var requestEndedAt: Double?
    /// The response status (nil before the head).
    public private(set) var status: Int?
    /// The response is an event stream (`text/event-stream`).
    public private(set) var isEventStream = false
    /// When the first content-bearing event arrived.
    public private(set) var firstContentAt: Double?
    /// When each choice (index below 64) last had a token, for the gaps between its tokens (a gap is a choice's: two
    /// choices sent in turn, as vLLM streams `n` > 1, interleaved their gaps); made when a choice other than 0 shows.
    private var choiceLastAt: [Double] = []
    private var choice0LastAt: Double?
    /// Content-bearing choices seen in the stream (the estimate of completion tokens without `usage`).
    public private(set) var contentChunks = 0
    /// Finish reasons, counted by ``LLMFinishReason/rawValue``.
    public private(set) var finishReasons = [Int](repeating: 0, count: LLMFinishReason.allCases.count)
    /// The last `usage` the response gave.
    public private(set) var usage: LLMUsage?
    /// Error events or error objects in a successful response.
    public private(set) var errorEvents = 0
    /// Events whose data is neither JSON nor `[DONE]`, or longer than 1 MiB.
    public private(set) var malformedEvents = 0
    /// The stream said it was over: a `[DONE]` event, or a Responses API `response.completed`, `.incomplete` or
    /// `.failed` event. A client that leaves after it has the whole response (the OpenAI SDKs close the connection
    /// at `[DONE]`, before the HTTP body's last chunk).
    public private(set) var streamEnded = false
    /// `[DONE]` came: what follows it is no part of the answer (the SDKs stop reading there), so it is not measured.
    private var doneSeen = false
    /// The choices a stream gave, one bit per `index` below 64 (per chunk: two ORs, no allocation, no lookup), those
    /// that finished, and whether one had an index of 64 or more (then they are not told apart).
    private var choicesSeen: UInt64 = 0
    private var choicesFinished: UInt64 = 0
    /// Choices with an `index` of 64 or more (`n` > 64), seen and finished: at most ``maxHighChoices`` each, past
    /// which (or with an index not told apart) every finish reason counts and the choices are not all known.
    private var highSeen: Set<Int> = []
    private var highFinished: Set<Int> = []
    private var choicesUntracked = false
    static let maxHighChoices = 1024
    /// How many choices the stream gave (`n`; at least 1): a token estimate or `usage.completion_tokens` counts every
    /// choice's tokens, one choice's time per output token divides by its own.
    public var choiceCount: Int { max(1, choicesSeen.nonzeroBitCount + highSeen.count) }
    /// Every choice the stream gave has a finish reason, and as many choices as the request's `n` asked for
    /// (when it named one) did: a client that leaves then has the whole answer (the SDKs'
    /// `if chunk.choices[0].finish_reason: break` leaves before `[DONE]`). Before `n` was read, a client that left
    /// after choice 0 finished and before a server that streams its choices one after another began choice 1 was
    /// counted `ok`.
    public var allChoicesFinished: Bool {
        (choicesSeen != 0 || !highSeen.isEmpty) && !choicesUntracked && choicesFinished & choicesSeen == choicesSeen
            && highSeen.isSubset(of: highFinished)
            && choicesFinished.nonzeroBitCount + highFinished.count >= (request.choices ?? 1)
    }
    /// Every choice the response gave has a finish reason (however many the request asked for): a stream that ends
    /// so said it was over (``allChoicesFinished`` also asks for the request's `n`, to tell a client that left early).
    public var everyChoiceGivenFinished: Bool {
        (choicesSeen != 0 || !highSeen.isEmpty) && !choicesUntracked && choicesFinished & choicesSeen == choicesSeen
            && highSeen.isSubset(of: highFinished)
    }

    /// A non-streamed response was longer than `maxResponseBytes` (its usage is unknown).
    public private(set) var responseOverLimit = false

    private let maxResponseBytes: Int
    private var events = ServerSentEventParser()
    private var body: [UInt8] = []

    /// A meter for a request to `endpoint`, holding at most `maxResponseBytes` of a non-streamed response.
    public init(endpoint: Endpoint, maxResponseBytes: Int = 1 << 20) {
        self.endpoint = endpoint
        self.maxResponseBytes = maxResponseBytes
    }

    /// A piece of the request body.
    public mutating func requestBody(_ bytes: UnsafeRawBufferPointer) { request.feed(bytes) }

    /// The request's last byte arrived at `elapsed`.
    public mutating func requestEnded(elapsed: Double) { requestEndedAt = elapsed }

    /// The response head: its status and whether its `Content-Type` is `text/event-stream`.
    public mutating func responseHead(status: Int, contentType: String?) {
        self.status = status
        isEventStream = contentType.map { $0.lowercased().drop { $0 == " " }.hasPrefix("text/event-stream") } ?? false
    }

    /// A piece of the response body, read at `elapsed`.
    public mutating func responseBody(_ bytes: UnsafeRawBufferPointer, elapsed: Double) -> Arrival {
        guard let status, (200..<300).contains(status) else { return Arrival() }
        guard isEventStream else {
            if !responseOverLimit {
                if body.count + bytes.count <= maxResponseBytes {
                    body.append(contentsOf: bytes)
                } else {
                    responseOverLimit = true
                    body = []
                }
            }
            return Arrival()
        }
        // Content-bearing choices (tokens, for the estimate) and the events that carried them (arrivals, for timing:
        // with n > 1 one event carries a token of each choice at once, not n arrivals).
        var arrived = 0
        var arrival = Arrival()
        // The parser is moved out while it calls back, so that the callback may change the rest of the meter.
        var parser = ServerSentEventParser()
        swap(&parser, &events)
        defer { swap(&parser, &events) }
        parser.feed(bytes) { event in
            // After `[DONE]` nothing is measured: a client never sees it (its tokens were counted, its gaps timed).
            if doneSeen { return }
            switch event {
            case .oversized: malformedEvents += 1
            case .data(let type, let data):
                // An `event: error` is an error event whatever its data says (TGI, vLLM's router send one so).
                if ServerSentEventParser.equals(
                    UnsafeBufferPointer(
                        start: type.baseAddress?.assumingMemoryBound(to: UInt8.self), count: type.count),
                    "error")
                {
                    errorEvents += 1
                    return
                }
                // An event with empty data (a keep-alive `data:` line, dispatched as the standard says) carries
                // nothing: not malformed (it was counted so).
                if data.isEmpty { return }
                // `[DONE]` and whatever follows it on the line (`[DONE] `): the SDKs end the stream at any data that
                // starts so (it was counted malformed, the stream then judged without its end).
                if ServerSentEventParser.startsWith(
                    UnsafeBufferPointer(
                        start: data.baseAddress?.assumingMemoryBound(to: UInt8.self), count: data.count),
                    "[DONE]")
                {
                    streamEnded = true
                    doneSeen = true
                    return
                }
                guard let document = OpenAIDocument(parsing: data) else {
                    malformedEvents += 1
                    return
                }
                arrived += document.contentChoices
                if document.contentChoices > 0 { contentArrived(document.contentChoiceBits, elapsed, &arrival) }
                add(document)
            }
        }
        guard arrived > 0 else { return Arrival() }
        contentChunks += arrived
        return arrival
    }

    /// An event with content for the choices in `bits` (none: choice 0's) arrived at `elapsed`: the stream's first
    /// token (its time to first token), or each choice's gap since its own previous token (0 for a second event of the
    /// piece); a choice's first token after the stream's has no gap.
    private mutating func contentArrived(_ bits: UInt64, _ elapsed: Double, _ arrival: inout Arrival) {
        if firstContentAt == nil {
            firstContentAt = elapsed
            arrival.timeToFirstToken = elapsed - (requestEndedAt ?? 0)
        }
        var rest = bits == 0 ? 1 : bits
        while rest != 0 {
            let choice = rest.trailingZeroBitCount
            rest &= rest &- 1
            let last: Double?
            if choice == 0 {
                last = choice0LastAt
                choice0LastAt = elapsed
            } else {
                if choiceLastAt.isEmpty { choiceLastAt = [Double](repeating: .nan, count: 64) }
                last = choiceLastAt[choice].isNaN ? nil : choiceLastAt[choice]
                choiceLastAt[choice] = elapsed
            }
            guard let last else { continue }
            let gap = elapsed - last
            if gap == 0 {
                arrival.zeroGaps += 1
            } else if arrival.gap == nil {
                arrival.gap = gap
            } else {
                arrival.moreGaps.append(gap)
            }
        }
    }

    private mutating func add(_ document: OpenAIDocument) {
        // A choice's finish reason once, though a later chunk (the one with `usage`) may repeat it. (Before, a choice
        // with an index of 64 or more counted each repeat.)
        for (reason, choice) in zip(document.finishReasons, document.finishReasonChoices) {
            let first: Bool
            if choice < 0 {
                first = true
            } else if choice < 64 {
                first = choicesFinished & (1 &<< UInt64(choice)) == 0
            } else if highFinished.count < Self.maxHighChoices {
                first = highFinished.insert(choice).inserted
            } else {
                first = !highFinished.contains(choice)
                choicesUntracked = true
            }
            if first { finishReasons[reason.rawValue] += 1 }
        }
        choicesSeen |= document.choices
        choicesFinished |= document.finishedChoices
        for choice in document.highChoices {
            if highSeen.count < Self.maxHighChoices { highSeen.insert(choice) } else { choicesUntracked = true }
        }
        if document.choiceUnidentified { choicesUntracked = true }
        if let u = document.usage { usage = u }
        if document.isError { errorEvents += 1 }
        if document.endsStream { streamEnded = true }
    }

    /// The response ended (whole or not): reads a non-streamed response's body.
    public mutating func finish() {
        guard let status, (200..<300).contains(status), !isEventStream, !body.isEmpty else { return }
        let document = body.withUnsafeBytes { OpenAIDocument(parsing: $0) }
        body = []
        guard let document else {
            malformedEvents += 1
            return
        }
        add(document)
    }

    /// Completion tokens: from `usage` when the response gave it, else (a stream) the content-bearing choices.
    public var completionTokens: (count: Int, estimated: Bool)? {
        if let c = usage?.completionTokens { return (c, false) }
        if isEventStream { return (contentChunks, true) }
        return nil
    }

    /// Seconds from the request's last byte to the first token, for a stream that produced one.
    public var timeToFirstToken: Double? {
        guard let first = firstContentAt else { return nil }
        return first - (requestEndedAt ?? 0)
    }
}
