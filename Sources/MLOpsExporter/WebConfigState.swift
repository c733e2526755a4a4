import Dispatch
import ExporterConfig
import Exposition
import Glibc
import HTTPServer
import Logging
import Synchronization

/// The web configuration in force (`--web.config.file`): basic-auth users and response headers for the
/// ``WebHandler``, and the TLS settings of the server. Re-read on SIGHUP, and when the file or one its TLS section
/// names (certificate, key, client CA) changes on disk (checked every ``watchInterval``; exporter-toolkit reads
/// them at every connection, and a certificate rotated in place, as cert-manager's mounted secrets are, was served
/// old until a SIGHUP): a file that fails validation, or whose certificate cannot be loaded, leaves the previous
/// configuration in force, is logged with every problem, and sets `mlops_exporter_web_config_last_reload_successful`
/// to 0 (a change is tried once: the next change tries again; one seen while the process is out of descriptors waits
/// until it can be read).
final class WebConfigState: Sendable {
    /// What the handler needs per request, swapped as one value on reload.
    struct Current: Sendable {
        let configuration: WebConfiguration
        let auth: BasicAuth
        let headers: [(name: String, value: String)]
        /// `rate_limit`, nil when there is none.
        let limiter: RateLimiter?
    }

    let path: String?
    let logger: Logger
    let metrics: ReloadMetrics
    private let current: Mutex<Current>
    private let reloadLock = Mutex(())
    /// The server whose TLS settings a reload replaces; set once the server exists. Held weakly: the server
    /// holds this state through its handler, and an embedded exporter must be freed whole once released.
    private let server = Mutex<WeakServer>(WeakServer())
    /// How often the files are looked at (a `stat` each).
    static let watchInterval: Duration = .seconds(5)
    /// The files' identities (device, inode, size, modification time) when last looked at; empty before.
    private let stamps = Mutex<[String: [Int]]>([:])
    private let watching = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)

    init(path: String?, initial: WebConfiguration, registry: Registry, logger: Logger) throws(ExpositionError) {
        self.path = path
        self.logger = logger
        self.current = Mutex(Self.makeCurrent(initial))
        metrics = try ReloadMetrics(
            registry: registry, prefix: "mlops_exporter_web_config", what: "web configuration (--web.config.file)")
    }

    /// The configuration in force.
    var snapshot: Current { current.withLock { $0 } }

    func attach(_ server: HTTPServer) {
        self.server.withLock { $0.server = server }
    }

    /// The server settings a web configuration implies: TLS and HTTP/2.
    static func apply(_ web: WebConfiguration, to configuration: inout HTTPServer.Configuration) {
        configuration.tls = web.tls.map(tlsConfiguration)
        configuration.http2Enabled = web.http2
    }

    /// Converts the file's `tls_server_config` (already validated) into the server's settings.
    static func tlsConfiguration(_ tls: WebConfiguration.TLSServer) -> TLSConfiguration {
        var out = TLSConfiguration(certificateFile: tls.certFile, privateKeyFile: tls.keyFile)
        out.certificatePEM = tls.cert
        out.privateKeyPEM = tls.key
        out.clientAuth = TLSConfiguration.ClientAuth(rawValue: tls.clientAuthType) ?? .noClientCert
        out.clientCAFile = tls.clientCAFile
        out.clientCAPEM = tls.clientCA
        out.allowedClientSANs = tls.clientAllowedSANs
        out.minVersion = TLSConfiguration.Version(rawValue: tls.minVersion) ?? .tls12
        out.maxVersion = tls.maxVersion.flatMap(TLSConfiguration.Version.init(rawValue:))
        out.cipherSuites = tls.cipherSuites
        out.curvePreferences = tls.curvePreferences
        out.preferServerCipherSuites = tls.preferServerCipherSuites
        return out
    }

    /// Re-reads the file and, when it is valid and its certificate loads, puts it in force. Returns the
    /// problem (already logged and counted) or nil. Without a file there is nothing to do.
    @discardableResult
    func reload(trigger: String) -> String? {
        guard let path else { return nil }
        return reloadLock.withLock { _ -> String? in
            // The files as they are read now: whatever this reload makes of them (in force or rejected), the watcher
            // looks again only at a later change. Before, every SIGHUP after an edit was followed by the watcher's
            // reload of the same files (a rejected file counted two failures).
            if watching.load(ordering: .relaxed) {
                let read = currentStamps()
                stamps.withLock { stamps in stamps.merge(read) { _, now in now } }
            }
            var fresh: WebConfiguration
            do throws(ConfigErrors) {
                fresh = try WebConfigLoader.load(file: path)
            } catch {
                return rejected(error.description, trigger: trigger)
            }
            let old = snapshot.configuration
            if fresh.http2 != old.http2 || (fresh.tls == nil) != (old.tls == nil) {
                logger.warning(
                    "web configuration: switching TLS on or off, or http2, takes a restart; applying the rest",
                    metadata: ["trigger": "\(trigger)"])
                // What is in force stays what is recorded: the next reload (the file watcher's, 5 s later) compared
                // with the file's TLS and turned TLS on for a listener serving plain HTTP (scrapes got 400), or kept a
                // new certificate out until one more reload.
                if (fresh.tls == nil) != (old.tls == nil) { fresh.tls = old.tls }
                fresh.http2 = old.http2
            }
            if let tls = fresh.tls, old.tls != nil, let server = server.withLock({ $0.server }) {
                do throws(HTTPServerError) {
                    try server.reloadTLS(Self.tlsConfiguration(tls))
                } catch {
                    return rejected(error.description, trigger: trigger)
                }
            }
            // Built outside the lock (a bcrypt hash is made for unknown users): requests read the current one meanwhile.
            let next = Self.makeCurrent(fresh, previous: current.withLock { $0 })
            current.withLock { $0 = next }
            metrics.succeeded()
            // Files the new configuration names that were not looked at before, as they are now (other TLS files
            // read as a change at the next look, and reloaded again for nothing); those already looked at keep their
            // stamps, so that a change made while this reload ran is seen at the next look.
            if watching.load(ordering: .relaxed) { stampNewFiles() }
            logger.info(
                "web configuration reloaded",
                metadata: ["trigger": "\(trigger)", "file": "\(path)", "users": "\(fresh.basicAuthUsers.count)"])
            return nil
        }
    }

    /// Starts looking at the files every ``watchInterval`` (once; nothing without a file).
    func watchFiles() {
        guard path != nil, !watching.exchange(true, ordering: .relaxed) else { return }
        _ = filesChanged()  // the files as they are now
        scheduleWatch()
    }

    /// Stops looking at the files.
    func stopWatching() { stopped.store(true, ordering: .relaxed) }

    private func scheduleWatch() {
        DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + Self.watchInterval.seconds) {
            [weak self] in
            guard let self, !self.stopped.load(ordering: .relaxed) else { return }
            self.look()
            self.scheduleWatch()
        }
    }

    /// Set while a change waits for a descriptor to be read with (``look()``).
    private let changeWaits = Atomic<Bool>(false)

    /// One look at the files: a change is reloaded, unless the process is out of descriptors (clients may hold every
    /// one): then the change waits for the next look, when one may be free. Before, it was read then, failed, and was
    /// never tried again (a rotated certificate stayed unserved; a probe found it).
    func look() {
        let changed = filesChanged()
        guard changed || changeWaits.load(ordering: .relaxed) else { return }
        guard Self.descriptorAvailable() else {
            if !changeWaits.exchange(true, ordering: .relaxed) {
                logger.warning(
                    "web configuration: a change waits: out of file descriptors to read it with (looked at again every \(Self.watchInterval))",
                    metadata: ["file": "\(path ?? "")"])
            }
            return
        }
        changeWaits.store(false, ordering: .relaxed)
        reload(trigger: "file change")
    }

    /// Whether the process can open a descriptor now (not at its open-file limit, nor the system at its own).
    static func descriptorAvailable() -> Bool {
        let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard fd < 0 else {
            close(fd)
            return true
        }
        return errno != EMFILE && errno != ENFILE
    }

    /// Whether the file or a TLS file it names differs from when last looked at (the first look: false).
    func filesChanged() -> Bool {
        let now = currentStamps()
        return stamps.withLock { stamps in
            defer { stamps = now }
            return !stamps.isEmpty && stamps != now
        }
    }

    /// Stamps the files the configuration in force names that have none yet, and forgets those it no longer names.
    private func stampNewFiles() {
        let now = currentStamps()
        stamps.withLock { stamps in
            for (file, stamp) in now where stamps[file] == nil { stamps[file] = stamp }
            for file in stamps.keys where now[file] == nil { stamps[file] = nil }
        }
    }

    /// The identity of each file the configuration in force names (the file, its TLS certificate, key, client CA).
    private func currentStamps() -> [String: [Int]] {
        guard let path else { return [:] }
        var files = [path]
        if let tls = snapshot.configuration.tls {
            files += [tls.certFile, tls.keyFile, tls.clientCAFile ?? ""].filter { !$0.isEmpty }
        }
        var now: [String: [Int]] = [:]
        for file in files {
            var info = stat()
            // Followed through links (a mounted secret's files are links into the directory it swaps).
            now[file] =
                stat(file, &info) == 0
                ? [
                    Int(info.st_dev), Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec),
                    Int(info.st_mtim.tv_nsec),
                ] : []
        }
        return now
    }

    private func rejected(_ problem: String, trigger: String) -> String {
        metrics.failed()
        logger.error(
            "web configuration reload rejected; keeping the previous configuration",
            metadata: ["trigger": "\(trigger)", "problem": "\(problem)"])
        return problem
    }

    /// The state for `web`; the previous one's success cache is carried, and its rate limiter when the limit is the
    /// same (a reload does not refill the bucket).
    private static func makeCurrent(_ web: WebConfiguration, previous: Current? = nil) -> Current {
        let limiter = web.rateLimit.map { limit in
            previous?.limiter.flatMap { $0.limit == (limit.interval, limit.burst) ? $0 : nil }
                ?? RateLimiter(interval: limit.interval, burst: limit.burst)
        }
        return Current(
            configuration: web, auth: BasicAuth(users: web.basicAuthUsers, carrying: previous?.auth),
            headers: web.headers.map { (name: $0.name, value: $0.value) }, limiter: limiter)
    }
}

/// A weak reference to the server, for the objects the server itself keeps alive (its handler's state, the
/// registry's collectors): a strong one would be a cycle, and an embedded exporter would never be freed.
struct WeakServer: @unchecked Sendable {
    // @unchecked: the reference is only read and written under the Mutex that holds this value, or set once
    // before any other thread can see it.
    weak var server: HTTPServer?
}
