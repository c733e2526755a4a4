import Foundation

/// scikit-learn (and numpy on the same bins) as an independent oracle for the quality collector, through
/// ``PythonOracle``: each operation carries named number vectors and scalar arguments, and gets back a
/// dictionary of results. Numbers cross as strings (`Double.description` / Python `repr`), exactly.
enum QualityOracle {
    /// One operation: `op` names it, `vectors` its inputs, `args` its scalars.
    struct Operation: Encodable {
        var op: String
        var vectors: [String: [String]]
        var args: [String: String]

        init(_ op: String, _ vectors: [String: [Double]], args: [String: String] = [:]) {
            self.op = op
            self.vectors = vectors.mapValues { $0.map(\.description) }
            self.args = args
        }
    }

    /// Runs `operations`; the result of each is a dictionary of strings (numbers as Python `repr`, or `error`).
    static func run(_ operations: [Operation]) throws -> [[String: String]] {
        try PythonOracle.results(script: script, operations)
    }

    /// The oracle program: scikit-learn called on the raw outcomes, numpy for the binned calibration error.
    static let script = #"""
        import sys, json, warnings
        warnings.filterwarnings("ignore")
        import numpy as np
        from sklearn import metrics as M

        def num(x):
            return repr(float(x))

        def handle(op):
            kind = op["op"]
            v = {k: np.array([float(x) for x in xs], dtype=float) for k, xs in op["vectors"].items()}
            args = op.get("args", {})
            out = {}
            if kind == "classification":
                # Class indices; index C is __other__. Two __other__ values need not be the same value, so
                # each side gets its own token: __other__ is never a correct prediction.
                C = int(args["classes"])
                yt = np.array(["c%d" % i if i < C else "__other_actual__" for i in v["actual"].astype(int)], dtype=object)
                yp = np.array(["c%d" % i if i < C else "__other_predicted__" for i in v["predicted"].astype(int)], dtype=object)
                labels = ["c%d" % i for i in range(C)]
                out["accuracy"] = num(M.accuracy_score(yt, yp))
                p, r, f, _ = M.precision_recall_fscore_support(yt, yp, labels=labels, average=None, zero_division=0)
                for i in range(C):
                    out["precision%d" % i] = num(p[i])
                    out["recall%d" % i] = num(r[i])
                    out["f1%d" % i] = num(f[i])
                p, r, f, _ = M.precision_recall_fscore_support(yt, yp, labels=labels, average="macro", zero_division=0)
                out["macro_precision"], out["macro_recall"], out["macro_f1"] = num(p), num(r), num(f)
            elif kind == "log_loss":
                C = int(args["classes"])
                y = v["y"].astype(int)
                proba = v["proba"].reshape(len(y), C)
                out["log_loss"] = num(M.log_loss(y, proba, labels=list(range(C))))
            elif kind == "binary":
                y = v["y"].astype(int)
                p = v["p"]
                B = int(args["calibration_bins"])
                out["brier"] = num(M.brier_score_loss(y, p))
                out["roc_auc"] = num(M.roc_auc_score(y, p))
                # ECE with numpy on sklearn calibration_curve's uniform bins (searchsorted on the interior
                # edges of linspace(0, 1, B + 1): bin b holds (b/B, (b+1)/B], bin 0 also 0).
                edges = np.linspace(0.0, 1.0, B + 1)
                b = np.searchsorted(edges[1:-1], p)
                n = np.bincount(b, minlength=B).astype(float)
                sp = np.bincount(b, weights=p, minlength=B)
                sy = np.bincount(b, weights=y.astype(float), minlength=B)
                nz = n > 0
                out["ece"] = num(np.sum(n[nz] / len(y) * np.abs(sy[nz] / n[nz] - sp[nz] / n[nz])))
                out["bins"] = ",".join(str(int(x)) for x in n)
                # The same from sklearn's calibration_curve (mean outcome and mean probability per nonempty bin).
                from sklearn.calibration import calibration_curve
                prob_true, prob_pred = calibration_curve(y, p, n_bins=B, strategy="uniform")
                out["ece_calibration_curve"] = num(np.sum(n[nz] / len(y) * np.abs(prob_true - prob_pred)))
            elif kind == "regression":
                y, pred = v["y"], v["pred"]
                out["mae"] = num(M.mean_absolute_error(y, pred))
                out["rmse"] = num(M.root_mean_squared_error(y, pred))
                nz = y != 0
                if nz.any():
                    out["mape"] = num(M.mean_absolute_percentage_error(y[nz], pred[nz]))
                out["r2"] = num(M.r2_score(y, pred))
                out["mean_error"] = num(np.mean(pred - y))
            else:
                raise ValueError("unknown op " + kind)
            return out

        """#
}
