import Foundation
import Testing

@testable import ExporterConfig

/// Two models; the `proxy:` line is line 8, so a section's first line is line 9.
private let models = """
    models:
      - name: credit
        task: regression
        versions: [v1, v2]
      - name: fraud
        task: regression
        versions: [a]

    """

/// The configuration whose `proxy` section has lines `body`.
private func load(_ body: String) throws -> ExporterConfiguration {
    try ConfigLoader.parse(models + "proxy:\n" + body, file: "test.yaml")
}

/// `line:column: field: message` of each problem of the `proxy` section with lines `body`.
private func errors(_ body: String) -> [String] { locatedErrors(models + "proxy:\n" + body) }

/// The same, after an `upstream` line (line 9): the section's other lines start at line 10.
private func errorsAfterUpstream(_ body: String) -> [String] {
    errors("  upstream: http://127.0.0.1:8080\n" + body)
}

/// `field: message` of each problem of `configuration`, built in code.
private func codeProblems(_ configuration: ExporterConfiguration) -> [String] {
    do {
        _ = try configuration.validated()
        return []
    } catch {
        return error.errors.map { "\($0.field): \($0.message)" }
    }
}

@Suite("The proxy section of the configuration")
struct ProxyConfigTests {
    @Test("no proxy section: no proxy; an upstream alone: every default")
    func defaults() throws {
        #expect(try ConfigLoader.parse(models, file: "test.yaml").proxy == nil)
        let proxy = try #require(try load("  upstream: http://127.0.0.1:8080\n").proxy)
        #expect(proxy.listenAddresses == [":9748"])
        #expect(proxy.upstream == ProxyConfiguration.Upstream(host: "127.0.0.1", port: 8080, basePath: ""))
        #expect(proxy.maxConnections == 64 && proxy.maxWaiting == 1024)
        #expect(proxy.connectTimeout == .seconds(5) && proxy.responseTimeout == .seconds(60))
        #expect(proxy.readTimeout == .seconds(60) && proxy.idleTimeout == .seconds(4))
        #expect(proxy.requestIDHeader == "X-Request-Id")
        #expect(proxy.errorStatuses == [.statusClass(5)])
        #expect(proxy.capture == ProxyConfiguration.CaptureLimits(maxBodyBytes: 1 << 20, sampleRate: 1.0))
        #expect(
            proxy.routes.map(\.path) == [
                "/v2/models/{model}/versions/{version}/infer", "/v2/models/{model}/infer", "/v1/models/{model}:predict",
                "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses",
            ])
        #expect(
            proxy.routes.map(\.protocol) == Array(repeating: .modelServer, count: 3)
                + Array(repeating: .openAI, count: 4))
        #expect(proxy.routes.allSatisfy { $0.methods == ["POST"] && $0.model == nil && $0.modelHeader == nil })
        #expect(proxy.routes.allSatisfy { $0.version == nil && $0.versionHeader == nil })
        #expect(proxy == ProxyConfiguration(upstream: proxy.upstream))
    }

    /// A route naming a model of the file that has errors says so; it was "unknown model" (found by a docs review: a
    /// duplicate inference_service made the routes' model unknown).
    @Test func aRouteNamingAModelWithErrorsSaysSo() {
        let yaml = """
            models:
              - name: credit
                task: regression
                versions: [v1]
              - name: fraud
                task: regresion
                versions: [a]
            proxy:
              upstream: http://127.0.0.1:8080
              routes: [{path: /x, model: fraud}, {path: /y, model: churn}]

            """
        let problems = locatedErrors(yaml)
        #expect(problems.count == 3, "\(problems)")
        #expect(
            problems.contains(
                #"10:30: proxy.routes[0].model: model "fraud" has errors (listed with it): fix them first"#))
        // The models with errors are configured too: listed after the others (before: left out, and with no other
        // model "none is configured").
        #expect(problems.contains(#"10:56: proxy.routes[1].model: unknown model "churn" (configured: credit, fraud)"#))
        let alone = locatedErrors(
            """
            models:
              - {name: fraud, task: regresion, versions: [a]}
            proxy:
              upstream: http://127.0.0.1:8080
              routes: [{path: /y, model: churn}]

            """)
        #expect(alone.contains(#"5:30: proxy.routes[0].model: unknown model "churn" (configured: fraud)"#), "\(alone)")
    }

    @Test("every field is read")
    func everyField() throws {
        let loaded = try load(
            """
              upstream: http://127.0.0.1:8080
              routes: [{path: /score/v1, model: credit, capture_protocol: kserve_v1}]

            """)
        // A configuration checked again as code is (the serve path) keeps the route's capture protocol (it was dropped).
        let revalidated = try loaded.validated(referencesMustExist: false)
        #expect(revalidated.proxy?.routes.map(\.captureProtocol) == ["kserve_v1"])
        let proxy = try #require(
            try load(
                """
                  listen: ["127.0.0.1:9800", "[::1]:0", ":9801"]
                  upstream: HTTP://model-server.svc_1:8081/api/
                  max_connections: 10000
                  max_waiting: 0
                  connect_timeout: 250ms
                  response_timeout: 2m
                  read_timeout: 1m30s
                  idle_timeout: 1d
                  request_id_header: x-correlation-id
                  error_statuses: ["5xx", 429, "4XX"]
                  capture: {max_body_bytes: 4096, sample_rate: 0.25}
                  routes:
                    - path: /invocations
                      methods: [POST, PUT]
                      model: credit
                      version: v2
                    - path: /score
                      model_header: X-Model
                      version_header: X-Model-Version
                    - path: /m/{model}/{version}
                    - path: /fixed
                      model: fraud
                      version_header: X-V
                    - path: /predict
                      model_pointer: /meta/model~1name
                      version_pointer: /meta/version
                    - {path: /score/v1, model: credit, capture_protocol: kserve_v1}

                """
            ).proxy)
        #expect(proxy.listenAddresses == ["127.0.0.1:9800", "[::1]:0", ":9801"])
        #expect(proxy.upstream == ProxyConfiguration.Upstream(host: "model-server.svc_1", port: 8081, basePath: "/api"))
        #expect(proxy.maxConnections == 10_000 && proxy.maxWaiting == 0)
        #expect(proxy.connectTimeout == .milliseconds(250) && proxy.responseTimeout == .seconds(120))
        #expect(proxy.readTimeout == .seconds(90) && proxy.idleTimeout == .seconds(86_400))
        #expect(proxy.requestIDHeader == "x-correlation-id")
        #expect(proxy.errorStatuses == [.statusClass(5), .code(429), .statusClass(4)])
        #expect(proxy.capture == ProxyConfiguration.CaptureLimits(maxBodyBytes: 4096, sampleRate: 0.25))
        #expect(
            proxy.routes == [
                ProxyConfiguration.Route(
                    path: "/invocations", methods: ["POST", "PUT"], model: "credit", version: "v2"),
                ProxyConfiguration.Route(path: "/score", modelHeader: "X-Model", versionHeader: "X-Model-Version"),
                ProxyConfiguration.Route(path: "/m/{model}/{version}"),
                ProxyConfiguration.Route(path: "/fixed", model: "fraud", versionHeader: "X-V"),
                ProxyConfiguration.Route(
                    path: "/predict", modelPointer: "/meta/model~1name", versionPointer: "/meta/version"),
                {
                    var route = ProxyConfiguration.Route(path: "/score/v1", model: "credit")
                    route.captureProtocol = "kserve_v1"
                    return route
                }(),
            ])
        #expect(proxy.routes.map(\.impliedCaptureProtocol) == [nil, nil, nil, nil, nil, nil])
        #expect(
            ProxyConfiguration.defaultRoutes.map(\.impliedCaptureProtocol).prefix(3) == [
                "open_inference_v2", "open_inference_v2", "kserve_v1",
            ])
    }

    @Test("upstream URLs: hosts, ports, base paths")
    func upstreams() {
        let cases: [(String, ProxyConfiguration.Upstream)] = [
            ("http://localhost", .init(host: "localhost", port: 80)),
            ("http://127.0.0.1:8080/", .init(host: "127.0.0.1", port: 8080)),
            ("http://[::1]:8080/v1//", .init(host: "::1", port: 8080, basePath: "/v1")),
            ("http://[fe80::1]", .init(host: "fe80::1", port: 80)),
            ("http://m:1/a%2Fb/c;x=1", .init(host: "m", port: 1, basePath: "/a%2Fb/c;x=1")),
        ]
        for (url, upstream) in cases {
            #expect(ProxyConfiguration.Upstream(url: url) == upstream, "\(url)")
        }
        #expect(
            ProxyConfiguration.Upstream(host: "::1", port: 8080, basePath: "/v1").description == "http://[::1]:8080/v1")
        #expect(ProxyConfiguration.Upstream(host: "m", port: 80).authority == "m:80")
        for bad in [
            "m:80", "http://", "http://:80", "http://m:0", "http://m:65536", "http://m:8o", "http://[::1",
            "http://[x]:1", "http://1.2.3:80", "http://-m:80", "http://m..n", "http://m:1/a b", "http://m:1/%zz",
        ] {
            #expect(ProxyConfiguration.Upstream(url: bad) == nil, "\(bad)")
        }
    }

    @Test("error statuses match classes and codes")
    func errorStatuses() {
        var proxy = ProxyConfiguration(upstream: .init(host: "m", port: 80))
        #expect(proxy.isErrorStatus(500) && proxy.isErrorStatus(599) && !proxy.isErrorStatus(499))
        proxy.errorStatuses = [.code(429), .statusClass(3)]
        #expect(proxy.isErrorStatus(429) && proxy.isErrorStatus(304) && !proxy.isErrorStatus(503))
        proxy.errorStatuses = []
        #expect(!proxy.isErrorStatus(500))
        #expect(ProxyConfiguration.StatusPattern.statusClass(5).description == "5xx")
    }

    @Test("the section's own mistakes, each located")
    func sectionErrors() {
        #expect(
            errors("  - upstream\n") == ["9:3: proxy: expected a mapping"])
        #expect(
            errors("  max_connections: 5\n")
                == ["9:3: proxy.upstream: required: the model server's URL (http://host:port[/base-path])"])
        #expect(
            errorsAfterUpstream("  upstream_timeout: 5s\n") == [
                "10:3: proxy.upstream_timeout: unknown field (expected one of: listen, upstream, max_connections, max_waiting, connect_timeout, response_timeout, read_timeout, idle_timeout, request_id_header, error_statuses, capture, routes, inject_include_usage)"
            ])
        #expect(
            errorsAfterUpstream("  listen: []\n") == [#"10:11: proxy.listen: list at least one address (like ":9748")"#]
        )
        #expect(
            errorsAfterUpstream(
                "  listen:\n    - \":9748\"\n    - 1.2.3:80\n    - \":9748\"\n    - \"[1.2.3.4]:1\"\n    - \":x\"\n")
                == [
                    #"12:7: proxy.listen[1]: invalid listen address "1.2.3:80": host must be a numeric IPv4 address, [IPv6], localhost, * or empty"#,
                    #"13:7: proxy.listen[2]: ":9748" is listed twice"#,
                    #"14:7: proxy.listen[3]: invalid listen address "[1.2.3.4]:1": not a numeric IPv6 address"#,
                    #"15:7: proxy.listen[4]: invalid listen address ":x": port must be a number in 0...65535"#,
                ])
        #expect(
            errorsAfterUpstream("  max_connections: 0\n  max_waiting: 100001\n") == [
                "10:20: proxy.max_connections: must be between 1 and 10000",
                "11:16: proxy.max_waiting: must be between 0 and 100000",
            ])
        #expect(
            errorsAfterUpstream(
                "  connect_timeout: 0s\n  response_timeout: soon\n  read_timeout: 2d\n  idle_timeout: [4s]\n")
                == [
                    "10:20: proxy.connect_timeout: must be between 1ms and 1d",
                    #"11:21: proxy.response_timeout: "soon" is not a duration (like 500ms, 5s, 1m)"#,
                    "12:17: proxy.read_timeout: must be between 1ms and 1d",
                    "13:17: proxy.idle_timeout: expected a string",
                ])
        #expect(
            errorsAfterUpstream("  request_id_header: \"X Request\"\n") == [
                #"10:22: proxy.request_id_header: "X Request" is not a header name (letters, digits and !#$%&'*+-.^_`|~)"#
            ])
        // A name the proxy would write an id into and break the request (review: Content-Length got an id upstream,
        // and the client a 504).
        for name in ["Content-Length", "transfer-encoding", "Host", "Connection", "TE", "X-Forwarded-For"] {
            #expect(
                errorsAfterUpstream("  request_id_header: \(name)\n") == [
                    "10:22: proxy.request_id_header: \"\(name)\" frames the message, names its target or is the proxy's own: not an id"
                ])
        }
        #expect(errorsAfterUpstream("  request_id_header: X-Correlation-Id\n") == [])
        #expect(
            errorsAfterUpstream("  error_statuses: [6xx, 600, 5xx, 5XX, 99, abc]\n") == [
                #"10:20: proxy.error_statuses[0]: "6xx" is not a status class (1xx to 5xx) or a status (100 to 599)"#,
                #"10:25: proxy.error_statuses[1]: "600" is not a status class (1xx to 5xx) or a status (100 to 599)"#,
                #"10:35: proxy.error_statuses[3]: "5XX" is listed twice"#,
                #"10:40: proxy.error_statuses[4]: "99" is not a status class (1xx to 5xx) or a status (100 to 599)"#,
                #"10:44: proxy.error_statuses[5]: "abc" is not a status class (1xx to 5xx) or a status (100 to 599)"#,
            ])
        #expect(
            errorsAfterUpstream("  capture: {max_body_bytes: 67108865, sample_rate: 1.5, rate: 1}\n") == [
                "10:29: proxy.capture.max_body_bytes: must be between 0 and 67108864",
                "10:52: proxy.capture.sample_rate: must be between 0 and 1 (the share of requests whose bodies are decoded)",
                "10:57: proxy.capture.rate: unknown field (expected one of: max_body_bytes, sample_rate)",
            ])
    }

    @Test("upstream URL mistakes, each located")
    func upstreamErrors() {
        let cases: [(String, String)] = [
            ("https://m:8443", "https upstreams are not supported yet"),
            ("ftp://m", #""ftp://m" is not an http:// URL (http://host:port[/base-path])"#),
            ("m:8080", #""m:8080" is not an http:// URL (http://host:port[/base-path])"#),
            ("http://u:p@m:8080", "an upstream URL has no user name or password (user@)"),
            ("http://m:8080/a?b=1", "an upstream URL has no query or fragment"),
            ("http://m:8080/#top", "an upstream URL has no query or fragment"),
            ("http://:8080", "the URL has no host"),
            ("http://m:99999", #"port "99999" must be a number in 1...65535"#),
            ("http://m:", #"port "" must be a number in 1...65535"#),
            ("http://1.2.3:80", #""1.2.3" is not a numeric IPv4 address"#),
            ("http://[::g]:80", #""::g" is not a numeric IPv6 address"#),
            ("http://[::1]x", #""[::1]x": expected :port after the IPv6 host"#),
            (
                "http://m.-x:80",
                #"host "m.-x" is not a DNS name (labels of letters, digits, '-' and '_'), an IPv4 address or [an IPv6 one]"#
            ),
            (
                "http://m:80/a|b",
                #""/a|b" has a character a URL path cannot have (RFC 3986: letters, digits, -._~!$&'()*+,;=:@/ and %XX)"#
            ),
            ("http://m:80/a%2", #""%" must start a percent-encoded byte (%XX) in "/a%2""#),
        ]
        for (url, message) in cases {
            #expect(errors("  upstream: \"\(url)\"\n") == ["9:13: proxy.upstream: \(message)"], "\(url)")
        }
    }

    @Test("route mistakes, each located")
    func routeErrors() {
        #expect(
            errorsAfterUpstream("  routes: []\n")
                == ["10:11: proxy.routes: list at least one route (leave routes out for the default ones)"])
        let many = (0...ProxyConfiguration.maxRoutes).map { "    - {path: /r\($0), model: credit}\n" }.joined()
        #expect(
            errorsAfterUpstream("  routes:\n" + many)
                == ["11:5: proxy.routes: 65 routes, more than 64 (the most a proxy may have)"])
        let cases: [(String, String)] = [
            (
                "{model: credit}",
                "11:7: proxy.routes[0].path: required: the request path pattern (like /v2/models/{model}/infer)"
            ),
            ("{path: v2/x, model: credit}", "11:14: proxy.routes[0].path: a path pattern starts with /"),
            (
                "{path: /v2/*/infer, model: credit}",
                "11:14: proxy.routes[0].path: no wildcards (*): use {model} or {version} for a path segment"
            ),
            (
                #"{path: "/v2/{name}"}"#,
                "11:14: proxy.routes[0].path: unknown placeholder {name} (only {model} and {version})"
            ),
            (#"{path: "/v2/{model}/{model}"}"#, "11:14: proxy.routes[0].path: {model} appears twice"),
            (
                #"{path: "/v2/{model}{version}"}"#,
                "11:14: proxy.routes[0].path: two placeholders side by side: literal text must separate them"
            ),
            (#"{path: "/v2/{model", model: x}"#, "11:14: proxy.routes[0].path: a { without its }"),
            (#"{path: "/v2/model}/x", model: credit}"#, "11:14: proxy.routes[0].path: a } without its {"),
            (
                #"{path: "/v2/a b/{model}"}"#,
                #"11:14: proxy.routes[0].path: "/v2/a b/" has a character a URL path cannot have (RFC 3986: letters, digits, -._~!$&'()*+,;=:@/ and %XX)"#
            ),
            (
                "{path: /x, methods: [], model: credit}",
                "11:27: proxy.routes[0].methods: list at least one method (like POST)"
            ),
            (
                #"{path: /x, methods: ["GE T"], model: credit}"#,
                #"11:28: proxy.routes[0].methods[0]: "GE T" is not an HTTP method (a token, like POST)"#
            ),
            (
                // Case-sensitive (RFC 9110 §9.1): `get` matched no request and the route's traffic went unrouted.
                "{path: /x, methods: [get], model: credit}",
                #"11:28: proxy.routes[0].methods[0]: "get": methods are case-sensitive (RFC 9110 §9.1): write GET"#
            ),
            (
                "{path: /x, methods: [PUT, PUT], model: credit}",
                #"11:33: proxy.routes[0].methods[1]: "PUT" is listed twice"#
            ),
            (
                "{path: /x, model: churn}",
                #"11:25: proxy.routes[0].model: unknown model "churn" (configured: credit, fraud)"#
            ),
            (
                #"{path: "/m/{model}", model: credit}"#,
                "11:35: proxy.routes[0].model: the path names the model ({model}): give {model}, model or model_header"
            ),
            (
                "{path: /x, model: credit, model_header: X-M}",
                "11:47: proxy.routes[0].model_header: the model is named already: give {model}, model or model_header"
            ),
            (
                #"{path: "/m/{model}", model_header: X-M}"#,
                "11:42: proxy.routes[0].model_header: the model is named already: give {model}, model or model_header"
            ),
            (
                #"{path: /x, model_header: "X M"}"#,
                #"11:32: proxy.routes[0].model_header: "X M" is not a header name (letters, digits and !#$%&'*+-.^_`|~)"#
            ),
            (
                "{path: /x, model_pointer: model}",
                #"11:33: proxy.routes[0].model_pointer: "model" is not a JSON pointer to a value (RFC 6901: starting with /)"#
            ),
            (
                #"{path: /x, model_pointer: "/rows/*/model"}"#,
                #"11:33: proxy.routes[0].model_pointer: "/rows/*/model": a model pointer names one value (no *)"#
            ),
            (
                #"{path: /x, model_pointer: "/a~2"}"#,
                #"11:33: proxy.routes[0].model_pointer: "/a~2": ~ must be followed by 0 or 1 (RFC 6901)"#
            ),
            (
                "{path: /x, model: credit, model_pointer: /m}",
                "11:48: proxy.routes[0].model_pointer: the model is named already: give {model}, model, model_header or model_pointer"
            ),
            (
                "{path: /v1/chat/completions, protocol: openai, model_pointer: /m}",
                "11:69: proxy.routes[0].model_pointer: an openai route reads the body's model itself: leave model_pointer out"
            ),
            (
                "{path: /x, model: credit, version_header: X-V, version_pointer: /v}",
                "11:71: proxy.routes[0].version_pointer: the version is named already: give {version}, version, version_header or version_pointer"
            ),
            (
                #"{path: "/x/{model}", version_pointer: "/rows/*/v"}"#,
                #"11:45: proxy.routes[0].version_pointer: "/rows/*/v": a version pointer names one value (no *)"#
            ),
            (
                "{path: /v1/completions, protocol: openai, version_pointer: /v}",
                "11:66: proxy.routes[0].version_pointer: an openai route's versions are its adapters: leave version_pointer out"
            ),
            (
                "{path: /x, model: credit, capture_protocol: custom}",
                "11:51: proxy.routes[0].capture_protocol: unknown capture protocol \"custom\" (expected one of: kserve_v1, open_inference_v2, mlflow)"
            ),
            (
                "{path: /v1/completions, protocol: openai, capture_protocol: kserve_v1}",
                "11:67: proxy.routes[0].capture_protocol: an openai route is measured by the LLM metrics: leave it out"
            ),
            (
                "{path: /x, model_pointer: /m, capture_protocol: mlflow}",
                "11:55: proxy.routes[0].capture_protocol: a model_pointer route decodes with the protocol of the model its body names: leave it out"
            ),
            (
                "{path: /x, version: v1}",
                "11:7: proxy.routes[0]: a route must say which model a request is for: {model} in the path, model, model_header or model_pointer (or protocol: openai, for the body's model)"
            ),
            (
                "{path: /x, model: fraud, version: v1}",
                #"11:41: proxy.routes[0].version: "v1" is not a version of model "fraud" (its versions: a)"#
            ),
            (#"{path: /x, model: fraud, version: ""}"#, "11:41: proxy.routes[0].version: must not be empty"),
            (
                #"{path: "/m/{model}/{version}", version: v1}"#,
                "11:47: proxy.routes[0].version: the path names the version ({version}): give {version}, version or version_header"
            ),
            (
                #"{path: "/x/{model}", version: v1, version_header: X-V}"#,
                "11:57: proxy.routes[0].version_header: the version is named already: give {version}, version or version_header"
            ),
            (
                #"{path: "/x/{model}/{version}", version_header: X-V}"#,
                "11:54: proxy.routes[0].version_header: the version is named already: give {version}, version or version_header"
            ),
            (
                #"{path: "/x/{model}", weight: 2}"#,
                "11:28: proxy.routes[0].weight: unknown field (expected one of: path, methods, model, model_header, model_pointer, version, version_header, version_pointer, protocol, capture_protocol)"
            ),
        ]
        for (route, error) in cases {
            #expect(errorsAfterUpstream("  routes:\n    - \(route)\n") == [error], "\(route)")
        }
        // A body's model needs the request body captured.
        #expect(
            errorsAfterUpstream("  capture: {max_body_bytes: 0}\n  routes:\n    - {path: /x, model_pointer: /m}\n") == [
                "10:12: proxy.capture.max_body_bytes: must be above 0: routes[0] reads the model (model_pointer) from the request body"
            ])
        // Also beside another route's error (which left no routes read, and so hid this one: a docs review).
        let beside = errorsAfterUpstream(
            "  capture: {max_body_bytes: 0}\n  routes:\n    - {path: /x, model_pointer: /m}\n    - {path: /y, weight: 2}\n"
        )
        #expect(beside.count == 3, "\(beside)")  // routes[1]: its model, and its unknown field
        #expect(beside.contains { $0.contains("must be above 0: routes[0] reads the model (model_pointer)") })
        // A route that an earlier one always takes first is refused; one after a header route is a fallback.
        #expect(
            errorsAfterUpstream(
                """
                  routes:
                    - {path: "/m/{model}", methods: [GET, POST]}
                    - {path: "/m/{model}", methods: [POST], version_header: X-V}
                    - {path: /x, model_header: X-M}
                    - {path: /x, model: credit}

                """) == ["12:7: proxy.routes[1]: never matched: routes[0] takes the same requests first"])
    }

    @Test("a configuration built in code is checked like a file, and comes back unchanged")
    func inCode() throws {
        let loaded = try load(
            """
              listen: [":0"]
              upstream: http://[::1]:8080/base
              connect_timeout: 1500ms
              error_statuses: [503, 4xx]
              capture: {max_body_bytes: 10, sample_rate: 0.5}
              routes:
                - {path: /invocations, model: credit, version_header: X-V}
                - {path: "/v1/models/{model}:predict", methods: [POST, PUT]}

            """)
        #expect(try loaded.validated() == loaded)
        var configuration = ExporterConfiguration(models: loaded.models, source: "<code>")
        configuration.proxy = ProxyConfiguration(upstream: .init(host: "m", port: 0))
        configuration.proxy?.routes.append(.init(path: "/x", model: "churn", version: "1"))
        configuration.proxy?.requestIDHeader = "X Id"
        #expect(
            codeProblems(configuration) == [
                "proxy.upstream: port \"0\" must be a number in 1...65535",
                #"proxy.request_id_header: "X Id" is not a header name (letters, digits and !#$%&'*+-.^_`|~)"#,
                #"proxy.routes[7].model: unknown model "churn" (configured: credit, fraud)"#,
            ])
        configuration.proxy = ProxyConfiguration(upstream: .init(host: "m", port: 80, basePath: "/a/"))
        #expect(try configuration.validated().proxy?.upstream.basePath == "/a")
    }

    @Test("a reload sees the proxy: the same text loads equal, a changed field unequal")
    func reloadEquality() throws {
        let text = "  upstream: http://127.0.0.1:8080\n  routes:\n    - {path: /invocations, model: credit}\n"
        #expect(try load(text) == load(text))
        #expect(try load(text) != load(text + "  idle_timeout: 3s\n"))
        #expect(try load(text) != load(text.replacingOccurrences(of: "credit", with: "fraud")))
        #expect(try load(text) != ConfigLoader.parse(models, file: "test.yaml"))
    }
}

/// The `remote_write` section's refusals the remote-write spec asks for.
@Suite struct RemoteWriteConfigTests {
    /// Reserved headers (sent twice before: a second `Content-Length: 0` made Prometheus refuse every request) and
    /// empty external label values (label values must not be empty) are refused, each located.
    @Test func reservedHeadersAndEmptyLabelValuesAreRefused() {
        let yaml = """
            models:
              - {name: m, task: regression, versions: [v1]}
            remote_write:
              url: http://127.0.0.1:9090/api/v1/write
              headers: {Content-Length: "0", X-Scope-OrgID: tenant, user-agent: me}
              external_labels: {site: "", region: eu}

            """
        let problems = locatedErrors(yaml)
        #expect(
            problems.contains {
                $0.hasSuffix(
                    #"remote_write.headers.Content-Length: "Content-Length" is set by the remote-write protocol and cannot be configured"#
                )
            }, "\(problems)")
        #expect(
            problems.contains {
                $0.hasSuffix(
                    #"remote_write.headers.user-agent: "user-agent" is set by the remote-write protocol and cannot be configured"#
                )
            }, "\(problems)")
        #expect(
            problems.contains {
                $0.hasSuffix(
                    "remote_write.external_labels.site: empty: a label value may not be empty (leave the label out)")
            }, "\(problems)")
        #expect(problems.count == 3, "\(problems)")
    }

    /// A URL that cannot be used, or none, no longer hides the other fields' errors (they were found one run later).
    @Test func aBadURLDoesNotHideTheOtherFieldsErrors() {
        let yaml = """
            models:
              - {name: m, task: regression, versions: [v1]}
            remote_write:
              url: ftp://x
              timeout: zz
              max_pending_requests: 0

            """
        #expect(
            locatedErrors(yaml).map { $0.split(separator: " ", maxSplits: 1).last.map(String.init) ?? $0 } == [
                #"remote_write.url: "ftp://x" is not an http:// URL (http://host:port[/base-path])"#,
                #"remote_write.timeout: "zz" is not a duration (like 500ms, 15s, 1m)"#,
                "remote_write.max_pending_requests: must be between 1 and 1000",
            ])
        let missing = locatedErrors("models: []\nremote_write:\n  interval: 0s\n")
        #expect(
            missing.count == 2 && missing.last?.hasSuffix("remote_write.interval: must be between 1s and 1h") == true)
    }
}
