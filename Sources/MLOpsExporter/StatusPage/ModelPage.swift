import ExporterConfig
import Exposition
import ModelMonitoring

/// `GET /models/{name}`: the model's card, then per feature its reference distribution beside the current
/// window (``BarChart``) with score, threshold and verdict; the prediction and score distributions; quality per
/// version with the confusion matrix; fairness per sensitive attribute with the bounds; links to the Grafana
/// panels when a Grafana URL is configured.
enum ModelPage {
    static func render(
        _ m: ModelHealth, distributions: [ColumnDistribution], grafanaURL: String?, metricsPath: String,
        version: String, refresh: Int?, skipped: [String], now: Double
    ) -> HTMLText {
        var h = HTMLText(capacity: 8192 + distributions.count * 2600)
        PageStyle.open(
            &h, title: "mlops-exporter: \(m.name)",
            heading: "<a href=\"/\">mlops-exporter</a> / " + HTMLText.escape(m.name),
            subtitle: "", now: now)
        h.raw("<main id=\"model\" data-model=\"\(HTMLText.attribute(m.name))\">\n")
        ModelCard.render(m, into: &h, linkToDetails: false)
        if let grafanaURL { grafana(m, grafanaURL, into: &h) }
        let features = distributions.filter { !$0.isOutput }
        if !features.isEmpty {
            h.raw("<h3>Features</h3>\n")
            legend(&h)
            h.raw("<div class=\"features\">\n")
            let samples = ColumnSamples(m, family: "feature")
            for d in features { column(d, samples, into: &h) }
            h.raw("</div>\n")
        }
        let outputs = distributions.filter(\.isOutput)
        if !outputs.isEmpty {
            h.raw("<h3>Predictions</h3>\n<div class=\"features\">\n")
            let samples = ColumnSamples(m, family: "prediction")
            for d in outputs { column(d, samples, into: &h) }
            h.raw("</div>\n")
        }
        predictedClasses(m, into: &h)
        quality(m, into: &h)
        fairness(m, into: &h)
        h.raw("</main>\n")
        OverviewPage.skippedNote(skipped, into: &h)
        PageStyle.close(
            &h, metricsPath: metricsPath, version: version, refreshPath: "/models/" + HTMLText.pathSegment(m.name),
            refresh: refresh)
        return h
    }

    static func legend(_ h: inout HTMLText) {
        h.raw(
            "<p class=\"legend muted\">Bars per reference bin:<span class=\"ref\"></span>reference<span class=\"cur\"></span>current window</p>\n"
        )
    }

    /// A subject's (features' or outputs') drift samples of one model, by column: found once per page, not by
    /// scanning each family per column.
    struct ColumnSamples {
        let family: String
        var score: [String: MetricSnapshot.Sample] = [:]
        var threshold: [String: MetricSnapshot.Sample] = [:]
        var detected: [String: MetricSnapshot.Sample] = [:]
        var observations: [String: MetricSnapshot.Sample] = [:]

        init(_ m: ModelHealth, family: String) {
            self.family = family
            let subject = family == "feature" ? "feature" : "output"
            func index(_ suffix: String) -> [String: MetricSnapshot.Sample] {
                var out: [String: MetricSnapshot.Sample] = [:]
                for s in m.snapshot.samples("mlops_\(family)_\(suffix)") where s.label("model") == m.name {
                    if let column = s.label(subject), out[column] == nil { out[column] = s }
                }
                return out
            }
            score = index("drift_score")
            threshold = index("drift_threshold")
            detected = index("drift_detected")
            observations = index("window_observations")
        }
    }

    /// One column's section: chart, verdict, score against threshold, observations.
    static func column(_ d: ColumnDistribution, _ samples: ColumnSamples, into h: inout HTMLText) {
        let family = samples.family
        let score = samples.score[d.column]
        let threshold = samples.threshold[d.column]
        let detected = samples.detected[d.column]
        let observations = samples.observations[d.column]
        let state = detected.map { $0.value == 1 ? "drifted" : "stable" } ?? "insufficient"
        let word = detected.map { $0.value == 1 ? "Drifted" : "Stable" } ?? "Too few values"
        h.raw("<section class=\"feature\" data-feature=\"")
        h.text(d.column)
        h.raw("\" data-state=\"")
        h.raw(state)
        h.raw("\">\n<h4>")
        h.text(d.column)
        h.raw(" <span class=\"verdict ")
        h.raw(state)
        h.raw("\">")
        h.raw(word)
        h.raw("</span></h4>\n")
        BarChart.render(d, into: &h)
        h.raw("\n<p>")
        h.text(d.method)
        h.raw(" ")
        if let score {
            h.metric("mlops_\(family)_drift_score", score.labels, score.value, shown: .number)
        } else {
            h.raw("<span class=\"muted\">no score</span>")
        }
        if let threshold {
            h.raw(" · threshold ")
            h.metric("mlops_\(family)_drift_threshold", threshold.labels, threshold.value, shown: .number)
        }
        if let observations {
            h.raw(" · ")
            h.metric(
                "mlops_\(family)_window_observations", observations.labels, observations.value, shown: .count)
            h.raw(" values in the window")
        }
        h.raw("</p>\n</section>\n")
    }

    static func predictedClasses(_ m: ModelHealth, into h: inout HTMLText) {
        let samples = m.snapshot.samples("mlops_model_predicted_class_total", matching: m.model)
        guard !samples.isEmpty else { return }
        let versions = ordered(samples.compactMap { $0.label("version") })
        let classes = ordered(samples.compactMap { $0.label("class") })
        h.raw("<h3>Predicted classes (since start)</h3>\n<table class=\"classes\"><thead><tr><th>Version</th>")
        for c in classes {
            h.raw("<th class=\"n\">")
            h.text(c)
            h.raw("</th>")
        }
        h.raw("</tr></thead><tbody>\n")
        let byVersion = index(samples, "version", "class")
        for v in versions {
            h.raw("<tr><th>")
            h.text(v)
            h.raw("</th>")
            let row = byVersion[v] ?? [:]
            for c in classes {
                h.raw("<td class=\"n\">")
                if let s = row[c] {
                    h.metric("mlops_model_predicted_class_total", s.labels, s.value, shown: .count)
                }
                h.raw("</td>")
            }
            h.raw("</tr>\n")
        }
        h.raw("</tbody></table>\n")
    }

    /// Window figures per version, then the confusion matrix per version.
    static let qualityFigures: [(metric: String, title: String, percent: Bool)] = [
        ("mlops_model_window_outcomes", "Outcomes in the window", false),
        ("mlops_model_accuracy", "Accuracy", true), ("mlops_model_macro_f1", "Macro F1", false),
        ("mlops_model_macro_precision", "Macro precision", false), ("mlops_model_macro_recall", "Macro recall", false),
        ("mlops_model_roc_auc", "ROC AUC", false), ("mlops_model_log_loss", "Log loss", false),
        ("mlops_model_brier_score", "Brier score", false),
        ("mlops_model_expected_calibration_error", "Expected calibration error", false),
        ("mlops_model_mae", "MAE", false), ("mlops_model_rmse", "RMSE", false), ("mlops_model_mape", "MAPE", true),
    ]

    static func quality(_ m: ModelHealth, into h: inout HTMLText) {
        let rows = qualityFigures.map { ($0, m.snapshot.samples($0.metric, matching: m.model)) }.filter {
            !$0.1.isEmpty
        }
        let confusion = m.snapshot.samples("mlops_model_confusion_total", matching: m.model)
        guard !rows.isEmpty || !confusion.isEmpty else { return }
        h.raw("<h3>Quality</h3>\n")
        if !rows.isEmpty {
            let versions = ordered(rows.flatMap { $0.1.compactMap { $0.label("version") } })
            h.raw("<table class=\"quality\"><thead><tr><th>Over the window</th>")
            for v in versions {
                h.raw("<th class=\"n\">")
                h.text(v)
                h.raw("</th>")
            }
            h.raw("</tr></thead><tbody>\n")
            for (figure, samples) in rows {
                h.raw("<tr><th>\(figure.title)</th>")
                for v in versions {
                    h.raw("<td class=\"n\">")
                    if let s = samples.first(where: { $0.label("version") == v }) {
                        h.metric(
                            figure.metric, s.labels, s.value,
                            shown: figure.percent ? .percent : .number)
                    } else {
                        // Undefined for this version (ROC AUC with one class among its outcomes, MAPE with only zero
                        // actuals): said as the fairness tables say it (the cell was blank).
                        h.raw("<span class=\"muted\">–</span>")
                    }
                    h.raw("</td>")
                }
                h.raw("</tr>\n")
            }
            h.raw("</tbody></table>\n")
        }
        for v in ordered(confusion.compactMap { $0.label("version") }) {
            let cells = confusion.filter { $0.label("version") == v }
            let classes = ordered(cells.compactMap { $0.label("actual") } + cells.compactMap { $0.label("predicted") })
            h.raw(
                "<table class=\"confusion\" data-version=\"\(HTMLText.attribute(v))\"><caption>Confusion matrix, version "
            )
            h.text(v)
            h.raw(" (since start): rows actual, columns predicted</caption><thead><tr><th></th>")
            for c in classes {
                h.raw("<th class=\"n\">")
                h.text(c)
                h.raw("</th>")
            }
            h.raw("</tr></thead><tbody>\n")
            let byActual = index(cells, "actual", "predicted")
            for actual in classes {
                h.raw("<tr><th>")
                h.text(actual)
                h.raw("</th>")
                let row = byActual[actual] ?? [:]
                for predicted in classes {
                    h.raw("<td class=\"n\">")
                    if let s = row[predicted] {
                        h.metric("mlops_model_confusion_total", s.labels, s.value, shown: .count)
                    }
                    h.raw("</td>")
                }
                h.raw("</tr>\n")
            }
            h.raw("</tbody></table>\n")
        }
    }

    static func fairness(_ m: ModelHealth, into h: inout HTMLText) {
        guard !m.configuration.sensitiveAttributes.isEmpty,
            m.configuration.collectors.contains(where: { $0.name == "fairness" })
        else { return }
        h.raw("<h3>Fairness</h3>\n")
        let rates: [(String, String)] = [
            ("mlops_fairness_window_observations", "Predictions in the window"),
            ("mlops_fairness_selection_rate", "Selection rate"),
            ("mlops_fairness_true_positive_rate", "True positive rate"),
            ("mlops_fairness_false_positive_rate", "False positive rate"),
        ]
        for attribute in m.configuration.sensitiveAttributes {
            let match = ["model": m.name, "attribute": attribute.name]
            h.raw("<table class=\"fairness\" data-attribute=\"\(HTMLText.attribute(attribute.name))\"><caption>")
            h.text(attribute.name)
            h.raw(" per group, over the window</caption><thead><tr><th>Group</th>")
            for (_, title) in rates { h.raw("<th class=\"n\">\(title)</th>") }
            h.raw("</tr></thead><tbody>\n")
            let groups = ordered(
                attribute.groups
                    + m.snapshot.samples("mlops_fairness_window_observations", matching: match).compactMap {
                        $0.label("group")
                    })
            for g in groups {
                h.raw("<tr data-group=\"\(HTMLText.attribute(g))\"><th>")
                h.text(g)
                if g == attribute.privileged { h.raw(" <span class=\"muted\">(privileged)</span>") }
                h.raw("</th>")
                for (metric, _) in rates {
                    h.raw("<td class=\"n\">")
                    if let s = m.snapshot.samples(metric, matching: match.merging(["group": g]) { a, _ in a }).first {
                        h.metric(
                            metric, s.labels, s.value,
                            shown: metric.hasSuffix("observations") ? .count : .percent)
                    } else {
                        h.raw("<span class=\"muted\">–</span>")
                    }
                    h.raw("</td>")
                }
                h.raw("</tr>\n")
            }
            h.raw("</tbody></table>\n")
            let metrics = m.snapshot.samples("mlops_fairness_metric", matching: match)
            let lowers = m.snapshot.samples("mlops_fairness_lower_bound", matching: match)
            let uppers = m.snapshot.samples("mlops_fairness_upper_bound", matching: match)
            let violations = m.snapshot.samples("mlops_fairness_violation", matching: match)
            let names = ordered((metrics + lowers + uppers).compactMap { $0.label("metric") })
            guard !names.isEmpty else { continue }
            h.raw(
                "<table class=\"fairness-metrics\" data-attribute=\"\(HTMLText.attribute(attribute.name))\"><thead><tr><th>Metric</th><th class=\"n\">Value</th><th class=\"n\">Lower bound</th><th class=\"n\">Upper bound</th><th>Verdict</th></tr></thead><tbody>\n"
            )
            for name in names {
                h.raw("<tr><th>")
                h.text(name)
                h.raw("</th>")
                for (family, list) in [
                    ("mlops_fairness_metric", metrics), ("mlops_fairness_lower_bound", lowers),
                    ("mlops_fairness_upper_bound", uppers),
                ] {
                    h.raw("<td class=\"n\">")
                    if let s = list.first(where: { $0.label("metric") == name }) {
                        h.metric(family, s.labels, s.value, shown: .number)
                    } else {
                        h.raw("<span class=\"muted\">–</span>")
                    }
                    h.raw("</td>")
                }
                switch violations.first(where: { $0.label("metric") == name })?.value {
                case 1?: h.raw("<td><span class=\"verdict bad\">Violation</span></td>")
                case 0?: h.raw("<td><span class=\"verdict good\">Within bounds</span></td>")
                default: h.raw("<td><span class=\"verdict insufficient\">Too few groups</span></td>")
                }
                h.raw("</tr>\n")
            }
            h.raw("</tbody></table>\n")
        }
    }

    static func grafana(_ m: ModelHealth, _ base: String, into h: inout HTMLText) {
        var root = base
        while root.hasSuffix("/") { root.removeLast() }
        let model = HTMLText.pathSegment(m.name)
        let links: [(String, String)] = [
            ("Overview", "\(root)/d/mlops-overview/?var-model=\(model)"),
            ("Drift", "\(root)/d/mlops-model/?var-model=\(model)&viewPanel=2"),
            ("Quality", "\(root)/d/mlops-model/?var-model=\(model)&viewPanel=13"),
            ("Confusion matrix", "\(root)/d/mlops-model/?var-model=\(model)&viewPanel=16"),
            ("Fairness", "\(root)/d/mlops-model/?var-model=\(model)&viewPanel=20"),
            ("Label join", "\(root)/d/mlops-model/?var-model=\(model)&viewPanel=27"),
            ("SLOs", "\(root)/d/mlops-slos/?var-model=\(model)"),
        ]
        h.raw("<p class=\"grafana\">Grafana: ")
        for (i, (title, url)) in links.enumerated() {
            if i > 0 { h.raw(" · ") }
            h.raw("<a href=\"\(HTMLText.attribute(url))\">\(title)</a>")
        }
        h.raw("</p>\n")
    }

    /// `values` without repeats, in first-seen order.
    /// `samples` by their `row` label, then their `column` label (the first of a pair, as a search would find it): a
    /// table of R × C cells is filled in one pass over its samples, not a search of all of them per cell (a model
    /// page with 60 classes took 0.7 s of CPU that way).
    static func index(
        _ samples: [MetricSnapshot.Sample], _ row: String, _ column: String
    ) -> [String: [String: MetricSnapshot.Sample]] {
        var table: [String: [String: MetricSnapshot.Sample]] = [:]
        for sample in samples {
            guard let r = sample.label(row), let c = sample.label(column) else { continue }
            if table[r]?[c] == nil { table[r, default: [:]][c] = sample }
        }
        return table
    }

    static func ordered(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.filter { seen.insert($0).inserted }
    }
}
