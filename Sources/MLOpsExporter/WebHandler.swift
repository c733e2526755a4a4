import Dispatch
import HTTPServer

/// Applies the web configuration in front of the ``Router``: basic authentication (401 with
/// `WWW-Authenticate` when credentials are missing or wrong) and the configured response headers.
///
/// A request whose credentials are in the success cache is routed at once, on the event loop; an
/// uncached one runs bcrypt on a Dispatch queue first, so that a slow hash never stalls the loop.
///
/// A request that `hasOwnCredentials` names (an ingestion request with `Authorization: Bearer …` to a model that
/// has a `token`) is passed on without basic authentication: the endpoint checks the token (401 when wrong), so
/// one `Authorization` header serves a model's token while every other path keeps basic auth.
struct WebHandler: HTTPHandler {
    let next: any HTTPHandler
    let web: WebConfigState
    let hasOwnCredentials: @Sendable (HTTPRequest) -> Bool

    func handle(_ request: HTTPRequest, respond: HTTPResponder) {
        let current = web.snapshot
        let respond = current.headers.isEmpty ? respond : respond.settingHeaders(current.headers)
        let auth = current.auth
        let authorization = request.headers["Authorization"]
        guard auth.isEnabled, !auth.isCached(authorization: authorization), !hasOwnCredentials(request) else {
            next.handle(request, respond: respond)
            return
        }
        DispatchQueue.global().async { [next] in
            if auth.check(authorization: authorization) {
                next.handle(request, respond: respond)
            } else {
                var response = HTTPResponse(status: 401, text: "Unauthorized\n")
                response.headers.add(name: "WWW-Authenticate", value: "Basic realm=\"\(BasicAuth.realm)\"")
                respond(response)
            }
        }
    }
}
