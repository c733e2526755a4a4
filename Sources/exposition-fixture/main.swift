import Exposition

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// exposition-fixture: renders registries for the Python conformance tests in tests/conformance.
///
///     exposition-fixture fixture --out DIR
///     exposition-fixture random --seed N --count K --out DIR
///     exposition-fixture scenario NAME --out DIR
///     exposition-fixture scenarios
///
/// Every mode writes text.prom and openmetrics.txt (plus second renders text.2.prom and
/// openmetrics.2.txt, openmetrics_created.txt and text_created.prom from an `emitCreated` twin where
/// it applies) and expected.json, the samples computed from the values the fixture fed in.

let usage = """
    usage: exposition-fixture fixture --out DIR
           exposition-fixture random --seed N --count K --out DIR
           exposition-fixture scenario NAME --out DIR
           exposition-fixture scenarios
    """

func option(_ name: String, in args: [String]) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

func runFixture(out: String) throws {
    try writeBundle(
        try Fixture.plan(), to: out,
        extra: [
            (
                "content_types",
                .object([
                    ("text", .string(ExpositionFormat.text.contentType)),
                    ("openmetrics", .string(ExpositionFormat.openMetrics.contentType)),
                ])
            )
        ])
}

func runRandom(seed: UInt64, count: Int, out: String) throws {
    var planner = RandomPlanner(seed: seed)
    try writeBundle(try planner.plan(count: count), to: out, extra: [("seed", .uint(seed))])
}

func main() -> Int32 {
    let args = Array(CommandLine.arguments.dropFirst())
    guard let mode = args.first else {
        Output.printError(usage)
        return 2
    }
    do {
        switch mode {
        case "fixture":
            guard let out = option("--out", in: args) else { break }
            try runFixture(out: out)
            return 0
        case "random":
            guard let out = option("--out", in: args), let seed = option("--seed", in: args).flatMap({ UInt64($0) }),
                let count = option("--count", in: args).flatMap({ Int($0) }), count >= 0
            else { break }
            try runRandom(seed: seed, count: count, out: out)
            return 0
        case "scenario":
            guard args.count >= 2, let out = option("--out", in: args) else { break }
            guard let scenario = Scenarios.all[args[1]] else {
                Output.printError("unknown scenario \(args[1]); known: \(Scenarios.all.keys.sorted())")
                return 2
            }
            try Output.makeDirectories(out)
            try scenario(out)
            return 0
        case "scenarios":
            for name in Scenarios.all.keys.sorted() { print(name) }
            return 0
        default:
            break
        }
    } catch {
        Output.printError("\(error)")
        return 1
    }
    Output.printError(usage)
    return 2
}

exit(main())
