"""The HTML status page (issue 18), end to end in headless Chromium: `GET /` (a card per model) and
`GET /models/{name}` (drift charts, confusion and fairness tables) of the real binary serving
examples/demo/models.yaml while `mlops-exporter demo` has driven it into its drift phase. What the browser built
(--dump-dom) is checked against the DOM contract of the issue: every number marked as a /metrics sample
(`<data data-metric data-labels value>`) equals that sample in a scrape taken beside it (the traffic stopped
first, so the comparison is exact), the drifted features listed are exactly those /metrics says drifted, and
among them those the demo's drift phase shifts. Also: screenshots that show something and a console without
errors or Content Security Policy reports, user-supplied strings (classes, versions, categorical values, groups)
that try to inject markup shown as text, documents that parse without an HTML5 parse error (html5lib), and the
headers (no-store, a strict CSP, nosniff, ETag and 304, HEAD, 405, basic auth).

Chromium, html5lib and Pillow come from scripts/install-deps: a missing one fails these tests, never skips them."""

import base64
import csv
import json
import re
import signal
import socket
import subprocess
import urllib.parse

import pytest
import yaml

from browser_support import dump_dom, html5_errors, painted_pixels, parse_html, screenshot
from conftest import ROOT, Exporter, sample, scrape, wait_for
from test_http2_tls import bcrypt, web_config

CONFIG = ROOT / "examples/demo/models.yaml"
MODELS = yaml.safe_load(CONFIG.read_text())["models"]
MODEL_NAMES = [m["name"] for m in MODELS]
# What the demo's drift phase shifts (Sources/DemoTraffic/Scenario.swift): fraud's amount (log-normal mean 3.5 ->
# 4.6), country and channel; eta's distance_km (8 -> 14 km) and weather. amount and distance_km move far enough to
# be detected within seconds of drift traffic, whatever mix of stable traffic the window holds.
DEMO_DRIFTED = {"fraud": "amount", "eta": "distance_km"}
STATES = {"ok": "OK", "warning": "Warning", "critical": "Critical", "unknown": "No data"}
SVG = "{http://www.w3.org/2000/svg}"
SHAPES = {SVG + t for t in ("rect", "path", "line", "polyline", "polygon", "circle")}
XSS = "<script>alert(1)</script>"
# Breaks out of a single- or double-quoted attribute (data-labels is single-quoted), and an entity that must stay
# text ("&amp;" shown as such, not as "&").
XSS_ATTR = "x'\"><img src=x onerror=alert(2)>&amp;"


# MARK: - Helpers


def classes(el):
    return (el.get("class") or "").split()


def find_all(root, tag, cls=None, **attrs):
    """The elements `tag` (any tag: None) with class `cls` and the attributes `attrs` (data_model= for
    data-model)."""
    out = []
    for el in root.iter(tag) if tag else root.iter():
        if not isinstance(el.tag, str):
            continue  # comments
        if cls is not None and cls not in classes(el):
            continue
        if all(el.get(k.replace("_", "-")) == v for k, v in attrs.items()):
            out.append(el)
    return out


def find_one(root, tag, cls=None, what="", **attrs):
    found = find_all(root, tag, cls, **attrs)
    assert len(found) == 1, f"expected one <{tag} class={cls} {attrs}> {what}, found {len(found)}"
    return found[0]


def text(el):
    return " ".join("".join(el.itertext()).split())


def labels_of(key):
    return dict(key[1])


def series(samples, name, **labels):
    """The (labels, value) of every sample `name` in a scrape whose labels include `labels`."""
    return [(labels_of(k), v) for k, v in samples.items()
            if k[0] == name and all(labels_of(k).get(a) == b for a, b in labels.items())]


def same(a, b):
    return a == b or (a != a and b != b)  # NaN equals NaN here


def check_data_elements(root, before, after, where):
    """Every <data> of a page: a value parseable by float() and either a data-figure or a data-metric with
    data-labels; a data-metric's sample exists in /metrics with exactly those labels and equals the page's value
    in the scrape taken before or after the page (both the same when no traffic flows). Returns the data-metric
    elements as [(name, labels, element)]."""
    marked = []
    for el in root.iter("data"):
        raw, metric, figure = el.get("value"), el.get("data-metric"), el.get("data-figure")
        shown = text(el)
        assert raw is not None, f"{where}: <data> without value: {shown!r}"
        try:
            value = float(raw)
        except ValueError:
            raise AssertionError(f"{where}: <data value={raw!r}> is not a number ({shown!r})") from None
        assert shown, f"{where}: <data value={raw!r}> shows no text"
        assert (metric is None) != (figure is None), \
            f"{where}: <data value={raw!r}> needs exactly one of data-metric and data-figure ({el.attrib})"
        if figure is not None:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", figure), f"{where}: data-figure={figure!r}"
            continue
        assert el.get("data-labels") is not None, f"{where}: data-metric={metric} without data-labels"
        labels = json.loads(el.get("data-labels"))
        assert isinstance(labels, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in labels.items()), (where, metric, labels)
        key = (metric, tuple(sorted(labels.items())))
        scraped = [s[key] for s in (before, after) if key in s]
        assert scraped, f"{where}: {metric}{labels} (shown as {shown!r}) is not a sample of /metrics"
        assert any(same(value, v) for v in scraped), \
            f"{where}: {metric}{labels} is {raw} on the page, {scraped} in /metrics"
        marked.append((metric, labels, el))
    return marked


def check_head_of_document(body, root, where):
    """An HTML5 document (doctype, lang, charset, title, no parse error), without script, external assets or
    event handlers, with unique ids."""
    assert body.lstrip().lower().startswith(b"<!doctype html>"), f"{where}: {body[:80]!r}"
    errors = html5_errors(body)
    assert errors == [], f"{where}: HTML5 parse errors (html5lib): {errors}"
    assert root.tag == "html" and root.get("lang"), f"{where}: <html lang> missing"
    charsets = [m.get("charset", "").lower() for m in root.iter("meta") if m.get("charset")]
    assert charsets == ["utf-8"], f"{where}: <meta charset>: {charsets}"
    title = root.find("head/title")
    assert title is not None and text(title), f"{where}: no <title>"
    ids = [el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")]
    assert len(ids) == len(set(ids)), f"{where}: duplicate ids {ids}"
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.replace(SVG, "")
        assert tag not in ("script", "iframe", "object", "embed", "img", "image", "foreignObject", "base"), \
            f"{where}: <{tag}> on the page"
        for name, value in el.attrib.items():
            name = name.split("}")[-1].lower()
            assert not name.startswith("on"), f"{where}: event handler {name}={value!r} on <{tag}>"
            assert name not in ("src", "srcset", "action", "formaction"), f"{where}: {name}={value!r} on <{tag}>"
            if name == "href":
                assert not value.strip().lower().startswith(("javascript:", "data:text")), (where, value)
                if tag == "use":
                    assert value.startswith("#"), f"{where}: <use href={value!r}> outside the page"
        if tag == "link":
            assert (el.get("href") or "").startswith("data:"), f"{where}: external <link> {el.attrib}"
        if tag == "style":
            css = (el.text or "").lower()
            assert "url(" not in css and "@import" not in css, f"{where}: external resource in <style>"


def header(headers, name):
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def check_csp(value, where):
    assert value, f"{where}: no Content-Security-Policy"
    directives = {}
    for part in value.split(";"):
        tokens = part.split()
        if tokens:
            directives[tokens[0].lower()] = [t.lower() for t in tokens[1:]]
    assert directives.get("default-src") == ["'none'"], f"{where}: CSP default-src is not 'none': {value}"
    assert not any(d.startswith("script-src") for d in directives), f"{where}: CSP allows scripts: {value}"
    for d, sources in directives.items():
        assert "*" not in sources and "'unsafe-eval'" not in sources, f"{where}: CSP {d} {sources}"
        assert not any(s in ("http:", "https:") for s in sources), f"{where}: CSP {d} {sources}"
    assert "'unsafe-inline'" not in directives.get("default-src", []), value


def check_page_headers(headers, where):
    content_type = " ".join((header(headers, "Content-Type") or "").lower().replace(";", "; ").split())
    assert content_type == "text/html; charset=utf-8", f"{where}: Content-Type {header(headers, 'Content-Type')!r}"
    assert "no-store" in (header(headers, "Cache-Control") or "").lower(), f"{where}: Cache-Control {headers}"
    assert (header(headers, "X-Content-Type-Options") or "").lower() == "nosniff", f"{where}: {headers}"
    check_csp(header(headers, "Content-Security-Policy"), where)
    etag = header(headers, "ETag")
    assert etag and re.fullmatch(r'(W/)?"[^"]*"', etag), f"{where}: ETag {etag!r}"


def raw_request(e, method, path, headers=None):
    """One HTTP/1.1 request on its own connection (Connection: close), read to the end: (status, headers, every
    byte after the header block). Unlike urllib, it shows a body sent where none may be (HEAD, 304)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{e.port}", "Connection: close",
             *(f"{k}: {v}" for k, v in (headers or {}).items())]
    with socket.create_connection(("127.0.0.1", e.port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, f"{method} {path}: no complete response: {data[:200]!r}"
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        k, _, v = line.partition(":")
        parsed[k.strip()] = v.strip()
    return int(status_line.split()[1]), parsed, rest


def browse(e, path, where=None):
    """The DOM Chromium built for `path` (parsed) and the console problems it logged, which must be none."""
    dom, problems = dump_dom(e.base + path)
    assert problems == [], f"{where or path}: the browser console reported:\n" + "\n".join(problems)
    return parse_html(dom)


def ingested(e):
    _, s = scrape(e)
    return sum(v for k, v in s.items() if k[0] in ("mlops_ingest_events_total", "mlops_ingest_rejected_total"))


def settle(e):
    """Waits until two scrapes in a row count the same events: nothing more is being ingested."""
    last = [None]

    def unchanged():
        now = ingested(e)
        done, last[0] = now == last[0], now
        return done

    wait_for(unchanged, timeout=30, interval=0.3, what="ingestion to go quiet")


# MARK: - The exporter, driven by the demo into its drift phase


@pytest.fixture(scope="module")
def drifted(binary, tmp_path_factory):
    """The exporter serving examples/demo/models.yaml after `mlops-exporter demo` ran a short stable phase, then
    drift (time scale 30: a demo minute in 2 s) until /metrics shows dataset drift, joined labels and fairness
    on both models; the generator is then stopped and ingestion has gone quiet."""
    tmp = tmp_path_factory.mktemp("status-page")
    e = Exporter(binary, ["--config", str(CONFIG)], tmp)
    try:
        drive_into_drift(binary, e, tmp / "demo.log")
        yield e
    finally:
        e.stop(signal.SIGKILL)


def drive_into_drift(binary, e, demo_log):
    """Runs the demo generator against `e` (log in `demo_log`) until its drift phase shows in /metrics, then
    stops it and waits for ingestion to go quiet."""
    with open(demo_log, "w") as log:
        demo = subprocess.Popen(
            [str(binary), "demo", "--target", e.base, "--config", str(CONFIG), "--rate", "400",
             "--phases", "stable:30s,drift", "--time-scale", "30", "--duration", "300"],
            stdout=log, stderr=log, cwd=ROOT)
    try:
        def drift_reached():
            if demo.poll() is not None:
                raise AssertionError(f"the demo exited with {demo.returncode}: {demo_log.read_text()}")
            if "demo: phase drift" not in demo_log.read_text():
                return False
            _, s = scrape(e)
            return (all(sample(s, "mlops_dataset_drift_detected", model=m) == 1 for m in MODEL_NAMES)
                    and all(series(s, "mlops_model_confusion_total", model="fraud", version=v) for v in ("v1", "v2"))
                    and series(s, "mlops_model_mae", model="eta")
                    and all(series(s, "mlops_fairness_selection_rate", model="fraud", attribute=a)
                            for a in ("gender", "age_band")))

        wait_for(drift_reached, timeout=120, interval=0.5, what="the demo's drift phase detected on every model")
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
    settle(e)


# MARK: - 1. The pages in the browser, against /metrics


def test_pages_show_every_model_the_detected_drift_and_the_scraped_values(drifted):
    e = drifted
    _, before = scrape(e)
    overview = browse(e, "/")
    details = {name: browse(e, f"/models/{urllib.parse.quote(name, safe='')}") for name in MODEL_NAMES}
    _, after = scrape(e)

    # / : one card per configured model, with its link, state and drifted features.
    main = find_one(overview, "main", id="models", what="on /")
    cards = find_all(main, "section", "card")
    assert sorted(c.get("data-model") for c in cards) == sorted(MODEL_NAMES)
    marked = check_data_elements(overview, before, after, "/")
    for card in cards:
        name = card.get("data-model")
        where = f"/ card {name}"
        links = [a for h2 in card.iter("h2") for a in h2.iter("a")]
        assert [a.get("href") for a in links] == [f"/models/{urllib.parse.quote(name, safe='')}"], where
        assert name in text(links[0]), where
        state = find_one(card, "span", "state", what=where)
        assert state.get("data-state") in STATES, (where, state.attrib)
        assert STATES[state.get("data-state")] in text(state), f"{where}: state shown as {text(state)!r}"
        # Dataset drift on every model: the state must say so.
        assert state.get("data-state") in ("warning", "critical"), f"{where}: drifted model shown as {text(state)!r}"
        expected = {labels["feature"] for labels, v in series(after, "mlops_feature_drift_detected", model=name)
                    if v == 1}
        assert DEMO_DRIFTED[name] in expected, f"{name}: the demo's drift was not detected: {expected}"
        lists = find_all(card, "ul", "drifted-features")
        listed = [li.get("data-feature") for ul in lists for li in ul.iter("li")]
        assert sorted(listed) == sorted(expected), f"{where}: drifted features {listed}, /metrics: {expected}"
        for ul in lists:
            for li in ul.iter("li"):
                assert li.get("data-feature") in text(li), (where, text(li))
        assert any(el in set(card.iter("data")) for _, _, el in marked), f"{where}: no number from /metrics"
    hrefs = {a.get("href") for a in overview.iter("a")}
    assert {"/metrics", "/-/healthy", "/-/ready"} <= hrefs, f"/: links {hrefs}"

    # /models/NAME: one section per monitored feature (and the prediction and score), confusion and fairness.
    for model in MODELS:
        name, root = model["name"], details[model["name"]]
        where = f"/models/{name}"
        main = find_one(root, "main", id="model", what=f"on {where}")
        assert main.get("data-model") == name, where
        marked = check_data_elements(root, before, after, where)
        monitored = [(f["name"], "mlops_feature_drift", {"feature": f["name"]}) for f in model["features"]]
        monitored += [(out, "mlops_prediction_drift", {"output": out}) for out in ("prediction", "score")
                      if series(after, "mlops_prediction_drift_score", model=name, output=out)]
        assert len(monitored) > len(model["features"]), f"{where}: no prediction drift in /metrics"
        for out in {"prediction", "score"} - {m[0] for m in monitored}:
            assert not find_all(main, "section", "feature", data_feature=out), f"{where}: a {out} section"
        for feature, prefix, key in monitored:
            section = find_one(main, "section", "feature", data_feature=feature, what=f"on {where}")
            detected = series(after, prefix + "_detected", model=name, **key)
            state = "insufficient" if not detected else "drifted" if detected[0][1] == 1 else "stable"
            assert section.get("data-state") == state, f"{where} {feature}: {section.get('data-state')}, not {state}"
            svgs = list(section.iter(SVG + "svg"))
            assert svgs, f"{where} {feature}: no inline <svg> chart"
            bars = [el for el in svgs[0].iter() if el.tag in SHAPES]
            assert len(bars) >= 2, f"{where} {feature}: the chart draws {len(bars)} shapes"
            words = text(section).lower()
            if state == "drifted":
                assert "drifted" in words, f"{where} {feature}: no verdict word in {words!r}"
            elif state == "stable":
                assert "stable" in words or "no drift" in words, f"{where} {feature}: no verdict word in {words!r}"
            if state != "insufficient":
                shown = {m for m, labels, el in marked if el in set(section.iter("data"))
                         and labels.get("model") == name and all(labels.get(k) == v for k, v in key.items())}
                assert {prefix + "_score", prefix + "_threshold"} <= shown, f"{where} {feature}: shows {shown}"
        versions = sorted({labels["version"] for labels, _ in series(after, "mlops_model_confusion_total", model=name)})
        tables = find_all(main, "table", "confusion")
        assert sorted(t.get("data-version") for t in tables) == versions, f"{where}: confusion tables"
        for table in tables:
            version = table.get("data-version")
            cells = {(labels["actual"], labels["predicted"]) for m, labels, el in marked
                     if m == "mlops_model_confusion_total" and el in set(table.iter("data"))
                     and labels.get("version") == version}
            want = {(labels["actual"], labels["predicted"]) for labels, _ in
                    series(after, "mlops_model_confusion_total", model=name, version=version)}
            assert cells == want, f"{where} confusion {version}: cells {cells}, /metrics {want}"
        attributes = [a["name"] for a in model.get("sensitive_attributes", [])]
        tables = find_all(main, "table", "fairness")
        assert sorted(t.get("data-attribute") for t in tables) == sorted(attributes), f"{where}: fairness tables"
        for table in tables:
            attribute = table.get("data-attribute")
            groups = {labels["group"] for m, labels, el in marked
                      if m == "mlops_fairness_selection_rate" and el in set(table.iter("data"))
                      and labels.get("attribute") == attribute}
            want = {labels["group"] for labels, _ in
                    series(after, "mlops_fairness_selection_rate", model=name, attribute=attribute)}
            assert groups == want, f"{where} fairness {attribute}: selection rates of {groups}, /metrics {want}"


def test_unknown_model_is_404(drifted):
    for path in ("/models/nope", "/models/" + urllib.parse.quote(XSS, safe="")):
        status, headers, body = drifted.get(path)
        assert status == 404, (path, status)
        if "html" in (header(headers, "Content-Type") or ""):
            assert b"<script" not in body.lower(), body  # the name is not reflected as markup


# MARK: - 2. Screenshots and the browser console


def test_screenshots_show_the_pages_and_the_console_stays_empty(drifted, tmp_path):
    for path in ("/", "/models/fraud"):
        assert drifted.get(path)[0] == 200, path
        png = tmp_path / ((path.strip("/").replace("/", "-") or "index") + ".png")
        problems = screenshot(drifted.base + path, png, 1280, 800)
        assert problems == [], f"{path}: the browser console reported:\n" + "\n".join(problems)
        size, painted, colours = painted_pixels(png)
        assert size == (1280, 800), size
        # Not blank: at least 1% of the pixels off the background (a line of text alone paints about 0.3%; the
        # landing page before issue 18 painted 11%), in the many colours of anti-aliased text.
        assert painted >= 0.01 * 1280 * 800 and colours >= 16, f"{path}: {painted} pixels painted, {colours} colours"


# MARK: - 3. User-supplied strings that look like markup


def test_strings_that_look_like_markup_are_shown_as_text(binary, start_exporter, tmp_path):
    """Model, feature and attribute names are restricted to letters, digits, '_', '-' and '.' by the
    configuration; versions, classes, categorical values and groups are free text: they carry the payloads."""
    reference = tmp_path / "reference.json"
    config = tmp_path / "models.yaml"
    values = [XSS, XSS_ATTR, "plain"]
    config.write_text(yaml.safe_dump({"models": [{
        "name": "xss", "task": "binary_classification", "versions": [XSS], "classes": [XSS_ATTR, XSS],
        "positive_class": XSS, "reference": str(reference),
        "features": [{"name": "n", "type": "numeric"}, {"name": "c", "type": "categorical", "values": values}],
        "sensitive_attributes": [{"name": "group", "groups": [XSS, XSS_ATTR], "privileged": XSS_ATTR}],
        "collectors": ["service", {"name": "drift", "options": {"min_observations": 50}}, "quality",
                       {"name": "fairness", "options": {"min_group_observations": 10}}],
    }]}))
    data = tmp_path / "reference.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["n", "c", "prediction", "score"])
        for i in range(600):
            w.writerow([i % 17, values[i % 3], XSS if i % 4 == 0 else XSS_ATTR, (i % 10) / 10])
    profile = subprocess.run([str(binary), "profile", "--config", str(config), "--model", "xss", "--input",
                              str(data), "--out", str(reference)], capture_output=True, text=True, cwd=ROOT)
    assert profile.returncode == 0, profile.stderr
    e = start_exporter("--config", str(config))
    predictions, labels = [], []
    for i in range(400):
        positive = i % 3 == 0
        predictions.append({"id": f"p{i}", "version": XSS, "prediction": XSS if positive else XSS_ATTR,
                            "score": 0.9 if positive else 0.2, "latency_seconds": 0.01,
                            "features": {"n": 40 + i % 7, "c": values[i % 2]},
                            "attributes": {"group": XSS if i % 2 else XSS_ATTR}})
        labels.append({"id": f"p{i}", "label": XSS if i % 5 == 0 else XSS_ATTR})
    for path, events in (("predictions", predictions), ("labels", labels)):
        body = "".join(json.dumps(ev) + "\n" for ev in events).encode()
        status, _, reply = e.post(f"/api/v1/models/xss/{path}", body, {"Content-Type": "application/x-ndjson"})
        assert status == 202 and json.loads(reply)["rejected"] == 0, reply
    _, s = scrape(e)
    assert series(s, "mlops_model_confusion_total", model="xss", version=XSS)
    assert series(s, "mlops_feature_drift_score", model="xss", feature="c")
    assert series(s, "mlops_fairness_selection_rate", model="xss", group=XSS_ATTR)

    _, before = scrape(e)
    pages = {}
    for path in ("/", "/models/xss"):
        status, headers, body = e.get(path)
        assert status == 200, (path, status)
        check_page_headers(headers, path)
        lowered = body.lower()
        assert b"<script" not in lowered and b"<img" not in lowered, f"{path}: markup from the payload in the source"
        check_head_of_document(body, parse_html(body), path)
        pages[path] = browse(e, path)
    _, after = scrape(e)
    for path, root in pages.items():
        assert not list(root.iter("script")) and not list(root.iter("img")), f"{path}: injected elements"
        marked = check_data_elements(root, before, after, path)
        assert marked, f"{path}: no number from /metrics"
    overview = pages["/"]
    assert [c.get("data-model") for c in find_all(overview, "section", "card")] == ["xss"]
    root = pages["/models/xss"]
    assert XSS in text(root) and XSS_ATTR in text(root)
    confusion = find_one(root, "table", "confusion", what="on /models/xss")
    assert confusion.get("data-version") == XSS
    assert XSS in text(confusion) and XSS_ATTR in text(confusion), text(confusion)
    fairness = find_one(root, "table", "fairness", data_attribute="group", what="on /models/xss")
    assert XSS in text(fairness) and XSS_ATTR in text(fairness), text(fairness)
    # The payloads reached data-labels (single-quoted in the source) intact.
    versions = {labels.get("version") for _, labels, _ in check_data_elements(root, before, after, "/models/xss")}
    assert XSS in versions, versions


# MARK: - 4. HTML5 conformance of the demo's pages


def test_pages_parse_without_html5_errors(drifted):
    for path in ["/"] + [f"/models/{name}" for name in MODEL_NAMES]:
        status, _, body = drifted.get(path)
        assert status == 200, (path, status)
        check_head_of_document(body, parse_html(body), path)


# MARK: - 5. Headers, conditional requests, methods, basic auth


def test_headers_etag_head_and_methods(start_exporter):
    # No traffic: the pages change only when told below. Metrics elsewhere than /metrics: the page links there.
    e = start_exporter("--config", str(CONFIG), "--web.telemetry-path", "/prom")
    status, _, body = e.get("/")
    root = parse_html(body)
    check_head_of_document(body, root, "/ without data")
    assert {"/prom", "/-/healthy", "/-/ready"} <= {a.get("href") for a in root.iter("a")}
    for card in find_all(root, "section", "card"):
        state = find_one(card, "span", "state", what=f"/ card {card.get('data-model')}")
        assert state.get("data-state") == "unknown" and STATES["unknown"] in text(state), \
            f"/ card {card.get('data-model')} without any event: {state.get('data-state')} {text(state)!r}"
    for path in ("/", "/models/fraud"):
        status, headers, body = raw_request(e, "GET", path)
        assert status == 200 and body, (path, status)
        check_page_headers(headers, path)

        def not_modified():
            _, h, _ = raw_request(e, "GET", path)
            status, h304, rest = raw_request(e, "GET", path, {"If-None-Match": header(h, "ETag")})
            return (status, h, h304, rest) if status == 304 else None

        # Polled: a page that shows the time may change at a second's boundary between the two requests.
        _, h, h304, rest = wait_for(not_modified, timeout=10, interval=0.1, what=f"304 for If-None-Match on {path}")
        assert rest == b"", f"{path}: 304 with a body {rest[:100]!r}"
        assert header(h304, "ETag") == header(h, "ETag"), (h304, h)
        assert raw_request(e, "GET", path, {"If-None-Match": '"not-the-etag"'})[0] == 200

        def head_like_get():
            _, h, _ = raw_request(e, "GET", path)
            status, hh, rest = raw_request(e, "HEAD", path)
            return (status, h, hh, rest) if header(h, "ETag") == header(hh, "ETag") else None

        status, h, hh, rest = wait_for(head_like_get, timeout=10, interval=0.1, what=f"HEAD {path} like GET")
        assert status == 200 and rest == b"", f"HEAD {path}: {status}, body {rest[:100]!r}"
        for name in ("Content-Type", "Cache-Control", "Content-Security-Policy", "X-Content-Type-Options", "ETag"):
            assert header(hh, name) == header(h, name), f"HEAD {path}: {name} {header(hh, name)!r}"
        status, h, _ = e.post(path, b"x", {"Content-Type": "text/plain"})
        assert status == 405, (path, status)
        assert "GET" in (header(h, "Allow") or ""), (path, h)

    # New data changes the page: the old ETag no longer matches.
    _, h, _ = raw_request(e, "GET", "/")
    events = "".join(json.dumps({"id": f"p{i}", "version": "v1", "prediction": "fraud", "score": 0.9,
                                 "latency_seconds": 0.01}) + "\n" for i in range(50))
    assert e.post("/api/v1/models/fraud/predictions", events.encode(), {"Content-Type": "application/x-ndjson"})[0] == 202
    status, h2, body = raw_request(e, "GET", "/", {"If-None-Match": header(h, "ETag")})
    assert status == 200 and body and header(h2, "ETag") != header(h, "ETag"), (status, h2)


def test_basic_auth_covers_the_status_pages(start_exporter, tmp_path):
    web = web_config(tmp_path / "web.yml", users={"prom": bcrypt("s3cret")})
    e = start_exporter("--config", str(CONFIG), "--web.config.file", str(web))
    good = {"Authorization": "Basic " + base64.b64encode(b"prom:s3cret").decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(b"prom:wrong").decode()}
    for path in ("/", "/models/fraud"):
        for method in ("GET", "HEAD"):
            status, headers, body = raw_request(e, method, path)
            assert status == 401, (method, path, status)
            assert header(headers, "WWW-Authenticate"), (method, path, headers)
            assert b"<main" not in body, (method, path)
            assert raw_request(e, method, path, bad)[0] == 401, (method, path)
        status, headers, body = e.get(path, headers=good)
        assert status == 200, (path, status)
        check_page_headers(headers, path)
        root = parse_html(body)
        assert find_all(root, None, data_model="fraud"), f"{path}: not the page of fraud"
