/// Which serving protocol a model's traffic speaks, and so how ``CaptureDecoder`` reads a request and its response.
public enum CaptureProtocol: String, Sendable, CaseIterable {
    /// KServe v1 / TensorFlow Serving: `POST /v1/models/{m}:predict`, `{"instances": [...]}` (or `"inputs"`) answered
    /// by `{"predictions": [...]}`, one prediction per instance.
    case kserveV1 = "kserve_v1"
    /// Open Inference Protocol v2 (KServe v2, MLServer, Triton): `POST /v2/models/{m}[/versions/{v}]/infer`, named
    /// input and output tensors (`name`, `shape`, `datatype`, `data`), one event per row (`shape[0]`).
    case openInferenceV2 = "open_inference_v2"
    /// The MLflow scoring server: `POST /invocations` with `dataframe_split`, `dataframe_records`, `instances` or
    /// `inputs`, answered by `{"predictions": [...]}` or a bare list.
    case mlflow
    /// Any JSON: the fields are found by the JSON pointers of a ``CustomMapping``.
    case custom
}
