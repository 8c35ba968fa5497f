"""§5.2-§5.5: filter registration rows in order, the pdu_size write-back, program acceptance."""

from __future__ import annotations

from typing import Any

import pytest
from modelkit import ALLOW, Run

from ringfence.model import Reply, Rule


def ring_filter(**fields: Any) -> dict[str, Any]:
    return {"do": "filter", "ring": "r", "opcode": "NOP", "program": ALLOW, **fields}


def register(kernel: str = "7.2", **fields: Any) -> Reply:
    run = Run(kernel, {"do": "ring", "ring": "r"})
    reply = run.one(ring_filter(**fields))
    assert isinstance(reply, Reply)
    return reply


# One row per line: fields that reach the row (plus a later row's condition it must beat), errno, rule, written?
ROWS = [
    ({"cmd_type": 2, "opcode": 99}, "EINVAL", Rule.FILTER_CMD_TYPE, False),
    ({"cmd_flags": 1, "opcode": 99}, "EINVAL", Rule.FILTER_CMD_FLAGS, False),
    ({"resv": 7, "flags": 8}, "EINVAL", Rule.FILTER_CMD_FLAGS, False),
    ({"opcode": 65, "flags": 8}, "EINVAL", Rule.FILTER_OPCODE, False),
    ({"flags": 4, "filter_resv": [1, 0, 0]}, "EINVAL", Rule.FILTER_FLAGS, False),
    ({"filter_resv": [0, 0, 1], "resv2": [1, 0, 0, 0, 0]}, "EINVAL", Rule.FILTER_RESV, False),
    ({"resv2": [0, 0, 0, 0, 1], "filter_len": 0}, "EINVAL", Rule.FILTER_RESV2, False),
    ({"filter_len": 0, "pdu_size": 12}, "EINVAL", Rule.FILTER_LENGTH, False),
    ({"filter_len": 4097, "pdu_size": 12}, "EINVAL", Rule.FILTER_LENGTH, False),
    ({"pdu_size": 12, "null_program": True}, "EMSGSIZE", Rule.FILTER_PDU_SIZE, True),
    ({"pdu_size": 0, "null_program": True, "program": "ld [3]\n ret #1"}, "EINVAL", Rule.FILTER_NULL_PROGRAM, True),
    ({"pdu_size": 0, "program": "ld M[0]\n ret a"}, "EINVAL", Rule.FILTER_PROGRAM, True),
    ({"pdu_size": 0, "program": "ldh [0]\n ret #1"}, "EINVAL", Rule.FILTER_PROGRAM, True),
    ({"pdu_size": 0, "program": "ld [3]\n ret #1"}, "EINVAL", Rule.FILTER_PROGRAM, True),
    ({"pdu_size": 0, "program": "ld [0]"}, "EINVAL", Rule.FILTER_PROGRAM, True),
]


@pytest.mark.parametrize(("fields", "errno", "rule", "written"), ROWS)
def test_rows(fields: dict[str, Any], errno: str, rule: Rule, written: bool) -> None:
    reply = register(**{"pdu_size": 5, **fields})
    assert (reply.result, reply.rule) == (errno, rule)
    assert reply.explanation.pdu_size_written is written
    assert reply.pdu_size_out == (0 if written else fields.get("pdu_size", 5))


def test_filter_len_reads_what_the_kernel_copies() -> None:
    assert register(program="ret #1\n ret #0", filter_len=1).result == "ok"      # truncated to `ret #1`
    assert register(program="ret #1", filter_len=3).result == "EINVAL"          # zero padding ends without RET


def test_ring_path_nr_args_comes_first() -> None:
    assert register(nr_args=0, cmd_type=5).rule is Rule.FILTER_NR_ARGS


# -- §5.4 payload-size negotiation -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("opcode", "asked", "flags", "errno"), [
    ("SOCKET", 12, "", "ok"), ("SOCKET", 24, "", "EMSGSIZE"), ("SOCKET", 8, "", "ok"),
    ("SOCKET", 8, "SZ_STRICT", "EMSGSIZE"), ("SOCKET", 12, "SZ_STRICT", "ok"), ("SOCKET", 0, "", "ok"),
    ("NOP", 12, "", "EMSGSIZE"), ("NOP", 0, "SZ_STRICT", "ok"), ("OPENAT", 24, "SZ_STRICT", "ok"),
])
def test_pdu_size_table(opcode: str, asked: int, flags: str, errno: str) -> None:
    reply = register(opcode=opcode, pdu_size=asked, flags=flags)
    assert reply.result == errno
    assert reply.pdu_size_out == {"SOCKET": 12, "NOP": 0, "OPENAT": 24}[opcode]


@pytest.mark.parametrize(("kernel", "errno", "back"), [("7.0", "EMSGSIZE", 0), ("7.1", "EMSGSIZE", 0),
                                                       ("7.2", "ok", 24), ("7.3", "ok", 24)])
def test_connect_payload_probe(kernel: str, errno: str, back: int) -> None:
    reply = register(kernel, opcode="CONNECT", pdu_size=24)
    assert (reply.result, reply.pdu_size_out) == (errno, back)


def test_liburing_pdu_size_ring() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"}, {"do": "ring", "ring": "r2"})
    first = run.one(ring_filter(opcode="SOCKET", pdu_size=24))
    second = run.one(ring_filter(opcode="SOCKET", pdu_size=8))
    third = run.one({**ring_filter(opcode="SOCKET", pdu_size=8, flags="SZ_STRICT"), "ring": "r2"})
    assert [(r.result, r.pdu_size_out) for r in (first, second, third)] == [  # type: ignore[union-attr]
        ("EMSGSIZE", 12), ("ok", 12), ("EMSGSIZE", 12)]


def test_failed_registration_changes_nothing_but_the_write_back() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"}, ring_filter())
    before = run.kernel.fingerprint()
    run.do(ring_filter(opcode="SOCKET", pdu_size=24, flags="DENY_REST"))
    assert run.last.result == "EMSGSIZE"
    assert run.kernel.fingerprint() == before


def test_task_path_write_back_also_on_failure() -> None:
    run = Run("7.2", {"do": "nnp"})
    reply = run.one({"do": "filter", "opcode": "CONNECT", "pdu_size": 30, "program": ALLOW})
    assert (reply.result, reply.pdu_size_out) == ("EMSGSIZE", 24)  # type: ignore[union-attr]
    assert run.kernel.task("main").restriction is None
