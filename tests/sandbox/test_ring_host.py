"""A ring Plan on the host kernel (classic ring restrictions exist since 5.10): applied to a disabled ring, the
kernel's answers match the model running the same Plan; with a registration made to fail, the ring is never
enabled."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ringfence.abi import sqe as abisqe
from ringfence.abi.opcodes import SetupFlag, SqeFlag, SqeOp
from ringfence.abi.profiles import profile
from ringfence.errors import outcome_of
from ringfence.live import sqes
from ringfence.live.ring import Ring
from ringfence.policy.build import allow, policy
from ringfence.policy.compile import compile_policy
from ringfence.sandbox import restrict_ring

pytestmark = pytest.mark.live

RING_POLICY = policy("handed-ring", allow("NOP", "WRITE"), target="ring", kernel="6.18+",
                     flags_allowed=["IO_LINK"], register=["PROBE", "ENABLE_RINGS"])


def _plan(kernel: str) -> object:
    return compile_policy(RING_POLICY, profile(kernel)).plan


def _outcomes(fd_ring: Ring, requests: list[abisqe.Sqe]) -> list[str]:
    out = []
    for sqe in requests:
        fd_ring.queue(sqes.prepare(sqe))
        fd_ring.submit()
        cqes = fd_ring.wait()
        out.append(outcome_of(cqes[0].res) if cqes else "none")
    return out


REQUESTS = [abisqe.nop(user_data=1), abisqe.nop(user_data=2, flags=SqeFlag.IO_LINK), abisqe.nop(user_data=3,
            flags=SqeFlag.ASYNC), abisqe.rw(SqeOp.READ, 0, 8, user_data=4), abisqe.Sqe(SqeOp.FSYNC, 0, 5, fd=0)]


def test_ring_plan_matches_the_model(kernel: object) -> None:
    from planrun import applied

    name = getattr(kernel, "name", "")
    if name not in ("6.18", "7.2"):
        pytest.skip(f"no ring test expectations for profile {name}")
    plan = _plan(name)
    with Ring.setup(8, SetupFlag.R_DISABLED) as ring:
        applied_ = restrict_ring(ring.fd, plan)  # type: ignore[arg-type]
        assert applied_.registrations == 2
        live = _outcomes(ring, REQUESTS)
    k, state = applied(plan, profile(name))  # type: ignore[arg-type]
    modelled = [("ok" if d.allowed else str(d.errno)) for d in (k.decide(state, s) for s in REQUESTS)]
    assert live[:3] == modelled[:3] == ["ok", "ok", "EACCES"]   # ASYNC is not in the allowed flags
    assert live[3:] == modelled[3:] == ["EACCES", "EACCES"]     # READ and FSYNC are not allowed


FAULT = """
import json, sys
from ringfence.abi.opcodes import SetupFlag
from ringfence.errors import SandboxError, outcome_of
from ringfence.live import sqes
from ringfence.live.ring import Ring
from ringfence.policy.plan import Plan
from ringfence.sandbox import restrict_ring
plan = Plan.loads(sys.stdin.read())
with Ring.setup(8, SetupFlag.R_DISABLED) as ring:
    try:
        restrict_ring(ring.fd, plan)
        failed = None
    except SandboxError as exc:
        failed = [exc.step, exc.errno_name]
    ring.queue(sqes.nop(1))
    print(json.dumps({"failed": failed, "enter": outcome_of(ring.submit())}))
"""


@pytest.mark.parametrize("step", [1, 2])
def test_a_failed_registration_never_enables_the_ring(kernel: object, step: int) -> None:
    name = getattr(kernel, "name", "")
    if name not in ("6.18", "7.2"):
        pytest.skip(f"no ring test expectations for profile {name}")
    plan = _plan(name)
    env = {"RINGFENCE_FAULT": f"register:{step}:ENOMEM", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", FAULT], input=plan.dumps(), capture_output=True,  # type: ignore[attr-defined]
                         text=True, env=env, timeout=60, check=True)
    got = json.loads(out.stdout)
    assert got["failed"][1] == "ENOMEM" and got["failed"][0].startswith(f"registration {step}")
    assert got["enter"] == "EBADFD"   # still disabled: nothing ran on it
