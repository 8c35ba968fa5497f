"""`ringfence learn` on this machine's own kernel: the file reader, observed through tracefs. On a kernel without
io_uring filters (6.x) learn must say plainly that only opcodes and flags were learned; on one with them, the open's
arguments are learned too. The workload's own request log only cross-checks what the kernel reported."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from ringfence.abi.opcodes import SqeOp
from ringfence.cli.main import main
from ringfence.errors import UnsupportedError
from ringfence.learn.observe import filters_supported
from ringfence.learn.tracefs import find_root
from ringfence.policy.load import load

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.live


def test_learn_the_reader_here(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        pytest.skip("environment: learning needs root")
    try:
        find_root()
    except UnsupportedError as exc:
        pytest.skip(f"environment: {exc}")
    data, log, out = tmp_path / "data.txt", tmp_path / "requests.log", tmp_path / "reader.toml"
    data.write_text("read me\n")
    monkeypatch.setenv("RINGFENCE_REQUEST_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))
    reader = ROOT / "examples" / "workloads" / "reader.py"
    assert main(["learn", "-o", str(out), "--", sys.executable, str(reader), str(data)]) == 0
    err = capsys.readouterr().err
    policy = load(out)
    made = {json.loads(line)["sqe"]["opcode"] for line in log.read_text().splitlines()}
    assert {op for rule in policy.rules for op in rule.ops} == made == {SqeOp.OPENAT, SqeOp.READ, SqeOp.CLOSE}
    opens = [r for r in policy.rules if SqeOp.OPENAT in r.ops]
    if filters_supported():
        assert "learned opcodes, flags and filter contexts" in err
        assert [r.ops for r in opens] == [(SqeOp.OPENAT,)] and opens[0].predicates
    else:
        assert "this kernel offers only the io_uring tracepoints" in err
        assert "argument predicates (socket, open, connect) are left open" in err
        assert opens[0].unconditional and "arguments left open" in out.read_text()
