"""The optimizer keeps every verdict and leaves no dead instruction (the secfuzz idea), on random policies.

Three readings agree on random contexts: the optimized program, the straightforward one, and the policy's own
evaluator. Then, where the input partition is small enough to list, the optimized program is run on a context
of every class of the joint partition (its tests and the formula's) against the formula, and every one of its
instructions must be reached by some class.
"""

from __future__ import annotations

import itertools
import random

import pytest
from policygen import context, policy_data

from ringfence.abi.opcodes import SqeOp
from ringfence.abi.profiles import profile
from ringfence.bpf import Built, Program, assemble, check, run
from ringfence.bpf.insn import JGE, JGT
from ringfence.policy import optimize
from ringfence.policy.compile import compile_policy
from ringfence.policy.cost import cost, formula_tests, walk
from ringfence.policy.ir import evaluate
from ringfence.policy.lift import lift
from ringfence.policy.load import from_data, loads
from ringfence.policy.partition import Partition, with_splits
from ringfence.policy.passes import dead, restructure, returns, thread
from ringfence.policy.passes import loads as loads_pass
from ringfence.policy.semantics import opcode_verdict

PROFILE = profile("7.2")
_MAX_CLASSES = 4000


def _built(source: str) -> Built:
    program = assemble(source)
    return Built(program, ("",) * len(program), {})


@pytest.mark.parametrize("seed", range(150))
def test_optimized_equals_unoptimized_equals_semantics(seed: int) -> None:
    policy = from_data(policy_data(seed))
    plain = compile_policy(policy, PROFILE, optimized=False)
    better = compile_policy(policy, PROFILE, optimized=True)
    assert plain.programs.keys() == better.programs.keys()
    r = random.Random(seed)
    for op, prog in better.programs.items():
        fast, slow = check(prog.built.program), check(plain.programs[op].built.program)
        assert len(prog.built.comments) == len(prog.built.program)
        for _ in range(80):
            ctx = context(r, op)
            want = opcode_verdict(policy, op, ctx).allowed
            assert run(fast, ctx).allowed == run(slow, ctx).allowed == want, (seed, SqeOp(op).name, ctx.hex())


@pytest.mark.parametrize("seed", range(150))
def test_every_class_and_every_instruction(seed: int) -> None:
    policy = from_data(policy_data(seed))
    better = compile_policy(policy, PROFILE, optimized=True)
    for op, prog in better.programs.items():
        program = prog.built.program
        part = Partition.of(with_splits((*formula_tests(prog.formula), *lift(program).tests())))
        if part.size > _MAX_CLASSES:
            continue
        checked = check(program)
        offsets = list(part.cells)
        for choice in itertools.product(*(range(len(part.cells[o])) for o in offsets)):
            ctx = part.context(dict(zip(offsets, choice, strict=True)))
            assert run(checked, ctx).allowed == evaluate(prog.formula, ctx), (seed, SqeOp(op).name, ctx.hex())
        covered = walk(program, formula_tests(prog.formula)).covered
        assert covered == frozenset(range(len(program))), (seed, SqeOp(op).name, sorted(covered))


def test_the_exhaustive_check_runs_on_most_policies() -> None:
    """Guards the test above against skipping everything: most random filters have a listable partition."""
    listed = total = 0
    for seed in range(150):
        for prog in compile_policy(from_data(policy_data(seed)), PROFILE).programs.values():
            total += 1
            tests = (*formula_tests(prog.formula), *lift(prog.built.program).tests())
            listed += Partition.of(with_splits(tests)).size <= _MAX_CLASSES
    assert total > 40 and listed > 0.8 * total, (listed, total)


@pytest.mark.parametrize("seed", range(60))
def test_never_costlier_and_a_fixpoint(seed: int) -> None:
    policy = from_data(policy_data(seed))
    plain = compile_policy(policy, PROFILE, optimized=False)
    for prog in plain.programs.values():
        tests = formula_tests(prog.formula)
        before = cost(prog.built.program, tests)
        once = optimize.optimize(prog.built)
        after = cost(once.program, tests)
        assert after.worst <= before.worst and after.mean <= before.mean + 1e-9 and after.length <= before.length
        assert optimize.optimize(once).program == once.program


def _family_ctx(family: int) -> bytes:
    return bytes(16) + family.to_bytes(4, "little") + bytes(20)


def test_frequency_weights_put_the_common_value_first() -> None:
    policy = loads('[policy]\nname = "w"\n[[allow]]\nop = "SOCKET"\n'
                   'socket.family = ["AF_UNIX", "AF_INET6", "AF_NETLINK", "AF_INET"]\n')
    prog = compile_policy(policy, PROFILE, optimized=False).programs[int(SqeOp.SOCKET)]
    inet = optimize.optimize(prog.built, optimize.passes({16: {2: 50.0}})).program
    unix = optimize.optimize(prog.built, optimize.passes({16: {1: 50.0}})).program

    def steps(program: Program, family: int) -> int:
        return run(check(program), _family_ctx(family)).steps

    assert steps(inet, 2) < steps(unix, 2)
    assert steps(unix, 1) < steps(inet, 1)
    assert steps(inet, 2) == 3  # ld, jeq, ret


def test_a_large_value_set_becomes_a_tree() -> None:
    ports = list(range(1000, 1016))
    policy = loads('[policy]\nname = "t"\nkernel = "7.2+"\n[[allow]]\nop = "CONNECT"\n'
                   f'connect.family = "AF_INET"\nconnect.port = {ports}\n')
    prog = compile_policy(policy, PROFILE, optimized=False).programs[int(SqeOp.CONNECT)]
    better = optimize.optimize(prog.built).program
    assert {ins.op for ins in better if ins.is_conditional_jump} & {JGT, JGE}, "expected jgt/jge splits"
    tests = formula_tests(prog.formula)
    assert cost(better, tests).worst < cost(prog.built.program, tests).worst - len(ports) // 2


def test_constant_opcodes_need_no_program() -> None:
    policy = loads('[policy]\nname = "c"\n[[deny]]\nop = "NOP"\n')
    assert not compile_policy(policy, PROFILE).programs


# -- one table per pass ---------------------------------------------------------------------------------------

_PASS_TABLE = [
    # (pass, input, expected output, changed)
    ("loads", "ld [16]\njeq #1, ok\nld [16]\njeq #2, ok\nret #0\nok: ret #1",
     "ld [16]\njeq #1, ok\njeq #2, ok\nret #0\nok: ret #1", True),
    ("loads", "ld [16]\njeq #1, ok, no\nok: ld [20]\njeq #2, no\nno: ld [16]\nret #0",
     "ld [16]\njeq #1, ok, no\nok: ld [20]\njeq #2, no\nno: ld [16]\nret #0", False),
    ("thread", "ld [16]\njeq #1, ok, no\nok: ja far\nno: ret #0\nfar: ret #1",
     "ld [16]\njeq #1, far, no\nok: ret #1\nno: ret #0\nfar: ret #1", True),
    ("thread", "ld [16]\njeq #1, ok, ok\nok: ret #1", "ld [16]\nret #1\nret #1", True),  # dead code stays
    ("thread", "ld [16]\nja ok\nok: ret #1", "ld [16]\nret #1\nret #1", True),
    ("thread", "ld [16]\nja ok\nok: ld [20]\nret #1", "ld [16]\nld [20]\nret #1", True),
    ("thread", "ld [16]\njeq #1, ok, no\nok: ret #1\nno: ret #0",
     "ld [16]\njeq #1, ok, no\nok: ret #1\nno: ret #0", False),
    ("returns", "ld [16]\njeq #1, ok, no\nok: ret #1\nno: ret #1",
     "ld [16]\njeq #1, no, no\nok: ret #1\nno: ret #1", True),
    ("returns", "ld [16]\njeq #1, ok, no\nok: ret #1\nno: ret #0",
     "ld [16]\njeq #1, ok, no\nok: ret #1\nno: ret #0", False),
    ("dead", "ld [16]\njeq #1, no, no\nok: ret #1\nno: ret #1", "ld [16]\njeq #1, no, no\nno: ret #1", True),
    ("dead", "ret #1", "ret #1", False),
    # a family-0 guard inside an AF_INET test is dropped, and the reload with it
    ("restructure", "ld [16]\njeq #0, bad\nld [16]\njeq #2, ok, bad\nok: ret #1\nbad: ret #0",
     "ld [16]\njeq #2, ok, bad\nok: ret #1\nbad: ret #0", True),
    # a masked test against 0 becomes a jset on the word
    ("restructure", "ld [16]\nand #8\njeq #0, ok, bad\nok: ret #1\nbad: ret #0",
     "ld [16]\njset #8, bad, ok\nok: ret #1\nbad: ret #0", True),
    # a test whose outcome follows from an earlier one disappears
    ("restructure", "ld [16]\njeq #2, no, bad\nno: ld [16]\njeq #10, bad, ok\nok: ret #1\nbad: ret #0",
     "ld [16]\njeq #2, ok, bad\nok: ret #1\nbad: ret #0", True),
    ("restructure", "ld [16]\njeq #2, ok, bad\nok: ret #1\nbad: ret #0",
     "ld [16]\njeq #2, ok, bad\nok: ret #1\nbad: ret #0", False),
    # not a decision over words (a jump on X): left alone
    ("restructure", "ldx #2\nld [16]\njeq x, ok, bad\nok: ret #1\nbad: ret #0",
     "ldx #2\nld [16]\njeq x, ok, bad\nok: ret #1\nbad: ret #0", False),
]


@pytest.mark.parametrize(("name", "source", "expected", "changed"), _PASS_TABLE)
def test_pass_table(name: str, source: str, expected: str, changed: bool) -> None:
    p = {"loads": loads_pass.loads, "thread": thread.thread, "returns": returns.returns, "dead": dead.dead,
         "restructure": restructure.restructure}[name]
    out, did = p(_built(source))
    assert did is changed
    assert out.program == assemble(expected)
    assert len(out.comments) == len(out.program)


def test_programs_past_the_short_jump_range() -> None:
    """Forty CONNECT rules lower to a program whose jumps need trampolines; the optimized one still agrees."""
    r = random.Random(7)
    nets = ["127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16", "::1", "2001:db8::/32", "fe80::/10"]
    rules = [{"op": "CONNECT", "connect": {"addr": r.sample(nets, 2), "port": r.sample([22, 53, 80, 443, 8080], 2)}}
             for _ in range(40)]
    policy = from_data({"policy": {"name": "big", "kernel": "7.2+"}, "allow": rules})
    plain = compile_policy(policy, PROFILE, optimized=False).programs[int(SqeOp.CONNECT)]
    better = compile_policy(policy, PROFILE).programs[int(SqeOp.CONNECT)]
    assert len(plain.built.program) > 256
    fast, slow = check(better.built.program), check(plain.built.program)
    for _ in range(400):
        ctx = context(r, int(SqeOp.CONNECT))
        assert run(fast, ctx).allowed == run(slow, ctx).allowed == evaluate(plain.formula, ctx), ctx.hex()
