"""``ringfence scenario``: actions, output, exit codes (0 pass, 1 mismatch, 3 malformed, 5 skipped/unavailable)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ringfence.cli.main import main

PASSING = """
[scenario]
name = "deny_nop"
requires = ["bpf_filter"]

[[step]]
do = "nnp"

[[step]]
do = "filter"
opcode = "NOP"
program = "ret #0"
expect = "ok"
expect_pdu_size = 0

[[step]]
do = "ring"
ring = "r"

[[step]]
do = "submit"
ring = "r"
sqes = [{ op = "NOP", ud = 1 }]
expect = { submitted = 1, cqes = { 1 = "EACCES" } }
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {"pass": tmp_path / "pass.toml", "fail": tmp_path / "fail.toml", "bad": tmp_path / "bad.toml"}
    out["pass"].write_text(PASSING)
    out["fail"].write_text(PASSING.replace('1 = "EACCES"', '1 = "ok"'))
    out["bad"].write_text(PASSING.replace('ring = "r"\nsqes', 'ring = "nope"\nsqes'))
    return out


def test_run_pass(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "run", str(files["pass"]), "--kernel", "7.2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS  deny_nop (model, 7.2)")
    assert "expected submitted=1 [1:EACCES]" in out


def test_run_mismatch(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "run", str(files["fail"])]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_run_malformed(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "run", str(files["bad"])]) == 3
    assert "unknown ring 'nope'" in capsys.readouterr().err


def test_run_all_skipped(files: dict[str, Path]) -> None:
    assert main(["scenario", "run", str(files["pass"]), "--kernel", "6.18"]) == 5


def test_run_json(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "run", str(files["pass"]), str(files["fail"]), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == 1 and [r["status"] for r in data["reports"]] == ["pass", "fail"]
    assert data["reports"][0]["transcript"]["schema"] == 1


def test_unknown_kernel(files: dict[str, Path]) -> None:
    assert main(["scenario", "run", str(files["pass"]), "--kernel", "9.9"]) == 2


def test_generate_to_directory_then_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gen"
    assert main(["scenario", "generate", "--seed", "7", "--count", "3", "--out", str(out)]) == 0
    written = sorted(out.glob("*.json"))
    assert len(written) == 3 and capsys.readouterr().out.split() == [str(p) for p in written]
    assert main(["scenario", "run", str(out), "--kernel", "7.3"]) == 0  # no expectations: transcripts only


def test_generate_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "generate", "--seed", "1", "--classic-only", "--max-steps", "5"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["step"]) == 5 and doc["scenario"]["kernels"] == ["*"]


def test_explain(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "explain", str(files["pass"]), "--kernel", "7.2"]) == 0
    out = capsys.readouterr().out
    assert "ud=1 NOP -> EACCES: [filter.denied] a filter for this opcode returned 0 (chain position 0)" in out
    assert "#0 filter#1 (task main, step 1): returned 0 after 1 instructions [inherited]" in out
    assert "§" not in out
    assert main(["scenario", "explain", str(files["pass"]), "--json"]) == 0
    decision = json.loads(capsys.readouterr().out)["transcripts"][0]["steps"][3]["raw"]["requests"][0]["decision"]
    assert (decision["rule"], decision["mechanism"]) == ("filter.denied", "filter")


def test_live_unavailable(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ringfence.harness.backend", None)
    assert main(["scenario", "run", str(files["pass"]), "--backend", "live"]) == 5
    assert "live backend not available" in capsys.readouterr().err
    assert main(["scenario", "diff", str(files["pass"])]) == 5


def test_no_action(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario"]) == 2
