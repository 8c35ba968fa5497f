"""Checker/interpreter differential helpers and batch mode, on the running kernel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ringfence.abi.opcodes import SqeOp
from ringfence.abi.profiles import KernelProfile
from ringfence.errors import KernelError
from ringfence.harness import batch
from ringfence.harness.programs import register_outcomes, verdicts

from ._scenarios import INET_ONLY, RET1, sc
from .conftest import insns

pytestmark = pytest.mark.live

BAD_MOD = insns([[0x94, 0, 0, 3], [6, 0, 0, 1]])        # ALU|MOD is not whitelisted
BAD_OFFSET = insns([[0x20, 0, 0, 40], [6, 0, 0, 1]])    # load beyond the 40-byte context


def test_register_outcomes(kernel: KernelProfile) -> None:
    programs = [insns(RET1), b"", BAD_MOD, BAD_OFFSET] * 3
    outcomes = register_outcomes(programs, per_ring=5)
    if kernel.bpf_filters:
        assert outcomes == ["ok", "EINVAL", "EINVAL", "EINVAL"] * 3
    else:
        assert outcomes == ["EINVAL"] * 12


def test_verdicts(kernel: KernelProfile, root: None) -> None:
    requests: list[dict[str, object]] = [
                {"op": "SOCKET", "family": 2, "type": 1, "ud": 1}, {"op": "SOCKET", "family": 10, "type": 1},
                {"op": "NOP", "ud": 3}, {"op": "OPENAT", "flags": 0}, {"op": "OPENAT", "flags": "O_CREAT|O_RDWR"},
                {"op": "OPENAT2", "flags": 0, "resolve": 0x10},
                {"op": "CONNECT", "family": "AF_INET", "addr": "127.0.0.1", "port": 1},
                {"op": "CONNECT", "family": "AF_INET6", "addr": "::1", "port": 1}]
    program = insns(INET_ONLY)
    if not kernel.bpf_filters:
        with pytest.raises(KernelError, match="EINVAL"):
            verdicts(program, requests)
        return
    connect = "ECONNREFUSED" if kernel.pdu_size(SqeOp.CONNECT) else "EACCES"  # no payload: word 16 reads 0
    assert verdicts(program, requests) == ["ok", "EACCES", "EACCES", "EACCES", "EACCES", "EACCES", connect,
                                           "EACCES"]
    assert verdicts(insns(RET1), requests[2:6]) == ["ok"] * 4


def test_batch_main(tmp_path: Path, kernel: KernelProfile) -> None:
    data = {"scenarios": [sc("one", [{"do": "ring", "ring": "r", "expect": "ok"}]),
                          sc("bad", [{"do": "warp"}]), "/nonexistent/x.toml"],
            "jobs": [{"kind": "register_outcomes", "programs": [insns(RET1).hex()]}, {"kind": "nope"}],
            "step_timeout": 5}
    src, dst = tmp_path / "in.json", tmp_path / "out.json"
    src.write_text(json.dumps(data))
    assert batch.main([str(src), str(dst)]) == 0
    out = json.loads(dst.read_text())
    assert out["schema"] == 1 and out["profile"] == kernel.name and out["probe"]["schema"] == 1
    one, bad, missing = out["scenarios"]
    assert one["passed"] is True and one["transcript"]["steps"][0]["result"] == "ok"
    assert "unknown step" in bad["error"] and "ScenarioError" in missing["error"]
    assert out["jobs"][0]["outcomes"] == ["ok" if kernel.bpf_filters else "EINVAL"]
    assert "unknown job kind" in out["jobs"][1]["error"]
    assert set(out["timing"]) == {"probe", "total"}


def test_batch_usage() -> None:
    assert batch.main([]) == 2
