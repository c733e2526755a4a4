import Testing

@testable import Capture

/// The default routes of the configuration, in their order.
private let defaultRoutes = [
    ProxyRouteTable.Route(pattern: "/v2/models/{model}/versions/{version}/infer", version: .path),
    ProxyRouteTable.Route(pattern: "/v2/models/{model}/infer"),
    ProxyRouteTable.Route(pattern: "/v1/models/{model}:predict"),
]

private let models = ["fraud", "credit", "churn-v2"]

/// A header lookup over `headers`, by name in any case.
private func headers(_ headers: [String: String]) -> (String) -> String? {
    { name in headers.first { $0.key.lowercased() == name.lowercased() }?.value }
}

private func match(
    _ table: ProxyRouteTable, _ path: String, method: String = "POST", _ headerValues: [String: String] = [:]
) -> ProxyRouteMatch? {
    table.match(method: method, path: path, header: headers(headerValues))
}

/// The field and message of the error building a table of `routes` throws, or nil.
private func buildError(_ routes: [ProxyRouteTable.Route], models: [String] = models) -> String? {
    do {
        _ = try ProxyRouteTable(routes: routes, modelNames: models)
        return nil
    } catch {
        return error.description
    }
}

@Suite("The proxy's route table")
struct ProxyRouteTableTests {
    @Test("the word-at-a-time search for '%' agrees with a byte-by-byte one, at every length and position")
    func percentSearch() {
        for count in 0...40 {
            let clean = [UInt8](repeating: UInt8(ascii: "a"), count: count)
            #expect(clean.withUnsafeBytes { ProxyRouteTable.hasPercent($0) } == false)
            for position in 0..<count {
                for byte: UInt8 in [UInt8(ascii: "%"), 0xA5, 0x24, 0x26] {
                    var path = clean
                    path[position] = byte
                    #expect(path.withUnsafeBytes { ProxyRouteTable.hasPercent($0) } == path.contains(UInt8(ascii: "%")))
                }
            }
        }
    }

    @Test("the default routes take KServe v1 and Open Inference v2 paths")
    func defaults() throws {
        let table = try ProxyRouteTable(routes: defaultRoutes, modelNames: models)
        #expect(
            match(table, "/v2/models/credit/versions/3/infer")
                == ProxyRouteMatch(route: 0, model: .configured(1), version: "3"))
        #expect(
            match(table, "/v2/models/credit/infer") == ProxyRouteMatch(route: 1, model: .configured(1), version: nil))
        #expect(match(table, "/v2/models/fraud/infer")?.model == .configured(0))
        #expect(
            match(table, "/v1/models/churn-v2:predict")
                == ProxyRouteMatch(route: 2, model: .configured(2), version: nil))
        #expect(match(table, "/v2/models/churn/infer")?.model == .unknown("churn"))
        // Percent-encoded unreserved characters name the same path (RFC 3986 §6.2.2.2; model servers decode them
        // before routing): before, `cr%65dit` was an unknown model, its traffic on no series of `credit`'s.
        #expect(
            match(table, "/v2/models/cr%65dit/infer") == ProxyRouteMatch(route: 1, model: .configured(1), version: nil))
        #expect(match(table, "/v2/models/%63%72%45dit/infer")?.model == .unknown("crEdit"))
        #expect(
            match(table, "/v2/models/credit/versions/v%31%2e%7E/infer")
                == ProxyRouteMatch(route: 0, model: .configured(1), version: "v1.~"))
        // Other escapes stay: `%2F` is no segment boundary, and an escape that is none is read as sent.
        #expect(match(table, "/v2/models/cr%2Fedit/infer")?.model == .unknown("cr%2Fedit"))
        #expect(match(table, "/v2/models/credit%6/infer")?.model == .unknown("credit%6"))
        #expect(match(table, "/v2/models/credit%/infer")?.model == .unknown("credit%"))
        // The placeholder ends at the first ':', so a name with a ':' does not reach ":predict".
        #expect(match(table, "/v1/models/a:b:predict") == nil)
        for other in [
            "/v2/models/credit/ready", "/v1/models/credit:explain", "/v2/models/credit", "/v2/health/live", "/",
            "/v2/models/credit/versions/3/infer/x", "/v2/models/credit/versions/infer",
        ] {
            #expect(match(table, other) == nil, "\(other)")
        }
    }

    @Test("a trailing slash or an empty placeholder does not match")
    func exactPaths() throws {
        let table = try ProxyRouteTable(routes: defaultRoutes, modelNames: models)
        for path in [
            "/v2/models/m/infer/", "/v2/models//infer", "/v1/models/:predict", "/v2/models/credit/versions//infer",
            "//v2/models/m/infer", "/v2/models/a/b/infer", "",
        ] {
            #expect(match(table, path) == nil, "\(path)")
        }
        let last = try ProxyRouteTable(routes: [.init(pattern: "/m/{model}")], modelNames: models)
        #expect(match(last, "/m/credit")?.model == .configured(1))
        #expect(match(last, "/m/") == nil && match(last, "/m/credit/") == nil && match(last, "/m") == nil)
    }

    @Test("methods are compared exactly")
    func methods() throws {
        let table = try ProxyRouteTable(
            routes: [.init(pattern: "/v2/models/{model}/infer", methods: ["POST", "PUT"])], modelNames: models)
        #expect(match(table, "/v2/models/credit/infer", method: "PUT")?.route == 0)
        #expect(match(table, "/v2/models/credit/infer", method: "GET") == nil)
        #expect(match(table, "/v2/models/credit/infer", method: "post") == nil)
    }

    @Test("model and version from headers; a route whose model header is missing lets a later one match")
    func headerSources() throws {
        let table = try ProxyRouteTable(
            routes: [
                .init(pattern: "/invocations", model: .header("X-Model"), version: .header("X-Model-Version")),
                .init(pattern: "/invocations", model: .fixed("credit"), version: .fixed("v2")),
            ], modelNames: models)
        #expect(
            match(table, "/invocations", ["x-model": "fraud", "X-MODEL-VERSION": "7"])
                == ProxyRouteMatch(route: 0, model: .configured(0), version: "7"))
        #expect(
            match(table, "/invocations", ["X-Model": "ghost"])
                == ProxyRouteMatch(route: 0, model: .unknown("ghost"), version: nil))
        #expect(match(table, "/invocations", ["X-Model": "fraud", "X-Model-Version": ""])?.version == nil)
        let fallback = ProxyRouteMatch(route: 1, model: .configured(1), version: "v2")
        #expect(match(table, "/invocations") == fallback)
        #expect(match(table, "/invocations", ["X-Model": ""]) == fallback)
        // Headers are asked for only once a route's path and method matched.
        var asked: [String] = []
        _ = table.match(method: "POST", path: "/other") {
            asked.append($0); return nil
        }
        #expect(asked.isEmpty)
        _ = table.match(method: "POST", path: "/invocations") {
            asked.append($0); return "credit"
        }
        #expect(asked == ["X-Model", "X-Model-Version"])
    }

    @Test("a fixed model, configured or not; a version from the path")
    func fixedModels() throws {
        let table = try ProxyRouteTable(
            routes: [
                .init(pattern: "/credit/{version}/predict", model: .fixed("credit"), version: .path),
                .init(pattern: "/ghost", model: .fixed("ghost")),
            ], modelNames: models)
        #expect(
            match(table, "/credit/2024-01/predict")
                == ProxyRouteMatch(route: 0, model: .configured(1), version: "2024-01"))
        #expect(match(table, "/ghost") == ProxyRouteMatch(route: 1, model: .unknown("ghost"), version: nil))
        #expect(table.modelIndex(of: "churn-v2") == 2 && table.modelIndex(of: "ghost") == nil)
    }

    @Test("the first route that matches wins")
    func firstMatchWins() throws {
        let table = try ProxyRouteTable(
            routes: [
                .init(pattern: "/p/{model}", methods: ["GET"]),
                .init(pattern: "/p/{model}", version: .fixed("a")),
                .init(pattern: "/p/{model}", version: .fixed("b")),
                .init(pattern: "/p/credit", model: .fixed("fraud")),
            ], modelNames: models)
        #expect(match(table, "/p/credit") == ProxyRouteMatch(route: 1, model: .configured(1), version: "a"))
        #expect(match(table, "/p/credit", method: "GET")?.route == 0)
    }

    @Test("64 routes at most; each of them reachable")
    func sixtyFourRoutes() throws {
        let routes = (0..<ProxyRouteTable.maxRoutes).map { ProxyRouteTable.Route(pattern: "/r\($0)/{model}") }
        let table = try ProxyRouteTable(routes: routes, modelNames: models)
        for i in 0..<routes.count {
            #expect(match(table, "/r\(i)/credit")?.route == i)
        }
        #expect(match(table, "/r64/credit") == nil)
        #expect(buildError(routes + [.init(pattern: "/r64/{model}")]) == "routes: 65 routes, more than 64")
    }

    @Test("many models are found by binary search, few by a scan, with their configured positions")
    func modelNames() throws {
        for count in [0, 1, 8, 9, 100] {
            // Names that share prefixes, listed out of order.
            let names = (0..<count).map { "m\(($0 * 37) % max(count, 1))" + String(repeating: "x", count: $0 % 3) }
            let table = try ProxyRouteTable(routes: [.init(pattern: "/m/{model}")], modelNames: names)
            for (i, name) in names.enumerated() {
                #expect(match(table, "/m/\(name)")?.model == .configured(i))
            }
            for absent in ["m", "mx", "m999", "n", "l"] where !names.contains(absent) {
                #expect(match(table, "/m/\(absent)")?.model == .unknown(absent))
            }
        }
        #expect(buildError([], models: ["a", "b", "a"]) == #"models: model "a" is listed twice"#)
    }

    @Test("malformed routes are refused when the table is built")
    func buildErrors() {
        let cases: [(ProxyRouteTable.Route, String)] = [
            (.init(pattern: "v2/{model}"), "routes[0].pattern: must start with /"),
            (
                .init(pattern: "/{name}"),
                "routes[0].pattern: {name} is not a placeholder, or appears twice ({model}, {version})"
            ),
            (
                .init(pattern: "/{model}/{model}"),
                "routes[0].pattern: {model} is not a placeholder, or appears twice ({model}, {version})"
            ),
            (.init(pattern: "/{model}{version}", version: .path), "routes[0].pattern: two placeholders side by side"),
            (.init(pattern: "/{model"), "routes[0].pattern: a { without its }"),
            (.init(pattern: "/model}"), "routes[0].pattern: a } without its {"),
            (.init(pattern: "/x", methods: [], model: .fixed("a")), "routes[0].methods: no method"),
            (
                .init(pattern: "/x"),
                "routes[0].model: the model comes from the path exactly when the pattern has {model}"
            ),
            (
                .init(pattern: "/{model}", model: .fixed("a")),
                "routes[0].model: the model comes from the path exactly when the pattern has {model}"
            ),
            (.init(pattern: "/x", model: .header("")), "routes[0].model: no header name"),
            (
                .init(pattern: "/{model}/{version}"),
                "routes[0].version: the version comes from the path exactly when the pattern has {version}"
            ),
            (
                .init(pattern: "/{model}", version: .path),
                "routes[0].version: the version comes from the path exactly when the pattern has {version}"
            ),
            (.init(pattern: "/{model}", version: .header("")), "routes[0].version: no header name"),
        ]
        for (route, message) in cases {
            #expect(buildError([route]) == message, "\(route.pattern)")
        }
    }

    @Test("randomized: the table agrees with a reference matcher written with String APIs")
    func againstReference() throws {
        var rng = SplitMix64(seed: 16)
        let alphabet: [Character] = ["a", "b", "/", ":", ".", "-", "%"]
        let pool = ["a", "b", "ab", "a.b", "b-a", "ba", "a:b", "aa", "bb", "abab", "b.b", "a-a", "x"]
        var matched = 0
        for _ in 0..<2_000 {
            let names = Array(pool.shuffled(using: &rng).prefix(Int.random(in: 0...pool.count, using: &rng)))
            let routes = (0..<Int.random(in: 1...6, using: &rng)).map { _ in randomRoute(&rng, alphabet, pool) }
            let table = try ProxyRouteTable(routes: routes, modelNames: names)
            for _ in 0..<25 {
                let path = randomPath(&rng, alphabet, routes: routes, names: pool)
                let method = Bool.random(using: &rng) ? "POST" : "GET"
                var values: [String: String] = [:]
                if Bool.random(using: &rng) { values["x-model"] = ["", "a", "ab", "zz"].randomElement(using: &rng)! }
                if Bool.random(using: &rng) { values["x-version"] = ["", "1", "v2"].randomElement(using: &rng)! }
                let expected = reference(routes, names: names, method: method, path: path, header: values)
                #expect(
                    match(table, path, method: method, values) == expected,
                    "\(routes.map(\.pattern)) \(method) \(path) \(values)")
                if expected != nil { matched += 1 }
            }
        }
        // The paths are built to hit the routes often enough for the comparison to mean something.
        #expect(matched > 5_000)
    }
}

// MARK: The reference matcher

private enum Token: Equatable {
    case literal(String)
    case placeholder(String)
}

/// `pattern` split on its placeholders.
private func tokens(_ pattern: String) -> [Token] {
    var out: [Token] = []
    var rest = Substring(pattern)
    while let open = rest.firstIndex(of: "{") {
        if open > rest.startIndex { out.append(.literal(String(rest[..<open]))) }
        let close = rest[open...].firstIndex(of: "}")!
        out.append(.placeholder(String(rest[rest.index(after: open)..<close])))
        rest = rest[rest.index(after: close)...]
    }
    if !rest.isEmpty { out.append(.literal(String(rest))) }
    return out
}

/// The placeholders' values if `path` is the pattern's literals with a value for each placeholder in between:
/// one or more characters, no `/`, and not the first character of the literal that follows.
private func captures(_ tokens: ArraySlice<Token>, _ path: Substring) -> [String: String]? {
    guard let first = tokens.first else { return path.isEmpty ? [:] : nil }
    switch first {
    case .literal(let text):
        guard path.hasPrefix(text) else { return nil }
        return captures(tokens.dropFirst(), path.dropFirst(text.count))
    case .placeholder(let name):
        var stop: Character? = nil
        if case .literal(let next)? = tokens.dropFirst().first { stop = next.first }
        for length in stride(from: 1, through: path.count, by: 1) {
            let value = path.prefix(length)
            if value.contains("/") || (stop.map { value.contains($0) } ?? false) { break }
            if var found = captures(tokens.dropFirst(), path.dropFirst(length)) {
                found[name] = String(value)
                return found
            }
        }
        return nil
    }
}

private func reference(
    _ routes: [ProxyRouteTable.Route], names: [String], method: String, path: String, header: [String: String]
) -> ProxyRouteMatch? {
    for (i, route) in routes.enumerated() where route.methods.contains(method) {
        guard let values = captures(tokens(route.pattern)[...], path[...]) else { continue }
        let modelName: String
        var version: String?
        switch route.version {
        case .path?: version = values["version"]
        case .fixed(let name)?: version = name
        case .header(let name)?: version = header[name.lowercased()].flatMap { $0.isEmpty ? nil : $0 }
        case .body?, nil: version = nil
        }
        switch route.model {
        case .body: return ProxyRouteMatch(route: i, model: .body, version: version)
        case .path: modelName = values["model"]!
        case .fixed(let name): modelName = name
        case .header(let name):
            guard let value = header[name.lowercased()], !value.isEmpty else { continue }
            modelName = value
        }
        let model: ProxyRouteMatch.Model =
            names.firstIndex(of: modelName).map { .configured($0) } ?? .unknown(modelName)
        return ProxyRouteMatch(route: i, model: model, version: version)
    }
    return nil
}

// MARK: Random routes and paths

private func randomText(_ rng: inout SplitMix64, _ alphabet: [Character], _ lengths: ClosedRange<Int>) -> String {
    String((0..<Int.random(in: lengths, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
}

/// A route whose pattern starts with `/` and has up to three literal pieces around `{model}` and `{version}`.
private func randomRoute(_ rng: inout SplitMix64, _ alphabet: [Character], _ names: [String]) -> ProxyRouteTable.Route {
    var placeholders = [String]()
    if Bool.random(using: &rng) { placeholders.append("model") }
    if Bool.random(using: &rng) { placeholders.append("version") }
    placeholders.shuffle(using: &rng)
    var pattern = "/" + randomText(&rng, alphabet, 0...3)
    for (i, name) in placeholders.enumerated() {
        pattern += "{\(name)}"
        // Literal text always separates two placeholders; after the last one it may end the pattern.
        let separator = randomText(&rng, alphabet, (i + 1 < placeholders.count ? 1 : 0)...3)
        pattern += separator
    }
    let methods = [["POST"], ["GET"], ["POST", "GET"]].randomElement(using: &rng)!
    let model: ProxyRouteTable.Route.Source =
        placeholders.contains("model")
        ? .path : Bool.random(using: &rng) ? .fixed(names.randomElement(using: &rng)!) : .header("X-Model")
    let version: ProxyRouteTable.Route.Source? =
        placeholders.contains("version") ? .path : [nil, .fixed("1"), .header("X-Version")].randomElement(using: &rng)!
    return ProxyRouteTable.Route(pattern: pattern, methods: methods, model: model, version: version)
}

/// A path: most often a route's pattern with its placeholders filled (by names, or by random text that may hold
/// a `/` or a stop character), else random text.
private func randomPath(
    _ rng: inout SplitMix64, _ alphabet: [Character], routes: [ProxyRouteTable.Route], names: [String]
) -> String {
    guard Int.random(in: 0..<4, using: &rng) > 0 else { return "/" + randomText(&rng, alphabet, 0...8) }
    var path = ""
    for token in tokens(routes.randomElement(using: &rng)!.pattern) {
        switch token {
        case .literal(let text): path += text
        case .placeholder:
            path += Bool.random(using: &rng) ? names.randomElement(using: &rng)! : randomText(&rng, alphabet, 0...3)
        }
    }
    if Int.random(in: 0..<8, using: &rng) == 0 { path += "/" }
    return path
}
