"""The program builder: labels, forward-only jumps, trampolines for far conditional jumps, comments.

The property test writes random label programs (some far longer than 256 instructions), runs them
through a small interpreter of the builder's own vocabulary (labels, not offsets), and checks that the
built program passes ``check()`` and returns the same value on random contexts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringfence.bpf import Instruction, Program, check, run
from ringfence.bpf.builder import Builder, BuildError, Label
from ringfence.bpf.gen import context
from ringfence.bpf.insn import ABS, ADD, ALU, JA, JEQ, JGT, JMP, JSET, LD, MISC, TAX, K, W
from ringfence.bpf.semantics import INT, JUMPS

rngs = st.integers(0, 2**64 - 1).map(random.Random)
ADD1 = Instruction(ALU | ADD | K, k=1)


def filler(b: Builder, n: int) -> None:
    for _ in range(n):
        b.emit(ADD1)


def test_short_jumps_are_plain() -> None:
    b = Builder()
    yes, no = b.label("yes"), b.label("no")
    b.emit(Instruction(LD | W | ABS, k=16), "family")
    b.jump(JEQ, 2, yes, no, "AF_INET?")
    b.place(no)
    b.ret(0, "deny")
    b.place(yes)
    b.ret(1, "allow")
    built = b.build_annotated()
    assert built.program == Program.of((0x20, 0, 0, 16), (0x15, 1, 0, 2), (0x06, 0, 0, 0), (0x06, 0, 0, 1))
    assert built.comments == ("family", "AF_INET?", "deny", "allow") and built.comment(1) == "AF_INET?"
    assert dict(built.labels) == {"no": 2, "yes": 3}


@pytest.mark.parametrize(("true_far", "false_far", "expected"), [
    (True, False, [(0x15, 0, 1, 7), (0x05, 0, 0, 301)]),
    (False, True, [(0x15, 1, 0, 7), (0x05, 0, 0, 301)]),
    (True, True, [(0x15, 0, 1, 7), (0x05, 0, 0, 301), (0x05, 0, 0, 301)]),
])
def test_trampoline_forms(true_far: bool, false_far: bool, expected: list[tuple[int, int, int, int]]) -> None:
    b = Builder()
    t, f = b.label("t"), b.label("f")
    b.jump(JEQ, 7, t, f, "why")
    near = [lab for lab, far in ((t, true_far), (f, false_far)) if not far]
    far = [lab for lab, is_far in ((t, true_far), (f, false_far)) if is_far]
    for lab in near:
        b.place(lab)
        b.ret(5)
    filler(b, 300)
    for lab in far:
        b.place(lab)
        b.ret(6)
    built = b.build_annotated()
    head = [(i.code, i.jt, i.jf, i.k) for i in built.program[:len(expected)]]
    assert head == expected
    assert built.comments[:len(expected)] == ("why",) * len(expected)
    check(built.program)


def test_same_far_label_for_both_targets() -> None:
    b = Builder()
    t = b.label()
    b.jump(JSET, 1, t, t)
    filler(b, 300)
    b.place(t)
    b.ret(1)
    program = b.build()
    assert program[:2] == (Instruction(0x45, 0, 0, 1), Instruction(0x05, 0, 0, 300))


def test_trampolines_cascade_to_a_fixpoint() -> None:
    """Each trampoline pushes the earlier jump's target one further: 255 becomes 256 and so on."""
    b = Builder()
    end = b.label("end")
    for _ in range(10):
        b.jump(JEQ, 1, end)       # false: falls through
    filler(b, 246)
    b.place(end)
    b.ret(1)
    program = b.build()
    check(program)
    for ctx_word in (0, 1):
        checked = check(program)
        assert run(checked, ctx_word.to_bytes(4, "little") * 10).value in (1, 247)


def test_fall_through_default_and_x_operand() -> None:
    b = Builder()
    out = b.label()
    b.emit(Instruction(MISC | TAX))
    b.jump(JGT, None, out)
    b.ret(0)
    b.place(out)
    b.ret_a()
    assert b.build() == Program.of((0x07, 0, 0, 0), (0x2D, 1, 0, 0), (0x06, 0, 0, 0), (0x16, 0, 0, 0))


def test_errors() -> None:
    b = Builder()
    back = b.here("back")
    b.ret(0)
    with pytest.raises(BuildError, match="backward jump to 'back'"):
        b.ja(back)
    with pytest.raises(BuildError, match="placed twice"):
        b.place(back)
    with pytest.raises(BuildError, match="is a jump"):
        b.emit(Instruction(JMP | JA, k=0))
    with pytest.raises(BuildError, match="not a conditional jump"):
        b.jump(0x50, 1, b.label())
    b = Builder()
    b.ja(b.label("nowhere"))
    with pytest.raises(BuildError, match=r"'nowhere' is jumped to .* never placed"):
        b.build()
    b = Builder()
    end = b.label("end")
    b.ja(end)
    b.place(end)
    with pytest.raises(BuildError, match="'end' is placed after the last instruction"):
        b.build()
    b = Builder()
    with pytest.raises(BuildError, match="backward jump to 'self'"):
        b.jump(JEQ, 1, b.here("self"))  # here() names the next item: the jump itself
    b = Builder()
    y = b.label("y")
    b.jump(JEQ, 1, b.label("z"), y)
    b.ret(0)
    b.place(y)
    with pytest.raises(BuildError, match="'z' is jumped to"):
        b.build()
    b = Builder()
    t = b.label("t")
    b.ret(0)
    b.jump(JEQ, 1, t)
    b.place(t)
    with pytest.raises(BuildError, match="'t' is placed after the last instruction"):
        b.build()


# -- the property ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    """One step of a label program: ``kind`` in load, add, jump, ja, ret; targets are label numbers."""

    kind: str
    k: int = 0
    op: int = 0
    true: int = -1
    false: int | None = None


def label_program(rng: random.Random) -> tuple[list[Op], dict[int, int]]:
    """Random ops and where each label sits (label -> op index); every jump goes forward."""
    n = rng.choice((rng.randint(2, 40), rng.randint(250, 600), rng.randint(600, 1200)))
    spots = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(1, 12))))
    where = dict(enumerate(spots))
    ops: list[Op] = []
    for i in range(n):
        later = [lab for lab, pos in where.items() if pos > i]
        kind = "ret" if i == n - 1 else rng.choice(("load", "add", "add", "add", "jump", "jump", "ja", "ret"))
        if kind in ("jump", "ja") and not later:
            kind = "add"
        if kind == "load":
            ops.append(Op("load", 4 * rng.randrange(10)))
        elif kind == "add":
            ops.append(Op("add", rng.getrandbits(32)))
        elif kind == "ja":
            ops.append(Op("ja", true=rng.choice(later)))
        elif kind == "jump":
            far = max(later, key=where.__getitem__)
            true = far if rng.random() < 0.4 else rng.choice(later)
            false = None if rng.random() < 0.3 else (far if rng.random() < 0.4 else rng.choice(later))
            k = rng.choice((0, 1, 2, 7, rng.getrandbits(32)))
            ops.append(Op("jump", k, rng.choice(sorted(JUMPS)), true, false))
        else:
            ops.append(Op("ret", rng.getrandbits(32) if rng.random() < 0.2 else -1))
    return ops, where


def build(ops: list[Op], where: dict[int, int]) -> Program:
    b = Builder()
    labels = {lab: b.label(f"l{lab}") for lab in where}
    at: dict[int, list[int]] = {}
    for lab, pos in where.items():
        at.setdefault(pos, []).append(lab)
    for i, op in enumerate(ops):
        for lab in at.get(i, []):
            b.place(labels[lab])
        if op.kind == "load":
            b.emit(Instruction(LD | W | ABS, k=op.k))
        elif op.kind == "add":
            b.emit(Instruction(ALU | ADD | K, k=op.k))
        elif op.kind == "ja":
            b.ja(labels[op.true])
        elif op.kind == "jump":
            b.jump(op.op, op.k, labels[op.true], None if op.false is None else labels[op.false], f"op {i}")
        elif op.k < 0:
            b.ret_a()
        else:
            b.ret(op.k)
    return b.build()


def reference(ops: list[Op], where: dict[int, int], ctx: bytes) -> int:
    """Run the label program itself: jumps go to the op where their label sits."""
    words = [int.from_bytes(ctx[i:i + 4], "little") for i in range(0, 40, 4)]
    a, i = 0, 0
    while True:
        op = ops[i]
        if op.kind == "ret":
            return a if op.k < 0 else op.k
        i += 1
        if op.kind == "load":
            a = words[op.k // 4]
        elif op.kind == "add":
            a = INT.add(a, op.k)
        elif op.kind == "ja":
            i = where[op.true]
        elif op.kind == "jump":
            if JUMPS[op.op].holds(INT, a, op.k):
                i = where[op.true]
            elif op.false is not None:
                i = where[op.false]


@settings(max_examples=60)
@given(rngs)
def test_built_programs_pass_check_and_follow_their_labels(rng: random.Random) -> None:
    ops, where = label_program(rng)
    program = build(ops, where)
    checked = check(program)
    for _ in range(5):
        ctx = context(rng)
        assert run(checked, ctx).value == reference(ops, where, ctx)


def test_the_property_reaches_far_jumps() -> None:
    """The generator does make programs longer than 256 with far conditional jumps (trampolines)."""
    rng = random.Random(5)
    longest = trampolines = 0
    for _ in range(30):
        program = build(*label_program(rng))
        longest = max(longest, len(program))
        trampolines += sum(1 for pc, ins in enumerate(program[:-1])
                           if ins.is_conditional_jump and ins.jt == 0 and program[pc + 1].is_ja)
    assert longest > 600 and trampolines > 10


def test_labels_are_identities() -> None:
    assert Label("a") != Label("a") and Builder().label().name.startswith("L")
