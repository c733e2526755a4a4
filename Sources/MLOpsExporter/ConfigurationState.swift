import ExporterConfig
import Exposition
import Logging
import Synchronization

/// The model configuration currently in force, and its reloading: `--config FILE` read at start, again on
/// SIGHUP and `POST /-/reload`. A reload that fails validation keeps the previous configuration, logs every
/// problem, and says so in `mlops_exporter_config_last_reload_successful` (0) and
/// `mlops_exporter_config_reloads_total{result="failure"}`.
final class ConfigurationState: Sendable {
    let path: String?
    let current: Mutex<ExporterConfiguration>
    let knownCollectors: Set<String>
    let logger: Logger
    let metrics: ReloadMetrics
    /// Serialises reloads (a SIGHUP and a POST at once).
    let reloadLock = Mutex(())

    init(
        path: String?, initial: ExporterConfiguration, knownCollectors: Set<String>, registry: Registry, logger: Logger
    ) throws(ExpositionError) {
        self.path = path
        self.current = Mutex(initial)
        self.knownCollectors = knownCollectors
        self.logger = logger
        metrics = try ReloadMetrics(registry: registry, prefix: "mlops_exporter_config", what: "configuration")
    }

    var configuration: ExporterConfiguration { current.withLock { $0 } }

    /// Whether a configuration file is in use (otherwise the built-in demo configuration is, and a reload
    /// has nothing to read).
    var hasFile: Bool { path != nil }

    /// Re-reads the file. Returns `nil` on success, else the problems (already logged and counted).
    func reload(trigger: String) -> ConfigErrors? {
        guard let path else {
            logger.info(
                "reload requested, but no --config file is in use; nothing to do", metadata: ["trigger": "\(trigger)"])
            return nil
        }
        return reloadLock.withLock { _ -> ConfigErrors? in
            do throws(ConfigErrors) {
                let fresh = try ConfigLoader.load(file: path, knownCollectors: knownCollectors)
                current.withLock { $0 = fresh }
                metrics.succeeded()
                logger.info(
                    "configuration reloaded",
                    metadata: ["trigger": "\(trigger)", "file": "\(path)", "models": "\(fresh.models.map(\.name))"])
                return nil
            } catch {
                metrics.failed()
                for problem in error.errors {
                    logger.error(
                        "configuration reload rejected; keeping the previous configuration",
                        metadata: ["trigger": "\(trigger)", "problem": "\(problem)"])
                }
                return error
            }
        }
    }
}
