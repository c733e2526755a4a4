"""The wall clock stepped back while the exporter runs (an NTP step, a virtual machine's clock set right after a
resume): the real binary under libfaketime, its CLOCK_REALTIME moved through a timestamp file, CLOCK_MONOTONIC left
alone (what an NTP step does). A clock that ran a day ahead and is set right must not blank the windows for a day,
leave the last event's time a day ahead, or stall remote write for the size of the step."""

import glob
import json
import time
from email.utils import parsedate_to_datetime

import pytest

from conftest import ROOT, Exporter, WriteReceiver, sample, scrape, wait_for

MODEL = f"""
models:
  - name: fraud
    task: binary_classification
    versions: [v1]
    classes: [legit, fraud]
    positive_class: fraud
    features:
      - {{name: amount, type: numeric}}
      - {{name: account_age_days, type: numeric}}
      - {{name: country, type: categorical, values: [US, DE, FR, GB, IN]}}
      - {{name: channel, type: categorical, values: [web, app, pos]}}
    reference: {ROOT}/examples/demo/fraud-reference.json
    window: {{duration: 1h, slices: 12}}
    collectors: [service, drift]
"""


def libfaketime():
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    assert found, "libfaketime is missing: scripts/install-deps installs it (package faketime)"
    return found[0]


@pytest.fixture
def faked(binary, tmp_path):
    """Starts the exporter with its wall clock read from a file: (exporter, step(offset), receiver)."""
    receiver = WriteReceiver()
    clock = tmp_path / "clock"
    clock.write_text("+0\n")  # started at the real time (libfaketime moves timerfd deadlines too: a step at start
    # would move the runtime's first timers by it)
    config = tmp_path / "models.yaml"
    config.write_text(
        MODEL + f"remote_write:\n  url: http://127.0.0.1:{receiver.port}/api/v1/write\n  interval: 1s\n"
    )
    # Under `timeout`, as the probe found: exec'd straight from Python with the library preloaded, the binary lost
    # its arguments.
    wrapper = tmp_path / "faked-exporter"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"export LD_PRELOAD={libfaketime()} FAKETIME_TIMESTAMP_FILE={clock} FAKETIME_NO_CACHE=1"
        " DONT_FAKE_MONOTONIC=1\n"
        f'exec timeout -s KILL 600 {binary} "$@"\n'
    )
    wrapper.chmod(0o755)
    exporter = Exporter(wrapper, ["--config", str(config), "--log.level", "info"], tmp_path)

    def step(offset):
        """Sets the clock to `offset` from the real time (`+1d`, `+0`) and waits until the exporter's `Date` says so."""
        clock.write_text(offset + "\n")
        ahead = offset.startswith("+1d")

        def stepped():
            _, headers, _ = exporter.get("/-/ready")
            skew = parsedate_to_datetime(headers["Date"]).timestamp() - time.time()
            return abs(skew - (86_400 if ahead else 0)) < 120

        wait_for(stepped, timeout=10, what=f"the exporter's clock at {offset}")

    try:
        yield exporter, step, receiver
    finally:
        exporter.stop()
        receiver.close()


def post(exporter, count, start):
    rows = [
        {
            "id": f"e{start + i}",
            "version": "v1",
            "prediction": "fraud" if i % 3 == 0 else "legit",
            "features": {"amount": 10.0 + i, "account_age_days": 100.0 + i, "country": "US", "channel": "web"},
        }
        for i in range(count)
    ]
    body = "".join(json.dumps(row) + "\n" for row in rows).encode()
    status, _, answer = exporter.post(
        "/api/v1/models/fraud/predictions", body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert status == 202, answer


def window(samples):
    return sample(samples, "mlops_feature_window_observations", model="fraud", feature="amount")


def test_a_clock_a_day_ahead_set_right_keeps_windows_timestamps_and_remote_write(faked):
    exporter, step, receiver = faked
    step("+1d")
    post(exporter, 40, 0)
    _, samples = scrape(exporter)
    assert window(samples) == 40
    ahead_last = sample(samples, "mlops_model_last_event_timestamp_seconds", model="fraud", version="v1")
    assert ahead_last > time.time() + 86_000

    step("+0")
    stepped_at = time.monotonic()
    # Read before any event: the window still holds the 40 (it was blank until the clock caught up, a day later),
    # and the last event's time is not a day ahead (a staleness alert stayed silent for the day).
    _, samples = scrape(exporter)
    assert window(samples) == 40
    assert sample(samples, "mlops_model_last_event_timestamp_seconds", model="fraud", version="v1") < time.time() + 60
    post(exporter, 25, 40)
    _, samples = scrape(exporter)
    assert window(samples) == 65
    assert sample(samples, "mlops_drift_late_events_total", model="fraud") == 0
    last = sample(samples, "mlops_model_last_event_timestamp_seconds", model="fraud", version="v1")
    assert abs(last - time.time()) < 60
    # Remote write goes on at its 1 s interval (it waited for the size of the step, timed on the wall clock).
    wait_for(lambda: receiver.since(stepped_at) >= 3, timeout=8, what="remote writes after the step back")
