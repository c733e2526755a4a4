/// The reverse proxy's routes (issue 16; the `routes` of the configuration's `proxy` section): which route, model and
/// version a proxied request is for, from its method, its path and, when a route says so, its headers.
///
/// Built once per configuration (a reload builds a new table) from the routes and the configured model names (a
/// model is reported by its position in that list). ``match(method:path:header:)`` runs once per proxied request:
/// the method is looked up once among the routes' methods, then the routes are tried in order and the first that
/// matches wins; each is a bit test for the method and a walk of its pattern's pieces over the path's bytes, with
/// no regular expression, no dictionary and no allocation but the `String`s of an unknown model name and of a
/// version (names of up to 15 bytes are stored inline). A model name is found among the configured
/// ones by a scan of at most 8 names, or a binary search of the names sorted at build time.
public struct ProxyRouteTable: Sendable {
    /// The most routes a table may have: 64.
    public static let maxRoutes = 64

    /// One route, as the configuration gives it.
    ///
    /// `pattern` is literal text with at most one `{model}` and one `{version}` placeholder, starting with `/`, and
    /// is compared with the request path as sent (without the query, not percent-decoded). A placeholder matches one
    /// or more bytes that are not `/`; when literal text follows it, it ends at the first occurrence of that text's
    /// first byte (`/v1/models/{model}:predict` matches `/v1/models/credit:predict` with model `credit`). Two
    /// placeholders are always separated by literal text.
    public struct Route: Sendable, Equatable {
        /// Where a route's model or version comes from.
        public enum Source: Sendable, Equatable {
            /// Its placeholder in the pattern (`{model}` or `{version}`).
            case path
            /// This name, for every request of the route.
            case fixed(String)
            /// The value of this request header. A request without it (or with an empty value) is not matched by
            /// the route when it is the model's source, and names no version when it is the version's.
            case header(String)
            /// The request body (an OpenAI-compatible route's `model` member): the match says ``ProxyRouteMatch/Model/body``
            /// and the application reads the body.
            case body
        }

        /// The path pattern.
        public var pattern: String
        /// The methods the route matches, compared case-sensitively (at least one).
        public var methods: [String]
        /// Where the model comes from: ``Source/path`` exactly when the pattern has `{model}`.
        public var model: Source
        /// Where the version comes from (nil: requests name none): ``Source/path`` exactly when the pattern has
        /// `{version}`.
        public var version: Source?

        /// Creates a route.
        public init(pattern: String, methods: [String] = ["POST"], model: Source = .path, version: Source? = nil) {
            self.pattern = pattern
            self.methods = methods
            self.model = model
            self.version = version
        }
    }

    /// The routes, in matching order.
    public let routes: [Route]
    /// The configured models' names; a match's ``ProxyRouteMatch/Model/configured(_:)`` is a position in it.
    public let modelNames: [String]

    /// Every route's pattern and methods, compiled.
    let compiled: [CompiledRoute]
    /// Every route's model and version sources.
    let sources: [RouteSources]
    /// The methods of all routes, each once (a route's are bits of ``CompiledRoute/methods``).
    let methodNames: [String]
    /// Every literal piece's bytes, back to back.
    let literals: [UInt8]
    /// The pieces of every pattern (a route's are `compiled[i].pieces`).
    let pieces: [PatternPiece]
    /// The model names, sorted by their bytes.
    let names: ModelNameIndex

    /// A table of `routes` (at most ``maxRoutes``) for the models `modelNames` (no name twice). Throws when a
    /// pattern is malformed, when a route's sources disagree with its pattern's placeholders, when it has no method
    /// (or the routes more than 64 different ones) or a header source names no header; the error's field is `routes[i].pattern`, `.methods`, `.model` or
    /// `.version` (or `routes` / `models`).
    public init(routes: [Route], modelNames: [String]) throws(CaptureConfigError) {
        guard routes.count <= Self.maxRoutes else {
            throw CaptureConfigError(field: "routes", message: "\(routes.count) routes, more than \(Self.maxRoutes)")
        }
        names = try ModelNameIndex(modelNames)
        var compiled: [CompiledRoute] = []
        var sources: [RouteSources] = []
        var methodNames: [String] = []
        var literals: [UInt8] = []
        var pieces: [PatternPiece] = []
        for (i, route) in routes.enumerated() {
            let field = "routes[\(i)]"
            let pattern = try CompiledRoute(
                route, field: field, literals: &literals, pieces: &pieces, methodNames: &methodNames)
            compiled.append(pattern)
            sources.append(try RouteSources(route, field: field, pattern: pattern, names: names))
        }
        self.routes = routes
        self.modelNames = modelNames
        self.compiled = compiled
        self.sources = sources
        self.methodNames = methodNames
        self.literals = literals
        self.pieces = pieces
    }

    /// The first route that `method` and `path` (the request path without its query) match, with its model and
    /// version; nil when none does. `header` gives a request header's value by name (any case); it is called only for
    /// routes whose model or version comes from a header, once the path and method matched.
    ///
    /// Percent-encoded unreserved characters in `path` (`%63` for `c`: letters, digits, `-`, `.`, `_`, `~`) are read
    /// decoded: they name the same path (RFC 3986 §6.2.2.2), and model servers decode them before routing, so
    /// `/v2/models/cre%64it/infer` is model `credit`'s (it counted as unrouted: traffic any client could hide from a
    /// model's monitoring). Other escapes (`%2F`) stay as they are.
    public func match(method: String, path: UnsafeRawBufferPointer, header: (String) -> String?) -> ProxyRouteMatch? {
        if Self.hasPercent(path), let decoded = Self.decodingUnreserved(path) {
            return decoded.withUnsafeBytes { matchDecoded(method: method, path: $0, header: header) }
        }
        return matchDecoded(method: method, path: path, header: header)
    }

    /// Whether `path` holds a `%`, read a word at a time (the last word overlapping the one before): per request, so
    /// that a path without one costs a few instructions, not a loop over its bytes.
    @inline(__always)
    static func hasPercent(_ path: UnsafeRawBufferPointer) -> Bool {
        guard let base = path.baseAddress else { return false }
        let count = path.count
        guard count >= 8 else { return path.contains(UInt8(ascii: "%")) }
        let ones: UInt64 = 0x0101_0101_0101_0101
        @inline(__always) func holdsPercent(_ at: Int) -> Bool {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt64.self)) ^ (ones &* 0x25)
            return (word &- ones) & ~word & (ones &* 0x80) != 0  // a zero byte: exact for "any"
        }
        var at = 0
        while at &+ 8 < count {
            if holdsPercent(at) { return true }
            at &+= 8
        }
        return holdsPercent(count &- 8)
    }

    /// `path` with its percent-encoded unreserved characters decoded; nil when it has none.
    static func decodingUnreserved(_ path: UnsafeRawBufferPointer) -> [UInt8]? {
        func hexValue(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte &- UInt8(ascii: "a") &+ 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte &- UInt8(ascii: "A") &+ 10
            default: nil
            }
        }
        func isUnreserved(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                true
            default: false
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(path.count)
        var decodedAny = false
        var i = 0
        while i < path.count {
            if path[i] == UInt8(ascii: "%"), i + 2 < path.count, let high = hexValue(path[i + 1]),
                let low = hexValue(path[i + 2]), isUnreserved(high &<< 4 | low)
            {
                out.append(high &<< 4 | low)
                decodedAny = true
                i += 3
            } else {
                out.append(path[i])
                i += 1
            }
        }
        return decodedAny ? out : nil
    }

    /// ``match(method:path:header:)`` of a path whose unreserved characters are not percent-encoded.
    private func matchDecoded(
        method: String, path: UnsafeRawBufferPointer, header: (String) -> String?
    ) -> ProxyRouteMatch? {
        guard let bit = methodNames.firstIndex(of: method) else { return nil }
        let methodMask: UInt64 = 1 << UInt64(bit)
        return compiled.withUnsafeBufferPointer { compiled in
            literals.withUnsafeBufferPointer { literals in
                pieces.withUnsafeBufferPointer { pieces in
                    for index in compiled.indices {
                        let route = compiled[index]
                        guard route.methods & methodMask != 0, path.count >= route.minimumLength,
                            let captures = route.captures(in: path, literals: literals, pieces: pieces)
                        else { continue }
                        if let found = resolve(index, path: path, captures: captures, header: header) { return found }
                    }
                    return nil
                }
            }
        }
    }

    /// The match of route `index`, whose pattern matched `path` with `captures`; nil when its model comes from a
    /// header the request does not have.
    private func resolve(
        _ index: Int, path: UnsafeRawBufferPointer, captures: PathCaptures, header: (String) -> String?
    ) -> ProxyRouteMatch? {
        let model: ProxyRouteMatch.Model
        switch sources[index].model {
        case .resolved(let resolved): model = resolved
        case .path: model = names.model(UnsafeRawBufferPointer(rebasing: path[captures.model]))
        case .header(let name):
            guard let value = header(name), !value.isEmpty else { return nil }
            model = names.model(value)
        }
        let version: String?
        switch sources[index].version {
        case nil: version = nil
        case .fixed(let name)?: version = name
        case .path?: version = String(decoding: path[captures.version], as: UTF8.self)
        case .header(let name)?: version = header(name).flatMap { $0.isEmpty ? nil : $0 }
        case .body?: version = nil  // refused when the table is built
        }
        return ProxyRouteMatch(route: index, model: model, version: version)
    }

    /// ``match(method:path:header:)`` for a path given as a `String`.
    public func match(method: String, path: String, header: (String) -> String?) -> ProxyRouteMatch? {
        var path = path
        return path.withUTF8 { match(method: method, path: UnsafeRawBufferPointer($0), header: header) }
    }

    /// The position of model `name` in ``modelNames``, or nil.
    public func modelIndex(of name: String) -> Int? {
        var name = name
        return name.withUTF8 { names.index(of: UnsafeRawBufferPointer($0)) }
    }
}

/// Which route, model and version a proxied request is for (``ProxyRouteTable/match(method:path:header:)``).
public struct ProxyRouteMatch: Sendable, Equatable {
    /// The model a request names.
    public enum Model: Sendable, Equatable {
        /// A configured model: its position in ``ProxyRouteTable/modelNames``.
        case configured(Int)
        /// A name that is no configured model's (from the path or a header, as sent).
        case unknown(String)
        /// The request body names the model (a route whose model source is ``ProxyRouteTable/Route/Source/body``).
        case body
    }

    /// The route's position in ``ProxyRouteTable/routes``.
    public var route: Int
    /// The model.
    public var model: Model
    /// The version the request names (from the path as sent, a header, or the route), or nil.
    public var version: String?

    /// Creates a match.
    public init(route: Int, model: Model, version: String?) {
        self.route = route
        self.model = model
        self.version = version
    }
}

/// Where a route's model and version come from, its fixed model resolved to a configured one (or not).
struct RouteSources: Sendable {
    enum Model: Sendable {
        case path
        case header(String)
        case resolved(ProxyRouteMatch.Model)
    }

    let model: Model
    let version: ProxyRouteTable.Route.Source?

    /// The sources of `route` (at `field` in errors), checked against its compiled pattern.
    init(
        _ route: ProxyRouteTable.Route, field: String, pattern: CompiledRoute, names: ModelNameIndex
    ) throws(CaptureConfigError) {
        func fail(_ key: String, _ message: String) -> CaptureConfigError {
            CaptureConfigError(field: "\(field).\(key)", message: message)
        }
        switch route.model {
        case .path where !pattern.hasModel, .fixed where pattern.hasModel, .header where pattern.hasModel,
            .body where pattern.hasModel:
            throw fail("model", "the model comes from the path exactly when the pattern has {model}")
        case .header(let name) where name.isEmpty:
            throw fail("model", "no header name")
        case .path: model = .path
        case .fixed(let name): model = .resolved(names.model(name))
        case .header(let name): model = .header(name)
        case .body: model = .resolved(.body)
        }
        switch route.version {
        case nil where pattern.hasVersion, .fixed? where pattern.hasVersion, .header? where pattern.hasVersion,
            .path? where !pattern.hasVersion:
            throw fail("version", "the version comes from the path exactly when the pattern has {version}")
        case .header(let name)? where name.isEmpty:
            throw fail("version", "no header name")
        case .body?:
            throw fail("version", "a version does not come from the body (an adapter's name gives it)")
        default: version = route.version
        }
    }
}
