import Capture
import ExporterConfig
import ModelMonitoring
import Synchronization

/// Which model, and which decoder, a KServe InferenceService's logger events belong to: each model with a
/// `capture` section, under its `inference_service` (default: the model's name). Rebuilt when the models change (a
/// reload or a restore: ``ModelMonitoring/ModelMonitor/generation``).
final class CaptureRoutes: Sendable {
    struct Route: Sendable {
        let model: MonitoredModel
        let decoder: CaptureDecoder
        /// For a model captured with `kserve_v1` or `open_inference_v2`, the other one's decoder: KServe serves (and
        /// logs) each model under both protocols, and a logger event does not say which path it came by, so a pair
        /// the model's decoder refuses is read with this one (its failure is the model's decoder's, when both fail).
        let other: CaptureDecoder?
    }

    struct Table {
        /// The monitor's ``ModelMonitor/generation`` the table was built for (`.max`: never built).
        var generation = UInt64.max
        var byService: [String: Route] = [:]
    }

    let table = Mutex(Table())

    /// The route of `service` among `monitor`'s current models (the table rebuilt when the models changed).
    func route(service: String, monitor: ModelMonitor) -> Route? {
        let generation = monitor.generation.load(ordering: .acquiring)
        return table.withLock { t -> Route? in
            if t.generation != generation {
                t.byService = [:]
                for model in monitor.modelNames.compactMap({ monitor.model(named: $0) }) {
                    // Checked when the configuration was loaded: a mapping that does not build never gets here.
                    guard let capture = model.context.configuration.capture,
                        let decoder = try? Self.decoder(capture, model: model)
                    else { continue }
                    let other: CaptureProtocol? =
                        switch decoder.protocol {
                        case .kserveV1: .openInferenceV2
                        case .openInferenceV2: .kserveV1
                        default: nil
                        }
                    t.byService[capture.inferenceService ?? model.name] = Route(
                        model: model, decoder: decoder,
                        other: other.flatMap {
                            try? CaptureDecoder(protocol: $0, schema: decoder.schema, outputs: decoder.outputs)
                        })
                }
                t.generation = generation
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
