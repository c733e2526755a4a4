import Ingestion

/// The request rewrite of the proxy's opt-in `inject_include_usage` (docs/llm.md): a streamed OpenAI request that does
/// not ask for usage gets `"stream_options": {"include_usage": true}`, so that the server reports its token counts
/// in a last chunk instead of the proxy estimating them.
public enum IncludeUsageInjection {
    /// `body` with `include_usage: true` added when it is a JSON object with `stream: true` and neither
    /// `stream_options.include_usage` (any value: a client's explicit `false` is kept) nor a `stream_options` that is
    /// neither an object nor null (null is replaced); nil when nothing is to change (not JSON, not streamed, already
    /// set). The insertion is textual
    /// (after the object's `{`), so every other byte of the body is kept.
    public static func rewrite(_ body: [UInt8]) -> [UInt8]? {
        body.withUnsafeBufferPointer { bytes -> [UInt8]? in
            guard let tape = try? JSONTape(parsing: bytes), tape.nodes[0].kind == .object,
                let stream = tape.member(0, "stream"), tape.nodes[stream].kind == .bool, tape.nodes[stream].flag
            else { return nil }
            let insertAt: Int
            var replacedUpTo: Int? = nil
            let text: String
            if let options = tape.member(0, "stream_options"), tape.nodes[options].kind == .null {
                // `"stream_options": null` asks for nothing (the OpenAI SDKs send it so): replaced (it was kept, and
                // the server reported no usage).
                insertAt = tape.nodes[options].start
                replacedUpTo = tape.nodes[options].end
                text = #"{"include_usage":true}"#
            } else if let options = tape.member(0, "stream_options") {
                guard tape.nodes[options].kind == .object, tape.member(options, "include_usage") == nil else {
                    return nil
                }
                insertAt = tape.nodes[options].start + 1
                text = tape.nodes[options].count == 0 ? #""include_usage":true"# : #""include_usage":true,"#
            } else {
                insertAt = tape.nodes[0].start + 1  // the object has a member at least (`stream`)
                text = #""stream_options":{"include_usage":true},"#
            }
            var out: [UInt8] = []
            out.reserveCapacity(body.count + text.utf8.count)
            out.append(contentsOf: bytes[..<insertAt])
            out.append(contentsOf: text.utf8)
            out.append(contentsOf: bytes[(replacedUpTo ?? insertAt)...])
            return out
        }
    }
}
