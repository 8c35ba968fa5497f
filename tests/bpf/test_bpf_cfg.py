"""Control flow (``bpf.cfg``): successors, reachability, the one-pass forward solver, and the checker built on it.

The scratch-memory check moved onto :func:`ringfence.bpf.cfg.forward`; a frozen copy of the previous
hand-written pass (below, unchanged) must agree with it on many random programs, so the move cannot
have changed what the checker accepts.
"""

from __future__ import annotations

import operator
import random

import pytest
from bpf_helpers import COND_JUMPS, scratch_program

from ringfence.bpf import Instruction, Program, assemble, check
from ringfence.bpf.cfg import Cfg, Flow, forward, targets
from ringfence.bpf.check import CheckRule, Diagnostic, _scratch_flow, dead_code_rewrite_pass
from ringfence.bpf.gen import any_program, valid_program
from ringfence.bpf.insn import JA, JEQ, JMP, LD, LDX, MEM, MEMWORDS, RET, ST, STX, K

_COND_JUMPS = COND_JUMPS


def frozen_scratch_flow(insns: tuple[Instruction, ...]) -> list[Diagnostic]:
    """The checker's scratch pass as it was before ``bpf.cfg`` existed (do not edit: it is the reference)."""
    n = len(insns)
    full = (1 << MEMWORDS) - 1
    masks = [full] * n
    valid = 0
    found = []
    for pc, ins in enumerate(insns):
        valid &= masks[pc]
        code, k = ins.code, ins.k
        if code in (ST, STX) and k < MEMWORDS:
            valid |= 1 << k
        elif code in (LD | MEM, LDX | MEM) and k < MEMWORDS and not valid & (1 << k):
            found.append(Diagnostic(pc, CheckRule.SCRATCH_UNINIT, f"M[{k}] may be read before it is written"))
        elif code == JMP | JA or code in _COND_JUMPS:
            for target in ins.targets(pc):
                if target < n:
                    masks[target] &= valid
            valid = full
    return found


def frozen_dead_code_rewrite(insns: tuple[Instruction, ...]) -> tuple[Instruction, ...]:
    """The dead-code pass as it was (a return other than RET|K and RET|A fell through; see below)."""
    n = len(insns)
    live = [False] * (n + 1)
    if n:
        live[0] = True
    out = []
    for pc, ins in enumerate(insns):
        if not live[pc]:
            out.append(Instruction(LD))
            continue
        out.append(ins)
        if ins.code in (0x06, 0x16):
            continue
        nexts = ins.targets(pc) if ins.code == JMP | JA or ins.code in _COND_JUMPS else (pc + 1,)
        for target in nexts:
            if target < n:
                live[target] = True
    return tuple(out)


def test_scratch_flow_matches_the_frozen_pass_on_random_programs() -> None:
    rng = random.Random(20260717)
    compared = differing_dead = 0
    for _ in range(4000):
        for program in (scratch_program(rng), any_program(rng), valid_program(rng, 40)):
            insns = program.instructions
            assert _scratch_flow(insns) == frozen_scratch_flow(insns), program
            compared += 1
            new, old = dead_code_rewrite_pass(insns), frozen_dead_code_rewrite(insns)
            if new != old:
                # only a RET-class code other than RET|K / RET|A (refused by stage 2) may now end a path
                assert any(i.is_return and i.code not in (0x06, 0x16) for i in insns), program
                differing_dead += 1
    assert compared == 12000 and differing_dead < compared


def test_cfg_successors_reachability_and_leaders() -> None:
    p = assemble("ld [16]\n jeq #2, p, q\np: ja r\nq: ret #0\n ret #5\nr: ret #1")
    cfg = Cfg.of(p)
    assert cfg.successors == ((1,), (2, 3), (5,), (), (), ())
    assert cfg.reachable == (True, True, True, True, False, True)
    assert cfg.jump_targets == frozenset({2, 3, 5})
    assert cfg.leaders == frozenset({0, 2, 3, 5})
    assert cfg.predecessors == ((), (0,), (1,), (1,), (), (2,))
    kernel = Cfg.of(p, returns_fall_through=True)
    assert kernel.successors[3] == (4,) and kernel.successors[5] == ()


def test_targets_of_every_kind() -> None:
    assert targets(Instruction(JMP | JEQ | K, 2, 2), 0) == (3,)
    assert targets(Instruction(JMP | JEQ | K, 0, 3), 4) == (5, 8)
    assert targets(Instruction(RET | K), 1) == ()
    assert targets(Instruction(RET | K), 1, returns_fall_through=True) == (2,)
    assert targets(Instruction(0x115), 1) == (2,)  # not a jump: the kernel compares whole codes
    assert Cfg.of(Program.of((JMP | JA, 0, 0, 9), (RET, 0, 0, 0))).successors == ((), ())  # out of range


def test_forward_unreached_and_edges() -> None:
    p = assemble("jeq #1, t, f\nt: ret #1\nf: ja e\n ld #3\ne: ret #0")
    cfg = Cfg.of(p)
    depth = forward(cfg, 0, lambda pc, v: v + 1, max)
    assert depth == [0, 1, 1, None, 2]
    assert forward(cfg, 0, lambda pc, v: v + 1, max, unreached=-100) == [0, 1, 1, -100, 2]
    tagged = forward(cfg, "", lambda pc, v: v, min, edge=lambda pc, t, v: v + f"{pc}>{t};")
    assert tagged == ["", "0>1;", "0>2;", None, "0>2;2>4;"]


def test_flow_is_incremental() -> None:
    flow: Flow[int] = Flow(3, 7, operator.and_)
    assert flow.at(0) == 7 and flow.at(1) is None
    flow.send(2, 6)
    flow.send(2, 3)
    flow.send(9, 0)  # past the end: ignored
    assert flow.values == [7, None, 2]


@pytest.mark.parametrize(("src", "uninit"), [
    ("ret #0\n ld M[7]\n ret #0", [1]),          # a return falls through for the kernel's check
    ("ja t\n ld M[7]\nt: ret #0", []),           # unreachable after a jump: every slot written
    ("jeq #0, t\n st M[0]\nt: ld M[0]\n ret a", [2]),
])
def test_scratch_rule_uses_the_kernel_edges(src: str, uninit: list[int]) -> None:
    insns = assemble(src).instructions
    assert [d.pc for d in _scratch_flow(insns)] == uninit == [d.pc for d in frozen_scratch_flow(insns)]


def test_dead_code_rewrite_uses_real_reachability() -> None:
    checked = check(assemble("jeq #1, t\n ret #0\n ret #9\nt: ret #1"), dead_code_rewrite=True)
    assert checked.program[2] == Instruction(LD) and checked.program[1] == Instruction(RET | K)
