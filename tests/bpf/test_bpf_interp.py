"""The interpreter: liburing's verdicts (spec §9.3), instruction semantics (§5.6), traces and stepping."""

from __future__ import annotations

import pytest

from ringfence.abi.ctx import ctx_from_fields
from ringfence.abi.opcodes import SqeOp
from ringfence.abi.profiles import profile
from ringfence.bpf import CheckedProgram, Machine, Program, RunResult, assemble, check, run
from ringfence.bpf.semantics import X_SHIFT_MASK, shift_amount

O_LARGEFILE = 0o100000  # OR-ed into open.flags by 64-bit kernels (spec §7.4)


def pdu(opcode: str) -> int:
    return profile("7.2").pdu_size(SqeOp[opcode])


def sock(family: str, type_: str, protocol: int = 0) -> bytes:
    return ctx_from_fields({"opcode": "SOCKET", "pdu_size": pdu("SOCKET"), "socket.family": family,
                            "socket.type": type_, "socket.protocol": protocol}).pack()


def conn(family: str, addr: str | None = None, port: int = 0) -> bytes:
    fields: dict[str, int | str] = {"opcode": "CONNECT", "pdu_size": pdu("CONNECT"), "connect.family": family}
    if addr is not None:
        fields["connect.v6_addr" if ":" in addr else "connect.v4_addr"] = addr
        fields["connect.port"] = port
    return ctx_from_fields(fields).pack()


def opening(opcode: str, flags: int, resolve: int = 0) -> bytes:
    return ctx_from_fields({"opcode": opcode, "pdu_size": pdu(opcode), "open.flags": flags | O_LARGEFILE,
                            "open.resolve": resolve}).pack()


NOP = ctx_from_fields({"opcode": "NOP", "user_data": 0x1234}).pack()
SOCK_STREAM_CLOEXEC = "SOCK_STREAM|SOCK_CLOEXEC"

# (corpus program, context, allowed) — spec §9.3, with the inputs liburing's tests use.
CASES = [
    ("deny_nop", NOP, False),
    ("allow_all", NOP, True),
    ("allow_inet_only", sock("AF_INET", "SOCK_STREAM"), True),
    ("allow_inet_only", sock("AF_INET6", "SOCK_STREAM"), False),
    ("allow_inet_only", sock("AF_UNIX", "SOCK_STREAM"), False),
    ("allow_tcp_only", sock("AF_INET", "SOCK_STREAM", 6), True),
    ("allow_tcp_only", sock("AF_INET", SOCK_STREAM_CLOEXEC), True),
    ("allow_tcp_only", sock("AF_INET", "SOCK_DGRAM", 17), False),
    ("allow_tcp_only", sock("AF_INET6", "SOCK_STREAM"), True),
    ("deny_openat_creat", opening("OPENAT", 0o100 | 0o2), False),  # O_CREAT|O_RDWR
    ("deny_openat_creat", opening("OPENAT", 0), True),             # /dev/null O_RDONLY
    ("deny_openat2_resolve_in_root", opening("OPENAT2", 0o200000, 0x10), False),
    ("deny_openat2_resolve_in_root", opening("OPENAT2", 0o200000, 0), True),
    ("connect_allow_family", conn("AF_INET", "127.0.0.1", 1), True),
    ("connect_allow_family", conn("AF_INET6", "::1", 1), False),
    ("connect_allow_family", conn("AF_UNIX"), False),
    ("connect_deny_family", conn("AF_INET", "127.0.0.1", 1), True),
    ("connect_deny_family", conn("AF_INET6", "::1", 1), True),
    ("connect_deny_family", conn("AF_UNIX"), False),
    ("connect_deny_v4_addr", conn("AF_INET", "127.0.0.1", 1), True),
    ("connect_deny_v4_addr", conn("AF_INET", "127.0.0.127", 1), False),
    ("connect_deny_port", conn("AF_INET", "127.0.0.1", 80), True),
    ("connect_deny_port", conn("AF_INET", "127.0.0.1", 22), False),
    ("connect_deny_inet", conn("AF_INET", "127.0.0.1", 1), False),
    ("connect_deny_inet", conn("0"), True),  # stale addr_len: address length 1 -> family 0 (§7.5)
    ("connect_allow_v4_addr", conn("AF_INET", "127.0.0.1", 80), True),
    ("connect_allow_v4_addr", conn("AF_INET", "127.0.0.127", 80), False),
    ("connect_allow_v4_addr", conn("AF_INET", "127.0.0.2", 80), False),
    ("connect_deny_v6_addr", conn("AF_INET6", "::1", 1), True),
    ("connect_deny_v6_addr", conn("AF_INET6", "2001:db8::1", 1), True),
    ("connect_deny_v6_addr", conn("AF_INET6", "2001:db8::dead", 1), False),
    ("connect_allow_v6_addr", conn("AF_INET6", "::1", 1), True),
    ("connect_allow_v6_addr", conn("AF_INET6", "::2", 1), False),
    ("connect_allow_v6_addr", conn("AF_INET6", "2001:db8::1", 1), False),
    ("connect_allow_port", conn("AF_INET", "127.0.0.1", 80), True),
    ("connect_allow_port", conn("AF_INET", "127.0.0.1", 22), False),
    ("connect_allow_port", conn("AF_INET", "127.0.0.1", 443), False),
    ("connect_deny_v4_subnet", conn("AF_INET", "127.0.0.1", 1), True),
    ("connect_deny_v4_subnet", conn("AF_INET", "127.42.0.1", 1), False),
    ("connect_deny_v4_subnet", conn("AF_INET", "127.42.0.99", 1), False),
    ("connect_allow_v4_subnet", conn("AF_INET", "127.0.0.1", 1), True),
    ("connect_allow_v4_subnet", conn("AF_INET", "127.0.0.99", 1), True),
    ("connect_allow_v4_subnet", conn("AF_INET", "127.42.0.1", 1), False),
    ("connect_deny_v6_subnet", conn("AF_INET6", "::1", 1), True),
    ("connect_deny_v6_subnet", conn("AF_INET6", "2001:db8::1", 1), False),
    ("connect_deny_v6_subnet", conn("AF_INET6", "2001:db8:dead::1", 1), False),
    ("connect_allow_v6_subnet", conn("AF_INET6", "fe80::1", 1), True),
    ("connect_allow_v6_subnet", conn("AF_INET6", "fe80:cafe::beef", 1), True),
    ("connect_allow_v6_subnet", conn("AF_INET6", "2001:db8::1", 1), False),
]


@pytest.mark.parametrize(("name", "ctx", "allowed"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_liburing_verdicts(corpus: dict[str, CheckedProgram], name: str, ctx: bytes, allowed: bool) -> None:
    result = run(corpus[name], ctx)
    assert result.allowed is allowed
    assert result.value == corpus[name].evaluate(ctx)
    assert (corpus[name].evaluate(ctx) != 0) is allowed


def test_every_corpus_program_has_a_case(corpus: dict[str, CheckedProgram]) -> None:
    assert {c[0] for c in CASES} == set(corpus)


@pytest.mark.parametrize(("family", "type_", "allowed"), [
    ("AF_INET", "SOCK_STREAM", True), ("AF_INET", "SOCK_DGRAM", False), ("AF_INET6", "SOCK_STREAM", False),
])
def test_stacked_filters_all_must_allow(corpus: dict[str, CheckedProgram], family: str, type_: str,
                                        allowed: bool) -> None:
    """test_stack_restrictions: INET-only stacked with TCP-only (the chain runs every filter, §6.4)."""
    ctx = sock(family, type_)
    assert all(run(corpus[n], ctx).allowed for n in ("allow_inet_only", "allow_tcp_only")) is allowed


CTX = bytes(range(40))  # word i is 0x(4i+3)(4i+2)(4i+1)(4i) little-endian


def value(src: str, ctx: bytes = CTX) -> int:
    checked = check(assemble(src))
    result = run(checked, ctx).value
    assert checked.evaluate(ctx) == result
    return result


@pytest.mark.parametrize(("src", "expected"), [
    ("ld [0]\n ret a", 0x03020100),
    ("ld [36]\n ret a", 0x27262524),
    ("ld #len\n ret a", 40),
    ("ldx #len\n txa\n ret a", 40),
    ("ld #7\n ret a", 7),
    ("ldx #9\n txa\n ret a", 9),
    ("ld #5\n tax\n ld #0\n txa\n ret a", 5),
    ("ld #0xfffffffe\n add #3\n ret a", 1),
    ("ld #1\n sub #2\n ret a", 0xFFFFFFFF),
    ("ld #0x10000\n mul #0x10001\n ret a", 0x10000),
    ("ld #7\n div #2\n ret a", 3),
    ("ld #0xffffffff\n div #0x10000\n ret a", 0xFFFF),
    ("ld #5\n ldx #0\n div x\n ret #9", 0),  # division by X == 0 ends the run with 0
    ("ld #6\n ldx #4\n div x\n ret a", 1),
    ("ld #0xf0\n or #0x0f\n ret a", 0xFF),
    ("ld #0xf0\n and #0x3c\n ret a", 0x30),
    ("ld #0xf0\n xor #0xff\n ret a", 0x0F),
    ("ld #3\n lsh #31\n ret a", 0x80000000),
    ("ld #0x80000000\n rsh #31\n ret a", 1),
    ("ld #1\n ldx #33\n lsh x\n ret a", 2),       # low 5 bits of X (spec §5.6, [UNCONFIRMED])
    ("ld #4\n ldx #0xffffffe1\n rsh x\n ret a", 2),
    ("ld #1\n neg\n ret a", 0xFFFFFFFF),
    ("ld #0\n neg\n ret a", 0),
    ("ld #2\n ldx #3\n add x\n ret a", 5),
    ("ld #2\n ldx #3\n sub x\n ret a", 0xFFFFFFFF),
    ("ld #2\n ldx #3\n mul x\n ret a", 6),
    ("ld #2\n ldx #3\n or x\n ret a", 3),
    ("ld #2\n ldx #3\n and x\n ret a", 2),
    ("ld #2\n ldx #3\n xor x\n ret a", 1),
    ("ld #9\n st M[15]\n ldx M[15]\n txa\n ret a", 9),
    ("ldx #8\n stx M[0]\n ld M[0]\n ret a", 8),
    ("ld #2\n jeq #2, t\n ret #0\nt: ret #1", 1),
    ("ld #3\n jgt #2, t\n ret #0\nt: ret #1", 1),
    ("ld #2\n jgt #2, t\n ret #0\nt: ret #1", 0),
    ("ld #2\n jge #2, t\n ret #0\nt: ret #1", 1),
    ("ld #0xffffffff\n jgt #1, t\n ret #0\nt: ret #1", 1),  # unsigned
    ("ld #6\n jset #4, t\n ret #0\nt: ret #1", 1),
    ("ld #6\n jset #8, t\n ret #0\nt: ret #1", 0),
    ("ld #2\n ldx #2\n jeq x, t\n ret #0\nt: ret #1", 1),
    ("ld #2\n ldx #1\n jgt x, t\n ret #0\nt: ret #1", 1),
    ("ld #2\n ldx #3\n jge x, t\n ret #0\nt: ret #1", 0),
    ("ld #2\n ldx #1\n jset x, t\n ret #0\nt: ret #1", 0),
    ("ja t\n ret #0\nt: ret #7", 7),
    ("ret #0xffffffff", 0xFFFFFFFF),
])
def test_semantics(src: str, expected: int) -> None:
    assert value(src) == expected


def test_shift_amount_is_the_one_knob() -> None:
    assert X_SHIFT_MASK == 31 and shift_amount(32) == 0 and shift_amount(33) == 1 and shift_amount(31) == 31


def test_result_steps_reads_and_trace() -> None:
    checked = check(assemble("ld [open.resolve]\n and #RESOLVE_IN_ROOT\n jeq #0, ok\n ret DENY\nok: ld [open.flags]\n"
                             " st M[3]\n ret ALLOW"))
    ctx = opening("OPENAT2", 0, 0)
    result = run(checked, ctx)
    assert result == RunResult(True, 1, 6, (32, 16), None)
    traced = run(checked, ctx, trace=True)
    assert traced.trace is not None and [s.pc for s in traced.trace] == [0, 1, 2, 4, 5, 6]
    assert traced.trace[0].text == "ld [32]"  # the instruction as written, not the kernel's 0x21
    assert traced.trace[2].text == "jeq #0, L4"
    assert traced.trace[4].mem == ((3, O_LARGEFILE),) and traced.trace[4].a == O_LARGEFILE
    assert traced.trace[-1].result == 1 and all(s.result is None for s in traced.trace[:-1])
    assert (traced.allowed, traced.value, traced.steps, traced.reads) == (True, 1, 6, (32, 16))


def test_machine_steps_and_snapshots() -> None:
    checked = check(assemble("ld #1\n add #1\n add #1\n ret a"))
    m = Machine(checked, CTX)
    m.step()
    saved = m.snapshot()
    m.step()
    assert m.a == 2 and m.pc == 2 and not m.done
    m.restore(saved)
    assert (m.a, m.pc, m.steps) == (1, 1, 1)
    while not m.done:
        last = m.step()
    assert last.result == 3 and m.result == 3
    with pytest.raises(RuntimeError):
        m.step()
    assert m.text(1) == "add #1"


def test_bad_inputs() -> None:
    checked = check(assemble("ret #1"))
    with pytest.raises(ValueError, match="40 bytes"):
        run(checked, b"\0" * 39)
    with pytest.raises(TypeError):
        run(assemble("ret #1"), CTX)  # type: ignore[arg-type]


def test_dead_code_rewrite_program_runs() -> None:
    checked = check(Program.of((0x05, 0, 0, 1), (0x94, 0, 0, 7), (0x06, 0, 0, 1)), dead_code_rewrite=True)
    assert run(checked, CTX).value == 1 and checked.evaluate(CTX) == 1
