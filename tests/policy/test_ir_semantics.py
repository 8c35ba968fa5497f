"""The compiler's formulas (policy.ir) agree with the policy's own evaluator (policy.semantics) on random
policies and contexts: two independent readings of the same syntax tree."""

from __future__ import annotations

import random

import pytest
from policygen import OPS, context, policy_data

from ringfence.abi.opcodes import SqeOp
from ringfence.policy.ir import evaluate, opcode_formula
from ringfence.policy.load import from_data
from ringfence.policy.semantics import opcode_verdict


@pytest.mark.parametrize("seed", range(150))
def test_formula_matches_the_evaluator(seed: int) -> None:
    policy = from_data(policy_data(seed))
    r = random.Random(seed)
    for _ in range(60):
        op = int(SqeOp[r.choice(OPS)])
        ctx = context(r, op)
        assert evaluate(opcode_formula(policy, op), ctx) == opcode_verdict(policy, op, ctx).allowed, \
            (seed, SqeOp(op).name, ctx.hex())
