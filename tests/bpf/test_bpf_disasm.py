"""The disassembler: exact listings, raw escapes, notes, and the round trip."""

from __future__ import annotations

import pytest

from ringfence.bpf import Instruction, Program, assemble, check, disassemble, disassembly
from ringfence.bpf.text import FORMS, code_name, render_line


def listing(program: Program) -> list[str]:
    return disassemble(program, annotate=False).splitlines()


def test_annotated_listing() -> None:
    p = assemble("ld [socket.type]\n and #0xf\n jeq #SOCK_STREAM, ok\n ret DENY\nok: ret ALLOW")
    assert disassemble(p) == (
        "; ringfence listing format 1\n"
        "; 5 instructions\n"
        "        ld      [20]                         ;    0  socket.type, connect.port, open.flags.hi\n"
        "        and     #0xf                         ;    1\n"
        "        jeq     #1, L4                       ;    2  SOCK_STREAM\n"
        "        ret     #0                           ;    3  deny\n"
        "L4:     ret     #1                           ;    4  allow\n"
    )


def test_plain_listing_has_no_comments() -> None:
    p = assemble("ld #len\n jeq x, t, f\nt: ret a\nf: ret #0")
    assert listing(p) == ["        ld      #len", "        jeq     x, L2, L3", "L2:     ret     a",
                          "L3:     ret     #0"]
    assert disassemble(Program(), annotate=False) == ""
    assert disassemble(Program()) == "; ringfence listing format 1\n; 0 instructions\n"


@pytest.mark.parametrize(("insn", "text"), [
    (Instruction(0x8C), ".insn   0x8c, 0, 0, 0x0"),           # NEG|X: no mnemonic
    (Instruction(0x21, 0, 0, 16), ".insn   0x21, 0, 0, 0x10"),  # the kernel's rewritten ctx load
    (Instruction(0x06, 1, 0, 0), ".insn   0x06, 1, 0, 0x0"),    # unused jt set
    (Instruction(0x07, 0, 0, 5), ".insn   0x07, 0, 0, 0x5"),    # unused k set
    (Instruction(0x1D, 0, 0, 5), ".insn   0x1d, 0, 0, 0x5"),    # X-form jump with k
    (Instruction(0x15, 9, 0, 0), ".insn   0x15, 9, 0, 0x0"),    # jump past the end
    (Instruction(0x05, 0, 0, 0xFFFFFFFF), ".insn   0x05, 0, 0, 0xffffffff"),
    (Instruction(0xFFFF, 255, 255, 0xFFFFFFFF), ".insn   0xffff, 255, 255, 0xffffffff"),
])
def test_raw_escapes(insn: Instruction, text: str) -> None:
    p = Program((insn, Instruction(0x06)))
    assert listing(p)[0] == " " * 8 + text
    assert assemble(disassemble(p)) == p


def test_notes() -> None:
    p = assemble("""
        ld [connect.family]
        jeq #AF_INET, v4
        jeq #AF_INET6, v6, other
    v4: ld [connect.port]
        jeq #htons(22), deny
        ld [connect.v4_addr]
        jeq #ip4("10.0.0.1"), deny, allow
    v6: ld [connect.v6_addr.0]
        jeq #ip6("fe80::", 0), deny, allow
    other: ld [connect.v4_addr]
        jeq #ip4("10.0.0.1"), deny, allow
    allow: ret ALLOW
    deny:  ret DENY
    """)
    notes = [line.note for line in disassembly(p)]
    assert notes[1:3] == ["AF_INET", "AF_INET6"] and notes[4] == "htons(22)" and notes[6] == 'ip4("10.0.0.1")'
    assert notes[8] == 'ip6("fe80::", 0)' and notes[10] == 'ip4("10.0.0.1") or ip6("a00:1::", 0)'
    assert notes[11:] == ["allow", "deny"]


def test_notes_need_a_known_word() -> None:
    p = assemble("ld [8]\n and #0xff\n jeq #IORING_OP_SOCKET, t\n ld [8]\n jset #IOSQE_ASYNC << 8, t\n"
                 " ld [32]\n jset #RESOLVE_IN_ROOT|RESOLVE_BENEATH, t\n ld #2\n jeq #2, t\nt: ret #1")
    notes = [line.note for line in disassembly(p)]
    assert notes[2] == "IORING_OP_SOCKET" and notes[4] == "(IOSQE_ASYNC)<<8"
    assert notes[6] == "RESOLVE_BENEATH|RESOLVE_IN_ROOT" and notes[8] == ""  # A came from ld #2


def test_notes_merge_paths() -> None:
    p = assemble("ld [16]\n jeq #1, t\n ld [20]\nt: jeq #2, u\nu: ret #0")
    assert disassembly(p)[3].note == ""  # A is word 16 on one path and word 20 on the other


def test_lines_are_data() -> None:
    lines = disassembly(assemble("jeq #1, t\n ret #0\nt: ret #1"))
    assert [(x.pc, x.label, x.mnemonic, x.operands) for x in lines] == [
        (0, "", "jeq", "#1, L2"), (1, "", "ret", "#0"), (2, "L2", "ret", "#1")]
    assert lines[2].is_jump_target and not lines[0].is_jump_target


def test_checked_program_lists_its_rewrites() -> None:
    checked = check(assemble("ld [16]\n ld #len\n ret a"))
    text = disassemble(checked.program)
    assert ".insn   0x21, 0, 0, 0x10" in text and "kernel's rewritten context load" in text
    assert "ld      #0x28" in text
    assert assemble(text) == checked.program


def test_code_names() -> None:
    assert code_name(0x20) == "LD|W|ABS" and code_name(0x94) == "ALU|MOD|K" and code_name(0x16) == "RET|A"
    assert code_name(0x8C) == "ALU|NEG|X" and code_name(0x87) == "MISC|TXA" and code_name(0x1234) == "0x1234"
    assert code_name(0xB1) == "LDX|B|MSH" and code_name(0x4D) == "JMP|JSET|X"


def test_every_form_round_trips_alone() -> None:
    for code, (name, _) in FORMS.items():
        insn = Instruction(code, 0, 0, 0 if code & 7 == 5 or not Instruction(code).uses_k() else 3)
        p = Program((insn, Instruction(0x06)))
        assert assemble(disassemble(p)) == p, code
        assert render_line(insn, 0, 2).split()[0] == name


def test_16_bit_codes_round_trip() -> None:
    codes = [*range(0x200), *range(0x200, 1 << 16, 61)]
    p = Program(tuple(Instruction(code, code & 1, code >> 15, code * 7919 & 0xFFFFFFFF) for code in codes))
    assert assemble(disassemble(p, annotate=False)) == p
