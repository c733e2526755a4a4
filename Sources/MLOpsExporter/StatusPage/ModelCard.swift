import ExporterConfig
import Exposition

/// One model's card on `/` (and the summary at the top of `/models/{name}`): state, versions, golden signals
/// over the window, label join, drift, quality, fairness and SLOs. Only the parts of collectors the model runs.
enum ModelCard {
    static func render(_ m: ModelHealth, into h: inout HTMLText, linkToDetails: Bool) {
        let name = m.name
        let collectors = Set(m.configuration.collectors.map(\.name))
        h.raw("<section class=\"card \(m.state.key)\" data-model=\"\(HTMLText.attribute(name))\">\n<h2>")
        if linkToDetails {
            h.raw("<a href=\"/models/\(HTMLText.attribute(HTMLText.pathSegment(name)))\">")
            h.text(name)
            h.raw("</a>")
        } else {
            h.text(name)
        }
        h.raw(" <span class=\"state \(m.state.key)\" data-state=\"\(m.state.key)\">\(m.state.word)</span></h2>\n")
        h.raw("<p class=\"meta\">")
        h.text(m.configuration.task.rawValue)
        h.raw(" · window \(Shown.seconds(m.windowSeconds)) · versions: ")
        if m.versions.isEmpty { h.raw("none seen") }
        for (i, v) in m.versions.enumerated() {
            if i > 0 { h.raw(", ") }
            h.text(v.version)
            h.raw(" <span class=\"muted\">(\(Shown.count(v.requests)))</span>")
        }
        h.raw("</p>\n")
        if !m.reasons.isEmpty {
            h.raw("<ul class=\"reasons\">")
            for r in m.reasons {
                h.raw("<li>")
                h.text(r)
                h.raw("</li>")
            }
            h.raw("</ul>\n")
        }
        h.raw("<dl class=\"figures\">\n")
        if collectors.contains("service") || collectors.contains("llm") { golden(m, into: &h) }
        if collectors.contains("llm") { llm(m, into: &h) }
        if m.snapshot.value("mlops_labels_pending", m.model) != nil { labels(m, into: &h) }
        if collectors.contains("drift") { drift(m, into: &h) }
        if collectors.contains("quality") { quality(m, into: &h) }
        if collectors.contains("fairness") { fairness(m, into: &h) }
        h.raw("</dl>\n")
        if !m.slos.isEmpty { slos(m, into: &h) }
        h.raw("</section>\n")
    }

    static func collecting(_ h: inout HTMLText) { h.raw("<span class=\"muted\">collecting…</span>") }

    static func golden(_ m: ModelHealth, into h: inout HTMLText) {
        h.raw("<dt>Requests</dt><dd>")
        if let rate = m.change?.requestRate {
            h.volatileFigure("request_rate", rate, shown: .rate)
            h.raw(" <span class=\"muted\">over ")
            h.volatileText(Shown.seconds(m.change!.seconds))
            h.raw("</span>")
        } else {
            collecting(&h)
        }
        h.raw("; \(Shown.count(m.requestsTotal)) since start</dd>\n<dt>Errors</dt><dd>")
        if let ratio = m.change?.errorRatio {
            h.figure("error_ratio", ratio, shown: .percent)
        } else {
            h.raw(
                m.change == nil
                    ? "<span class=\"muted\">collecting…</span>"
                    : "<span class=\"muted\">no requests in the window</span>")
        }
        h.raw("</dd>\n<dt>Latency p50 / p99</dt><dd>")
        if let c = m.change, c.latency.quantile(0.5) != nil {
            quantile("latency_p50", c.latency, 0.5, into: &h)
            h.raw(" / ")
            quantile("latency_p99", c.latency, 0.99, into: &h)
        } else {
            h.raw("<span class=\"muted\">no latencies in the window</span>")
        }
        h.raw("</dd>\n")
    }

    /// The `q`-quantile of `buckets` as figure `name` (interpolated as `histogram_quantile` does), after `> ` when it
    /// lies beyond the highest finite bound: the value is then that bound, a floor (a p99 of 2 s requests read "1 s").
    static func quantile(_ name: String, _ buckets: WindowPoint.Buckets, _ q: Double, into h: inout HTMLText) {
        guard let value = buckets.quantile(q) else { return }
        if buckets.isBeyondBounds(q) { h.raw("&gt; ") }
        h.figure(name, value, shown: .seconds)
    }

    /// A text-generation model's time to first token and time per output token over the window, and goodput.
    static func llm(_ m: ModelHealth, into h: inout HTMLText) {
        h.raw("<dt>TTFT p50 / p99</dt><dd>")
        if let c = m.change, c.ttft.quantile(0.5) != nil {
            quantile("ttft_p50", c.ttft, 0.5, into: &h)
            h.raw(" / ")
            quantile("ttft_p99", c.ttft, 0.99, into: &h)
        } else {
            h.raw("<span class=\"muted\">no streamed responses in the window</span>")
        }
        h.raw("</dd>\n<dt>TPOT p50</dt><dd>")
        if let tpot = m.change?.tpot, tpot.quantile(0.5) != nil {
            quantile("tpot_p50", tpot, 0.5, into: &h)
        } else {
            h.raw("<span class=\"muted\">none in the window</span>")
        }
        h.raw("</dd>\n")
        if let c = m.change, c.llmRequests > 0, m.configuration.llm?.objectives.isEmpty == false {
            let goodput = min(1, c.llmGood / c.llmRequests)
            h.raw("<dt>Goodput</dt><dd>")
            h.figure("goodput", goodput, shown: .percent)
            h.raw(" <span class=\"muted\">of LLM requests within every objective</span></dd>\n")
        }
    }

    static func labels(_ m: ModelHealth, into h: inout HTMLText) {
        h.raw("<dt>Labels</dt><dd>")
        let pending = m.snapshot.value("mlops_labels_pending", m.model) ?? 0
        h.metric("mlops_labels_pending", [("model", m.name)], pending, shown: .count)
        h.raw(" pending")
        if let c = m.change, let rate = c.joinRate {
            h.raw(" · ")
            h.volatileFigure("join_rate", rate, shown: .rate)
            h.raw(" joined")
            if c.joinDelay.quantile(0.5) != nil {
                h.raw(" · delay p50 ")
                quantile("join_delay_p50", c.joinDelay, 0.5, into: &h)
            }
        }
        h.raw("</dd>\n")
    }

    static func drift(_ m: ModelHealth, into h: inout HTMLText) {
        h.raw("<dt>Drift</dt><dd>")
        guard let share = m.snapshot.samples("mlops_dataset_drift_share", matching: m.model).first else {
            h.raw("<span class=\"muted\">no verdict yet (too few values in the window)</span></dd>\n")
            return
        }
        h.metric("mlops_dataset_drift_share", share.labels, share.value, shown: .percent)
        h.raw(" of features drifted")
        if m.snapshot.value("mlops_dataset_drift_detected", m.model) == 1 {
            h.raw(" <span class=\"verdict bad\">dataset drift</span>")
        }
        if !m.driftedFeatures.isEmpty {
            h.raw(": <ul class=\"drifted-features\">")
            for f in m.driftedFeatures {
                let feature = f.label("feature") ?? ""
                h.raw("<li data-feature=\"\(HTMLText.attribute(feature))\">")
                h.text(feature)
                h.raw("</li>")
            }
            h.raw("</ul>")
        }
        h.raw("</dd>\n")
    }

    static func quality(_ m: ModelHealth, into h: inout HTMLText) {
        h.raw("<dt>Quality</dt><dd>")
        guard let q = m.quality else {
            h.raw("<span class=\"muted\">no labelled outcomes in the window</span></dd>\n")
            return
        }
        h.raw(q.name + " ")
        let name = q.higherIsBetter ? "mlops_model_accuracy" : "mlops_model_mae"
        h.metric(
            name, q.sample.labels, q.sample.value,
            shown: q.higherIsBetter ? .percent : .number)
        h.raw(" <span class=\"muted\">(")
        h.text("version " + (q.sample.label("version") ?? ""))
        h.raw(")</span>")
        if let target = q.target {
            let met = q.higherIsBetter ? q.sample.value >= target : q.sample.value <= target
            h.raw(" target \(q.higherIsBetter ? Shown.percent(target) : Shown.number(target)) ")
            // This version's, over the model's window: no verdict of the SLO's (all versions pooled, over the SLO's own
            // window, below), which "met"/"missed" here contradicted.
            h.raw(
                met
                    ? "<span class=\"verdict good\">reached by this version</span>"
                    : "<span class=\"verdict bad\">not reached by this version</span>")
        }
        h.raw("</dd>\n")
    }

    static func fairness(_ m: ModelHealth, into h: inout HTMLText) {
        h.raw("<dt>Fairness</dt><dd>")
        let all = m.snapshot.samples("mlops_fairness_violation", matching: m.model)
        if all.isEmpty {
            h.raw("<span class=\"muted\">no verdict yet</span></dd>\n")
            return
        }
        if m.violations.isEmpty {
            h.raw("<span class=\"verdict good\">no violations</span> (\(all.count) checks)</dd>\n")
            return
        }
        h.raw(
            "<span class=\"verdict bad\">\(m.violations.count) violation\(m.violations.count == 1 ? "" : "s")</span>: ")
        for (i, v) in m.violations.enumerated() {
            if i > 0 { h.raw(", ") }
            let attribute = v.label("attribute") ?? ""
            let metric = v.label("metric") ?? ""
            h.text("\(metric) (\(attribute)) ")
            if let value = m.snapshot.samples(
                "mlops_fairness_metric", matching: ["model": m.name, "attribute": attribute, "metric": metric]
            ).first {
                h.metric("mlops_fairness_metric", value.labels, value.value, shown: .number)
            }
        }
        h.raw("</dd>\n")
    }

    static func slos(_ m: ModelHealth, into h: inout HTMLText) {
        h.raw(
            "<table class=\"slos\"><thead><tr><th>SLO</th><th class=\"n\">Objective</th><th>Now</th></tr></thead><tbody>\n"
        )
        for s in m.slos {
            h.raw("<tr data-slo=\"\(HTMLText.attribute(s.slo.name))\"><td>")
            h.text(s.slo.name)
            if s.slo.name != s.slo.type.rawValue {
                h.raw(" <span class=\"muted\">")
                h.text(s.slo.type.rawValue)
                h.raw("</span>")
            }
            h.raw("</td><td class=\"n\">")
            h.metric(
                "mlops_slo_objective_ratio", [("model", m.name), ("slo", s.slo.name)], s.slo.objectiveRatio,
                shown: .percent)
            h.raw("</td><td>")
            switch s.met {
            case true?: h.raw("<span class=\"verdict good\">met</span> ")
            case false?: h.raw("<span class=\"verdict bad\">not met</span> ")
            case nil: h.raw("<span class=\"verdict insufficient\">no data</span> ")
            }
            h.raw("<span class=\"muted\">")
            if s.slo.type.isRequestBased, let sli = s.sli {
                h.raw("</span>")
                h.figure("sli", sli, shown: .percent)
                h.raw(" <span class=\"muted\">")
                h.text(s.what + " over the window")
            } else {
                h.text(s.basis)
            }
            h.raw("</span></td></tr>\n")
        }
        h.raw("</tbody></table>\n")
    }
}
