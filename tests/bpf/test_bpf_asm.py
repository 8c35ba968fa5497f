"""The assembler: every mnemonic form, the io_uring names and helpers, and errors with positions."""

from __future__ import annotations

import pytest

from ringfence.abi.ctx import LOAD_OFFSETS
from ringfence.bpf import Instruction, Program, assemble
from ringfence.errors import AsmError


def one(line: str) -> tuple[int, int, int, int]:
    """Assemble one instruction (followed by a label ``T`` on the next line and a return)."""
    p = assemble(f"{line}\nT: ret #0\nU: ret #1\n")
    i = p[0]
    return i.code, i.jt, i.jf, i.k


@pytest.mark.parametrize(("line", "expected"), [
    ("ld #7", (0x00, 0, 0, 7)),
    ("ldi 7", (0x00, 0, 0, 7)),
    ("ldi #7", (0x00, 0, 0, 7)),
    ("ld [16]", (0x20, 0, 0, 16)),
    ("ldh [12]", (0x28, 0, 0, 12)),
    ("ldb [23]", (0x30, 0, 0, 23)),
    ("ld [x + 4]", (0x40, 0, 0, 4)),
    ("ldh [%x+4]", (0x48, 0, 0, 4)),
    ("ldb [x + 0]", (0x50, 0, 0, 0)),
    ("ld M[3]", (0x60, 0, 0, 3)),
    ("ld #len", (0x80, 0, 0, 0)),
    ("ld len", (0x80, 0, 0, 0)),
    ("ldx #9", (0x01, 0, 0, 9)),
    ("ldxi 9", (0x01, 0, 0, 9)),
    ("ldx M[15]", (0x61, 0, 0, 15)),
    ("ldx #len", (0x81, 0, 0, 0)),
    ("ldx 4*([14]&0xf)", (0xB1, 0, 0, 14)),
    ("ldxb 4*([14]&0xf)", (0xB1, 0, 0, 14)),
    ("st M[1]", (0x02, 0, 0, 1)),
    ("stx M[2]", (0x03, 0, 0, 2)),
    ("add #1", (0x04, 0, 0, 1)), ("add x", (0x0C, 0, 0, 0)), ("add %x", (0x0C, 0, 0, 0)),
    ("sub #1", (0x14, 0, 0, 1)), ("sub x", (0x1C, 0, 0, 0)),
    ("mul #3", (0x24, 0, 0, 3)), ("mul x", (0x2C, 0, 0, 0)),
    ("div #3", (0x34, 0, 0, 3)), ("div x", (0x3C, 0, 0, 0)),
    ("or #3", (0x44, 0, 0, 3)), ("or x", (0x4C, 0, 0, 0)),
    ("and 0xf", (0x54, 0, 0, 15)), ("and x", (0x5C, 0, 0, 0)),
    ("lsh #3", (0x64, 0, 0, 3)), ("lsh x", (0x6C, 0, 0, 0)),
    ("rsh #3", (0x74, 0, 0, 3)), ("rsh x", (0x7C, 0, 0, 0)),
    ("neg", (0x84, 0, 0, 0)),
    ("mod #3", (0x94, 0, 0, 3)), ("mod x", (0x9C, 0, 0, 0)),
    ("xor #3", (0xA4, 0, 0, 3)), ("xor x", (0xAC, 0, 0, 0)),
    ("ja U", (0x05, 0, 0, 1)), ("jmp U", (0x05, 0, 0, 1)),
    ("jeq #2, T", (0x15, 0, 0, 2)), ("jeq #2, U, T", (0x15, 1, 0, 2)), ("jeq x, U", (0x1D, 1, 0, 0)),
    ("jgt #2, U", (0x25, 1, 0, 2)), ("jgt x, T, U", (0x2D, 0, 1, 0)),
    ("jge #2, U", (0x35, 1, 0, 2)), ("jge %x, U", (0x3D, 1, 0, 0)),
    ("jset #4, U", (0x45, 1, 0, 4)), ("jset x, U", (0x4D, 1, 0, 0)),
    ("jne #2, U", (0x15, 0, 1, 2)), ("jneq #2, U", (0x15, 0, 1, 2)), ("jne #2, U, T", (0x15, 0, 1, 2)),
    ("jlt #2, U", (0x35, 0, 1, 2)), ("jle #2, U", (0x25, 0, 1, 2)), ("jlt x, U", (0x3D, 0, 1, 0)),
    ("ret #5", (0x06, 0, 0, 5)), ("ret 5", (0x06, 0, 0, 5)), ("ret a", (0x16, 0, 0, 0)),
    ("ret %a", (0x16, 0, 0, 0)), ("ret x", (0x0E, 0, 0, 0)), ("ret ALLOW", (0x06, 0, 0, 1)),
    ("ret DENY", (0x06, 0, 0, 0)),
    ("tax", (0x07, 0, 0, 0)), ("txa", (0x87, 0, 0, 0)), ("TXA", (0x87, 0, 0, 0)),
    (".insn 0x94, 1, 2, 0xffffffff", (0x94, 1, 2, 0xFFFFFFFF)),
    (".insn 0xffff, 255, 255, 0", (0xFFFF, 255, 255, 0)),
])
def test_mnemonics(line: str, expected: tuple[int, int, int, int]) -> None:
    assert one(line) == expected


@pytest.mark.parametrize(("expr", "value"), [
    ("AF_INET", 2), ("AF_INET6", 10), ("AF_UNIX", 1), ("SOCK_STREAM", 1), ("SOCK_CLOEXEC", 0o2000000),
    ("O_CREAT", 0o100), ("O_CREAT|O_RDWR", 0o102), ("RESOLVE_IN_ROOT", 0x10), ("IPPROTO_TCP", 6),
    ("IORING_OP_SOCKET", 45), ("OP_SOCKET", 45), ("OP_CONNECT", 16), ("IOSQE_ASYNC", 0x10),
    ("IOSQE_ASYNC << 8", 0x1000), ("(IOSQE_IO_LINK | IOSQE_ASYNC) << 8", 0x1400), ("1 + 2 << 3", 24),
    ("0xff & 0x0f | 0x100", 0x10F), ("0x100 >> 4", 0x10),
    ("htons(22)", 0x1600), ("htons(80)", 0x5000), ('ip4("127.0.0.1")', 0x0100007F),
    ('inet4("127.0.0.127")', 0x7F00007F), ('ip4("255.255.255.0")', 0x00FFFFFF),
    ('ip6("2001:db8::dead", 0)', 0xB80D0120), ('ip6("2001:db8::dead", 3)', 0xADDE0000),
    ('inet6("::1", 3)', 0x01000000), ('ip6("ffff::", 0)', 0x0000FFFF),
    ("0x10", 16), ("0X10", 16), ("0o17", 15), ("017", 15), ("0b101", 5), ("1_000", 1000), ("0", 0),
    ("4294967295", 0xFFFFFFFF),
])
def test_immediate_expressions(expr: str, value: int) -> None:
    assert one(f"ld #{expr}")[3] == value


@pytest.mark.parametrize("name", sorted(LOAD_OFFSETS))
def test_every_context_field_name(name: str) -> None:
    assert one(f"ld [{name}]") == (0x20, 0, 0, LOAD_OFFSETS[name])


def test_field_names_and_expressions_mix() -> None:
    assert one("ld [open.flags + 4]")[3] == 20
    assert one("ld [connect.v6_addr.2]")[3] == 32
    assert one("ld [user_data.hi]")[3] == 4


def test_comments_labels_and_blank_lines() -> None:
    src = """
    # a comment line
      ; another
    // and another
    start:                      ; a label alone
    second: ld [socket.family]  // trailing comment
            jeq #AF_INET, ok    ; fall through when false
    deny:   ret DENY
    ok:     ret ALLOW
    """
    assert assemble(src) == Program.of((0x20, 0, 0, 16), (0x15, 1, 0, 2), (0x06, 0, 0, 0), (0x06, 0, 0, 1))


def test_label_on_the_jump_itself_and_far_ja() -> None:
    body = "\n".join(["ja far", *["ld #0"] * 300, "far: ret #1"])
    p = assemble(body)
    assert p[0] == Instruction(0x05, 0, 0, 300) and len(p) == 302


def test_empty_source_is_an_empty_program() -> None:
    assert assemble("") == Program()
    assert assemble("; nothing\n\n") == Program()


@pytest.mark.parametrize(("src", "message", "line", "column"), [
    ("ld [foo]", "unknown context field or constant 'foo'", 1, 5),
    ("ld #FOO", "unknown constant 'FOO'", 1, 5),
    ("jeq #1, nowhere\nret #0", "undefined label 'nowhere'", 1, 9),
    ("a1: ret #0\na1: ret #1", "label 'a1' is defined twice", 2, 1),
    ("back: ld #0\njeq #1, back\nret #0", "backward jump", 2, 9),
    ("self: ja self\nret #0", "backward jump", 1, 10),
    ("jeq #1, far\n" + "ld #0\n" * 256 + "far: ret #0", "jt/jf hold at most 255", 1, 9),
    ("frob #1", "unknown mnemonic 'frob'", 1, 1),
    ("ld x", "ld does not take a x operand", 1, 4),
    ("st #1", "st does not take a immediate operand", 1, 4),
    ("ret #1, #2", "ret takes 1 operand(s), not 2", 1, 9),
    ("tax #1", "tax takes 0 operand(s), not 1", 1, 5),
    ("jeq #1", "jeq takes 2 to 3 operand(s), not 1", 1, 1),
    ("ld #0x100000000", "out of range", 1, 5),
    (".insn 0x10000, 0, 0, 0", "out of range", 1, 7),
    (".insn 0, 256, 0, 0", "out of range", 1, 10),
    ("ld #1 << 40", "out of range", 1, 7),
    ('ld #"text"', "only allowed as a function argument", 1, 5),
    ("L: ld #0\nld #L\nret #0", "label 'L' used where a value is expected", 2, 5),
    ("x: ret #0", "'x' cannot be a label", 1, 1),
    ("ld #htons(70000)", "htons(): htons() takes a port number", 1, 5),
    ('ld #ip4("300.1.1.1")', "ip4():", 1, 5),
    ('ld #nope(1)', "unknown function 'nope'", 1, 5),
    ("ld #1 $", "unexpected character '$'", 1, 7),
    ("ld #0x", "malformed number", 1, 5),
    ("ld #1 2", "unexpected '2' after the operands", 1, 7),
    ("ld [16", "expected ']', found end of line", 1, 7),
    ("ja #1", "expected a label", 1, 4),
    ("ldx 4*([14]&0x7)", "4*([k]&0xf)", 1, 13),
    ("123", "expected a mnemonic", 1, 1),
    ("ld #(1", "expected ')'", 1, 7),
    ("ld #,", "expected a number, name or '('", 1, 5),
])
def test_errors_point_at_the_problem(src: str, message: str, line: int, column: int) -> None:
    with pytest.raises(AsmError) as info:
        assemble(src, filename="t.asm")
    err = info.value
    assert message in err.message
    assert (err.line, err.column, err.filename) == (line, column, "t.asm")
    assert err.source_line == src.splitlines()[line - 1]


def test_error_text_has_a_caret() -> None:
    with pytest.raises(AsmError) as info:
        assemble("        ld      [socket.family]\n        jeq     #AF_INET, alow\n", filename="policy.asm")
    assert str(info.value) == ("policy.asm:2:27: error: undefined label 'alow'\n"
                               "            jeq     #AF_INET, alow\n"
                               "                              ^")


class TestHostileSources:
    """Bounded work and clean errors whatever the source: no RecursionError, no raw escape sequences."""

    def test_deep_parentheses_are_an_error_at_the_paren(self) -> None:
        with pytest.raises(AsmError) as info:
            assemble("ld #" + "(" * 110 + "1" + ")" * 110, filename="t.asm")
        assert "nested more than 32 deep" in info.value.message and (info.value.line, info.value.column) == (1, 37)
        assert assemble("ld #" + "(" * 32 + "1" + ")" * 32) == Program.of((0, 0, 0, 1))

    def test_deep_calls_are_an_error(self) -> None:
        with pytest.raises(AsmError, match="nested more than 32 deep"):
            assemble("ld #" + "htons(" * 40 + "1" + ")" * 40)

    @pytest.mark.parametrize("op", ["+", "|", "&", ">>"])
    def test_long_chains_need_no_recursion(self, op: str) -> None:
        program = assemble("ld #" + op.join(["1"] * 1000))
        assert len(program) == 1

    def test_chain_steps_must_fit(self) -> None:
        with pytest.raises(AsmError, match="out of range") as info:
            assemble("ld #0xffffffff + 1 + 0")
        assert info.value.column == 16  # the first '+', whose result overflows

    def test_long_lines_and_many_tokens(self) -> None:
        with pytest.raises(AsmError, match="longer than 4096 characters") as info:
            assemble("ret #0 ; " + "x" * 5000)
        assert info.value.column == 4097 and info.value.source_line == ""
        with pytest.raises(AsmError, match="more than 131072 tokens"):
            assemble("ld #1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1\n" * 4000)

    def test_control_characters_never_reach_the_message(self) -> None:
        with pytest.raises(AsmError) as info:
            assemble("\tld [16\x1b]2;x\x07]\u202e", filename="a\x1bb.asm")
        text = str(info.value)
        assert all(c.isprintable() or c == "\n" for c in text)
        assert text.splitlines()[0] == "a␛b.asm:1:8: error: unexpected character '\\x1b'"
        assert text.splitlines()[1] == "     ld [16␛]2;x␇]\ufffd"
        assert text.splitlines()[2].index("^") == text.splitlines()[1].index("␛")

    def test_huge_numbers_are_quoted_short(self) -> None:
        with pytest.raises(AsmError) as info:
            assemble("ld #" + "9" * 4090)
        assert len(info.value.message) < 100
