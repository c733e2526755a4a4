import HTTPServer

/// Applies the web configuration in front of the ``Router``: basic authentication and the configured
/// response headers, on both the request head (``admit(_:admission:)``, before the server buffers a body) and
/// the complete request (``handle(_:respond:)``).
///
/// Contract:
/// - Credentials in the success cache are accepted at once, on the calling (event-loop) thread: a scrape with
///   cached credentials never waits behind uncached ones.
/// - Uncached credentials (bcrypt) are checked on `checks`, a bounded ``WorkerPool``, never on a loop:
///   beyond ``WorkerLimits/perKey`` checks of one client (its remote address without the port) the answer is
///   429, beyond the pool's `threads + queue` 503, and a check that waited past
///   ``WorkerLimits/maxQueueWait`` is not run but answered 503; each with `Retry-After`. Wrong credentials
///   get 401 with `WWW-Authenticate`. Every refusal is counted in
///   `mlops_exporter_auth_rejected_total{reason}` (``AuthRejectReason``), and every one answered in
///   `mlops_exporter_http_requests_total` under the handler of the path it asked for (``Router/handler(for:)``),
///   like any other answer.
/// - A request that `hasOwnCredentials` names (an ingestion request with `Authorization: Bearer …` to a
///   model that has a `token`) is passed on without basic authentication: the endpoint checks the token (401
///   when wrong), so one `Authorization` header serves a model's token while every other path keeps basic
///   auth.
/// - `rate_limit` comes first: beyond it a request gets 429 with `Retry-After` (at its head when it has a body,
///   before the body is received), counted in `mlops_exporter_http_rate_limited_total` and, as every answer, in
///   `mlops_exporter_http_requests_total`.
/// - Accepted heads go on to `next.admit`, so that the router can refuse them cheaply too; rejections carry
///   the configured headers like any response.
struct WebHandler: HTTPHandler {
    let next: Router
    let web: WebConfigState
    let hasOwnCredentials: @Sendable (HTTPRequest) -> Bool
    /// Where uncached credentials are checked.
    let checks: WorkerPool
    let selfMetrics: SelfMetrics

    /// Seconds a client is asked to wait (`Retry-After`) when the checks are busy.
    static let retryAfterSeconds = 1

    func handle(_ request: HTTPRequest, respond: HTTPResponder) {
        let current = web.snapshot
        let respond = current.headers.isEmpty ? respond : respond.settingHeaders(current.headers)
        if let limiter = current.limiter, !limiter.allow() { return respond(rateLimited(request)) }
        let next = self.next
        authenticate(request, current.auth, cancelled: { respond.isCancelled }, refuse: { respond($0) }) {
            next.handle(request, respond: respond)
        }
    }

    func admit(_ head: HTTPRequest, admission: HTTPAdmission) {
        let current = web.snapshot
        let headers = current.headers
        let limiter = current.limiter
        // Refused at the head, before its body is received, when it would be refused whole (an accepted head's token
        // is taken once the request is complete, by handle).
        if let limiter, !limiter.hasToken() {
            var response = rateLimited(head)
            for field in headers { response.headers.replaceOrAdd(name: field.name, value: field.value) }
            return admission.reject(response)
        }
        // A head refused here (credentials, token, model, media type) never reaches handle: it takes its token now,
        // as a whole request would (before, such refusals cost none: basic-auth guesses in POSTs went unlimited).
        let refuse: @Sendable (HTTPResponse) -> Void = { response in
            _ = limiter?.allow()
            var response = response
            for field in headers { response.headers.replaceOrAdd(name: field.name, value: field.value) }
            admission.reject(response)
        }
        let forward =
            headers.isEmpty && limiter == nil
            ? admission : HTTPAdmission { response in response.map(refuse) ?? admission.accept() }
        let next = self.next
        authenticate(head, current.auth, cancelled: { admission.isCancelled }, refuse: refuse) {
            next.admit(head, admission: forward)
        }
    }

    /// Calls `proceed` when `request` may pass basic authentication, `refuse` with the answer otherwise; either
    /// at once on this thread (no auth, cached or refused credentials) or later on a pool thread (bcrypt),
    /// unless `cancelled` says the client left before the check's turn (counted `cancelled`, nothing answered).
    private func authenticate(
        _ request: HTTPRequest, _ auth: BasicAuth, cancelled: @escaping @Sendable () -> Bool,
        refuse: @escaping @Sendable (HTTPResponse) -> Void,
        then proceed: @escaping @Sendable () -> Void
    ) {
        guard auth.isEnabled else { return proceed() }
        // Two `Authorization` lines are refused as invalid credentials: a proxy in front may have checked the other.
        let screening: BasicAuth.Screening =
            request.headers.isRepeated("Authorization")
            ? .invalid : auth.screen(authorization: request.headers["Authorization"])
        if case .cached = screening { return proceed() }
        if hasOwnCredentials(request) { return proceed() }
        let selfMetrics = self.selfMetrics
        let handler = next.handler(for: request)
        let protocolName = request.protocolName
        let start = ContinuousClock.now
        let reject: @Sendable (AuthRejectReason) -> Void = { reason in
            selfMetrics.authRejected(reason)
            let response = Self.response(reason)
            selfMetrics.handled(
                handler, status: response.status, protocolName: protocolName, bytes: response.body.count,
                seconds: (ContinuousClock.now - start).seconds)
            refuse(response)
        }
        switch screening {
        case .cached: proceed()
        case .missing: reject(.missing)
        case .invalid: reject(.invalid)
        case .uncached(let pending):
            let submission = checks.submit(
                key: Self.client(request.remoteAddress),
                run: {
                    // The client left while the check waited: skip the hash. The request is still answered (503,
                    // counted `cancelled`): the server drops an answer for a closed connection, but an embedding host's
                    // task awaits one (`ExporterEndpoints.respond` hung for good on a cancelled task).
                    if cancelled() {
                        selfMetrics.authRejected(.cancelled)
                        return refuse(Self.response(.cancelled))
                    }
                    auth.verify(pending) ? proceed() : reject(.invalid)
                },
                expired: { reject(.expired) })
            switch submission {
            case .accepted: break
            case .queueFull: reject(.queueFull)
            case .keyLimit: reject(.clientLimit)
            }
        }
    }

    /// The answer to a request refused by `rate_limit` (429, as exporter-toolkit's), counted; `Retry-After` is
    /// when the next token comes at the latest (the interval, in whole seconds, at least 1).
    private func rateLimited(_ request: HTTPRequest) -> HTTPResponse {
        selfMetrics.rateLimited.inc()
        var response = HTTPResponse(status: 429, text: "Too Many Requests\n")
        response.headers.add(name: "Retry-After", value: String(web.snapshot.limiter?.retryAfterSeconds ?? 1))
        selfMetrics.handled(
            next.handler(for: request), status: 429, protocolName: request.protocolName, bytes: response.body.count,
            seconds: 0)
        return response
    }

    /// The answer to a request refused for `reason`.
    static func response(_ reason: AuthRejectReason) -> HTTPResponse {
        var response: HTTPResponse
        switch reason {
        case .missing, .invalid:
            response = HTTPResponse(status: 401, text: "Unauthorized\n")
            response.headers.add(name: "WWW-Authenticate", value: "Basic realm=\"\(BasicAuth.realm)\"")
            return response
        case .clientLimit:
            response = HTTPResponse(status: 429, text: "Too many authentication attempts from this client at once\n")
        case .queueFull, .expired, .cancelled:
            response = HTTPResponse(status: 503, text: "Authentication is busy, try again later\n")
        }
        response.headers.add(name: "Retry-After", value: String(retryAfterSeconds))
        return response
    }

    /// The client part of a remote address: `127.0.0.1:50312` → `127.0.0.1`, `[::1]:50312` → `[::1]`.
    static func client(_ remoteAddress: String) -> String {
        if remoteAddress.hasPrefix("["), let close = remoteAddress.firstIndex(of: "]") {
            return String(remoteAddress[...close])
        }
        guard let colon = remoteAddress.lastIndex(of: ":") else { return remoteAddress }
        return String(remoteAddress[..<colon])
    }
}
