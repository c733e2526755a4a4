import Foundation
import ModelMonitoring

/// The status pages' one stylesheet, inlined in a `<style>` element and allowed by its SHA-256 in the
/// `Content-Security-Policy` (no `'unsafe-inline'`, no script at all). States have a colour and always a word.
enum PageStyle {
    static let css = """
        :root { color-scheme: light; --ok: #1a7f37; --warning: #9a6700; --critical: #cf222e; --unknown: #57606a; \
        --ref: #afb8c1; --cur: #0969da; --line: #d0d7de; }
        * { box-sizing: border-box; }
        body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0; \
        color: #1f2328; background: #f6f8fa; }
        header { background: #24292f; color: #fff; padding: 0.6em 1.2em; display: flex; gap: 1em; \
        align-items: baseline; flex-wrap: wrap; }
        header h1 { font-size: 1.25em; margin: 0; overflow-wrap: anywhere; min-width: 0; }
        header a { color: #fff; }
        header p { margin: 0; opacity: 0.85; }
        main { padding: 1em 1.2em; display: grid; gap: 1em; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); }
        main#model { display: block; }
        footer { padding: 0.8em 1.2em 1.5em; color: #57606a; }
        footer ul { display: flex; gap: 1.2em; padding: 0; list-style: none; flex-wrap: wrap; }
        h2 { font-size: 1.15em; margin: 0 0 0.3em; display: flex; justify-content: space-between; gap: 0.5em; \
        align-items: flex-start; }
        h2 a, h2 span:first-child, section.feature h4 { overflow-wrap: anywhere; min-width: 0; }
        h3 { font-size: 1em; margin: 1em 0 0.4em; }
        .card, .panel { background: #fff; border: 1px solid var(--line); border-left: 6px solid var(--unknown); \
        border-radius: 6px; padding: 0.8em 1em; min-width: 0; overflow-wrap: anywhere; overflow-x: auto; }
        .panel { margin-bottom: 1em; border-left-width: 1px; }
        .card.ok { border-left-color: var(--ok); } .card.warning { border-left-color: var(--warning); }
        .card.critical { border-left-color: var(--critical); }
        .state { font-size: 0.85em; font-weight: 600; padding: 0.1em 0.6em; border-radius: 1em; color: #fff; \
        background: var(--unknown); white-space: nowrap; flex-shrink: 0; }
        .state.ok { background: var(--ok); } .state.warning { background: var(--warning); }
        .state.critical { background: var(--critical); }
        .verdict { font-weight: 600; } .verdict.drifted, .verdict.bad { color: var(--critical); }
        .verdict.stable, .verdict.good { color: var(--ok); } .verdict.insufficient { color: var(--unknown); }
        .meta { color: #57606a; margin: 0 0 0.5em; }
        .reasons { margin: 0 0 0.5em; padding-left: 1.2em; color: var(--critical); }
        dl.figures { display: grid; grid-template-columns: max-content 1fr; gap: 0.25em 1em; margin: 0.4em 0; }
        dl.figures dt { color: #57606a; } dl.figures dd { margin: 0; }
        ul.drifted-features { display: inline; padding: 0; list-style: none; }
        ul.drifted-features li { display: inline; } ul.drifted-features li + li::before { content: ", "; }
        table { border-collapse: collapse; margin: 0.3em 0 0.6em; }
        th, td { border-bottom: 1px solid var(--line); padding: 0.2em 0.6em; text-align: left; \
        overflow-wrap: break-word; }
        td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
        .features { display: grid; gap: 0.8em; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); }
        section.feature { border: 1px solid var(--line); border-radius: 6px; padding: 0.5em 0.7em; background: #fff; }
        section.feature h4 { margin: 0 0 0.2em; display: flex; justify-content: space-between; }
        svg.bars { display: block; width: 100%; height: auto; }
        svg .ref { fill: var(--ref); } svg .cur { fill: var(--cur); } svg .axis { stroke: #8c959f; }
        svg text { font-size: 10px; fill: #57606a; }
        .legend .ref, .legend .cur { display: inline-block; width: 0.8em; height: 0.8em; margin: 0 0.3em 0 0.8em; }
        .legend .ref { background: var(--ref); } .legend .cur { background: var(--cur); }
        .muted { color: #57606a; }
        """

    /// `'sha256-…'` of ``css`` for the policy.
    static let hashSource: String = {
        let hex = SHA256.hex(Array(css.utf8))
        var bytes: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            bytes.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        return "'sha256-" + Data(bytes).base64EncodedString() + "'"
    }()

    /// The policy: nothing may load or run but the inline stylesheet (and `data:` images, none used today).
    static let contentSecurityPolicy =
        "default-src 'none'; style-src \(hashSource); img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    /// The document's head and the page header.
    static func open(_ h: inout HTMLText, title: String, heading: String, subtitle: String, now: Double) {
        h.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        h.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>")
        h.text(title)
        h.raw("</title>\n<style>")
        h.raw(css)
        h.raw("</style>\n</head>\n<body>\n<header><h1>")
        h.raw(heading)
        h.raw("</h1><p>")
        h.text(subtitle)
        h.raw(subtitle.isEmpty ? "" : " · ")
        h.volatileText(OverviewPage.utc(now))
        h.raw("</p></header>\n")
    }

    /// Links to the endpoints and the refresh toggle, then the end of the document.
    static func close(_ h: inout HTMLText, metricsPath: String, version: String, refreshPath: String, refresh: Int?) {
        h.raw("<footer>\n<ul>\n<li><a href=\"")
        h.raw(HTMLText.escape(metricsPath))
        h.raw("\">Metrics</a> (<code>")
        h.text(metricsPath)
        h.raw("</code>)</li>\n<li><a href=\"/-/healthy\">Health</a> (<code>/-/healthy</code>)</li>\n")
        h.raw("<li><a href=\"/-/ready\">Readiness</a> (<code>/-/ready</code>)</li>\n<li>")
        if refresh != nil {
            h.raw("Refreshing every \(refresh!) s: <a href=\"\(HTMLText.escape(refreshPath))\">stop</a>")
        } else {
            h.raw("<a href=\"\(HTMLText.escape(refreshPath))?refresh=30\">Refresh every 30 s</a>")
        }
        h.raw("</li>\n</ul>\n<p>mlops-exporter ")
        h.text(version)
        h.raw(". Import <code>dashboards/*.json</code> into Grafana for history; this page shows now.</p>\n")
        h.raw("</footer>\n</body>\n</html>\n")
    }
}
