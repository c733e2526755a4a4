@_exported import ExporterConfig
@_exported import Exposition
@_exported import StateStorage

/// The version of mlops-exporter, shown by `--version`, the landing page and `mlops_exporter_build_info`.
public enum MLOpsExporterVersion {
    /// Semantic version of this build.
    public static let version = "0.1.0"
    /// The `User-Agent` of what the exporter sends (remote write, pushes): name and version.
    public static var userAgent: String { "mlops-exporter/\(version)" }
    /// The git commit this build was made from (`unknown` when it was not built from a git checkout of this package):
    /// read before each build by the package's `BuildRevision` plugin (Plugins/BuildRevision).
    public static let revision = BuildRevision.value
}
