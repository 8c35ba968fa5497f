"""§3.2-§3.5: parsing, ring REGISTER_RESTRICTIONS (ordered), the §3.4 reset, ENABLE_RINGS; liburing §9.1."""

from __future__ import annotations

import pytest
from modelkit import DENY, Run, nop

from ringfence.abi.profiles import profile
from ringfence.model import register as reg
from ringfence.model.outcome import Refused
from ringfence.model.rules import Rule


def restrict(records: list[list[object]], ring: str = "r", task: str = "main", **extra: object) -> dict[str, object]:
    return {"do": "restrict", "ring": ring, "task": task, "records": records, **extra}


DISABLED = {"do": "ring", "ring": "r", "flags": "R_DISABLED"}
ENABLE = {"do": "enable", "ring": "r"}


# -- §3.3, one test per row ------------------------------------------------------------------------------------------

def test_row1_opcode_range() -> None:
    tiny = profile("7.2").with_features(register_last=11)
    assert Run(tiny, DISABLED).result(restrict([])) == "EINVAL"


def test_row2_fd_resolution() -> None:
    run = Run("7.2", DISABLED, {"do": "close", "ring": "r"})
    assert run.result(restrict([])) == "EBADF"


def test_row3_single_issuer_before_ebadfd() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r", "flags": "SINGLE_ISSUER"}, {"do": "thread", "thread": "t"})
    assert run.result(restrict([["SQE_OP", "NOP"]], task="t")) == "EEXIST"
    assert run.result(restrict([["SQE_OP", "NOP"]])) == "EBADFD"


def test_row4_register_restriction_before_ebadfd() -> None:
    run = Run("7.2", {"do": "nnp"}, {"do": "restrict", "records": [["REGISTER_OP", "PROBE"]]},
              {"do": "ring", "ring": "r"}, {"do": "ring", "ring": "d", "flags": "R_DISABLED"})
    assert run.result(restrict([["SQE_OP", "NOP"]])) == "EACCES"        # enabled, reg-restricted, 11 not allowed
    # The spec skipped row 4 for disabled rings (-> EBUSY); Debian 7.2.13 answers EACCES for an inherited set
    # (corpus: derived/disabled_ring_inherited_register_restrictions, docs/kernel-findings.md).
    assert run.result(restrict([["SQE_OP", "NOP"]], ring="d")) == "EACCES"


def test_row5_ring_not_disabled() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"})
    assert run.result(restrict([["SQE_OP", "WRITEV"]])) == "EBADFD"


def test_row6_only_one_registration() -> None:
    run = Run("7.2", DISABLED)
    assert run.result(restrict([["SQE_OP", "NOP"]])) == "ok"
    assert run.result(restrict([["SQE_OP", "NOP"]])) == "EBUSY"


def test_row6_before_row7_parse_errors() -> None:
    run = Run("7.2", DISABLED, restrict([["SQE_OP", "NOP"]]))
    assert run.result(restrict([], null=True)) == "EBUSY"


@pytest.mark.parametrize(("fields", "why"), [
    ({"records": [], "null": True}, Rule.RECORDS_NULL),
    ({"records": [], "nr_args": 108}, Rule.RECORDS_TOO_MANY),
    ({"records": [["SQE_OP", 65]]}, Rule.RECORD_SQE_OP),
    ({"records": [["REGISTER_OP", 38]]}, Rule.RECORD_REGISTER_OP),
    ({"records": [["SQE_OP", "NOP"], [7, 1]]}, Rule.RECORD_TYPE),
])
def test_row7_parse_errors(fields: dict[str, object], why: Rule) -> None:
    run = Run("7.2", DISABLED)
    assert run.result({"do": "restrict", "ring": "r", **fields}) == "EINVAL"
    assert run.last.explanation.rule is why  # type: ignore[union-attr]
    assert run.result(restrict([["SQE_OP", "NOP"]])) == "ok"   # the booleans were reset: a retry is possible


def test_max_restrictions_follows_the_profile() -> None:
    assert Run("7.2", DISABLED).result(restrict([], nr_args=107)) == "ok"       # zero-padded records: REGISTER_OP 0
    assert Run("6.18", DISABLED).result(restrict([], nr_args=104)) == "EINVAL"  # 4 + 36 + 63 = 103


def test_success_enforces_sqe_side_at_registration_and_register_side_at_enable() -> None:
    run = Run("7.2", DISABLED, restrict([["SQE_OP", "NOP"], ["REGISTER_OP", "PROBE"]]))
    ring = run.kernel.ring_of(run.kernel.task("main"), "r")
    assert ring is not None
    assert ring.op_restricted and not ring.reg_restricted and ring.disabled  # register side armed at enable
    assert run.result({"do": "register", "ring": "r", "opcode": "BUFFERS"}) == "ok"
    run.do(ENABLE)
    assert run.result({"do": "register", "ring": "r", "opcode": "BUFFERS"}) == "EACCES"


# -- §3.4 -------------------------------------------------------------------------------------------------------------

def _inherited_filter_then_bad_parse(kernel: object) -> Run:
    return Run(kernel,  # type: ignore[arg-type]
               {"do": "nnp"}, {"do": "filter", "opcode": "NOP", "program": DENY}, DISABLED,
               restrict([["SQE_OP", "NOP"], ["SQE_OP", 200]]))


def test_failed_parse_keeps_the_inherited_table() -> None:
    run = _inherited_filter_then_bad_parse("7.2")
    assert run.replies[-1].result == "EINVAL"
    ring = run.kernel.ring_of(run.kernel.task("main"), "r")
    assert ring is not None and ring.state.table is not None and ring.state.cow
    run.do(ENABLE, {"do": "filter", "ring": "r", "opcode": "SOCKET", "program": "ret #1", "pdu_size": 12})
    assert run.cqes("r", nop(1)) == {1: "EACCES"}     # the inherited NOP filter survived the failure


def test_before_rc7_a_failed_parse_dropped_the_table() -> None:
    rc = profile("7.0").with_features(keep_filters_on_parse_failure=False)
    run = _inherited_filter_then_bad_parse(rc)
    ring = run.kernel.ring_of(run.kernel.task("main"), "r")
    assert ring is not None and ring.state.table is None
    run.do(ENABLE)
    assert run.cqes("r", nop(1)) == {1: "EACCES"}     # the hot-path cache still points at the old heads
    run.do({"do": "filter", "ring": "r", "opcode": "SOCKET", "program": "ret #1", "pdu_size": 12})
    assert run.cqes("r", nop(2)) == {2: "ok"}          # a new table without the inherited filter


# -- §3.5 -------------------------------------------------------------------------------------------------------------

def test_enable_rows() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r", "flags": "SINGLE_ISSUER"}, {"do": "thread", "thread": "t"},
              {"do": "ring", "ring": "x"}, {"do": "close", "ring": "x"})
    assert run.result({"do": "enable", "ring": "x"}) == "EBADF"           # rows 1-2
    assert run.result({"do": "enable", "ring": "r", "task": "t"}) == "EEXIST"  # row 3
    assert run.result({"do": "enable", "ring": "r"}) == "EBADFD"          # row 6


def test_enable_row5_arguments() -> None:
    run = Run("7.2", DISABLED)
    ring = run.kernel.ring_of(run.kernel.task("main"), "r")
    assert ring is not None
    with pytest.raises(Refused) as info:
        reg.enable_rings(profile("7.2"), ring, run.kernel.task("main"), nr_args=1)
    assert info.value.errno == "EINVAL"
    with pytest.raises(Refused) as info:
        reg.enable_rings(profile("7.2"), ring, run.kernel.task("main"), has_arg=True)
    assert info.value.errno == "EINVAL"


def test_enable_starts_the_ring() -> None:
    run = Run("7.2", DISABLED)
    assert run.submit("r", nop(1)).submitted == "EBADFD"
    assert run.result(ENABLE) == "ok"
    assert run.cqes("r") == {1: "ok"}     # the NOP queued before stayed in the SQ


# -- §3.2 details -----------------------------------------------------------------------------------------------------

def test_flag_records_replace_rather_than_accumulate() -> None:
    run = Run("7.2", DISABLED, restrict([["SQE_OP", "NOP"], ["SQE_FLAGS_ALLOWED", "ASYNC"],
                                         ["SQE_FLAGS_ALLOWED", "IO_DRAIN"]]), ENABLE)
    assert run.cqes("r", nop(1, sqe_flags="ASYNC")) == {1: "EACCES"}
    assert run.cqes("r", nop(2, sqe_flags="IO_DRAIN")) == {2: "ok"}


def test_flags_only_set_denies_every_sqe() -> None:
    run = Run("7.2", DISABLED, restrict([["SQE_FLAGS_ALLOWED", 0x7F]]), ENABLE)
    assert run.cqes("r", nop(1)) == {1: "EACCES"}


def test_bit7_and_duplicates_are_accepted() -> None:
    run = Run("7.2", DISABLED, restrict([["SQE_OP", "NOP"], ["SQE_OP", "NOP"], ["SQE_FLAGS_ALLOWED", 0xFF]]), ENABLE)
    assert run.replies[1].result == "ok"
    assert run.cqes("r", nop(1, sqe_flags="ASYNC")) == {1: "ok"}


def test_required_flags_are_implicitly_allowed() -> None:
    run = Run("7.2", DISABLED, restrict([["SQE_OP", "NOP"], ["SQE_FLAGS_REQUIRED", "ASYNC"]]), ENABLE)
    assert run.cqes("r", nop(1, sqe_flags="ASYNC")) == {1: "ok"}
    assert run.cqes("r", nop(2)) == {2: "EACCES"}


# -- liburing test/register-restrictions.c (§9.1) ---------------------------------------------------------------------

@pytest.mark.parametrize("kernel", ["6.18", "7.0", "7.2", "7.3"])
def test_liburing_sqe_op(kernel: str) -> None:
    run = Run(kernel, DISABLED, restrict([["SQE_OP", "WRITEV"], ["SQE_OP", "WRITE"]]), ENABLE)
    result = run.submit("r", {"op": "WRITEV", "ud": 1, "fd": "pipe.w"}, {"op": "READV", "ud": 2, "fd": "pipe.r"})
    assert result.submitted == 2 and dict(result.cqes) == {1: "ok", 2: "EACCES"}


@pytest.mark.parametrize("kernel", ["6.18", "7.2"])
def test_liburing_register_op(kernel: str) -> None:
    run = Run(kernel, DISABLED, restrict([["REGISTER_OP", "BUFFERS"]]), ENABLE)
    assert run.result({"do": "register", "ring": "r", "opcode": "BUFFERS"}) == "ok"
    assert run.result({"do": "register", "ring": "r", "opcode": "FILES", "files": ["pipe.r"]}) == "EACCES"


@pytest.mark.parametrize("kernel", ["6.18", "7.2"])
def test_liburing_fixed_file(kernel: str) -> None:
    run = Run(kernel, DISABLED, restrict([["SQE_OP", "WRITEV"], ["SQE_OP", "READV"],
                                          ["SQE_FLAGS_REQUIRED", "FIXED_FILE"], ["REGISTER_OP", "FILES"]]), ENABLE)
    assert run.result({"do": "register", "ring": "r", "opcode": "FILES", "files": ["pipe.r", "pipe.w"]}) == "ok"
    result = run.submit("r", {"op": "WRITEV", "ud": 1, "fd": 1, "sqe_flags": "FIXED_FILE"},
                        {"op": "READV", "ud": 2, "fd": 0, "sqe_flags": "FIXED_FILE"},
                        {"op": "WRITEV", "ud": 3, "fd": "pipe.w"})
    assert result.submitted == 3 and dict(result.cqes) == {1: "ok", 2: "ok", 3: "EACCES"}


@pytest.mark.parametrize("kernel", ["6.18", "7.2"])
def test_liburing_flags(kernel: str) -> None:
    run = Run(kernel, DISABLED, restrict([["SQE_OP", "WRITEV"], ["SQE_FLAGS_ALLOWED", "ASYNC|IO_LINK"],
                                          ["SQE_FLAGS_REQUIRED", "FIXED_FILE"]]),
              {"do": "register", "ring": "r", "opcode": "FILES", "files": ["pipe.r", "pipe.w"]}, ENABLE)
    assert run.replies[2].result == "ok"
    first = run.submit("r", *({"op": "WRITEV", "ud": ud, "fd": 1, "sqe_flags": f}
                              for ud, f in ((1, "FIXED_FILE"), (2, "FIXED_FILE|ASYNC"), (3, "FIXED_FILE|IO_LINK"))))
    assert first.submitted == 3 and dict(first.cqes) == {1: "ok", 2: "ok", 3: "ok"}
    for ud, flags in ((4, "FIXED_FILE|IO_DRAIN"), (5, "IO_DRAIN"), (6, "ASYNC"), (7, "")):
        fd = 1 if "FIXED_FILE" in flags else "pipe.w"
        assert run.cqes("r", {"op": "WRITEV", "ud": ud, "fd": fd, "sqe_flags": flags}) == {ud: "EACCES"}


@pytest.mark.parametrize("kernel", ["6.18", "7.2"])
def test_liburing_empty(kernel: str) -> None:
    run = Run(kernel, DISABLED, restrict([]), ENABLE)
    assert run.result({"do": "register", "ring": "r", "opcode": "BUFFERS"}) == "EACCES"
    assert run.result({"do": "register", "ring": "r", "opcode": "FILES", "files": ["pipe.r"]}) == "EACCES"
    result = run.submit("r", {"op": "WRITEV", "ud": 1, "fd": "pipe.w"})
    assert result.submitted == 1 and dict(result.cqes) == {1: "EACCES"}


@pytest.mark.parametrize("kernel", ["6.18", "7.2"])
def test_liburing_rings_not_disabled_and_disabled(kernel: str) -> None:
    assert Run(kernel, {"do": "ring", "ring": "r"}).result(restrict([["SQE_OP", "WRITEV"]])) == "EBADFD"
    assert Run(kernel, DISABLED).submit("r", nop(1)).submitted == "EBADFD"
