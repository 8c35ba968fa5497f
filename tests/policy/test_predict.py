"""``policy.predict``: the model's answer from the Plan's bytes and the policy's reason, side by side.

On the model: over random policies and the requests the kernel tests use, the two answers always agree and
the reason names the rule the reference evaluator picked. On this host's kernel: for ring Plans (classic
restrictions exist on every supported kernel) each prediction is what the kernel really answered; the task
and filter side runs in the 7.x guest (tests/guest/test_predict.py).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from kernel_requests import REQUESTS, kernel_results
from policygen import policy_data

from ringfence.abi.profiles import profile, profile_for_release
from ringfence.abi.sqe import Sqe
from ringfence.errors import PolicyError
from ringfence.policy import semantics
from ringfence.policy.compile import compile_policy
from ringfence.policy.load import from_data, load
from ringfence.policy.predict import Predictor

ROOT = Path(__file__).resolve().parents[2]
_FDS = {"null": 3, "root": 4, "tcp4": 5, "tcp4b": 6, "tcp6": 7}
SQES = [make(_FDS) for make in REQUESTS.values()]


@pytest.mark.parametrize("seed", range(40))
def test_model_and_policy_agree_and_the_reason_names_the_rule(seed: int) -> None:
    policy = from_data(policy_data(seed))
    kernel = profile("7.2")
    compiled = compile_policy(policy, kernel)
    for variant in compiled.plan.variants:
        predictor = Predictor(policy, compiled.plan, kernel, mechanism=variant.mechanism)
        for sqe in SQES:
            p = predictor.request(sqe)
            assert p.agree, (variant.mechanism, sqe, p)
            assert p.allowed == (p.errno is None)
            assert p.because.startswith("allowed" if p.allowed else "denied"), p.because
            ctx = p.decision.filters.context if p.decision.filters and p.decision.filters.context else None
            if ctx is not None:
                verdict = semantics.decide(policy, sqe.opcode, sqe.flags, ctx)
                if verdict.rule is not None:
                    assert verdict.rule.label() in p.because


def test_predictions_serialise() -> None:
    policy = load(ROOT / "examples/policies/web-client.toml")
    kernel = profile("7.2")
    predictor = Predictor(policy, compile_policy(policy, kernel).plan, kernel)
    for sqe in SQES:
        out = json.loads(json.dumps(predictor.request(sqe).to_json()))
        assert Sqe.from_json(out["request"]) == sqe and out["allowed"] == (out["errno"] is None)


def test_a_missing_variant_is_an_error() -> None:
    policy = load(ROOT / "examples/policies/web-client.toml")
    kernel = profile("7.2")
    with pytest.raises(PolicyError, match="no 'filters' variant"):
        Predictor(policy, compile_policy(policy, kernel).plan, kernel, mechanism="filters")


RING_POLICIES = {
    "untrusted-ring": (ROOT / "examples/policies/untrusted-ring.toml").read_text(),
    "reads-and-sockets": '[policy]\nname = "r"\nkernel = "6.18+"\ntarget = "ring"\ndefault = "deny"\n'
                         '[flags]\nallowed = ["IO_LINK"]\n'
                         '[[allow]]\nops = ["READ", "WRITEV", "SOCKET", "OPENAT2"]\n',
    "deny-network": '[policy]\nname = "d"\nkernel = "6.18+"\ntarget = "ring"\ndefault = "allow"\n'
                    '[[deny]]\nops = ["SOCKET", "CONNECT", "OPENAT"]\n',
}


@pytest.mark.live
@pytest.mark.parametrize("name", RING_POLICIES)
def test_ring_predictions_are_what_this_kernel_answers(name: str, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("environment: needs root (the requests open files and sockets as the test user)")
    kernel = profile_for_release(os.uname().release)
    path = tmp_path / f"{name}.toml"
    path.write_text(RING_POLICIES[name])
    policy = load(path)
    plan = compile_policy(policy, kernel).plan
    predictor = Predictor(policy, plan, kernel)
    names = list(REQUESTS)
    results = kernel_results(plan, names)
    fds = {"null": 3, "root": 4, "tcp4": 5, "tcp4b": 6, "tcp6": 7}
    for label in names:
        predicted = predictor.request(REQUESTS[label](fds))
        denied = results[label] == -errno.EACCES
        assert denied == (not predicted.allowed), (label, results[label], predicted.because)
