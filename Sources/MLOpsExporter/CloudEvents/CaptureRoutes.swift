import Capture
import ExporterConfig
import ModelMonitoring
import Synchronization

/// Which model, and which decoder, a KServe InferenceService's logger events belong to: each model with a
/// `capture` section, under its `inference_service` (default: the model's name). Rebuilt when the models change (a
/// reload): the table is keyed by the model objects it was built from.
final class CaptureRoutes: Sendable {
    struct Route: Sendable {
        let model: MonitoredModel
        let decoder: CaptureDecoder
    }

    struct Table {
        var models: [ObjectIdentifier] = []
        var byService: [String: Route] = [:]
    }

    let table = Mutex(Table())

    /// The route of `service` among `monitor`'s current models.
    func route(service: String, monitor: ModelMonitor) -> Route? {
        let models = monitor.modelNames.compactMap { monitor.model(named: $0) }
        let ids = models.map(ObjectIdentifier.init)
        return table.withLock { t -> Route? in
            if t.models != ids {
                t.byService = [:]
                for model in models {
                    guard let capture = model.context.configuration.capture,
                        let decoder = try? Self.decoder(capture, model: model)
                    else { continue }
                    t.byService[capture.inferenceService ?? model.name] = Route(model: model, decoder: decoder)
                }
                t.models = ids
            }
            return t.byService[service]
        }
    }

    /// The decoder a model's `capture` section describes (checked against its schema).
    static func decoder(_ capture: CaptureConfiguration, model: MonitoredModel) throws -> CaptureDecoder {
        guard let proto = CaptureProtocol(rawValue: capture.protocolName) else {
            throw CaptureRouteError(message: "unknown protocol \(capture.protocolName)")
        }
        var custom: CustomMapping? = nil
        if proto == .custom {
            func pointer(_ text: String?) -> CustomMapping.Pointer? {
                guard let text, let colon = text.firstIndex(of: ":") else { return nil }
                let source = CustomMapping.Source(rawValue: String(text[..<colon])) ?? .request
                return CustomMapping.Pointer(source, String(text[text.index(after: colon)...]))
            }
            custom = CustomMapping(
                features: capture.features.compactMapValues(pointer), prediction: pointer(capture.fields["prediction"]),
                score: pointer(capture.fields["score"]), probabilities: pointer(capture.fields["probabilities"]),
                id: pointer(capture.fields["id"]), version: pointer(capture.fields["version"]),
                attributes: capture.attributes.compactMapValues(pointer))
        }
        return try CaptureDecoder(protocol: proto, schema: model.context.schema, custom: custom)
    }
}

struct CaptureRouteError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
