"""Inside the 7.x guest: every example and corpus policy, each Plan variant, applied for real; each request's
CQE result is what ``policy.predict`` said (EACCES exactly when it predicted a denial)."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policy"))
from kernel_requests import REQUESTS, kernel_results

from ringfence.errors import PolicyError
from ringfence.live.probe import probed_profile
from ringfence.policy.compile import compile_policy
from ringfence.policy.load import load
from ringfence.policy.predict import Predictor

ROOT = Path(__file__).resolve().parents[2]
POLICIES = sorted([*ROOT.glob("examples/policies/*.toml"), *ROOT.glob("tests/corpus/policies/**/*.toml")])
_FDS = {"null": 3, "root": 4, "tcp4": 5, "tcp4b": 6, "tcp6": 7}


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_predictions_are_what_the_kernel_answers(path: Path) -> None:
    _, kernel = probed_profile()
    policy = load(path)
    try:
        compiled = compile_policy(policy, kernel)
    except PolicyError as exc:
        pytest.skip(f"kernel: does not compile for {kernel.name}: {exc}")
    names = list(REQUESTS)
    for variant in compiled.plan.variants:
        if compiled.plan.target == "ring" and variant is not compiled.plan.variants[0]:
            continue  # restrict_ring applies a ring Plan's first variant
        predictor = Predictor(policy, compiled.plan, kernel, mechanism=variant.mechanism)
        results = kernel_results(compiled.plan, names, mechanism=variant.mechanism)
        for label in names:
            predicted = predictor.request(REQUESTS[label](_FDS))
            denied = results[label] == -errno.EACCES
            assert denied == (not predicted.allowed), (variant.mechanism, label, results[label], predicted.because)
            assert predicted.agree, (variant.mechanism, label)
