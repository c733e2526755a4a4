"""Negative controls: the checks used by the other tests must catch corrupted expositions, and the
float-formatting oracle must match the formats' own examples."""

from __future__ import annotations

import math
import shutil

import pytest

from .conformance_lib import (
    Bundle,
    Mismatch,
    assert_promtool_ok,
    check_no_duplicate_series,
    full_check,
    check_canonical_numbers,
    check_order,
    check_structure_openmetrics,
    compare,
    go_g,
    om_canonical,
    parse_openmetrics,
    parse_text,
)


@pytest.mark.parametrize(
    "value,text",
    [(1, "1"), (1e-5, "1e-05"), (1e5, "100000"), (1e6, "1e+06"), (1e16, "1e+16"), (0.0001, "0.0001"),
     (123456789, "1.23456789e+08"), (-2.5, "-2.5"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (5e-324, "5e-324")],
)
def test_go_g_matches_go(value, text):
    # Go strconv.FormatFloat(v, 'g', -1, 64), per the reference table (section 5).
    assert go_g(value) == text


def test_om_canonical_matches_spec_examples():
    # OpenMetrics 1.0 "Canonical Numbers" examples.
    first = [0.0, 0.001, 0.002, 0.01, 0.1, 0.9, 0.95, 0.99, 0.999, 1.0, 1.7, 10.0]
    assert [om_canonical(x) for x in first] == "0.0 0.001 0.002 0.01 0.1 0.9 0.95 0.99 0.999 1.0 1.7 10.0".split()
    second = [1e-10, 1e-9, 1e-5, 1e-4, 0.1, 1.0, 1e5, 1e6, 1e10]
    assert [om_canonical(x) for x in second] == "1e-10 1e-09 1e-05 0.0001 0.1 1.0 100000.0 1e+06 1e+10".split()


def test_compare_catches_changed_value(fixture_bundle):
    doc = fixture_bundle.openmetrics.replace("\nqueue_depth 11.5\n", "\nqueue_depth 11.25\n")
    assert doc != fixture_bundle.openmetrics
    with pytest.raises(Mismatch, match="queue_depth"):
        compare(list(parse_openmetrics(doc)), fixture_bundle.expected, "om")


def test_compare_catches_bad_escape(fixture_bundle):
    doc = fixture_bundle.text.replace('quote\\"inside', 'quote\\\\"inside', 1)
    assert doc != fixture_bundle.text
    with pytest.raises((Mismatch, ValueError)):
        compare(list(parse_text(doc)), fixture_bundle.expected, "text")


def test_compare_catches_missing_series(fixture_bundle):
    lines = [l for l in fixture_bundle.text.split("\n") if not l.startswith('temperature_celsius{sensor="a"}')]
    with pytest.raises(Mismatch, match="missing sample"):
        compare(list(parse_text("\n".join(lines))), fixture_bundle.expected, "text")


def test_compare_catches_duplicate_series(fixture_bundle):
    doc = fixture_bundle.text.replace("\nqueue_depth 11.5\n", "\nqueue_depth 11.5\nqueue_depth 11.5\n")
    with pytest.raises(Mismatch, match="duplicate"):
        compare(list(parse_text(doc)), fixture_bundle.expected, "text")


def test_compare_catches_wrong_help(fixture_bundle):
    doc = fixture_bundle.openmetrics.replace("# HELP queue_depth Items waiting.", "# HELP queue_depth Items  waiting.")
    with pytest.raises(Mismatch, match="help"):
        compare(list(parse_openmetrics(doc)), fixture_bundle.expected, "om")


def test_compare_catches_exemplar_in_text(fixture_bundle):
    doc = fixture_bundle.text.replace("\nqueue_depth 11.5\n", '\nqueue_depth 11.5 # {a="b"} 1\n')
    with pytest.raises(Mismatch, match="timestamp"):
        compare(list(parse_text(doc)), fixture_bundle.expected, "text")


def test_canonical_check_catches_go_spelling_in_openmetrics(fixture_bundle):
    doc = fixture_bundle.openmetrics.replace('le="1.0"', 'le="1"')
    assert doc != fixture_bundle.openmetrics
    with pytest.raises(AssertionError, match="non-canonical"):
        check_canonical_numbers(list(parse_openmetrics(doc)), "om")


def test_structure_check_catches_missing_eof(fixture_bundle):
    with pytest.raises(AssertionError, match="EOF"):
        check_structure_openmetrics(fixture_bundle.openmetrics[: -len("# EOF\n")])


def test_order_check_catches_unsorted_families(fixture_bundle):
    families = list(parse_openmetrics(fixture_bundle.openmetrics))
    families[0], families[1] = families[1], families[0]
    with pytest.raises(AssertionError, match="sorted"):
        check_order(families, fixture_bundle.expected, "om")


def test_order_check_catches_collected_series_out_of_emission_order(fixture_bundle):
    # The collector emits kitchen, attic, void, ...: a render that sorted them by label value is wrong.
    kitchen = 'collected_temperature_celsius{room="kitchen"} 21.25\n'
    attic = 'collected_temperature_celsius{room="attic"} -3\n'
    assert kitchen + attic in fixture_bundle.openmetrics
    doc = fixture_bundle.openmetrics.replace(kitchen + attic, attic + kitchen)
    check_order(list(parse_openmetrics(fixture_bundle.openmetrics)), fixture_bundle.expected, "om")
    with pytest.raises(AssertionError, match="emission order"):
        check_order(list(parse_openmetrics(doc)), fixture_bundle.expected, "om")


def test_promtool_check_catches_parse_error(fixture_bundle):
    doc = fixture_bundle.text + "# TYPE queue_depth gauge\n"
    with pytest.raises(AssertionError, match="exited 1"):
        assert_promtool_ok(doc.encode())


def test_duplicate_check_sees_what_the_openmetrics_parser_drops(fixture_bundle):
    doc = fixture_bundle.openmetrics.replace("\nqueue_depth 11.5\n", "\nqueue_depth 11.5\nqueue_depth 11.5\n")
    # prometheus_client silently keeps one of two identical samples...
    compare(list(parse_openmetrics(doc)), fixture_bundle.expected, "om")
    # ...so duplicates are detected on the raw lines.
    with pytest.raises(AssertionError, match="written twice"):
        check_no_duplicate_series(doc)
    check_no_duplicate_series(fixture_bundle.openmetrics)


def test_full_check_catches_nondeterminism(fixture_bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(fixture_bundle.dir, copy)
    full_check(Bundle(copy))
    (copy / "openmetrics.2.txt").write_text(fixture_bundle.openmetrics.replace("queue_depth 11.5", "queue_depth 11.50"))
    with pytest.raises(AssertionError, match="not deterministic"):
        full_check(Bundle(copy))
