import ExporterConfig
import Exposition
import Foundation

/// `GET /`: one ``ModelCard`` per configured model, in configuration order, then the links of the old
/// landing page.
enum OverviewPage {
    static func render(
        _ models: [ModelHealth], skipped: [String], metricsPath: String, version: String, refresh: Int?, now: Double
    ) -> HTMLText {
        var h = HTMLText(capacity: 4096 + models.count * 3072)
        let counts = Dictionary(grouping: models, by: \.state).mapValues(\.count)
        var summary = "\(models.count) model\(models.count == 1 ? "" : "s")"
        for state in [ModelHealth.State.critical, .warning, .ok, .unknown] {
            if let n = counts[state] { summary += " · \(n) \(state.word.lowercased())" }
        }
        PageStyle.open(
            &h, title: "mlops-exporter: model status", heading: "mlops-exporter", subtitle: summary, now: now)
        h.raw("<main id=\"models\">\n")
        if models.isEmpty {
            h.raw("<p>No models are configured: pass <code>--config</code> with a models file.</p>\n")
        }
        for m in models { ModelCard.render(m, into: &h, linkToDetails: true) }
        h.raw("</main>\n")
        skippedNote(skipped, into: &h)
        PageStyle.close(&h, metricsPath: metricsPath, version: version, refreshPath: "/", refresh: refresh)
        return h
    }

    static func skippedNote(_ skipped: [String], into h: inout HTMLText) {
        guard !skipped.isEmpty else { return }
        h.raw("<p class=\"reasons\">Left out of this page (see mlops_exporter_collector_skipped_total): ")
        h.text(skipped.joined(separator: ", "))
        h.raw("</p>\n")
    }

    /// `2026-12-03 04:16:44 UTC`.
    static func utc(_ unix: Double) -> String {
        var t = time_t(unix)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
    }
}
