import Exposition
import Yams

/// The proxy's `routes` (see ``ProxyConfiguration/Route`` for the path patterns).
extension Reader {
    typealias ProxyRoute = ProxyConfiguration.Route

    static let proxyRouteFields = [
        "path", "methods", "model", "model_header", "model_pointer", "version", "version_header", "version_pointer",
        "protocol", "capture_protocol",
    ]

    /// 1 to ``ProxyConfiguration/maxRoutes`` routes; a route that an earlier one always shadows is refused.
    mutating func proxyRoutes(_ node: Node, _ field: String, models: [ModelConfiguration]) -> [ProxyRoute]? {
        guard let items = sequence(node, field) else { return nil }
        guard (1...ProxyConfiguration.maxRoutes).contains(items.count) else {
            fail(
                node, field,
                items.isEmpty
                    ? "list at least one route (leave routes out for the default ones)"
                    : "\(items.count) routes, more than \(ProxyConfiguration.maxRoutes) (the most a proxy may have)")
            return nil
        }
        var out: [ProxyRoute] = []
        for (i, item) in items.enumerated() {
            guard let route = proxyRoute(item, "\(field)[\(i)]", models: models) else { continue }
            // An earlier route with the same pattern and a method in common, whose model does not depend on a header,
            // matches every request this one would.
            if let earlier = out.firstIndex(where: { e in
                e.path == route.path && e.modelHeader == nil && e.methods.contains(where: route.methods.contains)
            }) {
                fail(item, "\(field)[\(i)]", "never matched: routes[\(earlier)] takes the same requests first")
                continue
            }
            out.append(route)
        }
        return out.count == items.count ? out : nil
    }

    /// One route: `{path, methods, model, model_header, version, version_header}`.
    mutating func proxyRoute(_ node: Node, _ path: String, models: [ModelConfiguration]) -> ProxyRoute? {
        guard let fields = mapping(node, path, allowed: Self.proxyRouteFields) else { return nil }
        let errorsBefore = errors.count
        func value(_ key: String) -> Node? { fields.first { $0.key == key }?.value }
        guard let p = value("path") else {
            fail(node, "\(path).path", "required: the request path pattern (like /v2/models/{model}/infer)")
            return nil
        }
        guard let pattern = string(p, "\(path).path") else { return nil }
        let placeholders: (model: Bool, version: Bool)
        switch ProxyConfiguration.Route.placeholders(pattern) {
        case .success(let found): placeholders = found
        case .failure(let problem):
            fail(p, "\(path).path", problem.message)
            return nil
        }
        var route = ProxyRoute(path: pattern)
        if let m = value("methods") {
            let methods = distinctStrings(m, "\(path).methods", empty: "list at least one method (like POST)") {
                guard ProxyConfiguration.isToken($0) else {
                    return "\"\($0)\" is not an HTTP method (a token, like POST)"
                }
                // Methods are case-sensitive (RFC 9110 §9.1): `get` matched no request, and the route's traffic went
                // unrouted without a word (a probe).
                let upper = $0.uppercased()
                if upper != $0, ProxyConfiguration.standardMethods.contains(upper) {
                    return "\"\($0)\": methods are case-sensitive (RFC 9110 §9.1): write \(upper)"
                }
                return nil
            }
            route.methods = methods ?? route.methods
        }
        // The model: exactly one of {model}, model, model_header.
        var fixedModel: ModelConfiguration?
        if let m = value("model"), let name = string(m, "\(path).model") {
            if placeholders.model {
                fail(m, "\(path).model", "the path names the model ({model}): give {model}, model or model_header")
            } else if let model = models.first(where: { $0.name == name }) {
                route.model = name
                fixedModel = model
            } else if invalidModelNames.contains(name) {
                // Before, "unknown model", though the file configures it: its own errors are what to fix.
                fail(m, "\(path).model", "model \"\(name)\" has errors (listed with it): fix them first")
            } else {
                // Models with errors of their own are configured too (before, "none is configured" beside them).
                let valid = models.map(\.name)
                let names = valid + invalidModelNames.subtracting(valid).sorted()
                let known = names.isEmpty ? "none is configured" : "configured: \(names.joined(separator: ", "))"
                fail(m, "\(path).model", "unknown model \"\(name)\" (\(known))")
            }
        }
        if let h = value("model_header"), let header = headerName(h, "\(path).model_header") {
            if placeholders.model || value("model") != nil {
                fail(h, "\(path).model_header", "the model is named already: give {model}, model or model_header")
            } else {
                route.modelHeader = header
            }
        }
        if let j = value("model_pointer") {
            let named = placeholders.model || value("model") != nil || value("model_header") != nil
            route.modelPointer = namePointer(j, "\(path).model_pointer", of: "model", namedAlready: named)
        }
        if let p = value("protocol"), let name = string(p, "\(path).protocol") {
            if let kind = ProxyRoute.RouteProtocol(rawValue: name) {
                route.protocol = kind
            } else {
                fail(
                    p, "\(path).protocol",
                    "unknown protocol \"\(name)\" (expected one of: \(ProxyRoute.RouteProtocol.allCases.map(\.rawValue).joined(separator: ", ")))"
                )
            }
        }
        if let c = value("capture_protocol"), let name = string(c, "\(path).capture_protocol") {
            if route.protocol == .openAI {
                fail(c, "\(path).capture_protocol", "an openai route is measured by the LLM metrics: leave it out")
            } else if value("model_pointer") != nil {
                fail(
                    c, "\(path).capture_protocol",
                    "a model_pointer route decodes with the protocol of the model its body names: leave it out")
            } else if ProxyRoute.captureProtocols.contains(name) {
                route.captureProtocol = name
            } else {
                fail(
                    c, "\(path).capture_protocol",
                    "unknown capture protocol \"\(name)\" (expected one of: \(ProxyRoute.captureProtocols.joined(separator: ", ")))"
                )
            }
        }
        // An OpenAI route's model may come from the request body's `model`; another route's from a pointer.
        if route.protocol == .openAI, let j = value("model_pointer") {
            fail(j, "\(path).model_pointer", "an openai route reads the body's model itself: leave model_pointer out")
        }
        if !placeholders.model && value("model") == nil && value("model_header") == nil && value("model_pointer") == nil
            && route.protocol != .openAI
        {
            fail(
                node, path,
                "a route must say which model a request is for: {model} in the path, model, model_header or model_pointer (or protocol: openai, for the body's model)"
            )
        }
        // The version: at most one of {version}, version, version_header.
        if let v = value("version"), let version = string(v, "\(path).version") {
            if placeholders.version {
                fail(
                    v, "\(path).version",
                    "the path names the version ({version}): give {version}, version or version_header")
            } else if version.isEmpty {
                fail(v, "\(path).version", "must not be empty")
            } else if let fixedModel, !fixedModel.versions.contains(where: { $0.sameBytes(version) }) {
                fail(
                    v, "\(path).version",
                    "\"\(version)\" is not a version of model \"\(fixedModel.name)\" (its versions: \(fixedModel.versions.joined(separator: ", ")))"
                )
            } else {
                route.version = version
            }
        }
        if let h = value("version_header"), let header = headerName(h, "\(path).version_header") {
            if placeholders.version || value("version") != nil {
                fail(
                    h, "\(path).version_header",
                    "the version is named already: give {version}, version or version_header")
            } else {
                route.versionHeader = header
            }
        }
        if let j = value("version_pointer") {
            if route.protocol == .openAI {
                fail(
                    j, "\(path).version_pointer",
                    "an openai route's versions are its adapters: leave version_pointer out")
            } else {
                let named = placeholders.version || value("version") != nil || value("version_header") != nil
                route.versionPointer = namePointer(j, "\(path).version_pointer", of: "version", namedAlready: named)
            }
        }
        return errors.count == errorsBefore ? route : nil
    }
}

extension Reader {
    /// A route's `model_pointer` or `version_pointer` (`what`: `model` or `version`), or nil after a located error:
    /// the route names it otherwise already (`namedAlready`), or the text is not a pointer to one value.
    mutating func namePointer(_ node: Node, _ field: String, of what: String, namedAlready: Bool) -> String? {
        guard let pointer = string(node, field) else { return nil }
        if namedAlready {
            fail(
                node, field,
                "the \(what) is named already: give {\(what)}, \(what), \(what)_header or \(what)_pointer")
        } else if let problem = Self.namePointerProblem(pointer, of: what) {
            fail(node, field, problem)
        } else {
            return pointer
        }
        return nil
    }

    /// Why `pointer` is not an RFC 6901 pointer to one value (starting with `/`, `~` only as `~0` or `~1`, no `*`),
    /// or nil.
    static func namePointerProblem(_ pointer: String, of what: String) -> String? {
        guard pointer.hasPrefix("/") else {
            return "\"\(pointer)\" is not a JSON pointer to a value (RFC 6901: starting with /)"
        }
        if pointer.split(separator: "/", omittingEmptySubsequences: false).contains("*") {
            return "\"\(pointer)\": a \(what) pointer names one value (no *)"
        }
        var chars = pointer.makeIterator()
        while let c = chars.next() {
            guard c == "~" else { continue }
            guard let next = chars.next(), next == "0" || next == "1" else {
                return "\"\(pointer)\": ~ must be followed by 0 or 1 (RFC 6901)"
            }
        }
        return nil
    }
}

extension ProxyConfiguration.Route {
    /// Which placeholders path pattern `pattern` has, or why it is not one: it starts with `/`; `{model}` and
    /// `{version}` at most once each and never side by side; no other `{…}`, no `*`; literal text made of URL path
    /// characters.
    static func placeholders(
        _ pattern: String
    ) -> Result<(model: Bool, version: Bool), ProxyConfiguration.SyntaxProblem> {
        func fail(_ message: String) -> Result<(model: Bool, version: Bool), ProxyConfiguration.SyntaxProblem> {
            .failure(.init(message: message))
        }
        guard pattern.hasPrefix("/") else { return fail("a path pattern starts with /") }
        if pattern.contains("*") { return fail("no wildcards (*): use {model} or {version} for a path segment") }
        var found = (model: false, version: false)
        var rest = Substring(pattern)
        var afterPlaceholder = false
        while !rest.isEmpty {
            let open = rest.firstIndex(of: "{") ?? rest.endIndex
            let literal = rest[..<open]
            if literal.contains("}") { return fail("a } without its {") }
            if let problem = ProxyConfiguration.Upstream.pathProblem(literal) { return fail(problem) }
            guard open < rest.endIndex else { break }
            if literal.isEmpty && afterPlaceholder {
                return fail("two placeholders side by side: literal text must separate them")
            }
            guard let close = rest[open...].firstIndex(of: "}") else { return fail("a { without its }") }
            let name = rest[rest.index(after: open)..<close]
            switch name {
            case "model", "version":
                let seen = name == "model" ? found.model : found.version
                if seen { return fail("{\(name)} appears twice") }
                if name == "model" { found.model = true } else { found.version = true }
            default:
                return fail("unknown placeholder {\(name)} (only {model} and {version})")
            }
            afterPlaceholder = true
            rest = rest[rest.index(after: close)...]
        }
        return .success(found)
    }
}
