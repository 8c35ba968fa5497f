"""§4.2-§4.7: the privilege gate, task restrictions and task filters (ordered), inheritance, threads, exec."""

from __future__ import annotations

import pytest
from modelkit import ALLOW, DENY, Run, nop

from ringfence.model.rules import Rule

TASK_NOP = {"do": "restrict", "records": [["SQE_OP", "NOP"]]}


def task_restrict(**fields: object) -> dict[str, object]:
    return {"do": "restrict", "records": [["SQE_OP", "NOP"]], **fields}


def task_filter(**fields: object) -> dict[str, object]:
    return {"do": "filter", "opcode": "NOP", "program": ALLOW, **fields}


# -- §4.3, one test per row ------------------------------------------------------------------------------------------

def test_row1_eperm_after_own_classic_registration() -> None:
    run = Run("7.2", {"do": "nnp"}, TASK_NOP)
    assert run.result(task_restrict()) == "EPERM"


def test_row1_eperm_after_a_filter_even_before_the_gate() -> None:
    run = Run("7.2", task_filter(), {"do": "drop_privileges"})   # root registered a filter, then lost the cap
    assert run.replies[0].result == "ok"
    assert run.result(task_restrict()) == "EPERM"             # row 1 precedes the gate (row 2)


def test_row1_eperm_when_inherited_through_fork() -> None:
    run = Run("7.2", {"do": "nnp"}, task_filter(), {"do": "fork", "child": "c"})
    assert run.result(task_restrict(task="c")) == "EPERM"


def test_row2_gate() -> None:
    run = Run("7.2", {"do": "drop_privileges"})
    assert run.result(task_restrict()) == "EACCES"
    assert run.result(task_restrict(nr_args=2)) == "EACCES"   # the gate precedes nr_args
    run.do({"do": "nnp"})
    assert run.result(task_restrict()) == "ok"


def test_root_passes_the_gate_without_nnp() -> None:
    assert Run("7.2").result(task_restrict()) == "ok"


def test_row3_nr_args() -> None:
    assert Run("7.2", {"do": "nnp"}).result(task_restrict(nr_args=0)) == "EINVAL"


def test_row4_header_fault() -> None:
    assert Run("7.2", {"do": "nnp"}).result(task_restrict(null=True, header_flags=1)) == "EFAULT"


def test_row5_header_flags() -> None:
    assert Run("7.2", {"do": "nnp"}).result(task_restrict(header_flags=1, header_resv=[0, 1, 0])) == "EINVAL"


def test_row6_header_resv() -> None:
    run = Run("7.2", {"do": "nnp"})
    assert run.result(task_restrict(header_resv=[0, 0, 1], nr_res=500)) == "EINVAL"
    assert run.last.explanation.rule is Rule.TASK_HEADER_RESV  # type: ignore[union-attr]


@pytest.mark.parametrize("fields", [{"nr_res": 108}, {"records": [["SQE_OP", 99]]}, {"records": [[9, 0]]}])
def test_row8_parse(fields: dict[str, object]) -> None:
    run = Run("7.2", {"do": "nnp"})
    assert run.result(task_restrict(**fields)) == "EINVAL"
    assert run.kernel.task("main").restriction is None            # the fresh state was discarded
    assert run.result(task_restrict()) == "ok"                    # so the one shot is still available


def test_empty_task_set_locks_down_later_rings() -> None:
    run = Run("7.2", {"do": "nnp"}, {"do": "restrict", "records": []}, {"do": "ring", "ring": "r"})
    assert run.cqes("r", nop(1)) == {1: "EACCES"}
    assert run.result({"do": "register", "ring": "r", "opcode": "PROBE"}) == "EACCES"


# -- §4.4, one test per row ------------------------------------------------------------------------------------------

def test_filter_row1_gate_before_nr_args() -> None:
    run = Run("7.2", {"do": "drop_privileges"})
    assert run.result(task_filter(nr_args=2)) == "EACCES"


def test_filter_row2_nr_args() -> None:
    run = Run("7.2", {"do": "nnp"})
    assert run.result(task_filter(nr_args=2, cmd_type=9)) == "EINVAL"
    assert run.last.explanation.rule is Rule.FILTER_NR_ARGS  # type: ignore[union-attr]


def test_filter_row4_registration_failure_leaves_no_state() -> None:
    run = Run("7.2", {"do": "nnp"})
    assert run.result(task_filter(cmd_type=2)) == "EINVAL"
    assert run.kernel.task("main").restriction is None
    assert run.result(task_restrict()) == "ok"       # no state was created, so classic registration is still open


def test_filters_stack_and_ring_path_needs_no_privilege() -> None:
    run = Run("7.2", {"do": "drop_privileges"}, {"do": "ring", "ring": "r"})
    assert run.result({"do": "filter", "ring": "r", "opcode": "NOP", "program": ALLOW}) == "ok"
    assert run.result({"do": "filter", "ring": "r", "opcode": "NOP", "program": DENY}) == "ok"
    assert run.cqes("r", nop(1)) == {1: "EACCES"}


# -- §4.5 rings created by a restricted task ---------------------------------------------------------------------------

def test_ring_inherits_immediately_without_r_disabled() -> None:
    run = Run("7.2", {"do": "nnp"}, TASK_NOP, {"do": "ring", "ring": "r"})
    assert run.cqes("r", nop(1), {"op": "READ", "ud": 2, "fd": "zero"}) == {1: "ok", 2: "EACCES"}


def test_rings_created_before_registration_are_unaffected() -> None:
    run = Run("7.2", {"do": "nnp"}, {"do": "ring", "ring": "early"}, {"do": "restrict", "records": []})
    assert run.cqes("early", nop(1)) == {1: "ok"}


def test_disabled_ring_of_restricted_task_is_register_restricted_from_creation() -> None:
    # The spec's [DERIVED] §10.1 #5 predicted the opposite; Debian 7.2.13 answers as below
    # (corpus: derived/disabled_ring_inherited_register_restrictions*).
    run = Run("7.2", {"do": "nnp"}, {"do": "restrict", "records": [["REGISTER_OP", "PROBE"]]},
              {"do": "ring", "ring": "r", "flags": "R_DISABLED"})
    assert run.result({"do": "register", "ring": "r", "opcode": "FILES", "files": ["null"]}) == "EACCES"
    assert run.result({"do": "restrict", "ring": "r", "records": []}) == "EACCES"
    assert run.result({"do": "enable", "ring": "r"}) == "EACCES"
    assert run.result({"do": "register", "ring": "r", "opcode": "PROBE"}) == "ok"


def test_inherited_register_set_that_allows_enable_can_be_enabled() -> None:
    run = Run("7.2", {"do": "nnp"}, {"do": "restrict", "records": [["REGISTER_OP", "ENABLE_RINGS"]]},
              {"do": "ring", "ring": "r", "flags": "R_DISABLED"})
    assert run.result({"do": "enable", "ring": "r"}) == "ok"
    assert run.result({"do": "register", "ring": "r", "opcode": "BUFFERS"}) == "EACCES"


def test_ring_inheriting_only_filters_may_still_register_restrictions() -> None:
    run = Run("7.2", {"do": "nnp"}, task_filter(program=DENY), {"do": "ring", "ring": "r", "flags": "R_DISABLED"})
    assert run.result({"do": "restrict", "ring": "r", "records": [["SQE_OP", "NOP"]]}) == "ok"


def test_rings_received_from_an_unrestricted_parent_are_unaffected() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"}, {"do": "fork", "child": "c"}, {"do": "nnp", "task": "c"},
              {"do": "restrict", "task": "c", "records": []})
    assert run.cqes("r", nop(1), task="c") == {1: "ok"}


# -- §4.6 tasks, threads, exec -----------------------------------------------------------------------------------

def test_fork_inherit_like_liburing() -> None:
    run = Run("7.2", {"do": "nnp"}, {"do": "restrict", "records": [["SQE_OP", "NOP"], ["SQE_OP", "WRITE"]]},
              {"do": "fork", "child": "g"}, {"do": "ring", "ring": "r", "task": "g"})
    assert run.cqes("r", nop(1), {"op": "READ", "ud": 2, "fd": "zero"}, task="g") == {1: "ok", 2: "EACCES"}


def test_existing_threads_stay_free_new_threads_inherit() -> None:
    run = Run("7.2", {"do": "nnp"}, {"do": "thread", "thread": "before"}, {"do": "restrict", "records": []},
              {"do": "thread", "thread": "after"}, {"do": "ring", "ring": "rb", "task": "before"},
              {"do": "ring", "ring": "ra", "task": "after"})
    assert run.cqes("rb", nop(1), task="before") == {1: "ok"}
    assert run.cqes("ra", nop(2), task="after") == {2: "EACCES"}


def test_thread_shares_descriptors_but_not_later_registrations() -> None:
    run = Run("7.2", {"do": "nnp"}, {"do": "thread", "thread": "t"}, task_filter(task="t", program=DENY),
              {"do": "ring", "ring": "r"})
    assert run.cqes("r", nop(1), task="t") == {1: "ok"}      # the ring is main's: main has no filter
    run.do({"do": "ring", "ring": "rt", "task": "t"})
    assert run.cqes("rt", nop(2)) == {2: "EACCES"}           # main may submit to t's ring: its filter applies


def test_exec_keeps_restrictions_and_nnp_but_closes_rings() -> None:
    run = Run("7.2", {"do": "nnp"}, {"do": "ring", "ring": "r"}, task_filter(program=DENY), {"do": "exec"})
    assert run.submit("r", nop(1)).submitted == "EBADF"
    run.do({"do": "ring", "ring": "r2"})
    assert run.cqes("r2", nop(2)) == {2: "EACCES"}
    assert run.kernel.task("main").nnp


def test_exec_needs_a_single_threaded_process() -> None:
    from ringfence.errors import ScenarioError

    with pytest.raises(ScenarioError):
        Run("7.2", {"do": "thread", "thread": "t"}, {"do": "exec"})


def test_drop_privileges_is_process_wide() -> None:
    run = Run("7.2", {"do": "thread", "thread": "t"}, {"do": "fork", "child": "c"}, {"do": "drop_privileges"})
    assert run.result(task_filter(task="t")) == "EACCES"
    assert run.result(task_filter(task="c")) == "ok"
