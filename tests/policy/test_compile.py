"""Compiled Plans mean the policy: three readings agree on random policies and random SQEs.

* the policy's own evaluator (policy.semantics) on the context the model's prep derives from the SQE;
* the kernel model running the compiled Plan (model.decide on a ring the restricted task creates);
* the interpreter running each compiled program on that context.
"""

from __future__ import annotations

import random

import pytest
from planrun import applied, context
from policygen import OPS, policy_data

from ringfence.abi import sqe as abisqe
from ringfence.abi.opcodes import SqeOp
from ringfence.abi.profiles import profile
from ringfence.bpf import check, run
from ringfence.model import Mechanism
from ringfence.policy.compile import compile_policy
from ringfence.policy.load import from_data
from ringfence.policy.semantics import decide, opcode_verdict

PROFILE = profile("7.2")


def _sqe(r: random.Random, op: str) -> abisqe.Sqe:
    flags = r.choice([0, 0, 0x04, 0x10, 0x01, 0x08, r.randrange(0x80)])
    ud = r.getrandbits(64)
    if op == "SOCKET":
        return abisqe.socket(r.choice([1, 2, 10, 16, 17, r.randrange(64)]),
                             r.choice([1, 2, 3, 1 | 0o2000000, 2 | 0o4000, 5]), r.choice([0, 6, 17]),
                             user_data=ud, flags=flags)
    if op in ("OPENAT", "OPENAT2"):
        of = r.getrandbits(22) if r.random() < 0.5 else r.choice([0, 1, 2, 0o100 | 2, 0o1000, 0o10000000])
        if op == "OPENAT":
            return abisqe.openat("/dev/null", of, r.choice([0, 0o644]), user_data=ud, flags=flags)
        how = abisqe.OpenHow(of, r.choice([0, 0o600]), r.choice([0, 8, 0x10, r.getrandbits(6)]))
        return abisqe.openat2("/dev/null", how, user_data=ud, flags=flags)
    if op == "CONNECT":
        fam = r.choice([2, 10, 1])
        addr = {2: r.choice(["127.0.0.1", "10.0.0.1", "192.168.1.7", "127.42.0.9"]),
                10: r.choice(["::1", "2001:db8::1", "fe80::2", "::ffff:127.0.0.1", "::ffff:10.0.0.1"]),
                1: "/tmp/x"}[fam]
        sa = abisqe.sockaddr(fam, addr, r.choice([22, 80, 443, 8080]) if fam != 1 else 0)
        return abisqe.connect(0, sa, r.choice([None, None, None, 0, 1, 16, 28]), user_data=ud, flags=flags)
    return abisqe.Sqe(int(SqeOp[op]), flags, ud)


@pytest.mark.parametrize("seed", range(120))
@pytest.mark.parametrize("optimized", [True, False])
def test_plan_agrees_with_the_policy(seed: int, optimized: bool) -> None:
    policy = from_data(policy_data(seed))
    compiled = compile_policy(policy, PROFILE, optimized=optimized)
    r = random.Random(seed)
    for mechanism in [v.mechanism for v in compiled.plan.variants]:
        k, state = applied(compiled.plan, PROFILE, mechanism)
        for _ in range(40):
            sqe = _sqe(r, r.choice(OPS))
            ctx = context(sqe, PROFILE)
            decision = k.decide(state, sqe)
            if ctx is None or decision.mechanism in (Mechanism.VALIDITY, Mechanism.PREP):
                continue  # the request fails whatever the policy says
            want = decide(policy, sqe.opcode, sqe.flags, ctx).allowed
            assert decision.allowed == want, (seed, mechanism, sqe, decision.rule.id)
            program = compiled.programs.get(sqe.opcode)
            if program is not None:
                assert run(check(program.built.program), ctx).allowed == \
                    opcode_verdict(policy, sqe.opcode, ctx).allowed, (seed, sqe)
