"""Builds the Swift fixture once per session and runs it into temporary directories.

Environment:
  SWIFT_SCRATCH          scratch path for ``swift build`` (default ``.build-conf``, relative to the
                         repository root), so CI can share one build directory.
  EXPOSITION_FIXTURE_BIN use this prebuilt exposition-fixture binary instead of building.
"""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

from .conformance_lib import Bundle

REPO = pathlib.Path(__file__).resolve().parents[2]


def _build() -> pathlib.Path:
    prebuilt = os.environ.get("EXPOSITION_FIXTURE_BIN")
    if prebuilt:
        path = pathlib.Path(prebuilt)
        if not path.is_file():
            pytest.fail(f"EXPOSITION_FIXTURE_BIN={prebuilt} does not exist", pytrace=False)
        return path
    scratch = os.environ.get("SWIFT_SCRATCH", ".build-conf")
    cmd = ["swift", "build", "--scratch-path", scratch, "--product", "exposition-fixture"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}",
            pytrace=False,
        )
    bin_dir = subprocess.run(
        cmd + ["--show-bin-path"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    return pathlib.Path(bin_dir) / "exposition-fixture"


@pytest.fixture(scope="session")
def fixture_bin() -> pathlib.Path:
    return _build()


class Runner:
    def __init__(self, binary: pathlib.Path, factory: pytest.TempPathFactory):
        self.binary = binary
        self.factory = factory

    def run(self, *args: str, name: str = "out") -> Bundle:
        out = self.factory.mktemp(name)
        cmd = [str(self.binary), *args, "--out", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr}"
        return Bundle(out)


@pytest.fixture(scope="session")
def runner(fixture_bin: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return Runner(fixture_bin, tmp_path_factory)


@pytest.fixture(scope="session")
def fixture_bundle(runner: Runner) -> Bundle:
    return runner.run("fixture", name="fixture")
