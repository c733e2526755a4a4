"""Attacks on the KServe logger receiver (POST /api/v1/cloudevents), on loopback, bounded in count and time: a
structured-mode event whose `data` is a dense array (each element a node of a JSON tape, ~26 bytes of memory per
byte of body, parsed on an event loop), and one with millions of attributes (each kept as two Strings while the
pending store counted a few bytes). Each asserts the bound that now holds: RSS under a stated ceiling, the refusal
counted in mlops_cloudevents_rejected_total{reason}."""

from conftest import scrape, sample, wait_for

from test_body_attacks import RSSWatch, rss_bytes

MiB = 1 << 20

CONFIG = """
models:
  - name: credit
    task: binary_classification
    versions: [default]
    classes: ["0", "1"]
    positive_class: "1"
    features: [{name: x0, type: numeric}, {name: x1, type: numeric}]
    collectors: [service]
    capture: {protocol: kserve_v1, inference_service: credit-isvc}
"""

HEAD = (b'{"specversion":"1.0","id":"a","type":"org.kubeflow.serving.inference.request","source":"x",'
        b'"inferenceservicename":"credit-isvc",')
STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def start(start_exporter, tmp_path):
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG)
    return start_exporter("--config", str(config))


def test_a_structured_event_with_a_dense_data_array_is_not_a_tape_of_its_elements(start_exporter, tmp_path):
    exporter = start(start_exporter, tmp_path)
    before = rss_bytes(exporter)
    n = 15 * MiB // 2
    body = HEAD + b'"data":[' + b"0," * (n - 1) + b"0]}"
    watch = RSSWatch(exporter)
    status, _, answer = exporter.post("/api/v1/cloudevents", body, headers=STRUCTURED, timeout=60)
    peak = watch.close()
    assert status == 200 and b"waiting" in answer, (status, answer)
    # The body as received, its data copied into the pending store, and room for the allocator: before, the tape
    # of 7.8 million elements took the peak 380 MiB above the start.
    assert peak - before < 120 * MiB, f"peak RSS grew by {(peak - before) / MiB:.0f} MiB"
    _, samples = scrape(exporter)
    assert sample(samples, "mlops_cloudevents_pending") == 1


def test_a_structured_event_with_millions_of_attributes_is_refused(start_exporter, tmp_path):
    exporter = start(start_exporter, tmp_path)
    before = rss_bytes(exporter)
    members = b",".join(b'"a%d":1' % (i % 10) for i in range(15 * MiB // 8))
    watch = RSSWatch(exporter)
    status, _, answer = exporter.post(
        "/api/v1/cloudevents", HEAD + b'"data":{},' + members + b"}", headers=STRUCTURED, timeout=60)
    peak = watch.close()
    assert status == 400 and b"attributes" in answer, (status, answer)
    assert peak - before < 120 * MiB, f"peak RSS grew by {(peak - before) / MiB:.0f} MiB"
    _, samples = scrape(exporter)
    assert sample(samples, "mlops_cloudevents_rejected_total", reason="invalid_event") == 1
    assert sample(samples, "mlops_cloudevents_pending") == 0
    wait_for(lambda: rss_bytes(exporter) - before < 60 * MiB, timeout=5, what="the refused body to be freed")


def test_a_binary_mode_pair_of_dense_arrays_is_refused_while_it_is_read(start_exporter, tmp_path):
    """A request half and a response half of 15 MiB each, `{"instances": [0,0,…]}`: the capture decoder built a full
    tape of each (7.8 million values, ~48 bytes apiece) before its row bound refused the pair (peak RSS +770 MiB,
    measured by the resource audit); the tape now stops at what 10,000 rows of the schema can hold."""
    exporter = start(start_exporter, tmp_path)
    before = rss_bytes(exporter)
    n = 15 * MiB // 2
    dense = b"[" + b"0," * (n - 1) + b"0]"
    common = {"ce-specversion": "1.0", "ce-id": "dense", "ce-source": "x", "ce-inferenceservicename": "credit-isvc",
              "Content-Type": "application/json"}
    watch = RSSWatch(exporter)
    status, _, answer = exporter.post(
        "/api/v1/cloudevents", b'{"instances": ' + dense + b"}",
        headers={**common, "ce-type": "org.kubeflow.serving.inference.request"}, timeout=60)
    assert status == 200, (status, answer)
    status, _, answer = exporter.post(
        "/api/v1/cloudevents", b'{"predictions": ' + dense + b"}",
        headers={**common, "ce-type": "org.kubeflow.serving.inference.response"}, timeout=60)
    peak = watch.close()
    assert status == 200 and b"too_many_rows" in answer, (status, answer)
    # Both halves held as received (30 MiB), one bounded tape (~40 MB), and room for the allocator.
    assert peak - before < 200 * MiB, f"peak RSS grew by {(peak - before) / MiB:.0f} MiB"
    _, samples = scrape(exporter)
    assert sample(samples, "mlops_cloudevents_capture_failures_total", model="credit", reason="too_many_rows") == 1
    assert sample(samples, "mlops_ingest_events_total", model="credit", kind="predictions") in (None, 0)
