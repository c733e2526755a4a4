"""KServe's Python model server (PyPI `kserve`, run from .venv-kserve) serving a scikit-learn model saved by the test:
KServe v1 `/v1/models/credit:predict` and Open Inference v2 `/v2/models/credit/infer`.

Usage: python kserve_credit.py MODEL.joblib HTTP_PORT GRPC_PORT
"""
import sys
import joblib
import numpy as np
import kserve
from kserve import InferOutput, InferRequest, InferResponse


class Credit(kserve.Model):
    def __init__(self, name, path):
        super().__init__(name)
        self.clf = joblib.load(path)
        self.ready = True

    def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            # A missing value (NaN: KServe's v2 endpoint reads the NaN tokens of Python's json.dumps) as 0, the mean.
            predictions = self.clf.predict(np.nan_to_num(payload.inputs[0].as_numpy().astype(float), nan=0.0))
            return InferResponse(
                model_name=self.name, infer_outputs=[
                    InferOutput(name="predict", shape=[len(predictions)], datatype="INT64", data=predictions.tolist())],
                response_id=payload.id or "kserve",
                # Binary outputs when the request asks (tritonclient's binary_data=True): the v2 binary tensor extension.
                use_binary_outputs=payload.use_binary_outputs, requested_outputs=payload.request_outputs)
        return {"predictions": self.clf.predict(np.asarray(payload["instances"], dtype=float)).tolist()}


if __name__ == "__main__":
    kserve.ModelServer(http_port=int(sys.argv[2]), grpc_port=int(sys.argv[3]), enable_grpc=False, workers=1).start(
        [Credit("credit", sys.argv[1])])
