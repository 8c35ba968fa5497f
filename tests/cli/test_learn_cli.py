"""`ringfence learn --from-trace` on traces captured from real kernels: the file it writes, merging, widening, and
the exit codes for bad input. (Learning from a live workload needs root and tracefs: tests/guest/test_learn.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ringfence.cli.main import main
from ringfence.policy.load import load

DATA = Path(__file__).resolve().parents[1] / "learn" / "data"


def _learn(*args: str) -> int:
    return main(["learn", *args])


def test_from_trace_writes_a_policy_that_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "echo.toml"
    assert _learn("--from-trace", str(DATA / "7.2-echo.trace"), "-o", str(out)) == 0
    policy = load(out)
    assert policy.name == "learned-7.2-echo" and policy.kernel == (7, 2)
    err = capsys.readouterr().err
    assert "learned opcodes, flags and filter contexts" in err and "9 request(s) seen, 3 rule(s)" in err


def test_tracepoints_only_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert _learn("--from-trace", str(DATA / "host-6.18-reader.trace")) == 0
    captured = capsys.readouterr()
    assert "argument predicates (socket, open, connect) are left open" in captured.err
    assert "arguments left open" in captured.out


def test_merge_adds_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reader.toml"
    assert _learn("--from-trace", str(DATA / "7.2-reader.trace"), "-o", str(out)) == 0
    assert _learn("--merge", str(out), "--from-trace", str(DATA / "7.2-reader.trace")) == 0
    text = out.read_text()
    assert "from 2 run(s)" in text and '"CLOSE",  # seen 2 times' in text
    load(out)
    assert _learn("--merge", str(out), "--from-trace", str(DATA / "host-6.18-reader.trace"), "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == "tracepoints" and "open-args" in doc["rules"]


def test_widen(capsys: pytest.CaptureFixture[str]) -> None:
    assert _learn("--from-trace", str(DATA / "7.2-echo.trace"), "--widen", "v4=/24") == 0
    assert 'connect.addr = "127.0.0.0/24"' in capsys.readouterr().out


@pytest.mark.parametrize("args", [[], ["--from-trace", "x", "--", "true"], ["--widen", "v5=/8", "--", "true"],
                                  ["--widen", "v4=/33", "--", "true"], ["--from-trace", "/nonexistent"]])
def test_usage_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert _learn(*args) == 2
    assert capsys.readouterr().err.startswith(("learn: ", "/nonexistent: "))  # an input error names its file


def test_merge_of_a_hand_written_policy_is_invalid(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[2]
    code = _learn("--merge", str(root / "examples" / "policies" / "file-reader.toml"), "--from-trace",
                  str(DATA / "7.2-reader.trace"))
    assert code == 3
    assert "no learn-data line" in capsys.readouterr().err


def test_a_damaged_trace_is_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damaged = tmp_path / "bad.trace"
    damaged.write_text((DATA / "7.2-reader.trace").read_text().replace("opcode READ", "opcode BOGUS"))
    assert _learn("--from-trace", str(damaged)) == 3
    assert "unknown opcode name 'BOGUS'" in capsys.readouterr().err


@pytest.mark.parametrize(("recipe", "code"), [("fifo", 2), ("device", 2), ("directory", 2), ("binary", 3),
                                              ("empty", 3), ("bogus-mode", 3)])
def test_a_trace_that_is_not_one_is_refused(recipe: str, code: int, tmp_path: Path) -> None:
    import os

    path = tmp_path / "t.trace"
    if recipe == "fifo":
        os.mkfifo(path)  # nobody writes: reading it would block forever
    elif recipe == "device":
        path = Path("/dev/zero")  # reading it would never end
    elif recipe == "directory":
        path.mkdir()
    else:
        path.write_bytes({"binary": bytes(range(128, 256)), "empty": b"",
                          "bogus-mode": b"# ringfence learn: mode bogus\n"}[recipe])
    assert _learn("--from-trace", str(path)) == code


@pytest.mark.parametrize("edit", [{"n": -5}, {"n": 10**30}, {"ctx": {"socket.family": 2}}, {"flags": 4096}])
def test_learn_data_is_held_to_what_a_trace_gives(edit: dict[str, object], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.toml"
    assert _learn("--from-trace", str(DATA / "7.2-reader.trace"), "-o", str(out)) == 0
    lines = out.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "learn-data" in line)
    prefix, _, body = lines[at].partition("{")
    data = json.loads("{" + body)
    opened = next(s for s in data["seen"] if s["op"] == "OPENAT")
    opened.update(edit)
    lines[at] = prefix + json.dumps(data, separators=(",", ":"))
    out.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert _learn("--merge", str(out), "--from-trace", str(DATA / "7.2-reader.trace")) == 3
