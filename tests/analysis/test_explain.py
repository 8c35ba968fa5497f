"""``ringfence explain``: every liburing program in the corpus, explained from its bytes, written out as a policy
file, loaded and compiled back, proves equal to the original; a wrong explanation does not."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from ringfence.abi.opcodes import sqe_op
from ringfence.abi.profiles import profile
from ringfence.bpf.asm.assemble import assemble
from ringfence.bpf.check import check
from ringfence.bpf.insn import Program
from ringfence.bpf.interp import run
from ringfence.cli.check import read_input
from ringfence.cli.main import main
from ringfence.policy.ast import OneOf, Predicate
from ringfence.policy.compile import ALLOW_ALL, DENY_ALL, compile_policy
from ringfence.policy.explain import compile_back, explain_program, explained_policy, render_policy_toml
from ringfence.policy.ir import TRUE
from ringfence.policy.load import loads
from ringfence.policy.prove import Side, differences

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = sorted((ROOT / "tests/corpus/programs").glob("liburing_*.asm"))
PROFILE = profile("7.2")


def _opcode(path: Path) -> int:
    found = re.search(r"IORING_OP_(\w+)", path.read_text())
    assert found, path
    return int(sqe_op(found.group(1)))


def _program_of(policy_text: str, op: int) -> Program:
    compiled = compile_policy(loads(policy_text), PROFILE)
    if op in compiled.programs:
        return compiled.programs[op].built.program
    return Program.from_bytes(ALLOW_ALL if compiled.decisions[op] == TRUE else DENY_ALL)


def _equal(original: Program, back: Program, op: int) -> tuple[object, ...]:
    return differences(Side("original", program=check(original), opcode=op),
                       Side("explained", program=check(back), opcode=op), PROFILE)


def test_the_corpus_has_liburing_programs() -> None:
    assert len(PROGRAMS) >= 19


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_explanation_written_as_a_policy_compiles_back_equal(path: Path) -> None:
    op = _opcode(path)
    original = read_input("test", str(path), None)
    e = explain_program(original, op, PROFILE)
    assert e.in_language, path.stem
    text = render_policy_toml(explained_policy([e], PROFILE))
    back = _program_of(text, op)  # through the TOML text: the loader reads what explain wrote
    assert _equal(original, back, op) == ()


def test_a_wrong_explanation_is_caught_with_a_witness() -> None:
    path = ROOT / "tests/corpus/programs/liburing_connect_allow_port.asm"
    op = _opcode(path)
    original = read_input("test", str(path), None)
    e = explain_program(original, op, PROFILE)
    assert e.rules is not None
    wrong = [tuple(Predicate(p.field, (OneOf((8080,)),)) if p.field == "connect.port" else p for p in r)
             for r in e.rules]
    bad = dataclasses.replace(e, rules=tuple(wrong))
    back, how = compile_back(bad, PROFILE)
    assert how == "policy"
    found = _equal(original, back, op)
    assert found
    w = found[0].witness  # type: ignore[attr-defined]
    assert run(check(original), w.ctx).allowed != run(check(back), w.ctx).allowed


def test_outside_the_language_compiles_back_from_word_conditions() -> None:
    # a comparison on the low word of open.flags (an 8-byte field): no predicate says "flags > 0x8000"
    src = "ld [16]\njgt #0x8000, yes, no\nyes: ret #1\nno: ret #0\n"
    op = int(sqe_op("OPENAT"))
    program = assemble(src)
    e = explain_program(program, op, PROFILE)
    assert not e.in_language
    back, how = compile_back(e, PROFILE)
    assert how == "words"
    assert _equal(program, back, op) == ()


def test_header_tests_the_kernel_decides_are_cut() -> None:
    # word 8's low byte is the opcode: the test is decided, so SOCKET's program is just its family test
    src = "ld [8]\nand #0xff\njeq #45, sock, no\nsock: ld [16]\njeq #2, yes, no\nyes: ret #1\nno: ret #0\n"
    e = explain_program(assemble(src), int(sqe_op("SOCKET")), PROFILE)
    assert e.rules is not None and len(e.rules) == 1
    assert [p.field for p in e.rules[0]] == ["socket.family"]


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("name", ["web-client", "tcp-server", "file-reader", "no-network-worker", "untrusted-ring"])
def test_example_policies_explained_and_proven(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(["explain", str(ROOT / f"examples/policies/{name}.toml"), "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == 1
    assert doc["proof"] == {"compiled_back_from": "policy", "equal": True}


def test_cli_program_json_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = str(ROOT / "tests/corpus/programs/liburing_connect_deny_port.asm")
    code, out, _ = _cli(["explain", prog, "--opcode", "CONNECT", "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == 1 and doc["proof"]["equal"] is True
    assert doc["opcodes"][0]["verdict"] == "denied"
    assert _cli(["explain", prog], capsys)[0] == 2
    assert _cli(["explain", prog, "--opcode", "NOPE"], capsys)[0] == 2
    scratch = tmp_path / "scratch.asm"
    scratch.write_text("ld [16]\nst M[0]\nld M[0]\njeq #2, yes, no\nyes: ret #1\nno: ret #0\n")
    code, out, _ = _cli(["explain", str(scratch), "--opcode", "SOCKET"], capsys)
    assert code == 5 and "not a decision over context words" in out
    broken = tmp_path / "broken.asm"
    broken.write_text("ld [16]\njeq #2, nowhere\n")
    code, _, err = _cli(["explain", str(broken), "--opcode", "SOCKET"], capsys)
    assert code == 3 and "broken.asm:2" in err and "Traceback" not in err


POLICIES = sorted((ROOT / "tests/corpus/policies").glob("*/*.toml"))


@pytest.mark.parametrize("path", POLICIES, ids=[f"{p.parent.name}/{p.stem}" for p in POLICIES])
def test_corpus_policy_explained_as_toml_diffs_equal(path: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(["explain", str(path), "--toml"], capsys)
    assert code == 0
    written = tmp_path / "explained.toml"
    written.write_text(out)
    code, out, _ = _cli(["diff", str(path), str(written), "--json"], capsys)
    assert code == 0 and json.loads(out)["differences"] == []
