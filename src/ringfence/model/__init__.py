"""An exact, executable, deterministic model of the kernel's io_uring restrictions and cBPF filters.

It speaks kernel records (:mod:`ringfence.abi`), not scenarios. What is modelled and at which fidelity is in
``docs/model.md``; the rules it decides by are in ``docs/semantics.md``. Modules: :mod:`.restriction` (classic
state), :mod:`.filters` (tables, chains, copy-on-write), :mod:`.register` / :mod:`.bpfreg` (the register
syscall), :mod:`.prep` (per-opcode prep and filter payloads), :mod:`.decide` (one request at init),
:mod:`.submit` (the submission loop and links), :mod:`.kernel` (tasks, processes, rings), :mod:`.rules` and
:mod:`.explain` (why).
"""

from ringfence.model.decide import RingState, decide
from ringfence.model.explain import (
    Decision,
    Explanation,
    FilterRun,
    ProgramVerdict,
    RequestOutcome,
    StateView,
    SubmitExplanation,
)
from ringfence.model.filters import DENY_MARKER, FilterNode, FilterTable
from ringfence.model.kernel import Kernel, QueueFullError, Target
from ringfence.model.outcome import OK, Refused, Reply, SubmitReply, Submitted
from ringfence.model.restriction import RestrictionState
from ringfence.model.ring import Ring, Submission
from ringfence.model.rules import Mechanism, Rule
from ringfence.model.task import Process, Task

__all__ = [
    "DENY_MARKER",
    "OK",
    "Decision",
    "Explanation",
    "FilterNode",
    "FilterRun",
    "FilterTable",
    "Kernel",
    "Mechanism",
    "Process",
    "ProgramVerdict",
    "QueueFullError",
    "Refused",
    "Reply",
    "RequestOutcome",
    "RestrictionState",
    "Ring",
    "RingState",
    "Rule",
    "StateView",
    "Submission",
    "SubmitExplanation",
    "SubmitReply",
    "Submitted",
    "Target",
    "Task",
    "decide",
]
