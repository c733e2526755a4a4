import ArgumentParser
import MLOpsExporter

/// `mlops-exporter`: the command line. Parses arguments and hands over to the MLOpsExporter library.
struct MLOpsExporterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlops-exporter",
        abstract: "Prometheus exporter for a service's SRE signals and its ML models' health.",
        version: MLOpsExporterVersion.version)
}

MLOpsExporterCommand.main()
