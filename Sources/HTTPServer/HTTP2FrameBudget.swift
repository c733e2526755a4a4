/// The budget of HTTP/2 frames one connection may send that ask nothing of the server (CVE-2019-9513/9518 and their
/// kin): PRIORITY, WINDOW_UPDATE, PING, SETTINGS, RST_STREAM, empty DATA, DATA on a stream already closed, unknown
/// extension frames, HEADERS that are refused. Each costs the event loop little, but one connection sending them as
/// fast as loopback allows kept a loop 65-90 % busy; nghttp2 1.52 bounds only some of them (queued PING and SETTINGS
/// replies, RST_STREAM), and newer releases' "glitch" limit is not in the installed version.
///
/// Every frame received costs one token, counted from the frame headers in the bytes handed to nghttp2 (so frames
/// nghttp2 discards without a callback, an unknown type or DATA of a closed stream, are counted too). Useful work earns
/// tokens back: a DATA frame that carries body bytes or ends a stream is refunded (``refund()``), a request handed to
/// the handler earns ``creditPerRequest`` (its HEADERS and CONTINUATIONs, a few PRIORITY and WINDOW_UPDATE frames,
/// a reset), and each DATA frame sent earns ``creditPerDataFrameSent`` plus one token per KiB of its payload (the
/// WINDOW_UPDATEs a reader sends for what it receives: at most one per DATA frame and level, or, as Go's client does,
/// one per 4 KiB). Time refills the budget at ``refillPerSecond`` up to ``burst`` (pings, settings, a client's own
/// rhythm). Earned tokens are not capped: the useless frames a peer may send stay in proportion to the work it had
/// the server do. A frame beyond the tokens is a flood: it and the rest of the input never reach nghttp2, the session
/// sends GOAWAY(ENHANCE_YOUR_CALM) and closes, counted in `mlops_exporter_http_errors_total{reason="bad_request"}` as
/// nghttp2's own flood limits are.
///
/// Frames are charged in runs as they are handed to nghttp2: when the tokens run out at a frame, the frames before it
/// go to nghttp2 first (``ranOut``), so that their refunds and credits count, and the frame is charged again
/// (``resume()``); only a frame that finds no token once everything before it was handed over is a flood. Before, a
/// whole read was charged first: a body sent as 2,000 DATA frames of 32 bytes in one write, within its window, ran
/// out before any of its refunds.
///
/// RST_STREAM frames have a bound of their own besides (rapid reset, CVE-2023-44487): ``resetBurst`` at once, then
/// ``resetsPerSecond``, nghttp2's defaults, whose own limit (set looser, see ``HTTP2Session``) ended the connection
/// with GOAWAY(INTERNAL_ERROR), which tells the client the server failed; beyond this one it is a flood as above,
/// GOAWAY(ENHANCE_YOUR_CALM).
///
/// Cost per frame: a decrement while the frame headers are walked (no lookup, no clock read); the clock is read once
/// per batch of input, for the refill.
struct HTTP2FrameBudget {
    /// RST_STREAM frames a connection may send at once, and the most time gives back (nghttp2's default).
    static let resetBurst = 1000
    /// RST_STREAM frames time gives back per second (nghttp2's default).
    static let resetsPerSecond = 33
    /// The RST_STREAM frames left.
    private(set) var resets = Self.resetBurst
    /// When time last refilled ``resets`` (monotonic ns); advanced by whole frames only.
    private var resetsRefilledAt: UInt64
    /// The type byte of a frame header that straddles two batches of input.
    private var partialType: UInt8 = 0

    /// Tokens a connection starts with, and the most time gives back.
    static let burst = 1000
    /// Tokens time gives back per second, up to ``burst``.
    static let refillPerSecond = 100
    /// Tokens earned by each request handed to the handler.
    static let creditPerRequest = 32
    /// Tokens earned by each DATA frame sent (the stream's and the connection's WINDOW_UPDATE for it).
    static let creditPerDataFrameSent = 2

    /// The tokens left.
    private(set) var tokens = Self.burst
    /// When time last refilled the tokens (monotonic ns); advanced by whole tokens only.
    private var refilledAt: UInt64
    /// Bytes to pass over before the next frame header: the 24-byte client preface first, then each frame's payload.
    private var skip: Int
    /// The first five bytes (length, type, flags) of a frame header that straddles two batches of input.
    private var partialHeader: UInt64 = 0
    /// How many bytes of the frame header under way were seen (0 between frames).
    private var headerBytesSeen = 0

    /// A budget for a connection whose input starts with `prefaceBytes` bytes of client preface, at `now`.
    init(now: UInt64, prefaceBytes: Int = 24) {
        refilledAt = now
        resetsRefilledAt = now
        skip = prefaceBytes
    }

    /// Whether the peer sent a frame beyond its allowance (set by ``charge(_:)`` or ``resume()``, for good).
    private(set) var isExhausted = false
    /// The last ``charge(_:)`` stopped before a frame for want of a token: hand over what it allowed, then
    /// ``resume()``.
    private(set) var ranOut = false

    /// Gives back the tokens (and RST_STREAM frames) time earned since the last refill, up to their bursts.
    mutating func refill(now: UInt64) {
        Self.refill(&resets, at: &resetsRefilledAt, now: now, burst: Self.resetBurst, rate: Self.resetsPerSecond)
        Self.refill(&tokens, at: &refilledAt, now: now, burst: Self.burst, rate: Self.refillPerSecond)
    }

    /// Adds to `tokens` what `rate` per second earned since `refilledAt`, up to `burst`; `refilledAt` advances by the
    /// whole tokens earned only.
    private static func refill(_ tokens: inout Int, at refilledAt: inout UInt64, now: UInt64, burst: Int, rate: Int) {
        guard now > refilledAt else { return }
        guard tokens < burst else {
            refilledAt = now
            return
        }
        let rate = UInt64(rate)
        let elapsed = now - refilledAt
        let earned = elapsed / 1_000_000_000 * rate + elapsed % 1_000_000_000 * rate / 1_000_000_000
        guard earned > 0 else { return }
        if earned >= UInt64(burst - tokens) {
            tokens = burst
            refilledAt = now
        } else {
            tokens += Int(earned)
            refilledAt += earned * 1_000_000_000 / rate
        }
    }

    /// Charges one token per frame whose header starts in `bytes`, the next bytes of the connection's input, and
    /// returns how many of them may be handed to nghttp2: all, or, when the tokens run out, those before the header of
    /// the first frame beyond them. Then ``ranOut`` is true and that frame is not consumed: the next call starts at its
    /// header (after ``resume()``); a frame whose header began in an earlier call (all of which was handed over) is
    /// beyond the allowance at once (``isExhausted``, for good).
    mutating func charge(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        ranOut = false
        guard !isExhausted else { return 0 }
        var offset = 0
        let count = bytes.count
        while offset < count {
            if skip > 0 {
                let passed = min(skip, count - offset)
                skip -= passed
                offset += passed
                continue
            }
            let headerStart = offset - headerBytesSeen
            let length: Int
            let type: UInt8
            if headerBytesSeen == 0 && count - offset >= 9 {
                // The whole header is here: its 24-bit length and its type are all that is needed.
                length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
                type = bytes[offset + 3]
                offset += 9
            } else {
                while headerBytesSeen < 9 && offset < count {
                    if headerBytesSeen < 3 { partialHeader = partialHeader << 8 | UInt64(bytes[offset]) }
                    if headerBytesSeen == 3 { partialType = bytes[offset] }
                    headerBytesSeen += 1
                    offset += 1
                }
                guard headerBytesSeen == 9 else { return count }
                length = Int(partialHeader)
                type = partialType
                partialHeader = 0
                headerBytesSeen = 0
            }
            guard tokens > 0 else {
                guard headerStart >= 0 else {
                    isExhausted = true
                    return 0
                }
                // Not consumed: charged again from its header once what comes before it was handed over.
                ranOut = true
                skip = 0
                return headerStart
            }
            if type == 3 {  // RST_STREAM: beyond its own bound, a flood whatever the tokens
                guard resets > 0 else {
                    isExhausted = true
                    return max(0, headerStart)
                }
                resets -= 1
            }
            tokens -= 1
            skip = length
        }
        return count
    }

    /// After ``ranOut``, once the frames before it were handed to nghttp2 (their refunds and credits in): whether the
    /// frame it stopped at may be charged now; false when no token came back (``isExhausted``, for good).
    mutating func resume() -> Bool {
        ranOut = false
        guard tokens > 0 else {
            isExhausted = true
            return false
        }
        return true
    }

    /// Gives back the token of a frame that did work (a DATA frame with body bytes or END_STREAM).
    mutating func refund() {
        tokens += 1
    }

    /// Adds `count` tokens earned by work (a request handed over, DATA sent).
    mutating func credit(_ count: Int) {
        tokens += count
    }

    /// The tokens a DATA frame of `payloadBytes` sent earns.
    static func credit(forDataFrameOf payloadBytes: Int) -> Int {
        creditPerDataFrameSent + payloadBytes / 1024
    }
}
