"""An exact, executable, deterministic model of the kernel's io_uring restrictions and cBPF filters.

The contract is ``/work/shared/spec/kernel-semantics.md`` (sections cited as §n); what is modelled and at
which fidelity is in ``docs/model.md``. Layers: :mod:`.restriction` (classic state), :mod:`.filters`
(tables, chains, copy-on-write), :mod:`.register` / :mod:`.bpfreg` (the register syscall), :mod:`.prep`
(per-opcode prep and filter payloads), :mod:`.submit` (the SQE pipeline and links), :mod:`.kernel`
(tasks, processes, rings).
"""

from ringfence.model.filters import DENY_MARKER, FilterNode, FilterTable
from ringfence.model.kernel import Kernel
from ringfence.model.outcome import OK, Refused, Reply
from ringfence.model.restriction import RestrictionState
from ringfence.model.ring import Ring
from ringfence.model.submit import SubmitReply
from ringfence.model.task import Process, Task

__all__ = [
    "DENY_MARKER", "OK", "FilterNode", "FilterTable", "Kernel", "Process", "Refused", "Reply",
    "RestrictionState", "Ring", "SubmitReply", "Task",
]
