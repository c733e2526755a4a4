// A Hummingbird 2 service with routes of its own (`GET /hello`) that mounts mlops-exporter's endpoints:
// `GET /metrics` (the service's metrics and its models' health, negotiated, gzip, coalesced) and the ingestion
// API (`POST /api/v1/models/{model}/predictions|labels`). No second server, no second port.
//
//   hummingbird-example [--port N] [--config FILE]
//
// --port: where to listen on 127.0.0.1 (default 8080; 0 picks a free port); the bound address is printed as
// `listening on 127.0.0.1:PORT`. --config: the models, from a YAML file as `mlops-exporter serve --config` reads
// it; without it, one model built in code. See docs/embedding.md.
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MLOpsExporter

let arguments = CommandLine.arguments
func argument(_ name: String) -> String? {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}

let logger = Logger(label: "hummingbird-example")
var configuration = Exporter.Configuration()
do {
    if let file = argument("--config") {
        configuration.models = try Exporter.checkConfiguration(file: file)
    } else {
        // The same checks as a file's: a mistake here throws ConfigErrors naming the field.
        let churn = ModelConfiguration(
            name: "churn", task: .binaryClassification, versions: ["v1"], classes: ["stay", "churn"],
            positiveClass: "churn")
        configuration.models = try ExporterConfiguration(models: [churn], source: "<code>").validated()
    }
} catch {
    FileHandle.standardError.write(Data("invalid model configuration:\n\(error)\n".utf8))
    exit(1)
}
let exporter = try Exporter(configuration: configuration, logger: logger)
let requests = try exporter.registry.counter("hello_requests_total", help: "Requests to /hello.")

/// Hummingbird's basic context plus the client's address (`ip:port`), which the exporter's basic auth limits
/// uncached password checks by: without it every client would share one quota.
struct AppContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let client: String

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        let address = source.channel.remoteAddress
        if let ip = address?.ipAddress, let port = address?.port {
            client = ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
        } else {
            client = ""
        }
    }
}

let router = Router(context: AppContext.self)
router.get("/hello") { _, _ in
    requests.inc()
    return "hello\n"
}

// Mount the exporter's endpoints on this router (the README shows these lines).
let endpoints = exporter.endpoints
@Sendable func mount(_ request: Request, _ context: AppContext) async throws -> Response {
    let answer: ExporterEndpoints.Response
    do {
        let body = try await request.body.collect(upTo: endpoints.maxBodyBytes)
        answer = await endpoints.respond(
            to: .init(
                method: request.method.rawValue, path: request.uri.path, query: request.uri.query,
                headers: request.headers.map { ($0.name.rawName, $0.value) }, body: Array(body.readableBytesView),
                remoteAddress: context.client))
    } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
        answer = endpoints.bodyTooLarge()  // the exporter's 413, counted as its own server counts it
    }
    let fields = answer.headers.compactMap { f in HTTPField.Name(f.name).map { HTTPField(name: $0, value: f.value) } }
    return Response(
        status: .init(code: answer.status), headers: HTTPFields(fields),
        body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
}
router.get(RouterPath(endpoints.metricsPath), use: mount)
router.post("/api/v1/models/{model}/{kind}", use: mount)

let port = Int(argument("--port") ?? "8080") ?? 8080
let app = Application(
    router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
    onServerRunning: { channel in
        let line = "listening on 127.0.0.1:\(channel.localAddress?.port ?? port)\n"
        FileHandle.standardError.write(Data(line.utf8))
    },
    logger: logger)
// With `storage:` in the models file: restore the last checkpoint before serving, then checkpoint every interval;
// the last checkpoint is written at shutdown (SIGTERM or SIGINT end `runService()`).
exporter.startStorage()
try await app.runService()
exporter.shutdown()
