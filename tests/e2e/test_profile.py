"""`mlops-exporter profile`: the real binary on generated CSV and NDJSON, checked against numpy and pandas
computed here, and every error case (exit 1, one clear line)."""

import hashlib
import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import scrape

CONFIG = """\
models:
  - name: fraud
    task: binary_classification
    versions: [v1]
    classes: [legit, fraud]
    positive_class: fraud
    reference: ref.json
    features:
      - {name: amount, type: numeric}
      - {name: age, type: numeric}
      - {name: country, type: categorical}
      - {name: channel, type: categorical, values: [web, app, pos]}
    sensitive_attributes:
      - {name: gender, groups: [f, m]}
"""
FEATURES = ["amount", "age", "country", "channel"]
BINS, FINE_BINS, MAX_CATEGORIES = 10, 1000, 4


def run(binary, *args):
    return subprocess.run([str(binary), "profile", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def frame():
    """2000 rows: a lognormal amount, integer ages (many ties), 7 countries (one with a comma and a quote),
    channels with an unknown value, missing values everywhere, predictions and scores."""
    rng = np.random.default_rng(7)
    n = 2000
    df = pd.DataFrame({
        "id": [f"r{i}" for i in range(n)],
        "amount": rng.lognormal(3, 1, n),
        "age": rng.integers(18, 80, n).astype(float),
        "country": rng.choice(["US", "DE", "FR", "GB", "IN", 'Foo, "Bar"', "JP"], n, p=[.3, .2, .15, .15, .1, .05, .05]),
        "channel": rng.choice(["web", "app", "pos", "kiosk"], n),
        "gender": rng.choice(["f", "m"], n),
        "prediction": rng.choice(["legit", "fraud", "unknown"], n, p=[.8, .19, .01]),
        "score": rng.random(n),
    })
    for column, share in [("amount", .03), ("age", .01), ("country", .02), ("channel", .05), ("score", .1)]:
        df.loc[rng.random(n) < share, column] = None
    return df


def profile(binary, tmp_path, name, *extra):
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG)
    out = tmp_path / f"{name}.json"
    r = run(binary, "--config", str(config), "--model", "fraud", "--input", str(tmp_path / name), "--out", str(out),
            "--max-categories", str(MAX_CATEGORIES), *extra)
    assert r.returncode == 0, r.stderr
    return r, json.loads(out.read_text()), out


def expected_numeric(values):
    x = values.dropna().to_numpy(dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    edges = []
    for e in np.quantile(x, [i / BINS for i in range(1, BINS)]):
        if lo < e < hi and (not edges or e > edges[-1]):
            edges.append(float(e))
    # Profile bins are closed on the right, [min, e0], (e0, e1], ...: on -x they are numpy's left-closed bins.
    inner = np.histogram(-x, bins=-np.array([hi] + edges[::-1] + [lo]))[0][::-1]
    return dict(count=len(x), mean=np.mean(x), std=np.std(x), min=lo, max=hi, edges=edges,
                counts=[0, *map(int, inner), 0],
                fine=list(map(int, np.histogram(x, bins=FINE_BINS, range=(lo, hi))[0])))


def check_numeric(got, values):
    want = expected_numeric(values)
    assert got["missing"] == int(values.isna().sum())
    g = got["numeric"]
    assert g["count"] == want["count"] and g["min"] == want["min"] and g["max"] == want["max"]
    assert g["mean"] == pytest.approx(want["mean"], rel=1e-12)
    assert g["std"] == pytest.approx(want["std"], rel=1e-12)
    assert g["edges"] == want["edges"]
    assert g["counts"] == want["counts"]
    assert g["fine"] == want["fine"]


def check_categorical(got, values, known):
    assert got["missing"] == int(values.isna().sum())
    counts = values.dropna().value_counts()
    assert got["categorical"]["values"] == known
    assert got["categorical"]["counts"] == [int(counts.get(v, 0)) for v in known] + [
        int(counts[~counts.index.isin(known)].sum())]


def check_profile(p, df):
    assert p["format"] == "mlops-exporter.profile/v1" and p["model"] == "fraud" and p["rows"] == len(df)
    assert [f["name"] for f in p["features"]] == FEATURES
    check_numeric(p["features"][0], df["amount"])
    check_numeric(p["features"][1], df["age"])
    counts = df["country"].dropna().value_counts()
    learned = sorted(counts.index, key=lambda v: (-counts[v], v.encode()))[:MAX_CATEGORIES]
    check_categorical(p["features"][2], df["country"], learned)
    check_categorical(p["features"][3], df["channel"], ["web", "app", "pos"])
    check_categorical(p["prediction"], df["prediction"], ["legit", "fraud"])
    check_numeric(p["score"], df["score"])


def test_csv_profile_matches_numpy_and_pandas(binary, tmp_path, frame):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False, lineterminator="\r\n")
    r, p, out = profile(binary, tmp_path, "data.csv")
    check_profile(p, frame)
    assert p["input_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    line = r.stdout.strip()
    assert "\n" not in line and "2000 rows" in line and "4 features" in line
    assert p["input_sha256"] in line and hashlib.sha256(out.read_bytes()).hexdigest() in line


def ndjson_rows(frame, events):
    """Flat rows keep missing floats as NaN (what json.dumps writes); events write them as null."""
    for record in frame.to_dict("records"):
        if events:
            record = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in record.items()}
            features = {k: record.pop(k) for k in FEATURES}
            yield {"id": record["id"], "version": "v1", "features": features, "prediction": record["prediction"],
                   "score": record["score"], "attributes": {"gender": record["gender"]}}
        else:
            yield record


@pytest.mark.parametrize("events", [False, True], ids=["flat", "events"])
def test_ndjson_profile_equals_the_csv_one(binary, tmp_path, frame, events):
    path = tmp_path / "data.ndjson"
    path.write_text("".join(json.dumps(row) + "\n" for row in ndjson_rows(frame, events)))
    _, p, _ = profile(binary, tmp_path, "data.ndjson")
    check_profile(p, frame)
    assert p["input_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    frame.to_csv(tmp_path / "data.csv", index=False)
    _, from_csv, _ = profile(binary, tmp_path, "data.csv")
    assert {**p, "input_sha256": ""} == {**from_csv, "input_sha256": ""}


def test_bins_options_and_format_flag(binary, tmp_path, frame):
    frame.to_csv(tmp_path / "data.txt", index=False)
    _, p, _ = profile(binary, tmp_path, "data.txt", "--format", "csv", "--bins", "4", "--fine-bins", "16")
    amount = p["features"][0]["numeric"]
    assert len(amount["edges"]) == 3 and len(amount["counts"]) == 6 and len(amount["fine"]) == 16


OK_HEADER = "amount,age,country,channel\n"


@pytest.mark.parametrize("name,content,args,message", [
    ("data.csv", None, [], "{dir}/data.csv: cannot read: no such file"),
    ("data.csv", OK_HEADER + "1,2,US,web\n", ["--model", "eta"], '{dir}/models.yaml: no model "eta" (models: fraud)'),
    ("data.csv", "amount,country,channel\n1,US,web\n", [],
     '{dir}/data.csv:1: column "age" (feature of model fraud) is missing from the header'),
    ("data.csv", "amount,age,country,channel,zip,Age\n1,2,US,web,1,2\n", [],
     '{dir}/data.csv:1: columns "zip", "Age" are not features of model fraud (nor prediction, score, id, label, '
     'timestamp, version or a sensitive attribute); skip with --ignore-columns \'zip,Age\''),
    ("data.csv", OK_HEADER + "1,2,US,web\n1,2,\"a\nb\",web\n3,abc,US,web\n", [],
     '{dir}/data.csv:5:3: column "age": "abc" is not a number'),
    ("data.csv", OK_HEADER + "1,2,US,web\n1,\"a\nb\",US,web\n", [], '{dir}/data.csv:3:3: column "age": "a\\nb" is not a number'),
    ("data.csv", OK_HEADER + "1,2,US,web\n1,2,US\n", [], "{dir}/data.csv:3: 3 fields, the header has 4"),
    ("data.csv", "", [], "{dir}/data.csv: the input is empty (no header, no data rows)"),
    ("data.csv", OK_HEADER, [], "{dir}/data.csv: no data rows (only a header)"),
    ("data.ndjson", '{"amount": 1, "age": 2, "country": "US", "channel": "web"}\n{"amount": 1,\n', [],
     '{dir}/data.ndjson:2:14: after key "amount": the line ends inside an object'),
    ("data.ndjson", '{"amount": 1, "age": 2, "country": "US", "channel": "web",}\n', [],
     '{dir}/data.ndjson:1:58: after key "channel": a comma before "}}" (trailing commas are not JSON)'),
    ("data.ndjson", '{"amount": NaN, "age": 2, "country": "US", "channel": "web"} // row 1\n', [],
     '{dir}/data.ndjson:1:62: text after the JSON value'),
    ("data.ndjson", '\n{"amount": "x", "age": 2, "country": "US", "channel": "web"}\n', [],
     '{dir}/data.ndjson:2: column "amount": "x" is not a number'),
    ("data.ndjson", "\n", [], "{dir}/data.ndjson: the input is empty (no data rows)"),
])
def test_errors_exit_1_with_one_clear_line(binary, tmp_path, name, content, args, message):
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG)
    if content is not None:
        (tmp_path / name).write_text(content)
    model = [] if "--model" in args else ["--model", "fraud"]  # an option is given once (twice is refused)
    r = run(binary, "--config", str(config), *model, "--input", str(tmp_path / name),
            "--out", str(tmp_path / "ref.json"), *args)
    assert r.returncode == 1
    assert r.stderr.strip() == message.format(dir=tmp_path)
    assert not (tmp_path / "ref.json").exists()


def test_ignore_columns_skips_unknown_columns(binary, tmp_path):
    (tmp_path / "data.csv").write_text("amount,age,country,channel,zip\n1,2,US,web,9\n")
    r, p, _ = profile(binary, tmp_path, "data.csv", "--ignore-columns", "zip")
    assert p["rows"] == 1 and p["features"][2]["categorical"] == {"values": ["US"], "counts": [1, 0]}


def test_a_column_without_any_value_is_warned_about(binary, tmp_path):
    # All missing in the input: drift can never score the column. Before, profile and serve said nothing, and the
    # live values were counted but never compared.
    (tmp_path / "data.csv").write_text("amount,age,country,channel\n,2,,web\n,3,,app\n")
    r, p, _ = profile(binary, tmp_path, "data.csv")
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert [w.split(":")[1].strip() for w in warnings] == ["column amount", "column country"], r.stderr
    assert all("drift never scores this column" in w for w in warnings)


def test_bad_arguments(binary, tmp_path):
    r = run(binary, "--config", "x", "--model", "m", "--input", "a.csv", "--out", "o", "--format", "xml")
    assert r.returncode != 0 and "--format" in r.stderr and "xml" in r.stderr
    r = run(binary, "--config", "x", "--model", "m", "--input", "a.csv", "--out", "o", "--bins", "0")
    assert r.returncode != 0 and "--bins" in r.stderr
    r = run(binary, "--config", "x", "--model", "m", "--input", "a.csv", "--out", "o", "--fine-bins", "2000000000")
    assert r.returncode != 0 and "--fine-bins" in r.stderr


# Profile, then serve: the profile's own rows sent back as live traffic must not drift.

SERVED = """\
models:
  - name: m
    task: regression
    versions: [v1]
    reference: {reference}
    features:
{features}
    window: {{duration: 1h, slices: 12}}
    collectors:
      - name: drift
        options: {{method: psi, min_observations: 1}}
"""


def served_config(tmp_path, features, reference="ref.json"):
    config = tmp_path / "served.yaml"
    lines = "\n".join(f"      - {{name: {name}, type: {kind}}}" for name, kind in features)
    config.write_text(SERVED.format(reference=tmp_path / reference, features=lines))
    return config


def send(exporter, rows):
    """Sends `rows` (feature dicts) as prediction events; every one must be accepted."""
    body = "".join(json.dumps({"version": "v1", "features": r, "prediction": 0.0}) + "\n" for r in rows).encode()
    status, _, answer = exporter.post("/api/v1/models/m/predictions", body,
                                      headers={"Content-Type": "application/x-ndjson"})
    assert status == 202 and json.loads(answer)["rejected"] == 0, answer


def drift_verdicts(exporter):
    _, samples = scrape(exporter)
    return {dict(labels)["feature"]: value for (name, labels), value in samples.items()
            if name == "mlops_feature_drift_detected"}


def test_a_category_named_other_counts_in_other_and_serves(binary, tmp_path, start_exporter):
    """Data holding the category "__other__" itself: the profile listed it as a value, and serve, check-config and a
    reload then trapped (two bins named __other__). It now counts in __other__, as live traffic sending it does; a
    profile listing it anyway is refused with the file and column named, and a reload onto it is refused while the
    exporter keeps serving."""
    rows = ["a"] * 400 + ["b"] * 300 + ["__other__"] * 300
    np.random.default_rng(3).shuffle(rows)
    (tmp_path / "data.csv").write_text("c\n" + "".join(r + "\n" for r in rows))
    config = served_config(tmp_path, [("c", "categorical")])
    r = run(binary, "--config", str(config), "--model", "m", "--input", str(tmp_path / "data.csv"),
            "--out", str(tmp_path / "ref.json"))
    assert r.returncode == 0, r.stderr
    profile = json.loads((tmp_path / "ref.json").read_text())
    assert profile["features"][0]["categorical"] == {"values": ["a", "b"], "counts": [400, 300, 300]}
    e = start_exporter("--config", str(config))
    send(e, [{"c": v} for v in rows])
    assert drift_verdicts(e) == {"c": 0}
    profile["features"][0]["categorical"] = {"values": ["a", "__other__", "b"], "counts": [400, 300, 300, 0]}
    (tmp_path / "ref.json").write_text(json.dumps(profile))
    message = (f'{tmp_path / "ref.json"}: features[0] (c): values[1] is "__other__", the name of the bin of every '
               "value outside the list")
    check = subprocess.run([str(binary), "check-config", str(config)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 1 and message in check.stdout + check.stderr, check
    status, _, body = e.post("/-/reload", b"")
    assert status == 500 and message.encode() in body, body
    assert e.proc.poll() is None and e.get("/-/healthy")[0] == 200
    send(e, [{"c": "a"}])


def test_canonically_equivalent_spellings_are_two_categories(binary, tmp_path, start_exporter):
    """"café" precomposed (NFC) and decomposed (NFD) are two values for pandas and for live traffic (matched by
    bytes); the profile merged them (Swift String equality): its own rows drifted live (PSI 2.6), and which spelling it
    named depended on the row order."""
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    rows = [nfc] * 300 + [nfd] * 300 + ["tea"] * 400
    np.random.default_rng(0).shuffle(rows)
    config = served_config(tmp_path, [("c", "categorical")])
    profiles = []
    for name, order in [("shuffled", rows), ("nfc-first", sorted(rows, key=lambda r: r != nfc)),
                        ("nfd-first", sorted(rows, key=lambda r: r != nfd))]:
        (tmp_path / f"{name}.csv").write_text("c\n" + "".join(r + "\n" for r in order), encoding="utf-8")
        r = run(binary, "--config", str(config), "--model", "m", "--input", str(tmp_path / f"{name}.csv"),
                "--out", str(tmp_path / f"{name}.json"))
        assert r.returncode == 0, r.stderr
        profiles.append(json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))["features"][0])
    counts = pd.read_csv(tmp_path / "shuffled.csv")["c"].value_counts()
    learned = sorted(counts.index, key=lambda v: (-counts[v], v.encode()))
    assert profiles[0]["categorical"] == {"values": learned, "counts": [int(counts[v]) for v in learned] + [0]}
    assert profiles[0] == profiles[1] == profiles[2]
    (tmp_path / "ref.json").write_bytes((tmp_path / "shuffled.json").read_bytes())
    e = start_exporter("--config", str(config))
    send(e, [{"c": v} for v in rows])
    assert drift_verdicts(e) == {"c": 0}


def test_pandas_csv_and_ndjson_of_one_frame_give_one_profile(binary, tmp_path, start_exporter):
    """pandas writes an integer code with missing values as 3.0 and a bool column as True/False in CSV, and 3.0 and
    true/false in NDJSON. The CSV's categorical cells were kept as written ("3.0", "True") while NDJSON's became the
    text live JSON traffic gives them ("3", "true"): the profiles differed, and the CSV one drifted against its own
    rows sent as JSON (PSI 17.7 on the bool feature)."""
    rng = np.random.default_rng(9)
    n = 600
    code = rng.choice([1.0, 2.0, 3.0, np.nan], n)
    flag = rng.choice([True, False], n)
    frame = pd.DataFrame({"code": code, "flag": flag})
    frame.to_csv(tmp_path / "data.csv", index=False)
    frame.to_json(tmp_path / "data.ndjson", orient="records", lines=True)
    config = served_config(tmp_path, [("code", "categorical"), ("flag", "categorical")])
    profiles = {}
    for name in ["data.csv", "data.ndjson"]:
        r = run(binary, "--config", str(config), "--model", "m", "--input", str(tmp_path / name),
                "--out", str(tmp_path / f"{name}.json"))
        assert r.returncode == 0, r.stderr
        profiles[name] = json.loads((tmp_path / f"{name}.json").read_text())["features"]
    assert profiles["data.csv"] == profiles["data.ndjson"]
    codes = pd.Series(code).dropna().map(lambda x: str(int(x))).value_counts()
    flags = pd.Series(flag).map(lambda b: "true" if b else "false").value_counts()
    for feature, counts in zip(profiles["data.csv"], [codes, flags]):
        learned = sorted(counts.index, key=lambda v: (-counts[v], v.encode()))
        assert feature["categorical"] == {"values": learned, "counts": [int(counts[v]) for v in learned] + [0]}
    (tmp_path / "ref.json").write_bytes((tmp_path / "data.csv.json").read_bytes())
    e = start_exporter("--config", str(config))
    send(e, [{"code": None if np.isnan(a) else float(a), "flag": bool(b)} for a, b in zip(code, flag)])
    assert drift_verdicts(e) == {"code": 0, "flag": 0}


def test_cli_guards(binary, tmp_path):
    """From the review: --out naming the input overwrote the training data; /dev/null and a FIFO were "permission
    denied" (even to root); an ingestion event's misspelt top-level key was ignored; --ignore-columns naming a feature
    or a column the input lacks was ignored silently."""
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG)
    data = tmp_path / "data.csv"
    data.write_text(OK_HEADER + "1,2,US,web\n")
    (tmp_path / "link.csv").symlink_to(data)

    def fails(input, out, *extra):
        r = run(binary, "--config", str(config), "--model", "fraud", "--input", str(input), "--out", str(out), *extra)
        assert r.returncode == 1 and r.stdout == "", r
        return r.stderr.strip()

    for out in [data, f"{tmp_path}/./data.csv", tmp_path / "link.csv"]:
        assert fails(data, out) == (f"{out}: cannot write: this is the input ({data}); the profile would replace it: "
                                    "choose another --out")
    assert data.read_text() == OK_HEADER + "1,2,US,web\n"
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    for device in ["/dev/null", str(fifo)]:
        assert fails(device, tmp_path / "ref.json", "--format", "csv") == (
            f"{device}: cannot read: not a regular file (a pipe, FIFO or device): write it to a file first")
    events = tmp_path / "events.ndjson"
    events.write_text(json.dumps({"version": "v1", "features": {"amount": 1, "age": 2, "country": "US",
                                                                "channel": "web"}, "predicton": "fraud"}) + "\n")
    assert fails(events, tmp_path / "ref.json").startswith(
        f'{events}:1: key "predicton" is not a field of an ingestion event (id, timestamp, version, features, ')
    assert fails(data, tmp_path / "ref.json", "--ignore-columns", "age") == (
        f'{data}: --ignore-columns: "age" is a feature of model fraud: it is profiled, it cannot be ignored (remove '
        "it from --ignore-columns)")
    assert fails(data, tmp_path / "ref.json", "--ignore-columns", "zip") == (
        f'{data}:1: --ignore-columns: the input has no column "zip" (header)')
    assert not (tmp_path / "ref.json").exists()


def test_a_boolean_of_a_numeric_feature_is_1_or_0_as_live(binary, tmp_path):
    # The ingestion API and batch read true/false of a numeric feature as 1/0; profile refused it ("false is not a
    # number"), so a column sent live as booleans could not be profiled.
    (tmp_path / "data.ndjson").write_text(
        '{"amount": true, "age": false, "country": "US", "channel": "web"}\n'
        '{"amount": false, "age": 2, "country": "DE", "channel": "app"}\n')
    r, p, _ = profile(binary, tmp_path, "data.ndjson")
    assert r.returncode == 0, r.stderr
    amount = p["features"][0]["numeric"]
    assert (amount["min"], amount["max"], amount["count"]) == (0.0, 1.0, 2)


def test_an_ndjson_input_may_start_with_a_byte_order_mark(binary, tmp_path):
    # As a CSV may (it was refused: `expected a value, got "\ufeff"`).
    (tmp_path / "data.ndjson").write_bytes(
        b'\xef\xbb\xbf{"amount": 1, "age": 2, "country": "US", "channel": "web"}\n')
    r, p, _ = profile(binary, tmp_path, "data.ndjson")
    assert r.returncode == 0, r.stderr
    assert p["rows"] == 1


def test_a_csv_boolean_of_a_numeric_feature_is_1_or_0(binary, tmp_path):
    # pandas writes a bool column as True/False: a numeric feature's CSV cell True is 1, as NDJSON's true and live
    # traffic's (it was refused: "True" is not a number).
    (tmp_path / "data.csv").write_text("amount,age,country,channel\nTrue,2,US,web\nFALSE,3,DE,app\n")
    r, p, _ = profile(binary, tmp_path, "data.csv")
    assert r.returncode == 0, r.stderr
    amount = p["features"][0]["numeric"]
    assert (amount["min"], amount["max"], amount["count"]) == (0.0, 1.0, 2)
