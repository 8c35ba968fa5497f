"""§4.1: the register syscall's generic dispatch, row by row, and the register side of §3.6."""

from __future__ import annotations

import dataclasses

import pytest
from modelkit import Run

from ringfence.abi.profiles import profile
from ringfence.errors import ScenarioError
from ringfence.model.rules import Rule


def reg(opcode: str | int, ring: str | None = "r", task: str = "main", **extra: object) -> dict[str, object]:
    step: dict[str, object] = {"do": "register", "task": task, "opcode": opcode, **extra}
    if ring is not None:
        step["ring"] = ring
    return step


def ring(name: str = "r", flags: str = "", task: str = "main") -> dict[str, object]:
    return {"do": "ring", "ring": name, "flags": flags, "task": task}


# -- row 1: opcode range (bit 31 removed first) ---------------------------------------------------------------------

def test_opcode_range_precedes_fd_resolution() -> None:
    run = Run("7.2", ring(), {"do": "close", "ring": "r"})
    assert run.result(reg(38)) == "EINVAL"          # REGISTER_LAST, on a closed descriptor: range wins
    assert run.result(reg("PROBE")) == "EBADF"       # a valid opcode on the same descriptor


def test_opcode_range_is_per_kernel() -> None:
    assert Run("6.18", ring()).result(reg(36)) == "EINVAL"   # ZCRX_CTRL >= 6.18's REGISTER_LAST (36)
    assert Run("7.2", ring()).result(reg(36)) == "ok"        # passes dispatch; the handler's result is declared


def test_registered_ring_bit_is_removed_before_the_range_check() -> None:
    run = Run("7.2", ring())
    assert run.result(reg(38, registered_ring_index=0)) == "EINVAL"
    assert run.last.explanation.rule is Rule.REGISTER_OPCODE  # type: ignore[union-attr]


def test_bpf_filter_on_pre_7_0_fails_the_range_check_before_anything() -> None:
    run = Run("6.18", ring())
    assert run.result({"do": "filter", "ring": "r", "opcode": "NOP", "program": "ret #1"}) == "EINVAL"
    assert run.last.explanation.rule is Rule.REGISTER_OPCODE  # type: ignore[union-attr]
    assert run.result({"do": "filter", "opcode": "NOP", "program": "ret #1"}) == "EINVAL"
    assert run.last.explanation.rule is Rule.REGISTER_OPCODE  # type: ignore[union-attr]


# -- row 2: the blind path ---------------------------------------------------------------------------------------------

def test_blind_dispatch_table() -> None:
    run = Run("7.2")
    assert run.result(reg("QUERY", ring=None)) == "ok"
    assert run.result(reg("SEND_MSG_RING", ring=None)) == "ok"
    assert run.result(reg("PROBE", ring=None)) == "EINVAL"
    assert run.last.explanation.rule is Rule.BLIND_UNSUPPORTED  # type: ignore[union-attr]


def test_pre_7_0_has_no_blind_restrictions() -> None:
    run = Run("6.18", {"do": "nnp"})
    assert run.result({"do": "restrict", "records": [["SQE_OP", "NOP"]]}) == "EINVAL"
    assert run.last.explanation.rule is Rule.BLIND_UNSUPPORTED  # type: ignore[union-attr]
    assert run.result(reg("QUERY", ring=None)) == "ok"


def test_kernels_without_a_blind_path_say_ebadf_after_the_range_check() -> None:
    old = dataclasses.replace(profile("6.18"), name="6.12", blind_ops=frozenset())
    run = Run(old)
    assert run.result(reg("QUERY", ring=None)) == "EBADF"
    assert run.result({"do": "filter", "opcode": "NOP", "program": "ret #1"}) == "EINVAL"  # 37 is out of range first
    assert run.last.explanation.rule is Rule.REGISTER_OPCODE  # type: ignore[union-attr]


def test_blind_call_with_registered_bit_is_still_blind() -> None:
    assert Run("7.2").result(reg("QUERY", ring=None, registered_ring_index=-1)) == "ok"


def test_blind_calls_ignore_register_restrictions() -> None:
    run = Run("7.2", {"do": "nnp"}, {"do": "restrict", "records": [["REGISTER_OP", "FILES"]]})
    assert run.result(reg("QUERY", ring=None)) == "ok"


# -- row 3: fd resolution --------------------------------------------------------------------------------------------

def test_registered_ring_lookup() -> None:
    run = Run("7.2", {"do": "fork", "child": "c"})
    assert run.result(reg("PROBE", ring=None, task="c", registered_ring_index=16)) == "EINVAL"
    assert run.result(reg("PROBE", ring=None, task="c", registered_ring_index=0)) == "EINVAL"  # no io_uring context
    run.do(ring("rc", task="c"))
    assert run.result(reg("PROBE", ring=None, task="c", registered_ring_index=0)) == "EBADF"   # empty slot


def test_descriptor_not_open_in_this_process() -> None:
    run = Run("7.2", {"do": "fork", "child": "c"}, ring("rc", task="c"))
    assert run.result(reg("PROBE", ring="rc")) == "EBADF"            # created by the child after the fork
    assert run.result(reg("PROBE", ring="rc", task="c")) == "ok"


def test_unknown_names_are_malformed_scenarios() -> None:
    with pytest.raises(ScenarioError):
        Run("7.2", reg("PROBE", ring="nope"))
    with pytest.raises(ScenarioError):
        Run("7.2", reg("PROBE", ring=None, task="ghost"))


# -- row 4: SINGLE_ISSUER --------------------------------------------------------------------------------------------

def test_single_issuer_foreign_task_gets_eexist() -> None:
    run = Run("7.2", ring(flags="SINGLE_ISSUER"), {"do": "thread", "thread": "t"}, {"do": "fork", "child": "c"})
    assert run.result(reg("PROBE")) == "ok"
    assert run.result(reg("PROBE", task="t")) == "EEXIST"
    assert run.result(reg("PROBE", task="c")) == "EEXIST"


def test_single_issuer_precedes_the_register_restriction() -> None:
    run = Run("7.2", ring(flags="R_DISABLED|SINGLE_ISSUER"),
              {"do": "restrict", "ring": "r", "records": [["REGISTER_OP", "PROBE"]]},
              {"do": "enable", "ring": "r"}, {"do": "thread", "thread": "t"})
    assert run.result(reg("FILES", task="t", files=["null"])) == "EEXIST"
    assert run.result(reg("FILES", files=["null"])) == "EACCES"


def test_single_issuer_disabled_ring_has_no_owner_until_enabled() -> None:
    run = Run("7.2", ring(flags="R_DISABLED|SINGLE_ISSUER"), {"do": "thread", "thread": "t"})
    assert run.result(reg("PROBE", task="t")) == "ok"
    assert run.result({"do": "enable", "ring": "r", "task": "t"}) == "ok"
    assert run.result(reg("PROBE")) == "EEXIST"          # the enabling task became the submitter (§3.5)
    assert run.result(reg("PROBE", task="t")) == "ok"


# -- row 5: register restriction -------------------------------------------------------------------------------------

def test_register_restriction_applies_only_once_enabled() -> None:
    run = Run("7.2", ring(flags="R_DISABLED"), {"do": "restrict", "ring": "r", "records": [["REGISTER_OP", "PROBE"]]})
    assert run.result(reg("FILES", files=["null"])) == "ok"      # disabled: unrestricted (§3.6)
    assert run.result({"do": "enable", "ring": "r"}) == "ok"
    assert run.result(reg("BUFFERS")) == "EACCES"
    assert run.result(reg("PROBE")) == "ok"
    assert run.result({"do": "enable", "ring": "r"}) == "EACCES"  # 12 not allowed, checked before EBADFD


def test_register_restriction_covers_filters_and_restrictions() -> None:
    run = Run("7.2", ring(flags="R_DISABLED"), {"do": "restrict", "ring": "r", "records": [["REGISTER_OP", "PROBE"]]},
              {"do": "enable", "ring": "r"})
    assert run.result({"do": "filter", "ring": "r", "opcode": "NOP", "program": "ret #1"}) == "EACCES"
    assert run.result({"do": "restrict", "ring": "r", "records": []}) == "EACCES"
