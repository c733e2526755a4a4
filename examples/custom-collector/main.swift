// An exporter with a user-defined collector: the built-in catalog plus `HighScoreCollector`, which
// configurations can then name like a built-in one (see models.yaml beside this file).
//
//     swift run custom-collector-example --config examples/custom-collector/models.yaml
//
// Flags: --config FILE (required), --web.listen-address ADDR (default :9747), --log.level LEVEL.
import Foundation
import Logging
import MLOpsExporter
import ModelMonitoring

var arguments = ArraySlice(CommandLine.arguments.dropFirst())
var options: [String: String] = [:]
while let flag = arguments.popFirst() {
    guard flag.hasPrefix("--"), let value = arguments.popFirst() else {
        FileHandle.standardError.write(
            Data("usage: custom-collector-example --config FILE [--web.listen-address ADDR]\n".utf8))
        exit(2)
    }
    options[String(flag.dropFirst(2))] = value
}
guard let configPath = options["config"] else {
    FileHandle.standardError.write(Data("custom-collector-example: --config FILE is required\n".utf8))
    exit(2)
}
let level = Logger.Level(rawValue: options["log.level"] ?? "info") ?? .info
LoggingSystem.bootstrap { StderrLogHandler(label: $0, format: .logfmt, level: level) }
let logger = Logger(label: "custom-collector-example")

var catalog = CollectorCatalog.builtIn
try catalog.register(HighScoreCollector.self)

var configuration = Exporter.Configuration()
configuration.collectors = catalog
configuration.listenAddresses = [options["web.listen-address"] ?? Exporter.Configuration.defaultListenAddress]
do {
    configuration.models = try Exporter.checkConfiguration(file: configPath, collectors: catalog)
    configuration.configPath = configPath
    let exporter = try Exporter(configuration: configuration, logger: logger)
    try exporter.start()
    exit(exporter.runUntilSignalled())
} catch {
    FileHandle.standardError.write(Data("custom-collector-example: \(error)\n".utf8))
    exit(1)
}
