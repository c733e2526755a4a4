"""Single-purpose scenarios probing format rules. Tests commented "Regression" reproduce bugs found
at commit 9c8f872 that have been fixed since."""

from __future__ import annotations

import subprocess

import pytest

from .conformance_lib import (
    assert_promtool_ok,
    check_no_duplicate_series,
    compare,
    parse_openmetrics,
    promtool,
)

SCENARIOS = {
    "unicode-normalization",
    "exemplar-limit",
    "histogram-negative-sum",
    "histogram-nan-sum",
    "summary-negative",
    "collector-duplicate-states",
    "collector-duplicate-quantiles",
    "underscore-names",
    "empty-help",
    "escaping-golden",
    "self-metrics",
}

_cache = {}


@pytest.fixture(scope="session")
def scenario(runner):
    def get(name):
        if name not in _cache:
            _cache[name] = runner.run("scenario", name, name=name)
        return _cache[name]

    return get


def test_every_scenario_is_tested(fixture_bin):
    listed = subprocess.run([str(fixture_bin), "scenarios"], capture_output=True, text=True, check=True)
    assert set(listed.stdout.split()) == SCENARIOS


# ---------------------------------------------------------------------------------------------
# Bug: label values are keyed by Swift String equality (Unicode canonical equivalence)



@pytest.mark.parametrize("fmt", ["text", "om"])
def test_canonically_equivalent_label_values_are_distinct_series(scenario, fmt):
    b = scenario("unicode-normalization")
    families = b.parse_text() if fmt == "text" else b.parse_openmetrics()
    compare(families, b.expected, fmt)


def test_canonically_equivalent_states_are_distinct(scenario):
    assert scenario("unicode-normalization").expected.raw["states_accepted"] is True


def test_unicode_normalization_scenario_is_valid_exposition(scenario):
    # Whatever the library merges or skips, what it writes must still be valid.
    b = scenario("unicode-normalization")
    assert_promtool_ok(b.read_bytes("text.prom"))
    values = [s.labels.get("v") for f in b.parse_openmetrics() for s in f.samples if "v" in s.labels]
    assert values and all(v in ("\u00e9", "e\u0301") for v in values)


# ---------------------------------------------------------------------------------------------
# Exemplar limit: 128 code points


def test_exemplar_limit_ascii_boundary(scenario):
    cases = scenario("exemplar-limit").expected.raw["cases"]
    assert cases["ascii_128"] == {"accepted": True, "code_points": 128}
    assert cases["ascii_129"] == {"accepted": False, "code_points": 129}


# Regression (was a bug at 9c8f872, fixed since): Exemplar.init counted label characters with
# String.count (grapheme clusters); OpenMetrics 1.0 limits names+values to 128 UTF-8 code points, so
# 100 x "e\u0301" (201 code points) was accepted and the exposition rejected by OpenMetrics parsers.


@pytest.mark.parametrize("case", ["combining_201", "zwj_emoji_141", "crlf_129"])
def test_exemplar_limit_counts_code_points(scenario, case):
    result = scenario("exemplar-limit").expected.raw["cases"][case]
    assert result["code_points"] > 128
    assert result["accepted"] is False, f"exemplar of {result['code_points']} code points accepted"


def test_exemplar_limit_output_parses(scenario):
    list(parse_openmetrics(scenario("exemplar-limit").openmetrics))


# ---------------------------------------------------------------------------------------------
# Bug: negative or NaN _sum and negative quantiles in OpenMetrics



@pytest.mark.parametrize("name", ["histogram-negative-sum", "histogram-nan-sum", "summary-negative"])
def test_sum_scenarios_text_roundtrip(scenario, name):
    # Text 0.0.4 has no such rule: these values must round-trip there.
    b = scenario(name)
    assert_promtool_ok(b.read_bytes("text.prom"))
    compare(b.parse_text(), b.expected, "text")


@pytest.mark.parametrize(
    "name",
    [
        # Regression (bugs at 9c8f872): a negative or NaN _sum, or a negative quantile, was written in
        # OpenMetrics; such samples are now left out of the OpenMetrics output.
        "histogram-negative-sum",
        "histogram-nan-sum",
        "summary-negative",
    ],
)
def test_sum_scenarios_openmetrics_valid(scenario, name):
    b = scenario(name)
    for doc in (b.openmetrics, b.openmetrics_created):
        families = list(parse_openmetrics(doc))
        for f in families:
            for s in f.samples:
                if s.name.endswith("_sum") or (f.type == "summary" and s.name == f.name):
                    assert s.value >= 0, f"{s.name}{s.labels} = {s.value}"


# ---------------------------------------------------------------------------------------------
# Collectors must not emit the same series twice through state sets and summaries

# Regression (was a bug at 9c8f872, fixed since): CollectorSink.stateSet/summary did not reject
# repeated state names or quantiles, so a collector wrote the same series twice (the Collector
# contract says such a collector is skipped); OpenMetrics requires unique LabelSets.


@pytest.mark.parametrize("name", ["collector-duplicate-states", "collector-duplicate-quantiles"])
@pytest.mark.parametrize("fmt", ["text", "om"])
def test_collector_duplicates_are_not_written(scenario, name, fmt):
    # On the raw lines: prometheus_client's OpenMetrics parser silently drops exact duplicates.
    b = scenario(name)
    check_no_duplicate_series(b.text if fmt == "text" else b.openmetrics)


# ---------------------------------------------------------------------------------------------
# OpenMetrics reserves names beginning with "_"

# Regression (was a deviation at 9c8f872, fixed since): OpenMetrics 1.0 reserves MetricFamily and
# label names beginning with an underscore (MUST NOT be used); only a leading "__" was rejected.


@pytest.mark.parametrize("kind", ["metric_name", "label_name", "exemplar_label_name"])
def test_leading_underscore_names_are_rejected(scenario, kind):
    assert scenario("underscore-names").expected.raw["accepted"][kind] is False


# ---------------------------------------------------------------------------------------------
# Documented behaviour


def test_empty_help_writes_no_help_line(scenario):
    b = scenario("empty-help")
    for doc in (b.text, b.openmetrics):
        assert not [l for l in doc.split("\n") if l.startswith("# HELP")]
    compare(b.parse_text(), b.expected, "text")
    compare(b.parse_openmetrics(), b.expected, "om")
    proc = promtool(b.read_bytes("text.prom"))
    assert proc.returncode == 3, proc
    problems = proc.stderr.decode().strip().split("\n")
    assert sorted(problems) == ["no_help_events_total no help text", "no_help_level no help text"], problems


def test_escaping_golden(scenario):
    b = scenario("escaping-golden")
    om = b.openmetrics.split("\n")
    text = b.text.split("\n")
    # Exemplar label values escape \ " and LF like any label value; exemplar labels are sorted.
    assert 'exemplar_escaping_total 1 # {b="}{ # ",q="a\\"b\\\\c\\nd"} 1' in om
    assert "exemplar_escaping_total 1" in text
    # HELP keeps surrounding whitespace byte for byte (only \ and LF, plus " in OpenMetrics, escape).
    assert "# HELP help_whitespace   leading and trailing \t " in text
    assert "# HELP help_whitespace   leading and trailing \t " in om
    assert '# HELP help_only_quote "' in text
    assert '# HELP help_only_quote \\"' in om
    assert_promtool_ok(b.read_bytes("text.prom"))


@pytest.mark.parametrize("fmt", ["text", "om"])
def test_self_metrics(scenario, fmt):
    b = scenario("self-metrics")
    if fmt == "text":
        assert_promtool_ok(b.read_bytes("text.prom"))
        compare(b.parse_text(), b.expected, "text")
    else:
        compare(b.parse_openmetrics(), b.expected, "om")
