// A Hummingbird 2 service with routes of its own (`GET /hello`) that mounts mlops-exporter's endpoints:
// `GET /metrics` (the service's metrics and its models' health, negotiated, gzip, coalesced) and the ingestion
// API (`POST /api/v1/models/{model}/predictions|labels`). No second server, no second port.
//
//   hummingbird-example [--port N] [--config FILE]   (SIGHUP reloads FILE; SIGTERM, SIGINT stop)
//
// --port: where to listen on 127.0.0.1 (default 8080; 0 picks a free port); the bound address is printed as
// `listening on 127.0.0.1:PORT`. --config: the models, from a YAML file as `mlops-exporter serve --config` reads
// it; without it, one model built in code. See docs/embedding.md.
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MLOpsExporter

/// The command line: `--port N` and `--config FILE` (each at most once), `--help`; anything else is an error
/// (exit 2 with the usage).
let usage = "usage: hummingbird-example [--port N] [--config FILE]\n"
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("hummingbird-example: \(message)\n\(usage)".utf8))
    exit(2)
}
var options: [String: String] = [:]
var rest = CommandLine.arguments.dropFirst()
while let name = rest.popFirst() {
    if name == "--help" || name == "-h" {
        FileHandle.standardOutput.write(Data(usage.utf8))
        exit(0)
    }
    guard ["--port", "--config"].contains(name) else { fail("unknown argument \(name)") }
    guard options[name] == nil else { fail("\(name) given twice") }
    guard let value = rest.popFirst(), !value.hasPrefix("--") else { fail("\(name) needs a value") }
    options[name] = value
}
let port: Int
if let text = options["--port"] {
    guard let number = Int(text), (0...65535).contains(number) else { fail("--port: \(text) is not a port (0-65535)") }
    port = number
} else {
    port = 8080
}

let logger = Logger(label: "hummingbird-example")
var configuration = Exporter.Configuration()
do {
    if let file = options["--config"] {
        configuration.models = try Exporter.checkConfiguration(file: file)
        configuration.configPath = file  // what `exporter.reload()` (SIGHUP) reads again
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

// Mount the exporter's endpoints on this router (docs/embedding.md shows these lines). A request announcing a body
// is screened from its head first (credentials, token, model, media type, size, room on the workers): a client
// without a token never gets its body read.
let endpoints = exporter.endpoints
@Sendable func mount(_ request: Request, _ context: AppContext) async throws -> Response {
    var exchange = ExporterEndpoints.Request(
        method: request.method.rawValue, path: request.uri.path, query: request.uri.query,
        headers: request.headers.map { ($0.name.rawName, $0.value) }, body: [], remoteAddress: context.client)
    let answer: ExporterEndpoints.Response
    if let refused = await endpoints.admit(exchange) {
        answer = refused  // the body is not collected (Hummingbird reads and drops what the client still sends)
    } else {
        do {
            exchange.body = Array(try await request.body.collect(upTo: endpoints.maxBodyBytes).readableBytesView)
            answer = await endpoints.respond(to: exchange)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            answer = endpoints.bodyTooLarge()  // the exporter's 413, counted as its own server counts it
        }
    }
    let fields = answer.headers.compactMap { f in HTTPField.Name(f.name).map { HTTPField(name: $0, value: f.value) } }
    return Response(
        status: .init(code: answer.status), headers: HTTPFields(fields),
        body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
}
// Every method, so that a wrong one gets the exporter's 405 with `Allow` (HEAD of /metrics is a GET without body).
let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .delete, .patch, .options, .trace]
for method in methods {
    router.on(RouterPath(endpoints.metricsPath), method: method, use: mount)
    router.on("/api/v1/models/**", method: method, use: mount)
}

let app = Application(
    router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
    onServerRunning: { channel in
        let line = "listening on 127.0.0.1:\(channel.localAddress?.port ?? port)\n"
        FileHandle.standardError.write(Data(line.utf8))
    },
    logger: logger)
// SIGHUP reloads the models file, as it does for `mlops-exporter serve` (its default action would end the process
// without the last checkpoint).
signal(SIGHUP, SIG_IGN)
let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
hangup.setEventHandler {
    if let problem = exporter.reload() {
        logger.error("configuration reload rejected", metadata: ["problem": "\(problem)"])
    } else {
        logger.info("configuration reloaded")
    }
}
hangup.resume()
// With `storage:` in the models file: restore the last checkpoint before serving, then checkpoint every interval;
// the last checkpoint is written at shutdown (SIGTERM or SIGINT end `runService()`).
exporter.startStorage()
try await app.runService()
exporter.shutdown()
