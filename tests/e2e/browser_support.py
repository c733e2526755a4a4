"""Headless Chromium for the status page tests (tests/e2e/test_status_page.py) and scripts/screenshot-status: the
DOM as the browser built it (--dump-dom), screenshots, and what the page logged to the browser console.

Chromium (Debian's package `chromium`, from scripts/install-deps) runs once per call, with a profile of its own in a
temporary directory (so that two runs at once, or a pytest worker beside another, never share one), and talks only
to the URL it is given (127.0.0.1 in the tests). The flags:
  --headless --disable-gpu        no display, software rendering
  --no-sandbox                    the tests run as root (CI does), where Chromium refuses to start sandboxed
  --disable-dev-shm-usage         /dev/shm may be small in a container (Debian's wrapper adds it only when its own
                                  check of /dev/shm works, which it does not on every machine)
  --enable-logging=stderr --v=0   the page's console messages on stderr, one line each:
                                  `[pid:tid:time:INFO:CONSOLE:LINE] "message", source: URL (LINE)`. Every level
                                  (console.log, .error, uncaught exceptions) is logged as INFO, so the level cannot
                                  be told apart; a page without JavaScript should log nothing at all, so any
                                  CONSOLE line is a problem. A Content Security Policy violation is such a line too
                                  ("Executing inline script violates the following Content Security Policy
                                  directive ... The action has been blocked." in Chromium 156; older versions
                                  said "Refused to ...").
Only the standard library is imported here (html5lib and Pillow are imported where used), so that
scripts/screenshot-status runs with the system python3."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser")
CONSOLE = re.compile(r":CONSOLE[:(]")
PROBLEMS = re.compile(r":CONSOLE[:(]|Content Security Policy|Refused to ")


def chromium_binary():
    """The Chromium executable on PATH; fails (never skips) with what to run when there is none."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("headless Chromium is missing (looked for chromium, chromium-browser on PATH): "
                         "scripts/install-deps installs the Debian package chromium")


def run_chromium(url, *flags, timeout=90):
    """Runs headless Chromium on `url` with `flags` (e.g. --dump-dom); returns (stdout, stderr) as text. A non-zero
    exit fails with Chromium's stderr."""
    with tempfile.TemporaryDirectory(prefix="mlops-chromium-") as profile:
        command = [chromium_binary(), "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
                   "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}", *flags, url]
        # HOME in the profile too: Chromium writes caches under $HOME/.cache and crash data under $HOME.
        env = {**os.environ, "HOME": profile}
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"chromium exited with {proc.returncode} on {url}:\n{proc.stderr[-4000:]}"
    return proc.stdout, proc.stderr


def console_problems(stderr):
    """The lines of Chromium's stderr that are console messages or Content Security Policy reports."""
    return [line for line in stderr.splitlines() if PROBLEMS.search(line)]


def dump_dom(url, timeout=90):
    """The DOM of `url` once loaded, serialized by Chromium (--dump-dom), and the console problems it logged."""
    stdout, stderr = run_chromium(url, "--dump-dom", timeout=timeout)
    assert stdout.strip(), f"chromium dumped an empty DOM for {url}:\n{stderr[-4000:]}"
    return stdout, console_problems(stderr)


def screenshot(url, out, width=1280, height=800, timeout=90):
    """A PNG screenshot of `url` at `width`x`height` into `out`; returns the console problems the page logged."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    _, stderr = run_chromium(url, f"--screenshot={out}", f"--window-size={width},{height}", "--hide-scrollbars",
                             timeout=timeout)
    assert out.exists() and out.stat().st_size > 0, f"chromium wrote no screenshot of {url}:\n{stderr[-4000:]}"
    return console_problems(stderr)


def painted_pixels(png):
    """(size, pixels that differ from the background colour, distinct colours) of a PNG; the background is the
    most frequent colour."""
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
        colors = rgb.getcolors(maxcolors=rgb.width * rgb.height)
        count, _ = max(colors)
        return rgb.size, rgb.width * rgb.height - count, len(colors)


def parse_html(text):
    """An ElementTree of an HTML document parsed as a browser does (html5lib); HTML elements have plain tag names,
    SVG elements the SVG namespace ({http://www.w3.org/2000/svg}rect)."""
    import html5lib

    return html5lib.parse(text, treebuilder="etree", namespaceHTMLElements=False)


def html5_errors(body):
    """The parse errors of an HTML document (bytes or text) per the HTML5 parsing algorithm (html5lib), as
    (line, column, code, details); [] for a conforming document."""
    import html5lib

    parser = html5lib.HTMLParser(strict=False, namespaceHTMLElements=False)
    if isinstance(body, bytes):
        parser.parse(body, transport_encoding="utf-8")
    else:
        parser.parse(body)
    return [(line, col, code, details) for (line, col), code, details in parser.errors]
