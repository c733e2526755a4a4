import Exposition

/// A reproducible set of synthetic series for load tests and benchmarks (`--bench.synthetic-series N`):
/// one counter family `synthetic_requests_total{series="i",shard="i mod 10"}` with value `i` for
/// `i` in `0..<N`. The benchmark's Go and Python peers build exactly the same set.
enum SyntheticSeries {
    static func register(count: Int, in registry: Registry) throws(ExpositionError) {
        guard count > 0 else { return }
        let family = try registry.counterFamily(
            "synthetic_requests_total", help: "Synthetic series for load tests and benchmarks.",
            labelNames: ["series", "shard"])
        for i in 0..<count {
            try family.labels(String(i), String(i % 10)).inc(by: i)
        }
    }
}
