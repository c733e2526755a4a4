"""Round-trip of the hand-written fixture (every metric type, awkward values) through promtool and
both prometheus_client parsers, compared with the values the fixture fed in."""

from __future__ import annotations

import math
import re

import pytest

from .conformance_lib import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    assert_promtool_ok,
    check_canonical_numbers,
    check_order,
    check_structure_openmetrics,
    check_structure_text,
    compare,
    metadata_lines,
)


def test_promtool_accepts_text(fixture_bundle):
    assert_promtool_ok(fixture_bundle.read_bytes("text.prom"))


def test_text_roundtrip(fixture_bundle):
    compare(fixture_bundle.parse_text(), fixture_bundle.expected, "text")


def test_openmetrics_roundtrip(fixture_bundle):
    compare(fixture_bundle.parse_openmetrics(), fixture_bundle.expected, "om")


def test_openmetrics_created_roundtrip(fixture_bundle):
    expected = fixture_bundle.expected
    compare(
        fixture_bundle.parse_openmetrics(created=True),
        expected,
        "om",
        created=True,
        created_window=expected.created_window,
    )


def test_created_only_with_emit_created(fixture_bundle):
    created_families = {
        f.name for f in fixture_bundle.expected.families if any(s.created for s in f.samples)
    }
    assert {"http_requests", "request_duration_seconds", "rpc_latency_seconds", "collected_events"} <= created_families
    plain = [s.name for f in fixture_bundle.parse_openmetrics() for s in f.samples]
    assert not [n for n in plain if n.endswith("_created")], "_created written without emitCreated"
    with_created = [s.name for f in fixture_bundle.parse_openmetrics(created=True) for s in f.samples]
    for family in created_families:
        assert family + "_created" in with_created, f"{family}_created missing with emitCreated"
    # Gauges, infos and state sets never get one; text never does.
    assert "queue_depth_created" not in with_created and "build_created" not in with_created
    assert fixture_bundle.read_bytes("text_created.prom") == fixture_bundle.read_bytes("text.prom")
    assert "_created" not in "".join(
        line.split("{")[0].split(" ")[0] for line in fixture_bundle.text.split("\n") if not line.startswith("#")
    )


@pytest.mark.parametrize(
    "family,om_type,text_name,text_type",
    [
        ("http_requests", "counter", "http_requests", "counter"),
        ("queue_depth", "gauge", "queue_depth", "gauge"),
        ("request_duration_seconds", "histogram", "request_duration_seconds", "histogram"),
        ("rpc_latency_seconds", "summary", "rpc_latency_seconds", "summary"),
        ("build", "info", "build_info", "gauge"),
        ("service_mode", "stateset", "service_mode", "gauge"),
        ("collected_host", "info", "collected_host_info", "gauge"),
        ("collected_power", "stateset", "collected_power", "gauge"),
        ("collected_mystery", "unknown", "collected_mystery", "unknown"),
    ],
)
def test_types_per_format(fixture_bundle, family, om_type, text_name, text_type):
    om = {f.name: f.type for f in fixture_bundle.parse_openmetrics()}
    text = {f.name: f.type for f in fixture_bundle.parse_text()}
    assert om.get(family) == om_type
    assert text.get(text_name) == text_type


HELP_FAMILIES = [
    "http_requests",
    "help_quotes",
    "help_backslashes",
    "help_newlines",
    "help_unicode",
    "help_trailing_backslash",
    "help_mixed",
]


@pytest.mark.parametrize("family", HELP_FAMILIES)
def test_help_roundtrip(fixture_bundle, family):
    want = {f.name: f.help for f in fixture_bundle.expected.families}[family]
    assert any(c in want for c in "\"\\\n🚀ü"), "fixture help should be awkward"
    text = {f.name: f.documentation for f in fixture_bundle.parse_text()}
    om = {f.name: f.documentation for f in fixture_bundle.parse_openmetrics()}
    assert text[family] == want
    assert om[family] == want


def test_units_only_in_openmetrics(fixture_bundle):
    assert not [l for l in metadata_lines(fixture_bundle.text) if l.startswith("# UNIT")]
    om_units = {f.name: f.unit for f in fixture_bundle.parse_openmetrics()}
    want = {f.name: f.unit for f in fixture_bundle.expected.families}
    assert {k: v for k, v in om_units.items() if v} == {k: v for k, v in want.items() if v}
    for name, unit in want.items():
        if unit:
            assert f"# UNIT {name} {unit}" in metadata_lines(fixture_bundle.openmetrics)


def test_exemplars_only_in_openmetrics(fixture_bundle):
    om = fixture_bundle.parse_openmetrics()
    with_exemplar = {(s.name, tuple(sorted(s.labels.items()))) for f in om for s in f.samples if s.exemplar}
    assert len(with_exemplar) >= 4
    for f in fixture_bundle.parse_text():
        for s in f.samples:
            assert s.exemplar is None and s.timestamp is None, f"text sample carries extra fields: {s}"


def test_histogram_exemplars_lie_in_their_bucket(fixture_bundle):
    checked = 0
    for f in fixture_bundle.parse_openmetrics():
        if f.type != "histogram":
            continue
        previous = {}
        for s in f.samples:
            if not s.name.endswith("_bucket"):
                continue
            series = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            le = float(s.labels["le"])
            low = previous.get(series, -math.inf)
            if s.exemplar:
                assert low < s.exemplar.value <= le, f"{s}: exemplar outside ({low}, {le}]"
                checked += 1
            previous[series] = le
    assert checked >= 2


def test_structure(fixture_bundle):
    check_structure_text(fixture_bundle.text)
    check_structure_openmetrics(fixture_bundle.openmetrics)
    check_structure_openmetrics(fixture_bundle.openmetrics_created)
    assert fixture_bundle.openmetrics.split("\n")[-2:] == ["# EOF", ""]


def test_render_is_deterministic(fixture_bundle):
    assert fixture_bundle.read_bytes("text.prom") == fixture_bundle.read_bytes("text.2.prom")
    assert fixture_bundle.read_bytes("openmetrics.txt") == fixture_bundle.read_bytes("openmetrics.2.txt")


def test_canonical_le_and_quantile(fixture_bundle):
    text = fixture_bundle.parse_text()
    om = fixture_bundle.parse_openmetrics()
    check_canonical_numbers(text, "text")
    check_canonical_numbers(om, "om")
    les = {s.labels["le"] for f in om for s in f.samples if "le" in s.labels}
    assert {"1.0", "100000.0", "1e+06", "1e+16", "0.001", "1e-10", "-10.0", "0.0", "+Inf"} <= les


def test_documented_order(fixture_bundle):
    expected = fixture_bundle.expected
    check_order(fixture_bundle.parse_openmetrics(), expected, "om")
    check_order(fixture_bundle.parse_text(), expected, "text")


def test_families_without_series_are_not_written(fixture_bundle):
    absent = fixture_bundle.expected.absent
    assert set(absent) == {"idle_events", "collected_silent"}
    for name in absent:
        assert not re.search(rf"^(# [A-Z]+ )?{name}(_total)?[ {{]", fixture_bundle.text, re.M)
        assert not re.search(rf"^(# [A-Z]+ )?{name}(_total)?[ {{]", fixture_bundle.openmetrics, re.M)


def test_content_types(fixture_bundle):
    types = fixture_bundle.expected.raw["content_types"]
    assert types == {"text": TEXT_CONTENT_TYPE, "openmetrics": OPENMETRICS_CONTENT_TYPE}
