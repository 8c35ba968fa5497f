"""A ring (``io_ring_ctx``): its restriction state, enforcement bits, submitter, SQ backlog and drain state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ringfence.abi.opcodes import SetupFlag
from ringfence.abi.sqe import Sqe
from ringfence.model.explain import RingView
from ringfence.model.filters import FilterTable
from ringfence.model.outcome import OK
from ringfence.model.restriction import RestrictionState

if TYPE_CHECKING:
    from ringfence.model.task import Task


@dataclass(frozen=True, slots=True)
class Submission:
    """A request queued on a ring: the SQE, and the outcome its operation has if the sandbox lets it run.

    The model performs no I/O; the result of running an operation is an input (``"ok"`` or an errno name).
    Everything the restriction layer decides is computed.
    """

    sqe: Sqe
    result: str = OK


@dataclass(slots=True, eq=False)
class Ring:
    """One io_uring instance.

    ``op_restricted``/``reg_restricted`` are the 7.0 enforcement bits; pre-7.0 kernels set both together at
    enable (§3.7). ``cache`` is the hot-path pointer to the filter heads (§3.1), refreshed on creation and
    on each successful ring filter registration. ``drain_*`` mirror ``ctx->drain_*`` (§8.1 steps 4-5).
    """

    name: str
    serial: int
    setup_flags: int
    sq_entries: int
    creator: str
    state: RestrictionState = field(default_factory=RestrictionState)
    op_restricted: bool = False
    reg_restricted: bool = False
    disabled: bool = False
    submitter: Task | None = None
    cache: FilterTable | None = None
    pending: list[Submission] = field(default_factory=list)
    drain_disabled: bool = False
    drain_active: bool = False
    drain_next: bool = False
    personalities: int = 0  # REGISTER_PERSONALITY successes: ids 1..n are registered

    def has(self, flag: SetupFlag | int) -> bool:
        return bool(self.setup_flags & int(flag))

    @property
    def owner(self) -> str:
        """How filters this ring registered itself are labelled (others it holds are inherited)."""
        return f"ring {self.name}"

    def fingerprint(self) -> tuple[Any, ...]:
        cache = None if self.cache is None else self.cache.serial
        submitter = None if self.submitter is None else self.submitter.name
        return (self.state.fingerprint(), self.op_restricted, self.reg_restricted, self.disabled, submitter, cache,
                self.personalities)

    def view(self) -> RingView:
        return RingView(self.name, self.creator, self.disabled, self.op_restricted, self.reg_restricted,
                        self.state.view(), None if self.cache is None else self.cache.label)
