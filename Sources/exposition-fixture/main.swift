import Exposition

let r = Registry()
let c = try r.counterFamily(
    "http_requests_total", help: "Requests \"served\"\nby code\\", labelNames: ["code", "method"])
try c.labels("200", "GET").inc(by: 3)
try c.labels(["method": "POST", "code": "500"]).inc(by: 0.5)
let g = try r.gauge("temperature_celsius", help: "Temp", unit: "celsius")
g.set(-12.25)
let h = try r.histogram("latency_seconds", help: "Latency", unit: "seconds", buckets: [0.1, 1, 1e6])
h.observe(0.05)
h.observe(3)
h.observe(2e6, exemplar: try Exemplar(labels: ["trace_id": "abc"], value: 2e6))
let s = try r.summary("size_bytes", help: "Sizes", quantiles: SummaryQuantiles())
for i in 1...100 { s.observe(Double(i)) }
try r.info("build", help: "Build", labels: ["version": "1.0", "weird": "a\"b\\c\nd"])
let st = try r.stateSet("mode", help: "Mode", states: ["b", "a"])
try st.setOnly("a")
print(String(decoding: r.render(format: .text), as: UTF8.self))
print("=====")
print(String(decoding: r.render(format: .openMetrics), as: UTF8.self))
