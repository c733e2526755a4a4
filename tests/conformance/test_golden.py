"""Byte-level checks where the formats leave no freedom: metadata lines, suffixes, ``le`` and
``quantile`` spellings, escaping, ``# EOF``. Sample values are free-form numbers in both formats,
so they are matched with ``\\S+`` and checked numerically elsewhere."""

from __future__ import annotations

import re

import pytest

TEXT_LINES = [
    "# HELP http_requests_total Requests \"served\"\\nby code\\\\",
    "# TYPE http_requests_total counter",
    "# TYPE jobs_processed_total counter",
    "# TYPE processed_bytes_total counter",
    "# TYPE build_info gauge",
    "# TYPE model_info gauge",
    "# TYPE service_mode gauge",
    "# TYPE collected_mystery untyped",
    "# TYPE request_duration_seconds histogram",
    "# TYPE rpc_latency_seconds summary",
    "# HELP help_quotes Quote \"this\" and 'that'.",
    "# HELP help_backslashes C:\\\\path\\\\to\\\\file and \\\\n is not a newline.",
    "# HELP help_newlines line one\\nline two\\n\\nline four",
    "# HELP help_unicode ünï©ødé 🚀 — ✓ 中文",
    "# HELP help_trailing_backslash ends with a backslash\\\\",
]

OM_LINES = [
    "# TYPE http_requests counter",
    "# HELP http_requests Requests \\\"served\\\"\\nby code\\\\",
    "# TYPE jobs_processed counter",
    "# TYPE processed_bytes counter",
    "# UNIT processed_bytes bytes",
    "# TYPE build info",
    "# TYPE model info",
    "# TYPE service_mode stateset",
    "# TYPE feature_flags stateset",
    "# TYPE collected_mystery unknown",
    "# TYPE request_duration_seconds histogram",
    "# UNIT request_duration_seconds seconds",
    "# TYPE rpc_latency_seconds summary",
    "# UNIT temperature_celsius celsius",
    "# HELP help_quotes Quote \\\"this\\\" and 'that'.",
    "# HELP help_backslashes C:\\\\path\\\\to\\\\file and \\\\n is not a newline.",
]


@pytest.mark.parametrize("line", TEXT_LINES)
def test_text_metadata_line(fixture_bundle, line):
    assert line in fixture_bundle.text.split("\n")


@pytest.mark.parametrize("line", OM_LINES)
def test_openmetrics_metadata_line(fixture_bundle, line):
    assert line in fixture_bundle.openmetrics.split("\n")


def test_counter_type_line_names_differ(fixture_bundle):
    assert "# TYPE http_requests counter" not in fixture_bundle.text.split("\n")
    assert "# TYPE http_requests_total counter" not in fixture_bundle.openmetrics.split("\n")


def test_metadata_order_type_unit_help(fixture_bundle):
    lines = fixture_bundle.openmetrics.split("\n")
    i = lines.index("# TYPE request_duration_seconds histogram")
    assert lines[i + 1 : i + 3] == [
        "# UNIT request_duration_seconds seconds",
        "# HELP request_duration_seconds Request latency.",
    ]
    t = fixture_bundle.text.split("\n")
    j = t.index("# TYPE request_duration_seconds histogram")
    assert t[j - 1] == "# HELP request_duration_seconds Request latency."


LE_CASES = [
    # family, labels prefix, text le, OpenMetrics le
    ("payload_size_bytes", "", "0.001", "0.001"),
    ("payload_size_bytes", "", "1", "1.0"),
    ("payload_size_bytes", "", "100000", "100000.0"),
    ("payload_size_bytes", "", "1e+06", "1e+06"),
    ("payload_size_bytes", "", "1e+16", "1e+16"),
    ("payload_size_bytes", "", "+Inf", "+Inf"),
    ("request_duration_seconds", 'route="/api",', "0.005", "0.005"),
    ("request_duration_seconds", 'route="/api",', "2.5", "2.5"),
    ("request_duration_seconds", 'route="/api",', "10", "10.0"),
    ("tiny_duration_seconds", "", "1e-10", "1e-10"),
    ("tiny_duration_seconds", "", "1e-09", "1e-09"),
    ("tiny_duration_seconds", "", "1e-05", "1e-05"),
    ("tiny_duration_seconds", "", "0.0001", "0.0001"),
    ("temperature_delta_celsius", 'probe="p1",', "-10", "-10.0"),
    ("temperature_delta_celsius", 'probe="p1",', "0", "0.0"),
    ("batch_fill_ratio", "", "0.75", "0.75"),
    ("batch_fill_ratio", "", "1.25", "1.25"),
    ("work_queue_length", 'queue="q1",', "128", "128.0"),
    ("io_latency_seconds", "", "0.001", "0.001"),
    ("io_latency_seconds", "", "1000", "1000.0"),
    ("collected_size_bytes", 'pool="a",', "100", "100.0"),
    ("collected_offset_seconds", "", "-1", "-1.0"),
]


@pytest.mark.parametrize("family,labels,text_le,om_le", LE_CASES)
def test_le_spelling(fixture_bundle, family, labels, text_le, om_le):
    text_re = re.compile(rf'^{family}_bucket\{{{re.escape(labels)}le="{re.escape(text_le)}"\}} \d+$', re.M)
    om_re = re.compile(rf'^{family}_bucket\{{{re.escape(labels)}le="{re.escape(om_le)}"\}} \d+( # .*)?$', re.M)
    assert text_re.search(fixture_bundle.text), f'text lacks {family}_bucket{{...le="{text_le}"}}'
    assert om_re.search(fixture_bundle.openmetrics), f'OpenMetrics lacks {family}_bucket{{...le="{om_le}"}}'


@pytest.mark.parametrize("quantile", ["0.5", "0.9", "0.99"])
def test_quantile_spelling(fixture_bundle, quantile):
    for doc in (fixture_bundle.text, fixture_bundle.openmetrics):
        assert re.search(rf'^rpc_latency_seconds\{{service="auth",quantile="{re.escape(quantile)}"\}} \S+$', doc, re.M)


@pytest.mark.parametrize("quantile", ["0.001", "0.25", "0.75", "0.999"])
def test_custom_quantile_spelling(fixture_bundle, quantile):
    for doc in (fixture_bundle.text, fixture_bundle.openmetrics):
        assert re.search(rf'^queue_age_seconds\{{quantile="{re.escape(quantile)}"\}} \S+$', doc, re.M)


def test_negative_bounds_drop_sum_in_openmetrics_only(fixture_bundle):
    assert re.search(r'^temperature_delta_celsius_sum\{probe="p1"\} \S+$', fixture_bundle.text, re.M)
    assert re.search(r'^temperature_delta_celsius_count\{probe="p1"\} 8$', fixture_bundle.text, re.M)
    assert "temperature_delta_celsius_sum" not in fixture_bundle.openmetrics
    assert "temperature_delta_celsius_count" not in fixture_bundle.openmetrics


def test_label_value_escaping(fixture_bundle):
    # Label names are written sorted (documented); values escape \ " and LF only.
    prefix = 'label_escapes{alpha="back\\\\slash",mid="new\\nline",zeta="quote\\"inside"} '
    for doc in (fixture_bundle.text, fixture_bundle.openmetrics):
        assert any(line.startswith(prefix) for line in doc.split("\n")), prefix
    raw_controls = 'label_escapes{alpha="nul\x00byte",mid="}{,=# ",zeta="cr\rhere"} '
    for doc in (fixture_bundle.text, fixture_bundle.openmetrics):
        assert any(line.startswith(raw_controls) for line in doc.split("\n")), "CR/NUL must stay raw"


def test_stateset_and_info_lines(fixture_bundle):
    for doc in (fixture_bundle.text, fixture_bundle.openmetrics):
        lines = doc.split("\n")
        assert 'service_mode{service_mode="running"} 1' in lines
        assert 'service_mode{service_mode="starting"} 0' in lines
        assert 'feature_flags{region="us",feature_flags="a\\"quote"} 1' in lines
        assert (
            'build_info{empty="",revision="abc\\"def\\\\",unicode="ünï©ødé 🚀",version="1.2.3",weird="line\\nbreak"} 1'
            in lines
        )


def test_exemplar_syntax(fixture_bundle):
    om = fixture_bundle.openmetrics
    assert re.search(
        r'^http_requests_total\{code="201",method="PUT"\} \S+ # \{span="a\\\\b\\nc",trace_id="ünï🚀"\} 2\.5$', om, re.M
    ), "counter exemplar: labels sorted, escaped, no timestamp"
    assert re.search(r'^http_requests_total\{code="297",method="EMPTY_EXEMPLAR"\} 4 # \{\} 4 1700000000$', om, re.M)
    assert re.search(
        r'^request_duration_seconds_bucket\{route="/api",le="0\.5"\} 5 # \{trace_id="t-0\.3"\} 0\.3 1700000000\.5$', om, re.M
    )
    assert re.search(r'^request_duration_seconds_bucket\{route="/api",le="\+Inf"\} 9 # \{trace_id="t-inf"\} 11$', om, re.M)
    assert " # {" not in fixture_bundle.text


def test_eof(fixture_bundle):
    assert fixture_bundle.openmetrics.endswith("\n# EOF\n")
    assert fixture_bundle.openmetrics_created.endswith("\n# EOF\n")
    assert "# EOF" not in fixture_bundle.text
    assert fixture_bundle.text.endswith("\n")
