"""The ``surface/`` corpus (paths a sandbox escape would take) on the model of every kernel profile.

Their expectations were seen on the 6.18 host and on Debian's 7.2.13 and 7.3-rc7 kernels before they were written
down (the conformance suites run them there again); here the model must meet them on every profile, 7.0 and 7.1
included, and must refuse what it does not follow instead of guessing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ringfence.abi.profiles import PROFILES, profile
from ringfence.errors import ScenarioError
from ringfence.scenario import load, parse, runner
from ringfence.scenario.model_backend import ModelBackend

SURFACE = sorted((Path(__file__).resolve().parents[1] / "corpus" / "scenarios" / "surface").glob("*.toml"))


def test_the_surface_corpus_is_there() -> None:
    assert len(SURFACE) >= 16


@pytest.mark.parametrize("kernel", sorted(PROFILES))
@pytest.mark.parametrize("path", SURFACE, ids=lambda p: p.stem)
def test_model_meets_the_surface_expectations(path: Path, kernel: str) -> None:
    report = runner.run(ModelBackend(profile(kernel)), load(path))
    assert not report.mismatches, "\n".join(m.render() for m in report.mismatches)


def test_model_refuses_pidfd_getfd_it_cannot_follow() -> None:
    scenario = parse({"scenario": {"name": "unprivileged_getfd"}, "step": [
        {"do": "fork", "child": "c"}, {"do": "drop_privileges", "task": "c"},
        {"do": "ring", "ring": "r"}, {"do": "pass_ring", "ring": "r", "to": "c", "via": "pidfd_getfd"}]})
    with pytest.raises(ScenarioError, match="ptrace access checks"):
        ModelBackend(profile("7.2")).run(scenario)
