"""The checker against the kernel's rules (spec §5.5): one row per rule, every code, and the rewrites.

The code lists below are written out as literals on purpose: they pin the facts (the generic table
of ``net/core/filter.c`` and io_uring's whitelist) independently of the implementation's tables,
and they are what a real-kernel run should confirm.
"""

from __future__ import annotations

import pytest

from ringfence.bpf import CheckedProgram, CheckRule, Diagnostic, Instruction, Program, assemble, check, diagnose
from ringfence.bpf.check import ANCILLARY, GENERIC_CODES, IOURING_CODES, SKF_AD_OFF, WHOLE_PROGRAM
from ringfence.errors import CheckError

R = CheckRule

#: Stage 2: the generic socket-filter code table.
GENERIC = frozenset({
    0x04, 0x0C, 0x14, 0x1C, 0x24, 0x2C, 0x34, 0x3C, 0x44, 0x4C, 0x54, 0x5C, 0x64, 0x6C, 0x74, 0x7C,  # ALU
    0x84, 0x94, 0x9C, 0xA4, 0xAC,                                                                      # NEG, MOD, XOR
    0x00, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50, 0x60, 0x80,                                              # LD
    0x01, 0x61, 0x81, 0xB1,                                                                            # LDX
    0x02, 0x03, 0x07, 0x87, 0x06, 0x16,                                                      # ST STX TAX TXA RET
    0x05, 0x15, 0x1D, 0x25, 0x2D, 0x35, 0x3D, 0x45, 0x4D,                                              # JMP
})
#: Stage 3: io_uring's whitelist (0x20, 0x80 and 0x81 are accepted and rewritten).
WHITELIST = frozenset({
    0x20, 0x80, 0x81, 0x00, 0x01, 0x60, 0x61, 0x02, 0x03,
    0x04, 0x0C, 0x14, 0x1C, 0x24, 0x2C, 0x34, 0x3C, 0x44, 0x4C, 0x54, 0x5C, 0x64, 0x6C, 0x74, 0x7C, 0xA4, 0xAC,
    0x84, 0x07, 0x87, 0x05, 0x15, 0x1D, 0x25, 0x2D, 0x35, 0x3D, 0x45, 0x4D, 0x06, 0x16,
})


def rules(program: Program, **kw: bool) -> list[tuple[CheckRule, int]]:
    return [(d.rule, d.pc) for d in diagnose(program, **kw)]


def prog(*items: tuple[int, int, int, int]) -> Program:
    return Program.of(*items)


RET0 = (0x06, 0, 0, 0)

REJECTIONS = [
    # (name, program, every (rule, pc) in order)
    ("empty", Program(), [(R.EMPTY, WHOLE_PROGRAM)]),
    ("too long", Program((Instruction(0x06),) * 4097), [(R.TOO_LONG, WHOLE_PROGRAM)]),
    ("unknown code NEG|X", prog((0x00, 0, 0, 0), (0x8C, 0, 0, 0), RET0),
     [(R.UNKNOWN_CODE, 1), (R.NOT_WHITELISTED, 1)]),
    ("unknown code above 0xff", prog((0x106, 0, 0, 0), RET0), [(R.UNKNOWN_CODE, 0), (R.NOT_WHITELISTED, 0)]),
    ("div by constant 0", prog((0x34, 0, 0, 0), RET0), [(R.DIV_BY_ZERO, 0)]),
    ("mod by constant 0", prog((0x94, 0, 0, 0), RET0), [(R.DIV_BY_ZERO, 0), (R.NOT_WHITELISTED, 0)]),
    ("lsh by 32", prog((0x64, 0, 0, 32), RET0), [(R.SHIFT_TOO_LARGE, 0)]),
    ("rsh by 0xffffffff", prog((0x74, 0, 0, 0xFFFFFFFF), RET0), [(R.SHIFT_TOO_LARGE, 0)]),
    ("st M[16]", prog((0x02, 0, 0, 16), RET0), [(R.SCRATCH_INDEX, 0)]),
    ("ldx M[16]", prog((0x61, 0, 0, 16), RET0), [(R.SCRATCH_INDEX, 0)]),
    ("ja to the end", prog((0x05, 0, 0, 1), RET0), [(R.JA_OUT_OF_RANGE, 0)]),
    ("ja k wraps in 32 bits", prog((0x05, 0, 0, 0xFFFFFFFF), RET0), [(R.JA_OUT_OF_RANGE, 0)]),
    ("jt past the end", prog((0x15, 1, 0, 0), RET0), [(R.JUMP_OUT_OF_RANGE, 0)]),
    ("jf past the end", prog((0x4D, 0, 255, 0), RET0), [(R.JUMP_OUT_OF_RANGE, 0)]),
    ("unknown ancillary", prog((0x20, 0, 0, SKF_AD_OFF + 64), RET0),
     [(R.UNKNOWN_ANCILLARY, 0), (R.CTX_OFFSET, 0)]),
    ("unaligned ancillary", prog((0x30, 0, 0, SKF_AD_OFF + 1), RET0),
     [(R.UNKNOWN_ANCILLARY, 0), (R.NOT_WHITELISTED, 0)]),
    ("no final return", prog((0x00, 0, 0, 0)), [(R.NO_FINAL_RET, 0)]),
    ("final ret x", prog(RET0, (0x0E, 0, 0, 0)), [(R.UNKNOWN_CODE, 1), (R.NO_FINAL_RET, 1), (R.NOT_WHITELISTED, 1)]),
    ("scratch read first", prog((0x60, 0, 0, 0), (0x16, 0, 0, 0)), [(R.SCRATCH_UNINIT, 0)]),
    ("ldh", prog((0x28, 0, 0, 0), RET0), [(R.NOT_WHITELISTED, 0)]),
    ("ld [x + k]", prog((0x40, 0, 0, 0), RET0), [(R.NOT_WHITELISTED, 0)]),
    ("msh", prog((0xB1, 0, 0, 14), RET0), [(R.NOT_WHITELISTED, 0)]),
    ("mod", prog((0x94, 0, 0, 7), RET0), [(R.NOT_WHITELISTED, 0)]),
    ("known ancillary", prog((0x20, 0, 0, SKF_AD_OFF), RET0), [(R.CTX_OFFSET, 0)]),
    ("known ancillary, byte", prog((0x30, 0, 0, SKF_AD_OFF + 60), RET0), [(R.NOT_WHITELISTED, 0)]),
    ("ctx load at 40", prog((0x20, 0, 0, 40), RET0), [(R.CTX_OFFSET, 0)]),
    ("ctx load unaligned", prog((0x20, 0, 0, 2), RET0), [(R.CTX_OFFSET, 0)]),
    ("ctx load in SKF_LL_OFF", prog((0x20, 0, 0, 0xFFE00000), RET0), [(R.CTX_OFFSET, 0)]),
]


@pytest.mark.parametrize(("program", "expected"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
def test_each_rule(program: Program, expected: list[tuple[CheckRule, int]]) -> None:
    found = diagnose(program)
    assert [(d.rule, d.pc) for d in found] == expected
    assert all(d.errno_name == "EINVAL" and d.stage == d.rule.stage for d in found)
    with pytest.raises(CheckError) as info:
        check(program)
    assert info.value.errno_name == "EINVAL" and info.value.diagnostics == found


def test_every_rule_has_a_row() -> None:
    assert {rule for *_, exp in REJECTIONS for rule, _ in exp} == set(CheckRule)


def test_the_literal_tables_match_the_implementation() -> None:
    assert GENERIC == GENERIC_CODES
    assert WHITELIST - {0x20, 0x80, 0x81} == IOURING_CODES
    assert len(GENERIC) == 49 and len(WHITELIST) == 41
    assert sorted(GENERIC - WHITELIST) == [0x28, 0x30, 0x40, 0x48, 0x50, 0x94, 0x9C, 0xB1]


def _k_for(code: int) -> int:
    """A ``k`` that trips no k-rule: nonzero divisors, small shifts."""
    return 1 if code in (0x34, 0x94, 0x64, 0x74) else 0


@pytest.mark.parametrize("code", range(256), ids=lambda c: f"{c:#04x}")
def test_every_code_in_context(code: int) -> None:
    """``ld #0; st M[0]; <code>; ret #0``: stage 2 and stage 3 decide on the code alone."""
    program = prog((0x00, 0, 0, 0), (0x02, 0, 0, 0), (code, 0, 0, _k_for(code)), RET0)
    found = rules(program)
    stage2 = [r for r in found if r[0].stage == 2]
    stage3 = [r for r in found if r[0].stage == 3]
    assert stage2 == ([] if code in GENERIC else [(R.UNKNOWN_CODE, 2)])
    assert stage3 == ([] if code in WHITELIST else [(R.NOT_WHITELISTED, 2)])
    if code in WHITELIST:
        check(program)


@pytest.mark.parametrize("code", range(256), ids=lambda c: f"{c:#04x}")
def test_every_code_alone(code: int) -> None:
    """A one-instruction program is accepted only if it is a return."""
    found = rules(prog((code, 0, 0, _k_for(code))))
    if code in (0x06, 0x16):
        assert found == []
    else:
        assert (R.NO_FINAL_RET, 0) in found
        assert ((R.UNKNOWN_CODE, 0) in found) == (code not in GENERIC)
        assert ((R.JUMP_OUT_OF_RANGE, 0) in found) == (code in GENERIC and code & 7 == 5 and code != 0x05)
        assert ((R.JA_OUT_OF_RANGE, 0) in found) == (code == 0x05)


def test_unused_fields_are_not_validated() -> None:
    p = prog((0x07, 255, 255, 0xFFFFFFFF), (0x84, 1, 2, 3), (0x0C, 9, 9, 9), (0x80, 7, 7, 7), (0x16, 3, 3, 3))
    assert diagnose(p) == ()
    checked = check(p)
    assert checked.program[3] == Instruction(0x00, 7, 7, 40)  # jt/jf survive the LEN rewrite


def test_kernel_order_and_every_problem() -> None:
    p = prog((0x94, 0, 0, 0), (0x60, 0, 0, 3), (0x20, 0, 0, 41), (0x15, 9, 0, 0), (0x28, 0, 0, 0))
    assert rules(p) == [
        (R.DIV_BY_ZERO, 0), (R.JUMP_OUT_OF_RANGE, 3), (R.NO_FINAL_RET, 4), (R.SCRATCH_UNINIT, 1),
        (R.NOT_WHITELISTED, 0), (R.CTX_OFFSET, 2), (R.NOT_WHITELISTED, 4),
    ]
    assert [d.stage for d in diagnose(p)] == [2, 2, 2, 2, 3, 3, 3]


def test_length_limits() -> None:
    check(Program((Instruction(0x06),) * 4096))
    check(Program.of(RET0))


def test_ja_reaches_the_last_instruction() -> None:
    check(prog((0x05, 0, 0, 1), RET0, RET0))
    check(prog((0x15, 1, 0, 0), RET0, RET0))


@pytest.mark.parametrize(("src", "ok"), [
    ("st M[0]\n ld M[0]\n ret a", True),
    ("ldx #1\n stx M[5]\n ldx M[5]\n ret #0", True),
    ("jeq #0, t\n st M[0]\nt: ld M[0]\n ret a", False),        # not written on the taken path
    ("jeq #0, t, f\nt: st M[1]\n ja j\nf: st M[1]\nj: ld M[1]\n ret a", True),
    ("jeq #0, t, f\nt: st M[1]\n ja j\nf: st M[2]\nj: ld M[1]\n ret a", False),
    ("st M[2]\n jeq #0, t\n ld M[2]\nt: ld M[2]\n ret a", True),
    ("ja t\n ld M[7]\nt: ret #0", True),      # unreachable after a jump: treated as written
    ("ret #0\n ld M[7]\n ret #0", False),     # after a return the running set carries on (kernel algorithm)
])
def test_scratch_memory_flow(src: str, ok: bool) -> None:
    found = rules(assemble(src))
    assert (found == []) == ok, found
    assert all(rule is R.SCRATCH_UNINIT for rule, _ in found)


def test_ancillary_table() -> None:
    assert ANCILLARY[SKF_AD_OFF] == "PROTOCOL" and ANCILLARY[SKF_AD_OFF + 60] == "VLAN_TPID" and len(ANCILLARY) == 16
    for k in ANCILLARY:
        assert rules(prog((0x28, 0, 0, k), RET0)) == [(R.NOT_WHITELISTED, 0)]
    assert "SKF_AD_RANDOM" in diagnose(prog((0x30, 0, 0, SKF_AD_OFF + 56), RET0))[0].message


def test_rewrites() -> None:
    source = assemble("ld [socket.type]\n ldx #len\n ld len\n ret a")
    checked = check(source)
    assert checked.source == source
    assert [(i.code, i.k) for i in checked.program] == [(0x21, 20), (0x01, 40), (0x00, 40), (0x16, 0)]
    assert len(checked) == 4


class TestDeadCodeRewrite:
    """[UNCONFIRMED] April-2025 proposal (spec §5.5, §10.2 q4): dead code becomes ``ld #0`` after stage 2."""

    dead_mod = prog((0x05, 0, 0, 1), (0x94, 0, 0, 7), (0x06, 0, 0, 1))

    def test_default_is_no_rewrite(self) -> None:
        assert rules(self.dead_mod) == [(R.NOT_WHITELISTED, 1)]

    def test_rewrite_accepts_dead_forbidden_code(self) -> None:
        assert rules(self.dead_mod, dead_code_rewrite=True) == []
        checked = check(self.dead_mod, dead_code_rewrite=True)
        assert checked.program[1] == Instruction(0x00) and checked.dead_code_rewrite
        assert checked.source == self.dead_mod

    def test_stage_two_still_sees_dead_code(self) -> None:
        p = prog((0x05, 0, 0, 1), (0x8C, 0, 0, 0), (0x06, 0, 0, 1))
        assert (R.UNKNOWN_CODE, 1) in rules(p, dead_code_rewrite=True)
        p = prog(RET0, (0x60, 0, 0, 0), RET0)  # scratch check runs before the rewrite
        assert rules(p, dead_code_rewrite=True) == [(R.SCRATCH_UNINIT, 1)]

    def test_live_code_is_kept(self) -> None:
        p = assemble("ld [16]\n jeq #2, t\n ldh [0]\nt: ret #0\n ret #1")
        assert rules(p, dead_code_rewrite=True) == [(R.NOT_WHITELISTED, 2)]
        assert check(assemble("ret #0\n ret #1"), dead_code_rewrite=True).program[1] == Instruction(0x00)


def test_checked_program_is_made_only_by_check() -> None:
    with pytest.raises(TypeError):
        CheckedProgram(Program(), Program(), False, _seal=object())
    a, b = check(Program.of(RET0)), check(Program.of(RET0))
    assert a == b and hash(a) == hash(b) and a != check(Program.of((0x06, 0, 0, 1)))
    assert "1 instructions" in repr(a)


def test_diagnostic_text_and_defaults() -> None:
    d = Diagnostic(3, R.SCRATCH_UNINIT, "m")
    assert d.stage == 2 and d.errno_name == "EINVAL" and str(d) == "pc 3: scratch-uninitialized: m"
    assert str(Diagnostic(WHOLE_PROGRAM, R.EMPTY, "x")) == "program: empty: x"
    with pytest.raises(CheckError, match=r"filter rejected \(EINVAL\): pc 0: div-by-zero.*\(and 1 more\)"):
        check(prog((0x94, 0, 0, 0), RET0))
