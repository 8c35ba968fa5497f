"""``ringfence diff``: a planted one-rule difference is found, and its witness is confirmed independently — by
the cBPF interpreter on the Plan's own filter bytes, and by the kernel model's request init for classic ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ringfence.abi.opcodes import SqeOp
from ringfence.abi.profiles import profile
from ringfence.abi.sqe import Sqe
from ringfence.bpf.check import check
from ringfence.bpf.insn import Program
from ringfence.bpf.interp import run
from ringfence.cli.main import main
from ringfence.model.decide import decide
from ringfence.policy import semantics
from ringfence.policy.compile import Compiled, compile_policy
from ringfence.policy.load import load, loads
from ringfence.policy.prove import Side, differences
from ringfence.policy.replay import apply_variant

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "examples/policies/web-client.toml"
PROFILE = profile("7.2")


def _side(text: str, label: str) -> tuple[Side, Compiled]:
    compiled = compile_policy(loads(text, name=label), PROFILE)
    variant = compiled.plan.variants[0]
    return Side(label, apply_variant(variant, compiled.plan.target, PROFILE, inherited=False)), compiled


def _filter_verdict(compiled: Compiled, op: int, ctx: bytes) -> bool:
    """The Plan's own filter bytes for ``op`` run by the interpreter (allow when it has no filter)."""
    regs = [r.filter for r in compiled.plan.variants[0].registrations if r.filter is not None
            and r.filter.opcode == op]
    return all(run(check(Program.from_bytes(f.program)), ctx).allowed for f in regs)


def test_planted_filter_difference_has_a_witness_the_interpreter_confirms() -> None:
    base = WEB.read_text()
    planted = base.replace("connect.port = [80, 443]", "connect.port = [80, 443, 8080]")
    assert planted != base
    a, ca = _side(base, "a")
    b, cb = _side(planted, "b")
    found = differences(a, b, PROFILE)
    assert [d.opcode for d in found] == [int(SqeOp.CONNECT)]
    w = found[0].witness
    assert w is not None and not found[0].a_allows and found[0].b_allows
    assert int.from_bytes(w.ctx[20:22], "big") == 8080
    assert _filter_verdict(ca, w.opcode, w.ctx) is False
    assert _filter_verdict(cb, w.opcode, w.ctx) is True
    # and the policies' own evaluator agrees
    assert not semantics.decide(load(WEB), w.opcode, w.raw_flags or 0, w.ctx).allowed
    assert semantics.decide(loads(planted), w.opcode, w.raw_flags or 0, w.ctx).allowed
    # narrower-only: B widens A; A does not widen B
    assert differences(a, b, PROFILE, widening_only=True)
    assert not differences(b, a, PROFILE, widening_only=True)


def test_planted_classic_difference_is_confirmed_by_model_decide() -> None:
    base = WEB.read_text()
    planted = base.replace('ops = ["READ", "WRITE",', 'ops = ["FSYNC", "READ", "WRITE",')
    a, _ = _side(base, "a")
    b, _ = _side(planted, "b")
    found = differences(a, b, PROFILE)
    assert [d.opcode for d in found] == [int(SqeOp.FSYNC)]
    w = found[0].witness
    assert w is not None
    sqe = Sqe(opcode=w.opcode, flags=w.raw_flags or 0)
    assert a.applied is not None and b.applied is not None
    assert a.applied.state is not None and b.applied.state is not None
    assert decide(a.applied.state, sqe, PROFILE).allowed is False
    assert decide(b.applied.state, sqe, PROFILE).allowed is True


def test_same_policy_has_no_difference() -> None:
    a, _ = _side(WEB.read_text(), "a")
    b, _ = _side(WEB.read_text().replace("reason = \"the local proxy\"", "reason = \"renamed\""), "b")
    assert differences(a, b, PROFILE) == ()


def test_programs_compare_on_their_opcode() -> None:
    from ringfence.cli.check import read_input

    def side(name: str) -> Side:
        path = str(ROOT / f"tests/corpus/programs/liburing_{name}.asm")
        return Side(name, program=check(read_input("t", path, None)), opcode=int(SqeOp.CONNECT))

    found = differences(side("connect_allow_port"), side("connect_deny_port"), PROFILE)
    assert len(found) == 1 and found[0].witness is not None
    w = found[0].witness
    assert run(check(read_input("t", str(ROOT / "tests/corpus/programs/liburing_connect_allow_port.asm"), None)),
               w.ctx).allowed == found[0].a_allows


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_narrower_only_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wide = tmp_path / "wide.toml"
    wide.write_text(WEB.read_text().replace("connect.port = 443\n", "connect.port = [443, 8443]\n"))
    code, out, _ = _cli(["diff", str(WEB), str(wide), "--narrower-only", "--json"], capsys)
    doc = json.loads(out)
    assert code == 1 and doc["schema"] == 1 and doc["widens"] is True
    assert doc["differences"][0]["opcode"] == "CONNECT" and doc["differences"][0]["b"] == "allow"
    assert _cli(["diff", str(wide), str(WEB), "--narrower-only"], capsys)[0] == 0
    assert _cli(["diff", str(wide), str(WEB)], capsys)[0] == 1
    assert _cli(["diff", str(WEB), str(WEB)], capsys)[0] == 0


def test_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[policy]\nname = "x"\n[[allow]]\nop = "OPENATT"\n')
    code, out, err = _cli(["diff", str(WEB), str(broken)], capsys)
    assert code == 3 and "broken.toml:4" in err and "Traceback" not in err
    code, out, _ = _cli(["diff", str(WEB), str(broken), "--json"], capsys)
    assert code == 3 and json.loads(out)["error"]["line"] == 4
    assert _cli(["diff", str(WEB), str(tmp_path / "nope.toml")], capsys)[0] == 2
    prog = str(ROOT / "tests/corpus/programs/liburing_connect_allow_port.asm")
    assert _cli(["diff", prog, prog], capsys)[0] == 2  # programs need --opcode


def test_cli_usage_errors_under_json_are_objects(capsys: pytest.CaptureFixture[str]) -> None:
    prog = str(ROOT / "tests/corpus/programs/liburing_connect_allow_port.asm")
    for command in (["diff", prog, prog], ["explain", prog], ["audit", prog],
                    ["audit", prog, "--opcode", "BOGUS"]):
        code, out, _ = _cli([*command, "--json"], capsys)
        doc = json.loads(out)
        assert code == 2 and doc["schema"] == 1 and doc["error"]["exit"] == 2, command


def test_a_policy_against_a_program_on_its_opcode(capsys: pytest.CaptureFixture[str]) -> None:
    policy = str(ROOT / "tests/corpus/policies/liburing/connect_allow_port.toml")
    same = str(ROOT / "tests/corpus/programs/liburing_connect_allow_port.asm")
    other = str(ROOT / "tests/corpus/programs/liburing_connect_allow_family.asm")
    assert _cli(["diff", policy, same, "--opcode", "CONNECT"], capsys)[0] == 0
    code, out, _ = _cli(["diff", policy, other, "--opcode", "CONNECT", "--json"], capsys)
    doc = json.loads(out)
    assert code == 1 and [d["opcode"] for d in doc["differences"]] == ["CONNECT"]
    assert int.from_bytes(bytes.fromhex(doc["differences"][0]["context"])[20:22], "big") != 80
