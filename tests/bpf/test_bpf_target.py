"""Targets: io_uring's 40-byte context and seccomp's 64-byte one, their names, rules and verdicts."""

from __future__ import annotations

import random

import pytest

from ringfence.abi import seccomp
from ringfence.abi.ctx import LOAD_OFFSETS
from ringfence.bpf import IOURING, SECCOMP, TARGETS, CheckRule, Program, assemble, check, diagnose, disassembly, run
from ringfence.bpf.fast import compile_program
from ringfence.bpf.gen import context, valid_program
from ringfence.errors import AsmError, CheckError


def test_targets_by_name() -> None:
    assert TARGETS == {"io_uring": IOURING, "seccomp": SECCOMP}
    assert (IOURING.ctx_size, SECCOMP.ctx_size) == (40, 64) and IOURING.len_value == 40
    assert IOURING.fields == dict(LOAD_OFFSETS) and repr(SECCOMP) == "<Target seccomp>"
    assert IOURING.codes == SECCOMP.codes and IOURING.rewrites == SECCOMP.rewrites  # io_uring copied seccomp


def test_seccomp_data_layout() -> None:
    data = seccomp.SeccompData(425, seccomp.AUDIT_ARCH_X86_64, 0x1122334455667788, (1, 2, 3, 4, 5, 2**64 - 1))
    raw = data.pack()
    assert len(raw) == 64 and raw[:8] == bytes.fromhex("a90100003e0000c0") and raw[56:] == b"\xff" * 8
    assert seccomp.SeccompData.unpack(raw) == data
    assert SECCOMP.fields["args.5.hi"] == 60 and SECCOMP.fields["instruction_pointer"] == 8
    assert SECCOMP.word_names(16) == ("args.0",) and SECCOMP.word_names(20) == ("args.0.hi",)
    with pytest.raises(ValueError):
        seccomp.SeccompData.unpack(bytes(40))


@pytest.mark.parametrize(("value", "allowed", "text"), [
    (0x7FFF0000, True, "SECCOMP_RET_ALLOW"), (0x7FFC0000, True, "SECCOMP_RET_LOG"),
    (0x00050001, False, "SECCOMP_RET_ERRNO|1"), (0, False, "SECCOMP_RET_KILL_THREAD"),
    (0x80000000, False, "SECCOMP_RET_KILL_PROCESS"),
    (0x12340000, False, "0x12340000: unknown action, kills the process"),
])
def test_seccomp_verdicts(value: int, allowed: bool, text: str) -> None:
    verdict = SECCOMP.verdict(value)
    assert (verdict.allowed, str(verdict)) == (allowed, text)


def test_seccomp_return_split() -> None:
    ret = seccomp.SeccompReturn.of(0x0005FFFF)
    assert ret.action is seccomp.SeccompAction.ERRNO and ret.errno == seccomp.MAX_ERRNO
    assert seccomp.SeccompReturn.of(0x12345678).effective is seccomp.SeccompAction.KILL_PROCESS
    assert IOURING.verdict(7).allowed and str(IOURING.verdict(0)) == "deny"


def test_seccomp_load_rule_and_len() -> None:
    ok = assemble("ld [args.5.hi]\n ld #len\n ret a", target=SECCOMP)
    checked = check(ok, SECCOMP)
    assert [(i.code, i.k) for i in checked.program] == [(0x21, 60), (0x00, 64), (0x16, 0)]
    assert checked.target is SECCOMP and checked != check(Program.of((6, 0, 0, 0)))
    with pytest.raises(CheckError):
        check(ok)  # offset 60 is past io_uring's 40 bytes
    found = diagnose(Program.of((0x20, 0, 0, 64), (6, 0, 0, 0)), SECCOMP)
    assert [d.rule for d in found] == [CheckRule.CTX_OFFSET] and "..., 60 exist" in found[0].message
    found = diagnose(Program.of((0x28, 0, 0, 0), (6, 0, 0, 0)), SECCOMP)
    assert "not allowed in seccomp filters" in found[0].message


def test_seccomp_names_in_the_assembler_only_there() -> None:
    src = "ld [arch]\n jne #AUDIT_ARCH_X86_64, kill\n ld [nr]\n jeq #__NR_io_uring_setup, deny\n" \
          " ret #SECCOMP_RET_ALLOW\ndeny: ret #SECCOMP_RET_ERRNO|1\nkill: ret #SECCOMP_RET_KILL_PROCESS"
    program = assemble(src, target=SECCOMP)
    with pytest.raises(AsmError, match="unknown context field or constant 'arch'"):
        assemble(src)
    with pytest.raises(AsmError, match="IORING_OP_NOP"):
        assemble("ret #IORING_OP_NOP", target=SECCOMP)
    notes = [line.note for line in disassembly(program, SECCOMP)]
    assert notes == ["arch", "AUDIT_ARCH_X86_64", "nr", "__NR_io_uring_setup", "SECCOMP_RET_ALLOW",
                     "SECCOMP_RET_ERRNO|1", "SECCOMP_RET_KILL_PROCESS"]
    checked = check(program, SECCOMP)
    allow = seccomp.SeccompData(1).pack()
    setup = seccomp.SeccompData(425).pack()
    i386 = seccomp.SeccompData(1, seccomp.AUDIT_ARCH_I386).pack()
    assert [checked.evaluate(c) for c in (allow, setup, i386)] == [0x7FFF0000, 0x50001, 0x80000000]
    result = run(checked, setup)
    assert not result.allowed and result.verdict is not None and str(result.verdict) == "SECCOMP_RET_ERRNO|1"


def test_contexts_must_have_the_target_size() -> None:
    checked = check(assemble("ret #1"), SECCOMP)
    with pytest.raises(ValueError, match="struct seccomp_data is 64 bytes, not 40"):
        run(checked, bytes(40))
    with pytest.raises(Exception, match="unpack requires"):
        checked.evaluate(bytes(40))


def test_interpreter_and_fast_path_agree_on_seccomp() -> None:
    rng = random.Random(11)
    for _ in range(200):
        checked = check(valid_program(rng, 30, SECCOMP), SECCOMP)
        fast = compile_program(checked.program, target=SECCOMP)
        for _ in range(4):
            ctx = context(rng, SECCOMP)
            assert len(ctx) == 64 and fast(ctx) == run(checked, ctx).value == checked.evaluate(ctx)
