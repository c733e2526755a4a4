import Yams

/// The top-level `remote_write` section (see docs/fleet.md).
extension Reader {
    /// `remote_write: {url, interval, timeout, max_pending_requests, min_backoff, max_backoff, external_labels,
    /// headers}`.
    mutating func remoteWrite(_ node: Node, _ path: String) -> RemoteWriteConfiguration? {
        let allowed = [
            "url", "interval", "timeout", "max_pending_requests", "min_backoff", "max_backoff", "external_labels",
            "headers",
        ]
        guard let fields = mapping(node, path, allowed: allowed) else { return nil }
        // A URL that cannot be used still lets the other fields be checked (their errors were found one run later):
        // they are read into a stand-in, and nil is returned at the end.
        var url: ProxyConfiguration.Upstream?
        if let urlNode = fields.first(where: { $0.key == "url" })?.value {
            if let text = string(urlNode, "\(path).url") {
                switch ProxyConfiguration.Upstream.parse(text) {
                case .success(let parsed) where parsed.basePath.isEmpty:
                    fail(urlNode, "\(path).url", "name the receiver's path (Prometheus: /api/v1/write)")
                case .success(let parsed):
                    url = parsed
                case .failure(let problem):
                    fail(
                        urlNode, "\(path).url", problem.message.replacingOccurrences(of: "upstream", with: "receiver"))
                }
            }
        } else {
            fail(node, "\(path).url", "required: the receiver's URL (http://host:port/api/v1/write)")
        }
        guard let standIn = try? ProxyConfiguration.Upstream.parse("http://127.0.0.1:9090/api/v1/write").get() else {
            return nil
        }
        var config = RemoteWriteConfiguration(url: url ?? standIn)
        for (key, value) in fields {
            let field = "\(path).\(key)"
            switch key {
            case "interval", "timeout", "min_backoff", "max_backoff":
                let target = Self.remoteWriteDuration(key)
                config[keyPath: target.field] =
                    duration(value, field, range: target.range, wholeSeconds: false) ?? config[keyPath: target.field]
            case "max_pending_requests":
                config.maxPendingRequests = int(value, field, range: 1...1000) ?? config.maxPendingRequests
            case "external_labels":
                config.externalLabels =
                    stringMap(value, field) { name in
                        Self.isLabelName(name) && !name.hasPrefix("__")
                            ? nil : "\"\(name)\" is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
                    } ?? config.externalLabels
                // The spec: label values MUST NOT be empty (a scrape drops such a label; a strict receiver refuses).
                for (name, labelValue) in config.externalLabels where labelValue.isEmpty {
                    fail(value, "\(field).\(name)", "empty: a label value may not be empty (leave the label out)")
                }
            case "headers":
                config.headers =
                    stringMap(value, field) { name in
                        guard ProxyConfiguration.isToken(name) else { return "\"\(name)\" is not a header name" }
                        // The remote-write spec: clients MUST NOT let users send the reserved headers; they were
                        // sent twice (a second Content-Length: 0 made Prometheus refuse every request).
                        guard !Self.reservedRemoteWriteHeaders.contains(name.lowercased()) else {
                            return "\"\(name)\" is set by the remote-write protocol and cannot be configured"
                        }
                        return nil
                    } ?? config.headers
            default: break
            }
        }
        if config.minBackoff > config.maxBackoff {
            fail(node, "\(path).min_backoff", "must not exceed max_backoff")
        }
        return url == nil ? nil : config
    }

    /// Headers the sender sets itself (the remote-write spec's reserved ones, and the framing ones), lower-case.
    static let reservedRemoteWriteHeaders: Set<String> = [
        "host", "content-length", "content-type", "content-encoding",
        "transfer-encoding", "user-agent", "x-prometheus-remote-write-version", "connection",
    ]

    /// Where each of the section's durations goes, and its allowed range.
    static func remoteWriteDuration(
        _ key: String
    ) -> (field: WritableKeyPath<RemoteWriteConfiguration, Duration>, range: ClosedRange<Duration>) {
        switch key {
        case "interval": return (\.interval, RemoteWriteConfiguration.intervalRange)
        case "timeout": return (\.timeout, RemoteWriteConfiguration.timeoutRange)
        case "min_backoff": return (\.minBackoff, RemoteWriteConfiguration.timeoutRange)
        default: return (\.maxBackoff, RemoteWriteConfiguration.timeoutRange)
        }
    }

    /// A mapping of strings to strings whose keys pass `check` (nil) or are refused with its message.
    mutating func stringMap(_ node: Node, _ field: String, check: (String) -> String?) -> [String: String]? {
        guard case .mapping(let m) = node else {
            fail(node, field, "must be a mapping of names to values")
            return nil
        }
        var out: [String: String] = [:]
        for (k, v) in m {
            guard let key = string(k, field), let value = string(v, "\(field).\(key)") else { continue }
            if let problem = check(key) {
                fail(k, "\(field).\(key)", problem)
                continue
            }
            if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                fail(v, "\(field).\(key)", "must not contain control characters")
                continue
            }
            out[key] = value
        }
        return out
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`.
    static func isLabelName(_ s: String) -> Bool {
        func letter(_ b: UInt8) -> Bool { (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 }
        guard let first = s.utf8.first, letter(first) else { return false }
        return s.utf8.allSatisfy { letter($0) || ($0 >= 48 && $0 <= 57) }
    }
}
