import Foundation

/// The demo models' traffic: features, predictions, scores, latencies, errors and the ground truth, for
/// `fraud` (binary classifier) and `eta` (regressor) of examples/demo/models.yaml, in any phase.
struct Scenario {
    /// One generated prediction: its NDJSON line, and its label's JSON value (nil: the label never arrives).
    struct Generated {
        var line: String
        var label: String?
    }

    var random: DemoRandom
    private var sequence = 0

    init(seed: UInt64) { random = DemoRandom(seed: seed) }

    private static func sigmoid(_ z: Double) -> Double { 1 / (1 + Foundation.exp(-z)) }

    private static func number(_ value: Double) -> String {
        let rounded = (value * 10_000).rounded() / 10_000
        return rounded == rounded.rounded() && abs(rounded) < 1e15 ? String(Int64(rounded)) : "\(rounded)"
    }

    // MARK: fraud

    struct FraudRow {
        var amount, accountAge: Double
        var country, channel, gender, ageBand: String
        var score: Double
        var actual: Bool
        var predicted: Bool { score >= 0.5 }
    }

    mutating func fraudRow(_ phase: DemoPhase) -> FraudRow {
        let drifted = phase.drifted
        let amount = random.logNormal(mu: drifted ? 4.6 : 3.5, sigma: 1.0)
        let accountAge = -Foundation.log(max(random.uniform(), 1e-12)) * 400
        let country = random.pick(
            ["US", "DE", "FR", "GB", "IN"],
            weights: drifted ? [0.2, 0.1, 0.1, 0.15, 0.45] : [0.4, 0.2, 0.15, 0.15, 0.1])
        let channel = random.pick(["web", "app", "pos"], weights: drifted ? [0.3, 0.6, 0.1] : [0.5, 0.35, 0.15])
        let gender = random.pick(["female", "male"], weights: [0.48, 0.52])
        let ageBand = random.pick(["18-25", "26-40", "41-65", "65+"], weights: [0.2, 0.35, 0.35, 0.1])
        // What the model learned: large amounts, new accounts and the web channel are risky.
        let learned =
            -1.0 + 0.9 * (Foundation.log(amount) - 3.5) + (accountAge < 30 ? 1.2 : 0) + (channel == "web" ? 0.3 : 0)
        // The world: the same, until drift changes the concept (large amounts become ordinary, app fraud appears).
        let truth = drifted ? learned - 0.8 * (Foundation.log(amount) - 3.5) + (channel == "app" ? 1.5 : 0) : learned
        let actual = random.chance(Self.sigmoid(truth))
        let bias = phase.biased && gender == "female" ? 2.2 : 0
        let score = Self.sigmoid(learned + bias + 0.8 * random.normal() + (actual ? 1.4 : -0.6))
        return FraudRow(
            amount: amount, accountAge: accountAge, country: country, channel: channel, gender: gender,
            ageBand: ageBand, score: score, actual: actual)
    }

    mutating func fraud(_ phase: DemoPhase, progress: Double) -> Generated {
        let row = fraudRow(phase)
        sequence += 1
        let version = random.chance(0.2) ? "v2" : "v1"
        let (latency, error) = serving(phase, progress: progress)
        var line =
            "{\"id\":\"f-\(sequence)\",\"version\":\"\(version)\",\"features\":{\"amount\":\(Self.number(row.amount)),"
            + "\"account_age_days\":\(Self.number(row.accountAge)),\"country\":\"\(row.country)\","
            + "\"channel\":\"\(row.channel)\"},\"prediction\":\"\(row.predicted ? "fraud" : "legit")\","
            + "\"score\":\(Self.number(row.score)),\"latency_seconds\":\(Self.number(latency)),"
            + "\"attributes\":{\"gender\":\"\(row.gender)\",\"age_band\":\"\(row.ageBand)\"}"
        if let error { line += ",\"status\":\"error\",\"error_kind\":\"\(error)\"" }
        line += "}"
        let label = random.chance(0.9) ? "\"\(row.actual ? "fraud" : "legit")\"" : nil
        return Generated(line: line, label: label)
    }

    // MARK: eta

    struct EtaRow {
        var distance, hour: Double
        var weather: String
        var prediction, actual: Double
    }

    mutating func etaRow(_ phase: DemoPhase) -> EtaRow {
        let drifted = phase.drifted
        let distance = random.logNormal(mu: drifted ? Foundation.log(14) : Foundation.log(8), sigma: 0.6)
        let hour = Double(Int(random.uniform() * 24))
        let weather = random.pick(
            ["clear", "rain", "snow"], weights: drifted ? [0.3, 0.35, 0.35] : [0.7, 0.25, 0.05])
        let rush: Double = (7...9).contains(hour) || (16...18).contains(hour) ? 1.3 : 1
        let slowdown: Double = ["clear": 1.0, "rain": 1.15, "snow": 1.5][weather] ?? 1
        let base: Double = 2.2 * distance * rush
        let actual: Double = max(1, 5 + base * slowdown + 3 * random.normal())
        // The model underestimates snow (it rarely saw any): its errors grow when snow becomes common.
        let learnedSlowdown: Double = ["clear": 1.0, "rain": 1.15, "snow": 1.2][weather] ?? 1
        let prediction: Double = max(1, 5 + base * learnedSlowdown + 2 * random.normal())
        return EtaRow(distance: distance, hour: hour, weather: weather, prediction: prediction, actual: actual)
    }

    mutating func eta(_ phase: DemoPhase, progress: Double) -> Generated {
        let row = etaRow(phase)
        sequence += 1
        let (latency, error) = serving(phase, progress: progress)
        var line =
            "{\"id\":\"e-\(sequence)\",\"version\":\"2024.06\",\"features\":{\"distance_km\":\(Self.number(row.distance)),"
            + "\"hour\":\(Self.number(row.hour)),\"weather\":\"\(row.weather)\"},"
            + "\"prediction\":\(Self.number(row.prediction)),\"latency_seconds\":\(Self.number(latency))"
        if let error { line += ",\"status\":\"error\",\"error_kind\":\"\(error)\"" }
        line += "}"
        return Generated(line: line, label: random.chance(0.95) ? Self.number(row.actual) : nil)
    }

    // MARK: serving signals

    /// Latency in seconds and the error kind (nil: ok). Degraded phases ramp latency up to about 20× and
    /// errors up to 8 %; otherwise 0.05 % of requests fail, half the budget of the demo's strictest availability SLO
    /// (fraud, 99.9 %: at 0.2 % its ticket alert fired in the stable phase).
    mutating func serving(_ phase: DemoPhase, progress: Double) -> (Double, String?) {
        let ramp = phase.degraded ? 0.25 + 0.75 * progress : 0
        let latency = random.logNormal(mu: Foundation.log(0.02), sigma: 0.5) * (1 + 19 * ramp)
        let errorRate = 0.0005 + 0.08 * ramp
        guard random.chance(errorRate) else { return (latency, nil) }
        return (latency, random.pick(["timeout", "upstream_unavailable"], weights: [0.7, 0.3]))
    }

    /// An event the exporter rejects (a client bug: no version), sent now and then; more often when degraded.
    mutating func malformed(_ phase: DemoPhase) -> String? {
        guard random.chance(phase.degraded ? 0.03 : 0.002) else { return nil }
        sequence += 1
        return "{\"id\":\"bad-\(sequence)\",\"prediction\":\"legit\"}"
    }

    // MARK: reference data

    /// `rows` rows of stable traffic per model as CSV (the reference the drift collector compares with).
    mutating func referenceCSV(model: String, rows: Int) -> String {
        var out: String
        if model == "fraud" {
            out = "amount,account_age_days,country,channel,gender,age_band,prediction,score,label\n"
            for _ in 0..<rows {
                let r = fraudRow(.stable)
                out +=
                    "\(Self.number(r.amount)),\(Self.number(r.accountAge)),\(r.country),\(r.channel),\(r.gender),"
                    + "\(r.ageBand),\(r.predicted ? "fraud" : "legit"),\(Self.number(r.score)),"
                    + "\(r.actual ? "fraud" : "legit")\n"
            }
        } else {
            out = "distance_km,hour,weather,prediction,label\n"
            for _ in 0..<rows {
                let r = etaRow(.stable)
                out +=
                    "\(Self.number(r.distance)),\(Self.number(r.hour)),\(r.weather),\(Self.number(r.prediction)),"
                    + "\(Self.number(r.actual))\n"
            }
        }
        return out
    }
}
