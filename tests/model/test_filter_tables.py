"""§6: install, DENY_REST, evaluation order, copy-on-write, and the §6.6 table for 7.0-7.2 versus 7.3."""

from __future__ import annotations

from typing import Any

import pytest
from modelkit import ALLOW, DENY, INET_ONLY, TCP_ONLY, Run, nop

from ringfence.model import ProgramVerdict

SOCK_INET_TCP = {"op": "SOCKET", "family": "AF_INET", "type": "SOCK_STREAM"}
SOCK_INET_UDP = {"op": "SOCKET", "family": "AF_INET", "type": "SOCK_DGRAM"}
SOCK_INET6_TCP = {"op": "SOCKET", "family": "AF_INET6", "type": "SOCK_STREAM"}
SOCK_UNIX = {"op": "SOCKET", "family": "AF_UNIX", "type": "SOCK_STREAM"}


def _chain(run: Run) -> tuple[ProgramVerdict, ...]:
    filters = run.sqe_explain()[0].decision.filters
    assert filters is not None
    return filters.chain


def f(opcode: str, program: str, task: str = "main", ring: str | None = None, **extra: Any) -> dict[str, Any]:
    pdu = {"SOCKET": 12, "OPENAT": 24, "OPENAT2": 24, "CONNECT": 24}.get(opcode, 0)
    step: dict[str, Any] = {"do": "filter", "task": task, "opcode": opcode, "program": program, "pdu_size": pdu,
                            **extra}
    if ring:
        step["ring"] = ring
    return step


def s(ud: int, base: dict[str, Any]) -> dict[str, Any]:
    return {**base, "ud": ud}


# -- §6.6 scenario table -----------------------------------------------------------------------------------

SHARED = ["7.0", "7.1", "7.2"]


@pytest.mark.parametrize("kernel", [*SHARED, "7.3"])
def test_later_task_filter_reaches_earlier_ring_only_before_7_3(kernel: str) -> None:
    run = Run(kernel, {"do": "nnp"}, f("NOP", ALLOW), {"do": "ring", "ring": "a"}, f("SOCKET", DENY))
    expected = "EACCES" if kernel in SHARED else "ok"
    assert run.cqes("a", s(1, SOCK_INET_TCP)) == {1: expected}


@pytest.mark.parametrize("kernel", ["7.2", "7.3"])
def test_chain_order_newest_first(kernel: str) -> None:
    run = Run(kernel, {"do": "nnp"}, f("SOCKET", ALLOW), {"do": "ring", "ring": "a"}, f("SOCKET", INET_ONLY))
    run.cqes("a", s(1, SOCK_INET_TCP))
    chain = [c.filter for c in _chain(run)]
    if kernel == "7.2":
        assert chain == ["filter#3 (task main, step 3)", "filter#1 (task main, step 1)"]
    else:
        assert chain == ["filter#1 (task main, step 1)"]


@pytest.mark.parametrize("kernel", [*SHARED, "7.3"])
def test_later_task_filter_reaches_earlier_child_only_before_7_3(kernel: str) -> None:
    run = Run(kernel, {"do": "nnp"}, f("NOP", ALLOW), {"do": "fork", "child": "c"}, f("SOCKET", DENY),
              {"do": "ring", "ring": "rc", "task": "c"})
    assert run.cqes("rc", s(1, SOCK_INET_TCP), task="c") == {1: "EACCES" if kernel in SHARED else "ok"}


@pytest.mark.parametrize("kernel", [*SHARED, "7.3"])
def test_child_that_registered_first_has_copied(kernel: str) -> None:
    run = Run(kernel, {"do": "nnp"}, f("NOP", ALLOW), {"do": "fork", "child": "c"}, f("READ", ALLOW, task="c"),
              f("SOCKET", DENY), {"do": "ring", "ring": "rc", "task": "c"})
    assert run.cqes("rc", s(1, SOCK_INET_TCP), task="c") == {1: "ok"}


@pytest.mark.parametrize("kernel", [*SHARED, "7.3"])
def test_ring_that_registered_first_has_copied(kernel: str) -> None:
    run = Run(kernel, {"do": "nnp"}, f("NOP", ALLOW), {"do": "ring", "ring": "a"}, f("READ", ALLOW, ring="a"),
              f("SOCKET", DENY))
    assert run.cqes("a", s(1, SOCK_INET_TCP)) == {1: "ok"}


@pytest.mark.parametrize("kernel", [*SHARED, "7.3"])
def test_deny_rest_fills_the_shared_table_before_7_3(kernel: str) -> None:
    run = Run(kernel, {"do": "nnp"}, f("NOP", ALLOW), {"do": "ring", "ring": "a"},
              f("READ", ALLOW, flags="DENY_REST"))
    assert run.each("a", s(1, SOCK_INET_TCP), nop(2)) == {1: "EACCES" if kernel in SHARED else "ok", 2: "ok"}


@pytest.mark.parametrize("kernel", [*SHARED, "7.3"])
def test_classic_only_task_state_shares_no_table(kernel: str) -> None:
    run = Run(kernel, {"do": "nnp"}, {"do": "restrict", "records": [["SQE_OP", "SOCKET"]]}, {"do": "ring", "ring": "a"},
              f("SOCKET", DENY))
    assert run.cqes("a", s(1, SOCK_INET_TCP)) == {1: "ok"}


@pytest.mark.parametrize("kernel", [*SHARED, "7.3"])
def test_ring_before_any_registration_is_unaffected(kernel: str) -> None:
    run = Run(kernel, {"do": "nnp"}, {"do": "ring", "ring": "a"}, f("SOCKET", DENY, flags="DENY_REST"))
    assert run.each("a", s(1, SOCK_INET_TCP), nop(2)) == {1: "ok", 2: "ok"}


# -- §6.2 / §6.3 ---------------------------------------------------------------------------------------------------

def test_deny_rest_fills_only_empty_heads_and_not_the_own_opcode() -> None:
    run = Run("7.2", {"do": "nnp"}, f("SOCKET", INET_ONLY), f("NOP", ALLOW, flags="DENY_REST"),
              {"do": "ring", "ring": "r"})
    assert run.cqes("r", nop(1), s(2, SOCK_INET_TCP), s(3, SOCK_INET6_TCP)) == {1: "ok", 2: "ok", 3: "EACCES"}
    table = run.kernel.task("main").restriction.table  # type: ignore[union-attr]
    assert table is not None and table.heads[45] is not None and not table.heads[45].is_marker


def test_marker_can_never_be_allowed_again() -> None:
    run = Run("7.2", {"do": "nnp"}, f("NOP", ALLOW, flags="DENY_REST"), f("READ", ALLOW),
              {"do": "ring", "ring": "r"}, f("READ", ALLOW, ring="r"))
    assert run.cqes("r", {"op": "READ", "ud": 1, "fd": "zero"}) == {1: "EACCES"}
    assert [c.allowed for c in _chain(run)] == [True, True, False]     # ring's, task's, then the marker


def test_install_in_place_without_cow_and_copy_with_cow() -> None:
    run = Run("7.2", {"do": "nnp"}, f("NOP", ALLOW))
    state = run.kernel.task("main").restriction
    assert state is not None and state.table is not None and not state.cow
    first = state.table
    run.do(f("NOP", DENY))
    assert state.table is first                                      # in place
    run.do({"do": "fork", "child": "c"}, f("NOP", ALLOW, task="c"))
    child = run.kernel.task("c").restriction
    assert child is not None and child.table is not first and not child.cow
    assert child.table.heads[0] is not None and child.table.heads[0].next is first.heads[0]  # nodes shared


# -- liburing test/cbpf_filter.c (§9.3) ------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["task", "ring"])
def test_allow_inet_only_and_tcp_only(where: str) -> None:
    for program, wanted in ((INET_ONLY, {1: "ok", 2: "EACCES", 3: "EACCES"}),
                            (TCP_ONLY, {1: "ok", 2: "ok", 3: "ok"})):
        run = Run("7.2", {"do": "nnp"}, {"do": "fork", "child": "c"}, {"do": "ring", "ring": "r", "task": "c"})
        run.do(f("SOCKET", program, task="c", ring="r" if where == "ring" else None))
        if where == "task":
            run.do({"do": "ring", "ring": "r2", "task": "c"})
        ring = "r" if where == "ring" else "r2"
        third = SOCK_UNIX if program == INET_ONLY else SOCK_INET6_TCP
        assert run.each(ring, s(1, SOCK_INET_TCP), s(2, SOCK_INET6_TCP if program == INET_ONLY else SOCK_INET_TCP),
                        s(3, third), task="c") == wanted


def test_tcp_only_denies_udp() -> None:
    run = Run("7.2", {"do": "nnp"}, f("SOCKET", TCP_ONLY), {"do": "ring", "ring": "r"})
    assert run.each("r", s(1, SOCK_INET_UDP), s(2, SOCK_INET6_TCP)) == {1: "EACCES", 2: "ok"}


def test_stack_and_cannot_loosen() -> None:
    run = Run("7.2", {"do": "nnp"}, f("SOCKET", INET_ONLY), f("NOP", DENY), {"do": "fork", "child": "l2"},
              f("SOCKET", TCP_ONLY, task="l2"), f("NOP", ALLOW, task="l2"), {"do": "ring", "ring": "r", "task": "l2"})
    got = run.each("r", s(1, SOCK_INET_TCP), s(2, SOCK_INET_UDP), s(3, SOCK_INET6_TCP), task="l2")
    assert got == {1: "ok", 2: "EACCES", 3: "EACCES"}
    assert run.cqes("r", nop(4), task="l2") == {4: "EACCES"}
    assert [c.allowed for c in _chain(run)] == [True, False]            # L2's allow runs first, then L1's deny


def test_multi_level_inherit() -> None:
    run = Run("7.2", {"do": "nnp"}, f("SOCKET", INET_ONLY), {"do": "fork", "child": "l2"},
              f("SOCKET", TCP_ONLY, task="l2"), {"do": "fork", "task": "l2", "child": "l3"},
              f("NOP", ALLOW, task="l3", flags="DENY_REST"), {"do": "ring", "ring": "r", "task": "l3"})
    got = run.each("r", nop(1), s(2, SOCK_INET_TCP), s(3, SOCK_INET_UDP), s(4, SOCK_INET6_TCP), task="l3")
    assert got == {1: "ok", 2: "ok", 3: "EACCES", 4: "EACCES"}


def test_deny_rest_ring() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"}, f("NOP", ALLOW, ring="r", flags="DENY_REST"))
    assert run.cqes("r", nop(1), s(2, SOCK_INET_TCP)) == {1: "ok", 2: "EACCES"}  # the denial is last


def test_no_new_privs_required_for_task_filters_only() -> None:
    run = Run("7.2", {"do": "fork", "child": "c"}, {"do": "drop_privileges", "task": "c"})
    assert run.result(f("NOP", DENY, task="c")) == "EACCES"
    assert run.result(f("NOP", DENY)) == "ok"                       # root passes without no_new_privs


@pytest.mark.parametrize("kernel", ["7.0", "7.2", "7.3"])
def test_deny_rest_on_a_fresh_table_fills_every_other_opcode(kernel: str) -> None:
    run = Run(kernel, {"do": "ring", "ring": "r"}, f("NOP", ALLOW, ring="r", flags="DENY_REST"))
    ring = run.kernel.ring_of(run.kernel.task("main"), "r")
    assert ring is not None and ring.cache is not None
    heads = ring.cache.heads
    assert len(heads) == 65
    assert heads[0] is not None and not heads[0].is_marker
    assert all(h is not None and h.is_marker for h in heads[1:])
    install = run.last.explanation.install  # type: ignore[union-attr]
    assert install is not None and len(install.deny_rest_filled) == 64
