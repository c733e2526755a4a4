import Foundation
import Testing

/// scipy and Evidently as an independent oracle at test time (through ``PythonOracle``): a batch of operations
/// as JSON on stdin, one JSON object of results per operation on stdout. Every number crosses as a string
/// (`Double.description` / Python `repr`), so values round-trip exactly.
enum DriftOracle {
    typealias Failure = PythonOracle.Failure

    /// One operation: `op` names it, `a` and `b` are number vectors, `args` scalars.
    struct Operation: Encodable {
        var op: String
        var a: [String] = []
        var b: [String] = []
        var args: [String: String] = [:]

        init(_ op: String, a: [Double] = [], b: [Double] = [], args: [String: String] = [:]) {
            self.op = op
            self.a = a.map(\.description)
            self.b = b.map(\.description)
            self.args = args
        }
    }

    /// Runs `operations`; the result of each is a dictionary of strings (numbers as Python `repr`, or `error`).
    static func run(_ operations: [Operation]) throws -> [[String: String]] {
        try PythonOracle.results(script: script, operations)
    }

    /// The oracle program: scipy and Evidently called on the raw inputs, nothing precomputed.
    static let script = #"""
        import sys, json, warnings
        warnings.filterwarnings("ignore")
        import numpy as np
        from scipy import stats, special
        from scipy.spatial import distance

        def num(x):
            return repr(float(x))

        def fix(shares):
            # Evidently's feel_zeroes rule, re-implemented independently for arbitrary counts.
            s = np.array(shares, dtype=float)
            nz = s[s != 0]
            rep = nz.min() / 10**6 if nz.min() <= 0.0001 else 0.0001
            s[s == 0] = rep
            return s

        _ev = {}
        def evidently():
            if not _ev:
                import pandas as pd
                from evidently.legacy.core import ColumnType
                from evidently.legacy.calculations.stattests import psi, kl_div, jensenshannon, registry
                from evidently.legacy.calculations.stattests import chisquare_stattest, z_stattest, ks_stattest
                from evidently.legacy.calculations.stattests import wasserstein_distance_norm
                _ev.update(pd=pd, ColumnType=ColumnType, psi=psi._psi, kl=kl_div._kl_div,
                           js=jensenshannon._jensenshannon, chi=chisquare_stattest._chi_stat_test,
                           z=z_stattest._z_stat_test, ks=ks_stattest._ks_stat_test,
                           wd=wasserstein_distance_norm._wasserstein_distance_norm, registry=registry)
            return _ev

        def series_from_counts(counts):
            ev = evidently()
            labels = np.repeat(np.array(["c%03d" % i for i in range(len(counts))], dtype=object),
                               np.array(counts, dtype=np.int64))
            return ev["pd"].Series(labels, dtype=object)

        def handle(op):
            kind = op["op"]
            a = np.array([float(v) for v in op.get("a", [])], dtype=float)
            b = np.array([float(v) for v in op.get("b", [])], dtype=float)
            args = op.get("args", {})
            out = {}
            if kind == "bins":
                # Counts per bin: numpy / scipy on the same bins (bins empty in both dropped, as Evidently's
                # categorical binning does).
                keep = (a > 0) | (b > 0)
                r, c = a[keep], b[keep]
                p, q = fix(r / r.sum()), fix(c / c.sum())
                out["psi"] = num(np.sum((p - q) * np.log(p / q)))
                out["kl"] = num(stats.entropy(p, q))
                out["js"] = num(distance.jensenshannon(a, b))
                out["js2"] = num(distance.jensenshannon(a, b, base=2))
                f_exp = r * (c.sum() / r.sum())
                with np.errstate(all="ignore"):
                    res = stats.chisquare(c, f_exp)
                out["chi_stat"] = num(res.statistic)
                out["chi_p"] = num(res.pvalue)
            elif kind == "evidently_categorical":
                ev = evidently()
                ref, cur = series_from_counts(a), series_from_counts(b)
                cat = ev["ColumnType"].Categorical
                for name in ("psi", "kl", "js", "chi"):
                    value, drift = ev[name](ref, cur, cat, float(args["threshold_" + name]))
                    out[name] = num(value)
                    out[name + "_drift"] = str(bool(drift))
                if args.get("z") == "1":
                    value, drift = ev["z"](ref, cur, cat, 0.05)
                    out["z"] = num(value)
                    out["z_drift"] = str(bool(drift))
            elif kind == "evidently_z_labels":
                # Evidently's z test on labelled samples (it sorts the categories itself).
                ev = evidently()
                ref = ev["pd"].Series(args["reference"].split(","), dtype=object)
                cur = ev["pd"].Series(args["current"].split(","), dtype=object)
                value, drift = ev["z"](ref, cur, ev["ColumnType"].Categorical, 0.05)
                out["z"] = num(value)
            elif kind == "samples":
                asymp = stats.ks_2samp(a, b, method="asymp")
                out["ks_d"] = num(asymp.statistic)
                out["ks_p_asymp"] = num(asymp.pvalue)
                out["ks_p_auto"] = num(stats.ks_2samp(a, b).pvalue)
                out["wasserstein"] = num(stats.wasserstein_distance(a, b))
                if args.get("evidently") == "1":
                    ev = evidently()
                    pd = ev["pd"]
                    num_type = ev["ColumnType"].Numerical
                    p, drift = ev["ks"](pd.Series(a), pd.Series(b), num_type, 0.05)
                    out["ev_ks_p"] = num(p)
                    out["ev_ks_drift"] = str(bool(drift))
                    w, drift = ev["wd"](pd.Series(a), pd.Series(b), num_type, 0.1)
                    out["ev_wasserstein"] = num(w)
                    out["ev_wasserstein_drift"] = str(bool(drift))
            elif kind == "wasserstein_normalised":
                # scipy's distance over the reference's population std (floor 0.001), the std taken over the values
                # scaled by a power of two so that values near 1e308 do not overflow numpy's sums.
                scale = 2.0 ** np.floor(np.log2(np.max(np.abs(a)))) if np.any(a) else 1.0
                std = float(np.std(a / scale)) * scale
                out["std"] = num(std)
                out["wasserstein"] = num(stats.wasserstein_distance(a, b))
                out["score"] = num(stats.wasserstein_distance(a, b) / max(std, 0.001))
            elif kind == "chisquare_values":
                # Evidently's chisquare on a numeric column (it counts each distinct value as a category), and its
                # choice of test for the pair.
                ev = evidently()
                pd = ev["pd"]
                ref, cur = pd.Series(a), pd.Series(b)
                p, drift = ev["chi"](ref, cur, ev["ColumnType"].Numerical, 0.05)
                out["p"] = num(p)
                out["drift"] = str(bool(drift))
                out["auto"] = ev["registry"].get_stattest(ref, cur, ev["ColumnType"].Numerical, None).name
                keys = sorted(set(a) | set(b))
                observed = np.array([np.sum(b == k) for k in keys], dtype=float)
                expected = np.array([np.sum(a == k) for k in keys], dtype=float) * (len(b) / len(a))
                with np.errstate(all="ignore"):
                    res = stats.chisquare(observed, expected)
                out["scipy_stat"] = num(res.statistic)
                out["scipy_p"] = num(res.pvalue)
            elif kind == "kstwo":
                out["sf"] = num(stats.kstwo.sf(float(args["x"]), int(args["n"])))
            elif kind == "smirnov":
                out["sf"] = num(special.smirnov(int(args["n"]), float(args["x"])))
            elif kind == "chi2sf":
                out["sf"] = num(stats.chi2.sf(float(args["x"]), float(args["dof"])))
            elif kind == "auto":
                ev = evidently()
                pd = ev["pd"]
                column_type = ev["ColumnType"].Numerical if args["numeric"] == "1" else ev["ColumnType"].Categorical
                if args["numeric"] == "1":
                    ref, cur = pd.Series(a), pd.Series(b)
                else:
                    ref = pd.Series(["v%g" % v for v in a], dtype=object)
                    cur = pd.Series(["v%g" % v for v in b], dtype=object)
                test = ev["registry"].get_stattest(ref, cur, column_type, None)
                out["name"] = test.name
                out["threshold"] = num(test.default_threshold)
                out["unique"] = str(int(pd.concat([ref, cur]).nunique()))
            elif kind == "threshold":
                ev = evidently()
                column_type = ev["ColumnType"].Categorical if args["name"] in ("chisquare", "z") else ev["ColumnType"].Numerical
                out["threshold"] = num(ev["registry"].get_registered_stattest(args["name"], column_type).default_threshold)
            else:
                raise ValueError("unknown op " + kind)
            return out

        """#
}

extension Dictionary where Key == String, Value == String {
    /// The number under `key`; an absent or unreadable one is recorded as a test issue (and read as NaN).
    func number(_ key: String) -> Double {
        guard let value = self[key].flatMap(Double.init) else {
            Issue.record("the oracle's result has no number under \(key): \(self)")
            return .nan
        }
        return value
    }
}

/// Whether `actual` is within `absolute + relative·|expected|` of `expected` (NaN matches NaN, ±∞ matches itself).
func close(_ actual: Double, _ expected: Double, relative: Double, absolute: Double = 0) -> Bool {
    if actual.isNaN || expected.isNaN { return actual.isNaN && expected.isNaN }
    if actual.isInfinite || expected.isInfinite { return actual == expected }
    return abs(actual - expected) <= absolute + relative * abs(expected)
}

/// A seeded generator (SplitMix64), so every run sees the same inputs.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A standard normal draw (Box-Muller).
    mutating func normal() -> Double {
        let u = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let v = Double.random(in: 0..<1, using: &self)
        return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * Double.pi * v)
    }
}
