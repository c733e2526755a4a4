"""Property test: seeded random registries (random names, labels, Unicode values, bit-pattern
doubles, counter increments, observations, exemplars, collectors) through promtool and both
parsers. ``CONFORMANCE_SEEDS`` widens the run, e.g. ``CONFORMANCE_SEEDS=1-500``."""

from __future__ import annotations

import os

import pytest

from .conformance_lib import full_check


def _seeds():
    spec = os.environ.get("CONFORMANCE_SEEDS", "1-25")
    seeds = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        seeds.extend(range(int(lo), int(hi or lo) + 1))
    return seeds


FAMILIES = int(os.environ.get("CONFORMANCE_FAMILIES", "30"))


@pytest.mark.parametrize("seed", _seeds())
def test_random_registry_roundtrip(runner, seed):
    bundle = runner.run("random", "--seed", str(seed), "--count", str(FAMILIES), name=f"random{seed}")
    assert len(bundle.expected.families) >= FAMILIES // 2
    reproduce = (
        f"\nreproduce: exposition-fixture random --seed {seed} --count {FAMILIES} --out DIR (files in {bundle.dir})"
    )
    try:
        full_check(bundle, context=reproduce)
    except AssertionError as e:
        raise AssertionError(f"seed {seed}: {e}{reproduce}") from None
