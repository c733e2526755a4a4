/// The HTML page served at `/`: name, version, and links to the metrics and health endpoints.
/// Plain HTML with inline style, no external assets, as exporter-toolkit's landing page.
enum LandingPage {
    static func render(version: String, revision: String, metricsPath: String) -> [UInt8] {
        let html = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>mlops-exporter</title>
            <style>
            body { font-family: -apple-system, system-ui, sans-serif; margin: 0; }
            header { background: #e6522c; color: #fff; padding: 0.8em 1.2em; }
            main { padding: 1em 1.2em; }
            li { margin: 0.3em 0; }
            code { background: #f3f3f3; padding: 0 0.2em; }
            </style>
            </head>
            <body>
            <header><h1>mlops-exporter</h1></header>
            <main>
            <p>Prometheus exporter for a service's SRE signals and its ML models' health.</p>
            <p>Version <code>\(escape(version))</code>, revision <code>\(escape(revision))</code>.</p>
            <ul>
            <li><a href="\(escape(metricsPath))">Metrics</a> (<code>\(escape(metricsPath))</code>)</li>
            <li><a href="/-/healthy">Health</a> (<code>/-/healthy</code>)</li>
            <li><a href="/-/ready">Readiness</a> (<code>/-/ready</code>)</li>
            </ul>
            </main>
            </body>
            </html>

            """
        return Array(html.utf8)
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
