"""Shared checks for the Exposition conformance tests.

The Swift fixture (Sources/exposition-fixture) writes renders of a registry plus ``expected.json``:
the samples it set, computed from the values it fed in::

    {"families": [{"family", "type", "help", "unit", "source": "registry"|"collector",
                   "samples": [{"name", "labels": {..}, "value",
                                "le"?, "quantile"?, "created"?, "exemplar"?: {"labels", "value", "timestamp"}}]}],
     "absent": [family names registered without series], "created_window": [start, end], ...}

Doubles travel as ``"f64:<16 hex digits of the bit pattern>"`` (JSON has no NaN or infinities, and
nothing in the expectation may depend on the decimal formatting under test); exact integers (bucket
counts, integer counter totals) are JSON numbers; ``null`` marks a value only known to lie in a range
(``_created`` timestamps of registered series, collector durations).

Everything here compares a parsed exposition against that truth. Helpers raise ``AssertionError``
with a readable message; they never ``print``.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import math
import pathlib
import re
import shutil
import struct
import subprocess
import unicodedata
from typing import Any, Dict, Iterable, List, Optional, Tuple

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.samples import Timestamp

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


# --------------------------------------------------------------------------------------------
# Decoding the fixture's truth


def decode_number(v: Any) -> Any:
    """JSON int → int (exact), ``"f64:…"`` → float from its bit pattern, None → None."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.startswith("f64:"):
        return struct.unpack(">d", bytes.fromhex(v[4:]))[0]
    raise ValueError(f"not a fixture number: {v!r}")


@dataclasses.dataclass
class ExpSample:
    name: str
    labels: Dict[str, str]
    value: Any  # int | float | None (unknown: a _created timestamp or a duration)
    le: Optional[float] = None
    quantile: Optional[float] = None
    created: bool = False
    any_duration: bool = False
    exemplar: Optional[dict] = None


@dataclasses.dataclass
class ExpFamily:
    name: str
    type: str
    help: Optional[str]  # None: not checked
    unit: str
    source: str
    samples: List[ExpSample]


@dataclasses.dataclass
class Expected:
    families: List[ExpFamily]
    absent: List[str]
    raw: dict

    @property
    def created_window(self) -> Tuple[float, float]:
        start, end = (decode_number(x) for x in self.raw["created_window"])
        return start, end


def load_expected(path: pathlib.Path) -> Expected:
    raw = json.loads(path.read_text(encoding="utf-8"))
    families = []
    for f in raw.get("families", []):
        samples = []
        for s in f["samples"]:
            labels: Dict[str, str] = dict(s["labels"])
            exemplar = None
            if "exemplar" in s:
                e = s["exemplar"]
                exemplar = {
                    "labels": dict(e["labels"]),
                    "value": decode_number(e["value"]),
                    "timestamp": decode_number(e["timestamp"]),
                }
            samples.append(
                ExpSample(
                    name=s["name"],
                    labels=labels,
                    value=decode_number(s["value"]),
                    le=decode_number(s.get("le")),
                    quantile=decode_number(s.get("quantile")),
                    created=bool(s.get("created", False)),
                    any_duration=bool(s.get("any_duration", False)),
                    exemplar=exemplar,
                )
            )
        families.append(
            ExpFamily(f["family"], f["type"], f["help"], f["unit"], f["source"], samples)
        )
    return Expected(families, list(raw.get("absent", [])), raw)


# --------------------------------------------------------------------------------------------
# Number formatting, written from Go's strconv.FormatFloat(x, 'g', -1, 64) specification


def go_g(x: float) -> str:
    """Go's ``FormatFloat(x, 'g', -1, 64)``: the shortest round-trip digits (Python's ``repr`` gives
    the same digits), in %e form when the decimal exponent is < -4 or >= 6 (Go uses eprec = 6 for
    shortest precision), else %f form; the %e exponent has at least two digits."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1, x) < 0 else "0"
    sign, digits, exponent = decimal.Decimal(repr(x)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0")
    # value = 0.ds × 10^dp
    dp = len(digits) + exponent
    ds_stripped = ds.lstrip("0")
    dp -= len(ds) - len(ds_stripped)
    ds = ds_stripped
    exp = dp - 1
    out = "-" if sign else ""
    if exp < -4 or exp >= 6:
        out += ds[0]
        if len(ds) > 1:
            out += "." + ds[1:]
        out += "e" + ("-" if exp < 0 else "+") + f"{abs(exp):02d}"
    elif dp <= 0:
        out += "0." + "0" * (-dp) + ds
    elif dp >= len(ds):
        out += ds + "0" * (dp - len(ds))
    else:
        out += ds[:dp] + "." + ds[dp:]
    return out


def om_canonical(x: float) -> str:
    """OpenMetrics canonical ``le``/``quantile`` text: Go's %g plus ``.0`` without point/exponent."""
    s = go_g(x)
    if math.isfinite(x) and "." not in s and "e" not in s:
        s += ".0"
    return s


# --------------------------------------------------------------------------------------------
# Comparison


def is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def same_value(a: Any, b: Any) -> bool:
    """Exact equality, NaN equal to NaN; int and float compare exactly (Python semantics)."""
    if is_nan(a) or is_nan(b):
        return is_nan(a) and is_nan(b)
    return a == b


def timestamp_value(ts: Any) -> Optional[float]:
    if ts is None:
        return None
    if isinstance(ts, Timestamp):
        return float(decimal.Decimal(ts.sec) + decimal.Decimal(ts.nsec) / decimal.Decimal(10**9))
    return float(ts)


SeriesKey = Tuple[str, Tuple[Tuple[str, Any], ...]]


def _numeric(text: str) -> Any:
    try:
        return ("#num", float(text))
    except ValueError:
        return text


def series_key(name: str, labels: Dict[str, str], le: Any = None, quantile: Any = None) -> SeriesKey:
    """Sample name and labels, with ``le``/``quantile`` compared as numbers (their spelling is
    checked separately by ``check_canonical_numbers``)."""
    items = [(k, v) for k, v in labels.items() if k not in ("le", "quantile")]
    for label, value in (("le", le), ("quantile", quantile)):
        if label in labels:
            items.append((label, _numeric(labels[label])))
        elif value is not None:
            items.append((label, ("#num", value)))
    return name, tuple(sorted(items))


@dataclasses.dataclass
class FormatExpectation:
    name: str  # family name as the parser reports it
    type: str
    help: str
    unit: str
    samples: List[ExpSample]
    source: ExpFamily


def expectations(expected: Expected, fmt: str, created: bool = False) -> Dict[str, FormatExpectation]:
    """What each parser must report for each family.

    fmt "text": prometheus_client's text parser names counter families without ``_total`` and info
    families with ``_info`` (they are gauges there); info/stateset are gauges, unknown is unknown
    (from ``untyped``); no units, no ``_created``, no exemplars.
    fmt "om": OpenMetrics names and types; ``_sum``/``_count`` are absent for histograms with a
    negative bound; ``_created`` only when ``created``.
    """
    out: Dict[str, FormatExpectation] = {}
    for fam in expected.families:
        if fmt == "text":
            name = fam.name + "_info" if fam.type == "info" else fam.name
            typ = {"info": "gauge", "stateset": "gauge"}.get(fam.type, fam.type)
            unit = ""
        else:
            name, typ, unit = fam.name, fam.type, fam.unit
        # Per MetricPoint: collectors may give each series its own bounds.
        negative_bound = {
            tuple(sorted(s.labels.items())) for s in fam.samples if s.le is not None and s.le < 0
        }
        samples = []
        for s in fam.samples:
            if s.created and not (fmt == "om" and created):
                continue
            if (
                fmt == "om"
                and fam.type == "histogram"
                and tuple(sorted(s.labels.items())) in negative_bound
                and s.name in (fam.name + "_sum", fam.name + "_count")
            ):
                continue
            samples.append(s)
        out[name] = FormatExpectation(name, typ, fam.help, unit, samples, fam)
    return out


class Mismatch(AssertionError):
    pass


def _short(v: Any, limit: int = 160) -> str:
    r = repr(v)
    return r if len(r) <= limit else r[:limit] + "…"


def compare(
    families: List[Any],
    expected: Expected,
    fmt: str,
    created: bool = False,
    created_window: Optional[Tuple[float, float]] = None,
) -> None:
    """Compares parsed families with the truth; raises Mismatch listing every difference."""
    problems: List[str] = []
    want = expectations(expected, fmt, created)
    got = {}
    for f in families:
        if f.name in got:
            problems.append(f"family {f.name!r} appears twice")
        got[f.name] = f
    for name in sorted(set(want) - set(got)):
        problems.append(f"missing family {name!r}")
    for name in sorted(set(got) - set(want)):
        problems.append(f"unexpected family {name!r} ({len(got[name].samples)} samples)")
    for absent in expected.absent:
        for candidate in (absent, absent + "_info", absent + "_total"):
            if candidate in got and candidate not in want:
                problems.append(f"family {absent!r} has no series and must not be written")
    for name in sorted(set(want) & set(got)):
        w, g = want[name], got[name]
        if g.type != w.type:
            problems.append(f"{name}: type {g.type!r}, expected {w.type!r}")
        if w.help is not None and (g.documentation or "") != w.help:
            problems.append(f"{name}: help {_short(g.documentation)}, expected {_short(w.help)}")
        if (g.unit or "") != w.unit:
            problems.append(f"{name}: unit {g.unit!r}, expected {w.unit!r}")
        wanted: Dict[SeriesKey, ExpSample] = {}
        for s in w.samples:
            key = series_key(s.name, s.labels, s.le, s.quantile)
            assert key not in wanted, f"fixture bug: sample {key} expected twice"
            wanted[key] = s
        seen = set()
        for s in g.samples:
            key = series_key(s.name, s.labels)
            if key in seen:
                problems.append(f"{name}: duplicate sample {_short(key)}")
                continue
            seen.add(key)
            e = wanted.get(key)
            if e is None:
                problems.append(f"{name}: unexpected sample {_short(key)} = {s.value!r}")
                continue
            if s.timestamp is not None:
                problems.append(f"{name}: sample {_short(key)} has a timestamp {s.timestamp!r}")
            if e.created and e.value is None:
                lo, hi = created_window
                if not (isinstance(s.value, (int, float)) and lo - 1 <= s.value <= hi + 1):
                    problems.append(f"{name}: {_short(key)} = {s.value!r} outside [{lo}, {hi}]")
            elif e.any_duration:
                if not (isinstance(s.value, (int, float)) and 0 <= s.value < 60):
                    problems.append(f"{name}: duration {_short(key)} = {s.value!r}")
            elif not same_value(s.value, e.value):
                problems.append(f"{name}: {_short(key)} = {s.value!r}, expected {e.value!r}")
            want_ex = e.exemplar if fmt == "om" else None
            got_ex = s.exemplar
            if want_ex is None and got_ex is not None:
                problems.append(f"{name}: {_short(key)} has an unexpected exemplar {got_ex!r}")
            elif want_ex is not None:
                if got_ex is None:
                    problems.append(f"{name}: {_short(key)} lacks exemplar {want_ex!r}")
                else:
                    if dict(got_ex.labels) != want_ex["labels"]:
                        problems.append(
                            f"{name}: exemplar labels {got_ex.labels!r}, expected {want_ex['labels']!r}"
                        )
                    if not same_value(got_ex.value, want_ex["value"]):
                        problems.append(
                            f"{name}: exemplar value {got_ex.value!r}, expected {want_ex['value']!r}"
                        )
                    if timestamp_value(got_ex.timestamp) != want_ex["timestamp"]:
                        problems.append(
                            f"{name}: exemplar timestamp {got_ex.timestamp!r}, expected {want_ex['timestamp']!r}"
                        )
        for key in wanted.keys() - seen:
            problems.append(f"{name}: missing sample {_short(key)} (expected {wanted[key].value!r})")
    if problems:
        head = f"{len(problems)} difference(s) in {fmt}{' (emitCreated)' if created else ''}:\n  "
        raise Mismatch(head + "\n  ".join(problems[:60]))


# --------------------------------------------------------------------------------------------
# Raw-text checks


def raw_series_key(line: str) -> str:
    """``name{labels}`` of a sample line, scanning quotes and escapes (label values may contain
    spaces, braces and ``#``)."""
    i = 0
    while i < len(line) and line[i] not in "{ ":
        i += 1
    if i == len(line) or line[i] == " ":
        return line[:i]
    in_quotes = False
    i += 1
    while i < len(line):
        c = line[i]
        if in_quotes:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quotes = False
        elif c == '"':
            in_quotes = True
        elif c == "}":
            return line[: i + 1]
        i += 1
    raise AssertionError(f"unterminated label set: {_short(line)}")


def check_no_duplicate_series(text: str) -> None:
    """No series written twice (the OpenMetrics parser silently drops exact duplicates, and the
    text parser does not check, so this works on the raw lines)."""
    seen = set()
    duplicates = []
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        key = raw_series_key(line)
        if key in seen:
            duplicates.append(key)
        seen.add(key)
    assert not duplicates, f"series written twice: {[_short(d) for d in duplicates[:10]]}"


def check_structure_text(text: str) -> None:
    if not text:
        return
    assert text.endswith("\n"), "text exposition must end with a line feed"
    assert "# EOF" not in text.split("\n"), "text 0.0.4 has no # EOF line"
    types_seen = set()
    current: Optional[str] = None
    finished = set()
    for i, line in enumerate(text[:-1].split("\n"), 1):
        assert line, f"line {i}: blank line"
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)( .*)?", line, re.S)
            assert m, f"line {i}: unexpected comment {_short(line)}"
            if m.group(1) == "TYPE":
                assert m.group(2) not in types_seen, f"line {i}: second TYPE for {m.group(2)}"
                types_seen.add(m.group(2))
                assert m.group(3)[1:] in ("counter", "gauge", "histogram", "summary", "untyped"), line
            if m.group(2) != current:
                if current is not None:
                    finished.add(current)
                assert m.group(2) not in finished, f"line {i}: family {m.group(2)} is interleaved"
                current = m.group(2)
        else:
            assert re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*[{ ]", line), f"line {i}: {_short(line)}"


def check_structure_openmetrics(text: str) -> None:
    assert text.endswith("# EOF\n"), f"OpenMetrics must end with '# EOF\\n', ends {_short(text[-40:])}"
    lines = text[:-1].split("\n")
    assert lines.count("# EOF") == 1, "exactly one # EOF line"
    assert "\r\n" not in text, "no CRLF line endings"
    order = {"TYPE": 0, "UNIT": 1, "HELP": 2}
    last: Dict[str, int] = {}
    for i, line in enumerate(lines[:-1], 1):
        assert line, f"line {i}: blank line"
        if line.startswith("#"):
            m = re.fullmatch(r"# (TYPE|UNIT|HELP) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)", line, re.S)
            assert m, f"line {i}: only TYPE, UNIT and HELP comments are allowed: {_short(line)}"
            kind, name = m.group(1), m.group(2)
            if name in last:
                assert order[kind] > last[name], f"line {i}: {kind} after a later metadata line for {name}"
            last[name] = order[kind]


def metadata_lines(text: str) -> List[str]:
    return [line for line in text.split("\n") if line.startswith("# ")]


def check_canonical_numbers(families: Iterable[Any], fmt: str) -> None:
    """``le`` and ``quantile`` label values are written exactly as Go (text) or OpenMetrics
    (canonical %g plus .0) spell them."""
    problems = []
    for f in families:
        for s in f.samples:
            for label in ("le", "quantile"):
                if label not in s.labels:
                    continue
                if label == "le" and not s.name.endswith("_bucket"):
                    continue
                if label == "quantile" and f.type != "summary":
                    continue
                text_value = s.labels[label]
                x = float(text_value)
                want = go_g(x) if fmt == "text" or label == "quantile" else om_canonical(x)
                if text_value != want:
                    problems.append(f"{s.name} {label}={text_value!r}, expected {want!r}")
    assert not problems, f"non-canonical numbers in {fmt}:\n  " + "\n  ".join(problems[:40])


def nfc_key(values: Iterable[str]) -> Tuple[str, ...]:
    # Label values are ordered by their bytes (Python compares str by code point, which is the
    # same order as UTF-8 bytes); no Unicode normalisation, as Prometheus compares bytes too.
    return tuple(values)


def check_order(families: List[Any], expected: Expected, fmt: str) -> None:
    """The library's documented determinism: families sorted by name; a registered family's series
    sorted by label values (label names sorted), a collected family's series in the order the collector
    emitted them (the fixture's truth lists them in that order: no per-scrape sort); state-set states
    and quantiles and buckets ascending."""
    names = [f.name for f in families]
    base = {f.name: f for f in expected.families}
    om_names = []
    for n in names:
        if fmt == "text" and n not in base and n.endswith("_info"):
            n = n[: -len("_info")]
        om_names.append(n)
    assert om_names == sorted(om_names), f"families not sorted by name: {om_names}"
    for f in families:
        fam = base.get(f.name) or base.get(f.name[: -len("_info")])
        if fam is None:
            continue
        extra = {"le", "quantile"}
        if fam.type == "stateset":
            extra.add(fam.name)
        order: List[Tuple[str, ...]] = []
        inner: Dict[Tuple[str, ...], List[Any]] = {}
        for s in f.samples:
            key = nfc_key(v for k, v in sorted(s.labels.items()) if k not in extra)
            if not order or order[-1] != key:
                assert key not in inner, f"{f.name}: series {key!r} is not contiguous"
                order.append(key)
                inner[key] = []
            if fam.type == "stateset":
                inner[key].append(nfc_key([s.labels[fam.name]]))
            elif "quantile" in s.labels and fam.type == "summary":
                inner[key].append(float(s.labels["quantile"]))
            elif "le" in s.labels and s.name.endswith("_bucket"):
                inner[key].append(float(s.labels["le"]))
        if fam.source == "collector":
            emitted: List[Tuple[str, ...]] = []
            for s in fam.samples:
                key = nfc_key(v for k, v in sorted(s.labels.items()) if k not in extra)
                if key not in emitted:
                    emitted.append(key)
            assert order == emitted, f"{f.name}: series not in emission order: {order[:10]} != {emitted[:10]}"
        else:
            assert order == sorted(order), f"{f.name}: series not sorted by label values: {order[:10]}"
        for key, values in inner.items():
            assert values == sorted(values), f"{f.name}{key}: not ascending: {values}"
            assert len(set(values)) == len(values), f"{f.name}{key}: repeated: {values}"


# --------------------------------------------------------------------------------------------
# promtool


def promtool(text: bytes) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    assert exe, "promtool is not installed (needed for the conformance tests)"
    return subprocess.run([exe, "check", "metrics"], input=text, capture_output=True, timeout=60)


def assert_promtool_ok(text: bytes, context: str = "") -> None:
    proc = promtool(text)
    assert proc.returncode == 0, (
        f"promtool check metrics exited {proc.returncode}{context}\n"
        f"stderr: {proc.stderr.decode('utf-8', 'replace')[:4000]}\n"
        f"stdout: {proc.stdout.decode('utf-8', 'replace')[:2000]}"
    )


# --------------------------------------------------------------------------------------------
# One fixture output directory


@dataclasses.dataclass
class Bundle:
    dir: pathlib.Path

    def read(self, name: str) -> str:
        return (self.dir / name).read_bytes().decode("utf-8")

    def read_bytes(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    def exists(self, name: str) -> bool:
        return (self.dir / name).exists()

    @property
    def text(self) -> str:
        return self.read("text.prom")

    @property
    def openmetrics(self) -> str:
        return self.read("openmetrics.txt")

    @property
    def openmetrics_created(self) -> str:
        return self.read("openmetrics_created.txt")

    @property
    def expected(self) -> Expected:
        return load_expected(self.dir / "expected.json")

    def parse_text(self) -> List[Any]:
        return list(parse_text(self.text))

    def parse_openmetrics(self, created: bool = False) -> List[Any]:
        return list(parse_openmetrics(self.openmetrics_created if created else self.openmetrics))


def full_check(bundle: Bundle, context: str = "") -> None:
    """Every round-trip and structural check on one bundle (used by the property tests)."""
    expected = bundle.expected
    text_families = bundle.parse_text()
    compare(text_families, expected, "text")
    om_families = bundle.parse_openmetrics()
    compare(om_families, expected, "om")
    om_created = bundle.parse_openmetrics(created=True)
    compare(om_created, expected, "om", created=True, created_window=expected.created_window)
    check_structure_text(bundle.text)
    check_structure_openmetrics(bundle.openmetrics)
    check_structure_openmetrics(bundle.openmetrics_created)
    for doc in (bundle.text, bundle.openmetrics, bundle.openmetrics_created):
        check_no_duplicate_series(doc)
    check_canonical_numbers(text_families, "text")
    check_canonical_numbers(om_families, "om")
    check_order(om_families, expected, "om")
    check_order(text_families, expected, "text")
    assert bundle.read_bytes("text.prom") == bundle.read_bytes("text.2.prom"), "text render not deterministic"
    assert bundle.read_bytes("openmetrics.txt") == bundle.read_bytes(
        "openmetrics.2.txt"
    ), "OpenMetrics render not deterministic"
    assert bundle.read_bytes("text.prom") == bundle.read_bytes(
        "text_created.prom"
    ), "emitCreated must not change the text format"
    assert_promtool_ok(bundle.read_bytes("text.prom"), context)
