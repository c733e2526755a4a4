// The LLM meter (`LLMExchangeMeter`, issue 17) on the stream the proxy sees most: a vLLM-style chat completion, one
// `chat.completion.chunk` event per token, each read on its own (100 interleaved streams: one event per socket
// read). ns and allocations per chunk, and a target for valgrind/callgrind.
//
//     cd Benchmarks && BENCHMARK_DISABLE_MALLOC_INTERPOSER=1 swift build -c release --product llm-meter-profile \
//         --scratch-path .build-noint
//     .build-noint/release/llm-meter-profile 2000 500      # 2,000 streams of 500 chunks
//     objcopy --strip-debug .build-noint/release/llm-meter-profile /tmp/llm-meter-profile
//     valgrind --tool=callgrind --toggle-collect='*measured*' /tmp/llm-meter-profile 20 500
import Capture
import CaptureMallocCounter

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Event `i` of a stream as vLLM writes it (one token of content; the last with its finish reason and usage).
func event(_ i: Int, of n: Int) -> [UInt8] {
    let finish = i == n - 1 ? #""stop""# : "null"
    let usage = i == n - 1 ? #","usage":{"prompt_tokens":42,"completion_tokens":\#(n)}"# : ""
    let json =
        #"{"id":"chatcmpl-8f2c1e","object":"chat.completion.chunk","created":1767225600,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":" tok\#(i)"},"logprobs":null,"finish_reason":\#(finish)}]\#(usage)}"#
    return Array("data: \(json)\n\n".utf8)
}

let request = Array(
    #"{"model":"meta-llama/Llama-3.1-8B-Instruct","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#.utf8)

/// Meters `streams` streams of `chunks` events each; returns the tokens seen (so nothing is optimised away).
@inline(never)
func measuredStreams(_ streams: Int, _ chunks: [[UInt8]]) -> Int {
    var tokens = 0
    for _ in 0..<streams {
        var meter = LLMExchangeMeter(endpoint: .chatCompletions)
        request.withUnsafeBytes { meter.requestBody($0) }
        meter.requestEnded(elapsed: 0.001)
        meter.responseHead(status: 200, contentType: "text/event-stream")
        var t = 0.01
        for chunk in chunks {
            t += 0.01
            _ = chunk.withUnsafeBytes { meter.responseBody($0, elapsed: t) }
        }
        _ = Array("data: [DONE]\n\n".utf8).withUnsafeBytes { meter.responseBody($0, elapsed: t) }
        meter.finish()
        tokens += meter.completionTokens?.count ?? 0
    }
    return tokens
}

func threadCPUNanos() -> Int {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return t.tv_sec * 1_000_000_000 + t.tv_nsec
}

let args = CommandLine.arguments
guard args.count == 3, let streams = Int(args[1]), let n = Int(args[2]), streams > 0, n > 1, streams * n <= 1 << 32
else {
    print("usage: llm-meter-profile STREAMS CHUNKS")
    exit(2)
}
let chunks = (0..<n).map { event($0, of: n) }
precondition(measuredStreams(10, chunks) == 10 * n)
let mallocs = capture_malloc_count()
let cpuStart = threadCPUNanos()
let tokens = measuredStreams(streams, chunks)
let cpu = Double(threadCPUNanos() - cpuStart)
let allocations = Double(capture_malloc_count() - mallocs)
precondition(tokens == streams * n)
let total = Double(streams * (n + 1))
let bytes = chunks.reduce(0) { $0 + $1.count } / n
print(
    "\(streams) streams × \(n) chunks (~\(bytes) bytes each): \(Int((cpu / total).rounded())) ns CPU/chunk, "
        + "\(Double(Int(allocations / total * 100)) / 100) mallocs/chunk, \(Int(1e9 / (cpu / total))) chunks/s on one core"
)
