"""§8: the per-SQE pipeline order, failed SQEs, link chains, stop rules, CQE_SKIP_SUCCESS, drain."""

from __future__ import annotations

from typing import Any

import pytest
from modelkit import ALLOW, DENY, Run, decided_by, nop

from ringfence.errors import ScenarioError
from ringfence.model.outcome import spelling

#: errno 95 as transcripts spell it (the model follows ringfence.errors.errno_name, like the live backend).
EOPNOTSUPP = spelling("EOPNOTSUPP")


def restricted(kernel: str = "7.2", records: list[list[Any]] | None = None, flags: str = "") -> Run:
    """A ring whose classic set allows NOP and READ (any flags unless ``records`` says otherwise)."""
    records = records if records is not None else [["SQE_OP", "NOP"], ["SQE_OP", "READ"], ["SQE_FLAGS_ALLOWED", 0x7F]]
    return Run(kernel, {"do": "ring", "ring": "r", "flags": "R_DISABLED" + (f"|{flags}" if flags else "")},
               {"do": "restrict", "ring": "r", "records": records}, {"do": "enable", "ring": "r"})


def decided(run: Run, index: int = 0) -> tuple[str, str]:
    entry = run.sqe_explain()[index]
    return entry.result, decided_by(entry)


# -- §8.1 order --------------------------------------------------------------------------------------------------------

def test_step2_opcode_beyond_op_last() -> None:
    run = restricted("6.18")
    run.submit("r", {"op": "NOP128", "ud": 1})
    assert decided(run) == ("EINVAL", "validity")            # 63 >= 6.18's IORING_OP_LAST, before the classic check


def test_step3_invalid_flag_bit_before_classic() -> None:
    run = restricted(records=[["SQE_OP", "READ"]])
    assert run.cqes("r", nop(1, sqe_flags=0x80)) == {1: "EINVAL"}


def test_step4_buffer_select_before_classic() -> None:
    run = restricted(records=[["SQE_OP", "READ"]])
    assert run.cqes("r", nop(1, sqe_flags="BUFFER_SELECT")) == {1: EOPNOTSUPP}
    assert run.cqes("r", {"op": "SOCKET", "ud": 2, "sqe_flags": "BUFFER_SELECT"}) == {2: EOPNOTSUPP}
    run.cqes("r", {"op": "READV", "ud": 3, "fd": "zero", "sqe_flags": "BUFFER_SELECT"})
    assert decided(run) == ("EACCES", "classic")             # READV has buffer selection: step 6 decides


def test_step5_drain_disabled_by_an_earlier_skip_even_if_that_sqe_was_denied() -> None:
    run = restricted(records=[["SQE_OP", "READ"]])
    assert run.cqes("r", nop(1, sqe_flags="CQE_SKIP_SUCCESS")) == {1: "EACCES"}
    assert run.cqes("r", nop(2, sqe_flags="IO_DRAIN")) == {2: EOPNOTSUPP}


def test_step5_skip_and_drain_on_one_sqe() -> None:
    assert Run("7.2", {"do": "ring", "ring": "r"}).cqes("r", nop(1, sqe_flags="CQE_SKIP_SUCCESS|IO_DRAIN")) == \
        {1: EOPNOTSUPP}


def test_step6_classic_denial_masks_prep_failure() -> None:
    run = restricted(records=[["SQE_OP", "NOP"], ["SQE_FLAGS_ALLOWED", 0x7F]])
    run.cqes("r", {"op": "OPENAT", "ud": 1, "path": "/dev/null", "sqe_flags": "FIXED_FILE"})
    assert decided(run) == ("EACCES", "classic")


def test_step9_prep_failure_masks_filter_denial() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"}, {"do": "filter", "ring": "r", "opcode": "OPENAT",
                                                   "program": DENY, "pdu_size": 24})
    run.cqes("r", {"op": "OPENAT", "ud": 1, "path": "/dev/null", "sqe_flags": "FIXED_FILE"})
    assert decided(run) == ("EBADF", "prep")
    assert run.sqe_explain()[0].decision.filters is None
    run.cqes("r", {"op": "OPENAT", "ud": 2, "path": "/dev/null"})
    assert decided(run) == ("EACCES", "filter")


@pytest.mark.parametrize(("fields", "errno"), [
    ({"op": "SOCKET", "family": "AF_INET", "type": 0x101}, "EINVAL"),
    ({"op": "OPENAT", "path": ""}, "ENOENT"),
    ({"op": "CONNECT", "family": "AF_INET", "addr": "127.0.0.1", "port": 1, "addr_len": 129}, "EINVAL"),
    ({"op": "CONNECT", "family": "AF_INET", "addr": "127.0.0.1", "port": 1, "addr_len": -1}, "EINVAL"),
    ({"op": "OPENAT2", "path": "/dev/null", "sqe_flags": "FIXED_FILE"}, "EBADF"),
])
def test_prep_errors(fields: dict[str, Any], errno: str) -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"})
    run.cqes("r", {"ud": 1, **fields})
    assert decided(run) == (errno, "prep")


def test_iopoll_ring_rejects_opcodes_without_iopoll() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r", "flags": "IOPOLL"})
    assert run.each("r", nop(1), {"op": "SOCKET", "ud": 2, "family": "AF_INET", "type": "SOCK_STREAM"}) == \
        {1: "ok", 2: "EINVAL"}


# -- io_uring_enter ---------------------------------------------------------------------------------------------------

def test_enter_errors_and_the_backlog() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r", "flags": "R_DISABLED|SINGLE_ISSUER"}, {"do": "thread", "thread": "t"},
              {"do": "ring", "ring": "x"}, {"do": "close", "ring": "x"})
    assert run.submit("x", nop(9)).submitted == "EBADF"
    assert run.submit("r", nop(1), task="t").submitted == "EBADFD"    # R_DISABLED before SINGLE_ISSUER
    run.do({"do": "enable", "ring": "r"})
    assert run.submit("r", nop(2), task="t").submitted == "EEXIST"
    result = run.submit("r", nop(3))
    assert result.submitted == 3 and dict(result.cqes) == {1: "ok", 2: "ok", 3: "ok"}


def test_sq_overflow_is_a_malformed_scenario() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r", "flags": "R_DISABLED", "entries": 2})
    run.submit("r", nop(1), nop(2))
    with pytest.raises(ScenarioError):
        run.submit("r", nop(3))


# -- §8.2 failed SQEs and the stop rule -------------------------------------------------------------------------------

def test_failed_sqe_is_consumed_counted_and_stops_the_call() -> None:
    run = restricted(records=[["SQE_OP", "NOP"]])
    first = run.submit("r", nop(1), {"op": "READ", "ud": 2, "fd": "zero"}, nop(3), nop(4))
    assert first.submitted == 2 and dict(first.cqes) == {1: "ok", 2: "EACCES"}
    second = run.submit("r", nop(5))
    assert second.submitted == 3 and dict(second.cqes) == {3: "ok", 4: "ok", 5: "ok"}   # leftovers first


def test_submit_all_keeps_going() -> None:
    run = restricted(records=[["SQE_OP", "NOP"]], flags="SUBMIT_ALL")
    result = run.submit("r", {"op": "READ", "ud": 1, "fd": "zero"}, nop(2))
    assert result.submitted == 2 and dict(result.cqes) == {1: "EACCES", 2: "ok"}


def test_failure_cqe_is_posted_despite_skip_success() -> None:
    run = restricted(records=[["SQE_OP", "NOP"]])
    assert run.cqes("r", {"op": "READ", "ud": 1, "fd": "zero", "sqe_flags": "CQE_SKIP_SUCCESS"}) == {1: "EACCES"}


def test_skip_success_suppresses_successful_cqes() -> None:
    result = Run("7.2", {"do": "ring", "ring": "r"}).submit("r", nop(1, sqe_flags="CQE_SKIP_SUCCESS"), nop(2))
    assert result.submitted == 2 and dict(result.cqes) == {2: "ok"}


# -- §8.3 link chains -------------------------------------------------------------------------------------------------

READ_DENIED = {"op": "READ", "fd": "zero"}


@pytest.mark.parametrize("link", ["IO_LINK", "IO_HARDLINK"])
def test_denied_middle_member(link: str) -> None:
    run = restricted(records=[["SQE_OP", "NOP"], ["SQE_FLAGS_ALLOWED", 0x7F]])
    result = run.submit("r", nop(1, sqe_flags=link), {**READ_DENIED, "ud": 2, "sqe_flags": link}, nop(3), nop(4))
    assert result.submitted == 4                                      # a failed member with a link flag: no stop
    assert dict(result.cqes) == {1: "ECANCELED", 2: "EACCES", 3: "ECANCELED", 4: "ok"}


def test_denied_tail_stops_the_call() -> None:
    run = restricted(records=[["SQE_OP", "NOP"], ["SQE_FLAGS_ALLOWED", 0x7F]])
    result = run.submit("r", nop(1, sqe_flags="IO_LINK"), {**READ_DENIED, "ud": 2}, nop(3))
    assert result.submitted == 2 and dict(result.cqes) == {1: "ECANCELED", 2: "EACCES"}


def test_failed_head_keeps_its_own_error() -> None:
    run = restricted(records=[["SQE_OP", "NOP"], ["SQE_FLAGS_ALLOWED", 0x7F]])
    result = run.submit("r", {**READ_DENIED, "ud": 1, "sqe_flags": "IO_LINK"}, nop(2, sqe_flags=0x84), nop(3))
    assert result.submitted == 3                     # the invalid SQE still carries IO_LINK (0x04): no stop
    assert dict(result.cqes) == {1: "EACCES", 2: "EINVAL", 3: "ECANCELED"}


def test_skip_success_on_a_failed_chain_head_hides_the_members_cqes() -> None:
    run = restricted(records=[["SQE_OP", "NOP"], ["SQE_FLAGS_ALLOWED", 0x7F]])
    result = run.submit("r", nop(1, sqe_flags="IO_LINK|CQE_SKIP_SUCCESS"), {**READ_DENIED, "ud": 2}, nop(3))
    assert result.submitted == 2 and dict(result.cqes) == {1: "ECANCELED"}


def test_chain_open_at_the_end_of_the_call_still_runs() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"})
    result = run.submit("r", nop(1, sqe_flags="IO_LINK"), nop(2, sqe_flags="IO_LINK"))
    assert result.submitted == 2 and dict(result.cqes) == {1: "ok", 2: "ok"}


def test_failed_chain_open_at_the_end_fails_as_a_whole() -> None:
    run = restricted(records=[["SQE_OP", "NOP"], ["SQE_FLAGS_ALLOWED", 0x7F]])
    result = run.submit("r", nop(1, sqe_flags="IO_LINK"), {**READ_DENIED, "ud": 2, "sqe_flags": "IO_LINK"})
    assert result.submitted == 2 and dict(result.cqes) == {1: "ECANCELED", 2: "EACCES"}


def test_chains_do_not_continue_across_calls() -> None:
    run = restricted(records=[["SQE_OP", "NOP"], ["SQE_FLAGS_ALLOWED", 0x7F]])
    run.submit("r", nop(1, sqe_flags="IO_LINK"))
    assert run.cqes("r", {**READ_DENIED, "ud": 2}) == {2: "EACCES"}     # nop 1 already ran on its own


# -- execution-time link semantics (declared results) -----------------------------------------------------------------

def test_a_failing_operation_cancels_its_links() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"})
    ebadf = {"op": "WRITE", "fd": 0, "sqe_flags": "FIXED_FILE|IO_LINK", "result": "EBADF"}
    assert run.cqes("r", {**ebadf, "ud": 1}, nop(2)) == {1: "EBADF", 2: "ECANCELED"}
    hard = {**ebadf, "sqe_flags": "FIXED_FILE|IO_HARDLINK"}
    assert run.cqes("r", {**hard, "ud": 3}, nop(4)) == {3: "EBADF", 4: "ok"}


def test_a_failing_operation_with_skip_success_hides_the_cancelled_cqes() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"})
    step = {"op": "WRITE", "ud": 1, "fd": 0, "sqe_flags": "FIXED_FILE|IO_LINK|CQE_SKIP_SUCCESS", "result": "EBADF"}
    assert run.cqes("r", step, nop(2)) == {1: "EBADF"}


def test_fsync_errors_do_not_break_links() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"})
    assert run.cqes("r", {"op": "FSYNC", "ud": 1, "fd": "null", "sqe_flags": "IO_LINK", "result": "EINVAL"}, nop(2)) \
        == {1: "EINVAL", 2: "ok"}


# -- drain (§7.2 and §8.1 steps 4-5) -----------------------------------------------------------------------------------

def _flags_seen(run: Run) -> list[int]:
    return [e.decision.filters.flags_seen for e in run.sqe_explain() if e.decision.filters is not None
            and e.decision.filters.flags_seen is not None]


def test_drain_forces_async_until_the_first_request_of_a_later_call() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"}, {"do": "filter", "ring": "r", "opcode": "NOP", "program": ALLOW})
    run.submit("r", nop(1), nop(2, sqe_flags="IO_DRAIN"), nop(3))
    assert _flags_seen(run) == [0x00, 0x12, 0x10]
    run.submit("r", nop(4), nop(5))
    assert _flags_seen(run) == [0x10, 0x00]


def test_drain_inside_a_link_drains_the_next_request() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"}, {"do": "filter", "ring": "r", "opcode": "NOP", "program": ALLOW})
    run.submit("r", nop(1, sqe_flags="IO_LINK"), nop(2, sqe_flags="IO_DRAIN"), nop(3))
    assert _flags_seen(run) == [0x04, 0x12, 0x12]
