"""A policy's cost table: per opcode, the unoptimized and the optimized program's exact cost and the lower bound
(what ``ringfence cost`` and ``ringfence verify`` print). It compiles, so it sits above the compiler; the cost
measure itself is :mod:`.cost`, below it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ringfence.abi.profiles import KernelProfile
from ringfence.policy import optimize
from ringfence.policy.ast import Policy
from ringfence.policy.bound import Bound, NoBoundError, lower_bound
from ringfence.policy.compile import compile_policy
from ringfence.policy.cost import Cost, cost, field_weights, formula_tests
from ringfence.policy.fields import FIELDS


@dataclass(frozen=True, slots=True)
class OpcodeCost:
    """One opcode's filter: the straightforward and the optimized program on the formula's partition, and the
    lower bound (None, with ``no_bound`` saying why, past the search's caps)."""

    opcode: int
    unoptimized: Cost
    optimized: Cost
    bound: Bound | None
    no_bound: str = ""


def policy_costs(policy: Policy, profile: KernelProfile, *, weights: Mapping[str, Mapping[int, float]] | None = None,
                 bound: bool = True) -> dict[int, OpcodeCost]:
    """The cost table of every opcode that gets a filter: what ``ringfence cost`` and ``ringfence verify`` print.

    ``weights`` are by field (``{"socket.family": {AF_INET: 10.0}}``, see :func:`field_weights`) and apply to
    the opcodes whose context carries the field. Compiles ``policy`` once without the optimizer and optimizes
    each program (with the weights, if any), so the optimized column is what ``compile_policy`` produces when no
    weights are given."""
    compiled = compile_policy(policy, profile, optimized=False)
    out: dict[int, OpcodeCost] = {}
    for op, prog in sorted(compiled.programs.items()):
        weights_op = field_weights({name: v for name, v in (weights or {}).items() if FIELDS[name].carried_by(op)})
        tests = formula_tests(prog.formula)
        plain = cost(prog.built.program, tests, weights_op)
        better = optimize.optimize(prog.built, optimize.passes(weights_op))
        b: Bound | None = None
        why = "not asked for"
        if bound:
            try:
                b, why = lower_bound(prog.formula, weights_op), ""
            except NoBoundError as e:
                why = str(e)
        out[op] = OpcodeCost(op, plain, cost(better.program, tests, weights_op), b, why)
    return out
