import Yams

/// The top-level `proxy` section (see docs/proxy.md); its routes are read in ConfigLoader+ProxyRoutes.swift.
extension Reader {
    static let proxyFields = [
        "listen", "upstream", "max_connections", "max_waiting", "connect_timeout", "response_timeout", "read_timeout",
        "idle_timeout", "request_id_header", "error_statuses", "capture", "routes", "inject_include_usage",
    ]

    /// `proxy: {listen, upstream, ..., routes}`; `models` are the configured models, which routes name.
    mutating func proxy(_ node: Node, _ path: String, models: [ModelConfiguration]) -> ProxyConfiguration? {
        guard let fields = mapping(node, path, allowed: Self.proxyFields) else { return nil }
        let errorsBefore = errors.count
        var proxy = ProxyConfiguration(upstream: ProxyConfiguration.Upstream(host: "", port: 0))
        if fields.first(where: { $0.key == "upstream" }) == nil {
            fail(node, "\(path).upstream", "required: the model server's URL (http://host:port[/base-path])")
        }
        for (key, value) in fields {
            let field = "\(path).\(key)"
            switch key {
            case "listen":
                let addresses = distinctStrings(
                    value, field, empty: "list at least one address (like \":9748\")",
                    problem: ProxyConfiguration.listenAddressProblem)
                proxy.listenAddresses = addresses ?? proxy.listenAddresses
                if let addresses, let overlap = listenOverlap, case .sequence(let items) = value,
                    items.count == addresses.count
                {
                    for i in addresses.indices {
                        guard let earlier = addresses[..<i].first(where: { overlap($0, addresses[i]) }) else {
                            continue
                        }
                        fail(
                            items[i], "\(field)[\(i)]",
                            "\"\(addresses[i])\" overlaps \"\(earlier)\" (the same port, and one of them listens on every "
                                + "address of the other): give one of them another port")
                    }
                }
            case "upstream":
                guard let text = string(value, field) else { continue }
                switch ProxyConfiguration.Upstream.parse(text) {
                case .success(let upstream):
                    proxy.upstream = upstream
                    if let problem = upstreamCheck?(upstream.host, upstream.port) { fail(value, field, problem) }
                case .failure(let problem): fail(value, field, problem.message)
                }
            case "max_connections":
                proxy.maxConnections = int(value, field, range: 1...10_000) ?? proxy.maxConnections
            case "max_waiting": proxy.maxWaiting = int(value, field, range: 0...100_000) ?? proxy.maxWaiting
            case "connect_timeout": proxy.connectTimeout = timeout(value, field) ?? proxy.connectTimeout
            case "response_timeout": proxy.responseTimeout = timeout(value, field) ?? proxy.responseTimeout
            case "read_timeout": proxy.readTimeout = timeout(value, field) ?? proxy.readTimeout
            case "idle_timeout": proxy.idleTimeout = timeout(value, field) ?? proxy.idleTimeout
            case "request_id_header": proxy.requestIDHeader = requestIDHeader(value, field) ?? proxy.requestIDHeader
            case "error_statuses": proxy.errorStatuses = statusPatterns(value, field) ?? proxy.errorStatuses
            case "capture": proxy.capture = proxyCapture(value, field) ?? proxy.capture
            case "inject_include_usage": proxy.injectIncludeUsage = bool(value, field) ?? false
            default: proxy.routes = proxyRoutes(value, field, models: models) ?? proxy.routes
            }
        }
        // A body's model or version is read from the captured request body. The routes are looked at as written (so
        // that another route's error does not hide this one: the routes read are none then).
        let routeItems: [Node] =
            if case .sequence(let items)? = fields.first(where: { $0.key == "routes" })?.value { Array(items) } else {
                []
            }
        if proxy.capture.maxBodyBytes == 0,
            let i = routeItems.firstIndex(where: {
                Self.member($0, "model_pointer") != nil || Self.member($0, "version_pointer") != nil
            }),
            let capture = fields.first(where: { $0.key == "capture" })?.value
        {
            let field =
                Self.member(routeItems[i], "model_pointer") != nil
                ? "the model (model_pointer)" : "the version (version_pointer)"
            fail(
                capture, "\(path).capture.max_body_bytes",
                "must be above 0: routes[\(i)] reads \(field) from the request body")
        }
        return errors.count == errorsBefore ? proxy : nil
    }

    /// A non-empty list of strings (`empty` says what to list when there are none), none twice, each without the
    /// problem `problem` finds (nil: none).
    mutating func distinctStrings(
        _ node: Node, _ field: String, empty: String, problem: (String) -> String?
    )
        -> [String]?
    {
        guard let items = sequence(node, field) else { return nil }
        guard !items.isEmpty else {
            fail(node, field, empty)
            return nil
        }
        var out: [String] = []
        for (i, item) in items.enumerated() {
            guard let text = string(item, "\(field)[\(i)]") else { continue }
            if let problem = problem(text) {
                fail(item, "\(field)[\(i)]", problem)
            } else if out.contains(text) {
                fail(item, "\(field)[\(i)]", "\"\(text)\" is listed twice")
            } else {
                out.append(text)
            }
        }
        return out.count == items.count ? out : nil
    }

    /// A timeout: a duration in whole milliseconds within ``ProxyConfiguration/timeoutRange``.
    mutating func timeout(_ node: Node, _ field: String) -> Duration? {
        guard let text = string(node, field) else { return nil }
        guard let d = DurationParser.parse(text) else {
            fail(
                node, field,
                DurationParser.isZero(text)
                    ? "must be between 1ms and 1d" : "\"\(text)\" is not a duration (like 500ms, 5s, 1m)")
            return nil
        }
        guard ProxyConfiguration.timeoutRange.contains(d) else {
            fail(node, field, "must be between 1ms and 1d")
            return nil
        }
        return d
    }

    /// An HTTP header name (a token).
    mutating func headerName(_ node: Node, _ field: String) -> String? {
        guard let text = string(node, field) else { return nil }
        guard ProxyConfiguration.isToken(text) else {
            fail(node, field, "\"\(text)\" is not a header name (letters, digits and !#$%&'*+-.^_`|~)")
            return nil
        }
        return text
    }

    /// `request_id_header`: a header name the proxy may set to an id of its own, so none that frames the message, names
    /// its target, is hop-by-hop or that the proxy writes itself (the id would replace `Content-Length`, say, and
    /// break the request sent upstream).
    mutating func requestIDHeader(_ node: Node, _ field: String) -> String? {
        guard let name = headerName(node, field) else { return nil }
        guard !ProxyConfiguration.reservedRequestIDHeaders.contains(name.lowercased()) else {
            fail(node, field, "\"\(name)\" frames the message, names its target or is the proxy's own: not an id")
            return nil
        }
        return name
    }

    /// `error_statuses`: entries `Nxx` (N 1-5) or exact codes 100-599, none twice (an empty list: no status is a
    /// model error).
    mutating func statusPatterns(_ node: Node, _ field: String) -> [ProxyConfiguration.StatusPattern]? {
        guard let items = sequence(node, field) else { return nil }
        var out: [ProxyConfiguration.StatusPattern] = []
        for (i, item) in items.enumerated() {
            guard let text = string(item, "\(field)[\(i)]") else { continue }
            let bytes = Array(text.lowercased().utf8)
            let pattern: ProxyConfiguration.StatusPattern
            if bytes.count == 3, bytes[1...] == [UInt8(ascii: "x"), UInt8(ascii: "x")],
                (UInt8(ascii: "1")...UInt8(ascii: "5")).contains(bytes[0])
            {
                pattern = .statusClass(Int(bytes[0] - UInt8(ascii: "0")))
            } else if bytes.count == 3, let code = Int(text), (100...599).contains(code) {
                pattern = .code(code)
            } else {
                fail(item, "\(field)[\(i)]", "\"\(text)\" is not a status class (1xx to 5xx) or a status (100 to 599)")
                continue
            }
            if out.contains(pattern) {
                fail(item, "\(field)[\(i)]", "\"\(text)\" is listed twice")
                continue
            }
            out.append(pattern)
        }
        return out.count == items.count ? out : nil
    }

    /// The proxy's `capture: {max_body_bytes, sample_rate}`.
    mutating func proxyCapture(_ node: Node, _ path: String) -> ProxyConfiguration.CaptureLimits? {
        guard let fields = mapping(node, path, allowed: ["max_body_bytes", "sample_rate"]) else { return nil }
        var capture = ProxyConfiguration.CaptureLimits()
        for (key, value) in fields {
            let field = "\(path).\(key)"
            if key == "max_body_bytes" {
                capture.maxBodyBytes =
                    int(value, field, range: 0...ProxyConfiguration.maxCaptureBodyBytes) ?? capture.maxBodyBytes
            } else if let rate = number(value, field) {
                if (0...1).contains(rate) {
                    capture.sampleRate = rate
                } else {
                    fail(value, field, "must be between 0 and 1 (the share of requests whose bodies are decoded)")
                }
            }
        }
        return capture
    }
}
