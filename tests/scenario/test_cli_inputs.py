"""``ringfence scenario`` and bad input: a file that cannot be read is a usage error (2), a bad scenario is
invalid input (3) at file:line:col, ``--json`` prints an error object, and there is never a traceback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ringfence.cli.main import main

GOOD = '[scenario]\nname = "caf\\u00e9 ok"\n\n[[step]]\ndo = "nnp"\nexpect = "ok"\n'
RINGFENCE = [sys.executable, "-m", "ringfence.cli.main"]


def _json_error(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == 1
    error = doc["error"]
    assert isinstance(error, dict)
    return error


def test_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.toml")
    for action in ("run", "diff", "explain"):
        assert main(["scenario", action, missing]) == 2
        assert "cannot read: no such file" in capsys.readouterr().err
    assert main(["scenario", "run", missing, "--json"]) == 2
    error = _json_error(capsys)
    assert error["type"] == "UnreadableError" and error["exit"] == 2 and error["file"] == missing


def test_devices_and_fifos_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for name in ("/dev/zero", str(fifo)):
        assert main(["scenario", "run", name]) == 2
        assert "not a regular file" in capsys.readouterr().err


def test_bad_scenario_is_invalid_input_with_position(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace('expect = "ok"', 'expext = "ok"'))
    assert main(["scenario", "run", str(path)]) == 3
    assert capsys.readouterr().err.strip() == (f"ringfence scenario: {path}:6:1: step 0: unknown key `expext` in "
                                               "this `nnp` step; did you mean `expect`?")
    assert main(["scenario", "explain", str(path), "--json"]) == 3
    error = _json_error(capsys)
    assert (error["line"], error["column"], error["step"], error["exit"]) == (6, 1, 0, 3)
    array = tmp_path / "a.json"
    array.write_text("[1, 2]")
    assert main(["scenario", "run", str(array), "--json"]) == 3
    assert "expected a table, found an array" in str(_json_error(capsys)["message"])


def test_empty_directory_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "run", str(tmp_path)]) == 3
    assert "no scenario files" in capsys.readouterr().err


def test_standard_input(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(GOOD.encode())))
    assert main(["scenario", "run", "-", "--kernel", "7.2"]) == 0
    assert capsys.readouterr().out.startswith("PASS  café ok (model, 7.2)")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"[scenario]\nname = 1\n")))
    assert main(["scenario", "run", "-"]) == 3
    assert "<stdin>:2:8: `scenario.name`: expected a string" in capsys.readouterr().err


def test_model_errors_reach_json_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "full.toml"
    path.write_text('[scenario]\nname = "t"\n[[step]]\ndo = "ring"\nring = "r"\nentries = 1\n[[step]]\ndo = "submit"\n'
                    'ring = "r"\nsqes = [{ op = "NOP" }, { op = "NOP" }]\n')
    assert main(["scenario", "run", str(path), "--json"]) == 3
    error = _json_error(capsys)
    assert error["type"] == "ScenarioError" and error["step"] == 1


def test_root_must_be_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text(GOOD)
    assert main(["scenario", "run", str(path), "--root", str(path)]) == 2
    assert main(["scenario", "run", str(path), "--root", str(tmp_path)]) == 0


def test_generate_bounds_and_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "file"
    existing.write_text("keep me")
    assert main(["scenario", "generate", "--seed", "1", "--out", str(existing)]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err and existing.read_text() == "keep me"
    for args in (["--count", "0"], ["--count", "10001"], ["--max-steps", "0"], ["--max-steps", "1001"]):
        assert main(["scenario", "generate", "--seed", "1", *args]) == 2
    (tmp_path / "ro").mkdir(mode=0o500)
    if os.geteuid() != 0:
        assert main(["scenario", "generate", "--seed", "1", "--out", str(tmp_path / "ro" / "x")]) == 2


def test_help_documents_the_exit_codes_and_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["scenario", "--help"])
    out = capsys.readouterr().out
    assert "usage error (2)" in out and "invalid input (3)" in out and "file:line:col" in out
    with pytest.raises(SystemExit):
        main(["scenario", "generate", "--help"])
    out = capsys.readouterr().out
    assert "1..10000" in out and "1..1000" in out


@pytest.mark.parametrize("content", [b"\xff\xfe", b"[scenario]\nname = \"\x1b[2J\"\n", b"[" * 100_000, b""])
def test_never_a_traceback_in_the_c_locale(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.toml"
    path.write_bytes(content)
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}
    done = subprocess.run([*RINGFENCE, "scenario", "run", str(path)], capture_output=True, env=env, timeout=60,
                          check=False)
    assert done.returncode == 3 and b"Traceback" not in done.stderr and b"\x1b" not in done.stderr


def test_non_ascii_scenario_in_the_c_locale(tmp_path: Path) -> None:
    path = tmp_path / "café.toml"
    path.write_text(GOOD, encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0"}
    done = subprocess.run([*RINGFENCE, "scenario", "run", str(path), "--kernel", "7.2"], capture_output=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0 and b"Traceback" not in done.stderr
    assert done.stdout.startswith(b"PASS  caf")
