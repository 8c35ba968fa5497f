"""Applying restrictions to the current task: all or nothing, tried in forked children only."""

from __future__ import annotations

import pytest

from ringfence.abi.layout import FilterRegistration, Restriction
from ringfence.abi.opcodes import RegisterOp, RestrictionOp, SqeOp
from ringfence.abi.profiles import KernelProfile
from ringfence.errors import KernelError, UnsupportedError
from ringfence.live import _sys, sqes, task
from ringfence.live.child import ChildError, run_in_child
from ringfence.live.ring import Ring

from .conftest import insns

pytestmark = pytest.mark.live

NOP_ONLY = [Restriction(RestrictionOp.SQE_OP, SqeOp.NOP)]
DENY = insns([[6, 0, 0, 0]])


def _nnp_after(fn: object) -> dict[str, object]:
    """Run ``fn`` in a child; report what it raised and whether no_new_privs ended up set."""
    def child() -> dict[str, object]:
        try:
            fn()  # type: ignore[operator]
            raised = None
        except (KernelError, UnsupportedError, ValueError) as exc:
            raised = type(exc).__name__ + ":" + getattr(exc, "name", "")
        return {"raised": raised, "nnp": _sys.no_new_privs()}

    return dict(run_in_child(child))


def test_bad_program_is_refused_before_anything_irreversible() -> None:
    out = _nnp_after(lambda: task.apply(filters=[FilterRegistration(SqeOp.NOP, b"\x06\x00")]))
    assert out == {"raised": "ValueError:", "nnp": False}


def test_bad_records_are_refused_before_anything_irreversible() -> None:
    out = _nnp_after(lambda: task.apply(restrictions=[Restriction(RestrictionOp.SQE_OP, 250)]))
    assert out == {"raised": "KernelError:EINVAL", "nnp": False}


def test_unsupported_kernel_changes_nothing(kernel: KernelProfile) -> None:
    if kernel.task_restrictions:
        pytest.skip("this kernel has task restrictions")
    assert _nnp_after(lambda: task.apply(restrictions=NOP_ONLY)) == {"raised": "UnsupportedError:", "nnp": False}
    assert _nnp_after(lambda: task.apply(filters=[FilterRegistration(SqeOp.NOP, DENY)])) == \
        {"raised": "UnsupportedError:", "nnp": False}


def test_blind_support_answers(kernel: KernelProfile) -> None:
    want = "EFAULT" if kernel.task_restrictions else "EINVAL"
    assert task.blind_support(RegisterOp.RESTRICTIONS) == want  # root: the gate passes, NULL faults


def test_apply_restricts_the_task_and_its_rings(kernel: KernelProfile) -> None:
    if not kernel.task_restrictions:
        pytest.skip("no task restrictions on this kernel")

    def child() -> list[object]:
        written = task.apply(restrictions=NOP_ONLY, filters=[FilterRegistration(SqeOp.SOCKET, DENY, pdu_size=12)])
        with Ring.setup(2) as ring:
            ring.queue(sqes.nop(1))
            ring.queue(sqes.rw(SqeOp.READ, 0, 8, user_data=2))
            ring.submit()
            cqes = sorted((c.user_data, c.res) for c in ring.wait())
        try:
            task.apply(restrictions=NOP_ONLY)
            again = "ok"
        except KernelError as exc:
            again = exc.name
        return [written, [list(c) for c in cqes], again, _sys.no_new_privs()]

    written, cqes, again, nnp = run_in_child(child)
    assert written == [12] and cqes == [[1, 0], [2, -13]] and again == "EPERM" and nnp is True


def test_child_errors_are_reported() -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    with pytest.raises(ChildError, match="boom"):
        run_in_child(boom)
