"""``ringfence verify`` and ``ringfence compile --prove``: output, JSON, exit codes, counterexamples."""

from __future__ import annotations

import dataclasses
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("z3")

from ringfence.abi.opcodes import SqeOp
from ringfence.bpf import assemble
from ringfence.cli.main import main
from ringfence.policy import compile as compile_module
from ringfence.policy.plan import Plan, Variant

ROOT = Path(__file__).resolve().parents[2]
WEB = str(ROOT / "examples" / "policies" / "web-client.toml")


def test_verify_proves_and_prints_obligations_and_cost(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", WEB]) == 0
    out = capsys.readouterr().out
    assert out.startswith("web-client on kernel 7.2: proven")
    assert "classic: filter CONNECT" in out and "connect.pad-zero: CONNECT: bytes 22-23" in out
    assert "instructions" in out and "pdu_size" in out


def test_verify_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", WEB, "--kernel", "7.3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == 1 and data["result"] == "proven" and data["kernel"] == "7.3"
    assert [a["id"] for a in data["assumptions"]] == ["connect.pad-zero"]
    assert {o["status"] for o in data["obligations"]} == {"proven"}
    assert {row["opcode"] for row in data["cost"]} == {"CONNECT", "OPENAT", "OPENAT2", "SOCKET"}


def test_verify_invalid_policy_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[policy]\nname = "x"\n[[allow]]\nop = "CONECT"\n')
    assert main(["verify", str(bad)]) == 3
    assert "CONNECT" in capsys.readouterr().err  # the closest valid name


def _break_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the compiler emit an allow-all program for CONNECT (in every variant)."""
    real = compile_module.compile_policy

    def broken(*args: Any, **kwargs: Any) -> Any:
        compiled = real(*args, **kwargs)
        variants = []
        for v in compiled.plan.variants:
            regs = tuple(dataclasses.replace(r, filter=dataclasses.replace(
                r.filter, program=assemble("ret #1").to_bytes()))
                if r.filter is not None and r.filter.opcode == SqeOp.CONNECT else r for r in v.registrations)
            variants.append(Variant(v.mechanism, regs))
        return dataclasses.replace(compiled, plan=dataclasses.replace(compiled.plan, variants=tuple(variants)))

    monkeypatch.setattr(compile_module, "compile_policy", broken)


def test_verify_prints_a_counterexample_that_replays(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _break_connect(monkeypatch)
    assert main(["verify", WEB]) == 1
    out = capsys.readouterr().out
    assert "refuted" in out and "counterexample for CONNECT: the filter allows, the policy denies" in out
    replay = next(line.split("replay: ", 1)[1] for line in out.splitlines() if "replay: " in line)
    program_hex = replay.split("echo ", 1)[1].split(" |", 1)[0]
    args = shlex.split(replay.split("| ", 1)[1])
    assert args[0] == "ringfence"
    done = subprocess.run([sys.executable, "-m", "ringfence", *args[1:], "--json"], input=program_hex,
                          capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] == "allow"


def test_compile_prove_records_the_proof(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert main(["compile", WEB, "--prove", "-o", str(out)]) == 0
    plan = Plan.loads(out.read_text())
    assert plan.proof is not None and plan.proof.result == "proven"
    assert plan.proof.assumptions == ("connect.pad-zero",)


def test_compile_prove_refuses_a_wrong_plan(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    _break_connect(monkeypatch)
    out = tmp_path / "plan.json"
    assert main(["compile", WEB, "--prove", "-o", str(out)]) == 1
    assert not out.exists()
    err = capsys.readouterr().err
    assert "the Plan is refuted" in err and "ringfence emu" in err
