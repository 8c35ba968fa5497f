"""§3.7: the 7.0 split of SQE side and register side, against pre-7.0's joint semantics (6.18)."""

from __future__ import annotations

import pytest
from modelkit import Run, nop

PRE, POST = "6.18", ["7.0", "7.1", "7.2", "7.3"]

# records given -> (NOP outcome, PROBE outcome, BUFFERS outcome) on 6.18 and on 7.x
TABLE = [
    ("only REGISTER_OP", [["REGISTER_OP", "PROBE"]],
     ("EACCES", "ok", "EACCES"), ("ok", "ok", "EACCES")),
    ("only SQE_OP", [["SQE_OP", "NOP"]],
     ("ok", "EACCES", "EACCES"), ("ok", "ok", "ok")),
    ("only flag records", [["SQE_FLAGS_ALLOWED", "ASYNC"]],
     ("EACCES", "EACCES", "EACCES"), ("EACCES", "ok", "ok")),
    ("both kinds", [["SQE_OP", "NOP"], ["REGISTER_OP", "PROBE"]],
     ("ok", "ok", "EACCES"), ("ok", "ok", "EACCES")),
    ("none", [],
     ("EACCES", "EACCES", "EACCES"), ("EACCES", "EACCES", "EACCES")),
]


def _outcomes(kernel: str, records: list[list[object]]) -> tuple[str, str, str]:
    run = Run(kernel, {"do": "ring", "ring": "r", "flags": "R_DISABLED"},
              {"do": "restrict", "ring": "r", "records": records}, {"do": "enable", "ring": "r"})
    nop_result = run.cqes("r", nop(1))[1]
    probe = run.result({"do": "register", "ring": "r", "opcode": "PROBE"})
    buffers = run.result({"do": "register", "ring": "r", "opcode": "BUFFERS"})
    return nop_result, probe, buffers


@pytest.mark.parametrize(("what", "records", "pre", "post"), TABLE, ids=[row[0] for row in TABLE])
def test_split_table(what: str, records: list[list[object]], pre: tuple[str, ...], post: tuple[str, ...]) -> None:
    assert _outcomes(PRE, records) == pre
    for kernel in POST:
        assert _outcomes(kernel, records) == post


@pytest.mark.parametrize("kernel", [PRE, *POST])
def test_sqe_op_only_denies_any_flag(kernel: str) -> None:
    run = Run(kernel, {"do": "ring", "ring": "r", "flags": "R_DISABLED"},
              {"do": "restrict", "ring": "r", "records": [["SQE_OP", "NOP"]]}, {"do": "enable", "ring": "r"})
    assert run.each("r", nop(1, sqe_flags="ASYNC"), nop(2, sqe_flags="IO_LINK"), nop(3)) == \
        {1: "EACCES", 2: "EACCES", 3: "ok"}


@pytest.mark.parametrize("kernel", [PRE, *POST])
def test_sqe_side_enforcement_bit_timing(kernel: str) -> None:
    run = Run(kernel, {"do": "ring", "ring": "r", "flags": "R_DISABLED"},
              {"do": "restrict", "ring": "r", "records": [["SQE_OP", "NOP"]]})
    ring = run.kernel.ring_of(run.kernel.task("main"), "r")
    assert ring is not None
    assert ring.op_restricted is (kernel != PRE)        # 7.0: at registration; pre-7.0: at enable
    run.do({"do": "enable", "ring": "r"})
    assert ring.op_restricted
