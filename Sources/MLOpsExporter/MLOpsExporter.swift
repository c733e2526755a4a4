// What a service that embeds the exporter names: its configuration, the registry and metric types, the models and
// their events (`MonitoredModel`, `PredictionEvent`, `LabelEvent`, `RejectReason`), and its state's storage. Before,
// the models and events were not re-exported: `import MLOpsExporter` alone could record a prediction through a
// method but could not name the event types a delayed label needs. Ingestion's event types only, by name: the
// module's `FeatureKind` (the schema's) would make ExporterConfig's, which configurations name, ambiguous.
@_exported import ExporterConfig
@_exported import Exposition
@_exported import ModelMonitoring
@_exported import StateStorage

@_exported import enum Ingestion.FeatureValue
@_exported import struct Ingestion.LabelEvent
@_exported import enum Ingestion.Outcome
@_exported import struct Ingestion.PredictionEvent
@_exported import enum Ingestion.PredictionStatus
@_exported import enum Ingestion.RejectReason
@_exported import struct Ingestion.Schema

/// The version of mlops-exporter, shown by `--version`, the landing page and `mlops_exporter_build_info`.
public enum MLOpsExporterVersion {
    /// Semantic version of this build.
    public static let version = "0.1.0"
    /// The `User-Agent` of what the exporter sends (remote write, pushes): name and version.
    public static var userAgent: String { "mlops-exporter/\(version)" }
    /// The git commit this build was made from (`unknown` when it was not built from a git checkout of this package):
    /// read before each build by the package's `BuildRevision` plugin (Plugins/BuildRevision).
    public static let revision = BuildRevision.value

    /// The platform as Go names it (`linux/amd64`, `linux/arm64`), as Go exporters' `--version` prints it.
    public static var platform: String {
        #if os(Linux)
            let os = "linux"
        #elseif os(macOS)
            let os = "darwin"
        #else
            let os = "unknown"
        #endif
        #if arch(x86_64)
            let arch = "amd64"
        #elseif arch(arm64)
            let arch = "arm64"
        #else
            let arch = "unknown"
        #endif
        return "\(os)/\(arch)"
    }

    /// What `--version` prints, in the shape of Go exporters' `version.Print`: name, version and revision on the first
    /// line, then the platform.
    public static var printed: String {
        "mlops-exporter, version \(version) (revision: \(revision))\n  platform:         \(platform)"
    }
}
