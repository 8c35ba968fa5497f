"""A deliberately broken compiler: the prover must catch every mutant that changes a verdict, with a
counterexample the interpreter (or the kernel model) confirms, and pass only mutants that change none.

Mutants are made from compiled Plans the way a compiler bug would make them: a jump target moved, a constant
changed, a test dropped (its jump made unconditional), a jump's targets swapped, a mask widened, DENY_REST
dropped. Whether a program mutant changes a verdict is judged independently, by running it and the policy
evaluator on sampled contexts the kernel could build.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator

import pytest
from policygen import context, policy_data

pytest.importorskip("z3")

from ringfence.abi.opcodes import FilterFlag
from ringfence.abi.profiles import profile
from ringfence.abi.sqe import Sqe
from ringfence.bpf import CheckedProgram, Instruction, Program, check, run
from ringfence.bpf.insn import ALU, AND, JA, JMP, K
from ringfence.errors import CheckError
from ringfence.model import Kernel
from ringfence.policy import prove
from ringfence.policy.assumptions import violated
from ringfence.policy.ast import Policy
from ringfence.policy.compile import Compiled, compile_policy
from ringfence.policy.evidence import Check
from ringfence.policy.load import from_data, load
from ringfence.policy.plan import Plan, Registration, Variant
from ringfence.policy.semantics import decide, opcode_verdict

K72 = profile("7.2")
Mutate = Callable[[tuple[Instruction, ...], int], Instruction | None]


def _cond(ins: Instruction) -> bool:
    return ins.is_jump and not ins.is_ja


def _flip_target(insns: tuple[Instruction, ...], pc: int) -> Instruction | None:
    ins = insns[pc]
    if not _cond(ins) or pc + 2 + ins.jt >= len(insns):
        return None
    return Instruction(ins.code, ins.jt + 1, ins.jf, ins.k)


def _change_constant(insns: tuple[Instruction, ...], pc: int) -> Instruction | None:
    ins = insns[pc]
    if not (_cond(ins) and ins.src == K):
        return None
    return Instruction(ins.code, ins.jt, ins.jf, ins.k ^ (1 << (ins.k.bit_length() % 32)) if ins.k else 1)


def _drop_test(insns: tuple[Instruction, ...], pc: int) -> Instruction | None:
    ins = insns[pc]
    return Instruction(JMP | JA, 0, 0, ins.jt) if _cond(ins) and ins.jt != ins.jf else None


def _swap(insns: tuple[Instruction, ...], pc: int) -> Instruction | None:
    ins = insns[pc]
    return Instruction(ins.code, ins.jf, ins.jt, ins.k) if _cond(ins) and ins.jt != ins.jf else None


def _widen_mask(insns: tuple[Instruction, ...], pc: int) -> Instruction | None:
    ins = insns[pc]
    if ins.code != ALU | AND | K or ins.k == 0xFFFFFFFF:
        return None
    free = ~ins.k & 0xFFFFFFFF
    return Instruction(ins.code, ins.jt, ins.jf, ins.k | (free & -free))


PROGRAM_MUTATIONS: dict[str, Mutate] = {
    "flip a jump target": _flip_target,
    "change a constant": _change_constant,
    "drop a test": _drop_test,
    "swap jt/jf": _swap,
    "widen a mask": _widen_mask,
}


def _subjects() -> Iterator[tuple[str, Compiled]]:
    yield "web-client", compile_policy(load("examples/policies/web-client.toml"), K72)
    found = 0
    for seed in range(400):
        compiled = compile_policy(from_data(policy_data(seed)), K72, optimized=seed % 2 == 0)
        if any(len(p.built.program) > 3 for p in compiled.programs.values()):
            found += 1
            yield f"seed {seed}", compiled
            if found == 9:
                return


SUBJECTS = list(_subjects())


def _with_program(plan: Plan, opcode: int, program: bytes) -> Plan:
    variants = []
    for v in plan.variants:
        regs = [dataclasses.replace(r, filter=dataclasses.replace(r.filter, program=program))
                if r.filter is not None and r.filter.opcode == opcode and r.filter.pdu_size else r
                for r in v.registrations]
        variants.append(Variant(v.mechanism, tuple(regs)))
    return dataclasses.replace(plan, variants=tuple(variants))


def _sampled_difference(policy: Policy, opcode: int, checked: CheckedProgram, r: random.Random) -> bytes | None:
    """A context the kernel could build on which the mutant and the policy disagree, by sampling."""
    for _ in range(250):
        ctx = context(r, opcode)
        if violated(ctx, opcode, K72):
            continue
        if run(checked, ctx).allowed != opcode_verdict(policy, opcode, ctx).allowed:
            return ctx
    return None


@dataclasses.dataclass
class Tally:
    mutants: int = 0
    caught: int = 0
    equivalent: int = 0


@pytest.mark.parametrize("mutation", list(PROGRAM_MUTATIONS))
def test_program_mutants_are_caught_and_confirmed(mutation: str) -> None:
    mutate = PROGRAM_MUTATIONS[mutation]
    tally = Tally()
    r = random.Random(mutation)
    for name, compiled in SUBJECTS:
        for opcode, prog in sorted(compiled.programs.items()):
            insns = prog.built.program.instructions
            spots = [pc for pc in range(len(insns)) if mutate(insns, pc) is not None]
            for pc in r.sample(spots, min(2, len(spots))):
                new = mutate(insns, pc)
                assert new is not None
                mutant = Program((*insns[:pc], new, *insns[pc + 1:]))
                try:
                    checked = check(mutant)
                except CheckError:
                    continue  # the kernel would refuse it: no registration, nothing to prove
                tally.mutants += 1
                plan = _with_program(compiled.plan, opcode, mutant.to_bytes())
                report = prove.prove_plan(plan, compiled.policy, K72)
                sampled = _sampled_difference(compiled.policy, opcode, checked, r)
                where = f"{name}, opcode {opcode}, pc {pc}: {mutation}"
                if report.result == "proven":
                    assert sampled is None, f"{where}: proven, but it differs on {sampled.hex()}"
                    tally.equivalent += 1
                    continue
                assert report.result == "refuted", (where, report.failures())
                tally.caught += 1
                bad = next(o for o in report.failures() if o.kind is Check.PROGRAM)
                example = bad.counterexample
                assert example is not None, where
                assert not violated(example.ctx, opcode, K72), where
                assert run(checked, example.ctx).allowed != opcode_verdict(compiled.policy, opcode, example.ctx).allowed
                assert run(checked, example.ctx).allowed == example.plan_allows
    print(f"{mutation}: {tally}")
    assert tally.caught >= 5, tally  # the operator really exercised the prover


def _deny_rest_subjects() -> Iterator[tuple[str, Compiled]]:
    """SUBJECTS, then more random policies: which subjects have a default-deny filters variant depends on how
    long the optimizer leaves their programs, so the count is not left to that."""
    yield from SUBJECTS
    for seed in range(400, 800):
        compiled = compile_policy(from_data(policy_data(seed)), K72)
        if compiled.programs and compiled.policy.default.value == "deny" and compiled.plan.variant("filters"):
            yield f"seed {seed}", compiled


def test_dropping_deny_rest_is_caught_and_the_model_confirms() -> None:
    caught = 0
    for name, compiled in _deny_rest_subjects():
        if caught >= 3:
            break
        filters = compiled.plan.variant("filters")
        if filters is None or compiled.policy.default.value != "deny":
            continue
        last = filters.registrations[-1]
        assert last.filter is not None and last.filter.flags & FilterFlag.DENY_REST, name
        dropped = dataclasses.replace(last.filter, flags=last.filter.flags & ~FilterFlag.DENY_REST)
        regs = (*filters.registrations[:-1], Registration("filter", filter=dropped, rules=last.rules))
        plan = dataclasses.replace(compiled.plan, variants=(Variant("filters", regs),))
        report = prove.prove_plan(plan, compiled.policy, K72)
        (bad,) = report.failures()
        example = bad.counterexample
        assert example is not None and bad.detail == "a newer kernel's opcode", name
        # the kernel model, one opcode newer, lets that opcode through; the policy denies it
        newer = dataclasses.replace(K72, op_last=K72.op_last + 1)
        k = Kernel(newer, detail=False)
        k.set_nnp("main")
        for reg in regs:
            assert k.register_filter("main", None, reg.filter).result == "ok"
        sqe = Sqe(example.opcode, 0, 0)
        assert k.decide(k.new_ring_state("main"), sqe).allowed
        assert not decide(compiled.policy, example.opcode, 0, example.ctx).allowed
        caught += 1
    print(f"drop DENY_REST: {caught} caught")
    assert caught >= 2
