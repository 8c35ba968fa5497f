"""The checker's seccomp target against the running kernel: accept/reject must agree on every program.

seccomp shares the generic classic-BPF checker and its whitelist with io_uring's (spec §5.5), so a
kernel with seccomp but without io_uring filters (the 6.18 host) still tests most of ``check()``: the
generic stage, the scratch-memory flow, the whitelist, the load-offset rule, on the 64-byte context.
Programs: ``bpf.gen``'s any and valid programs, valid programs with one field mutated, loads at every
offset 0..68, scratch-flow and jump-range edges, dead forbidden code, and the length limits. Each is
installed in a forked child (``seccomp_kernel.py``); half with seccomp(2), half with prctl(2).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest
import seccomp_kernel
from bpf_helpers import scratch_program
from seccomp_kernel import Method, Session, available

from ringfence.abi import seccomp
from ringfence.bpf import Instruction, Program, diagnose
from ringfence.bpf.gen import any_program, valid_program
from ringfence.bpf.insn import ABS, JA, JMP, LD, LDX, LEN, RET, B, H, K, W
from ringfence.bpf.target import SECCOMP

pytestmark = pytest.mark.live

SEED = 20260718
MIN_PROGRAMS = 2000


def _mutated(rng: random.Random) -> Program:
    """A valid program with one field changed: the programs nearest the rules' edges."""
    insns = list(valid_program(rng, 16, SECCOMP))
    pc = rng.randrange(len(insns))
    ins = insns[pc]
    field = rng.randrange(4)
    if field == 0:
        code = rng.randrange(256)
        insns[pc] = Instruction(code, ins.jt, ins.jf, ins.k)
    elif field == 1:
        insns[pc] = Instruction(ins.code, rng.randrange(len(insns) + 2), ins.jf, ins.k)
    elif field == 2:
        insns[pc] = Instruction(ins.code, ins.jt, rng.randrange(len(insns) + 2), ins.k)
    else:
        k = rng.choice((0, 1, 15, 16, 31, 32, 60, 63, 64, 0xFFFFF000, rng.getrandbits(32), len(insns) - pc - 1))
        insns[pc] = Instruction(ins.code, ins.jt, ins.jf, k)
    return Program(tuple(insns))


def _loads() -> Iterator[Program]:
    """A context load at every offset 0..68 (and the ancillary range), in every width and mode."""
    for k in [*range(69), 0xFFFFF000, 0xFFFFF004, 0xFFFFF040, 0xFFFFFFFC]:
        for code in (LD | W | ABS, LD | H | ABS, LD | B | ABS, LDX | W | ABS):
            yield Program.of((code, 0, 0, k), (RET | 0x10, 0, 0, 0))
    for code in (LD | W | LEN, LDX | W | LEN):
        yield Program.of((code, 0, 0, 0), (RET | 0x10, 0, 0, 0))


def _edges() -> Iterator[Program]:
    """Dead forbidden code (the unconfirmed dead-code rewrite), jump ranges, returns, lengths."""
    ret = (RET | K, 0, 0, 0x7FFF0000)
    for forbidden in (0x28, 0x30, 0x40, 0x94, 0xB1, 0x0E, 0x8C, 0x106):
        yield Program.of((JMP | JA, 0, 0, 1), (forbidden, 0, 0, 1), ret)
        yield Program.of(ret, (forbidden, 0, 0, 1), ret)
    for k in range(4):
        yield Program.of((JMP | JA, 0, 0, k), ret, ret)
        yield Program.of((JMP | 0x10, k, 0, 0), ret, ret)
        yield Program.of((JMP | 0x10, 0, k, 0), ret, ret)
    yield Program.of(ret, (0x60, 0, 0, 0), ret)           # read after a return: the running set carries on
    yield Program.of((JMP | JA, 0, 0, 1), (0x60, 0, 0, 0), ret)  # read in dead code after a jump
    for n in (4095, 4096, 4097):
        yield Program((Instruction(*ret),) * n)


def programs() -> Iterator[Program]:
    rng = random.Random(SEED)
    yield from _loads()
    yield from _edges()
    for _ in range(500):
        yield any_program(rng)
        yield valid_program(rng, 40, SECCOMP)
        yield _mutated(rng)
        yield scratch_program(rng)


@pytest.fixture(scope="module")
def machine() -> None:
    reason = available()
    if reason:
        if os.environ.get("RINGFENCE_REQUIRE_LIVE") == "1":
            pytest.fail(f"{reason} (and RINGFENCE_REQUIRE_LIVE=1 requires it)")
        pytest.skip("environment: " + reason)


def test_helper_constants_restate_the_abi() -> None:
    for name in ("NR_SECCOMP_X86_64", "PR_SET_NO_NEW_PRIVS", "PR_SET_SECCOMP", "SECCOMP_MODE_FILTER",
                 "SECCOMP_SET_MODE_FILTER"):
        assert getattr(seccomp_kernel, name) == getattr(seccomp, name)


def test_checker_agrees_with_the_kernel(machine: None) -> None:
    compared = accepted = 0
    disagreements: list[str] = []
    methods: tuple[Method, Method] = ("seccomp", "prctl")
    with Session() as kernel:
        answers = [(program, kernel.ask(program.to_bytes(), method=methods[i % 2]))
                   for i, program in enumerate(programs())]
    for program, outcome in answers:
        found = diagnose(program, SECCOMP)
        compared += 1
        accepted += outcome.accepted
        if outcome.accepted == bool(found) or (not outcome.accepted and outcome.errno_name != "EINVAL"):
            first = found[0] if found else "accepted"
            disagreements.append(f"{program.to_bytes().hex()}: kernel {outcome.how}, checker {first}")
    assert compared >= MIN_PROGRAMS
    assert 0.2 < accepted / compared < 0.8, (accepted, compared)  # both verdicts well represented
    print(f"seccomp differential: {compared} programs, {accepted} accepted, {len(disagreements)} disagreements")
    assert not disagreements, f"{len(disagreements)} of {compared} disagree:\n" + "\n".join(disagreements[:20])
