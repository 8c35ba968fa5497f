"""Tasks (threads) and processes: credentials, no_new_privs, per-task restriction state, ring descriptors.

Restriction state hangs off the task (one thread), descriptors and credentials off the process (spec §4.6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ringfence.model.restriction import RestrictionState

if TYPE_CHECKING:
    from ringfence.model.ring import Ring


@dataclass(slots=True, eq=False)
class Process:
    """A process: its descriptor table (ring name -> ring) and its credentials (shared by its threads)."""

    pid: int
    uid: int = 0
    #: CAP_SYS_ADMIN in the current user namespace (root until ``drop_privileges``).
    privileged: bool = True
    #: User namespaces entered below the initial one (``unshare(CLONE_NEWUSER)``), inherited by fork.
    userns: int = 0
    rings: dict[str, Ring] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Task:
    """A kernel task. ``restriction`` is the ``io_uring_restrict`` pointer: None until something is registered."""

    name: str
    process: Process
    nnp: bool = False
    restriction: RestrictionState | None = None
    #: The task has an io_uring task context (created a ring or submitted); matters for registered-ring lookups.
    has_tctx: bool = False

    def passes_gate(self) -> bool:
        """§4.2: no_new_privs, or CAP_SYS_ADMIN in the current user namespace."""
        return self.nnp or self.process.privileged
