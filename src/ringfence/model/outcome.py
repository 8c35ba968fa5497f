"""How a modelled kernel path ends: ``"ok"`` or an errno name, the rule that decided it, and the explanation.

Ordered errno tables are written as a sequence of checks that raise :class:`Refused`; the first one that fires
decides, exactly as the kernel's early returns do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

from ringfence.errors import errno_name, errno_number
from ringfence.model.explain import Explanation, SubmitExplanation
from ringfence.model.rules import Rule

OK: Final = "ok"


@cache
def spelling(name: str) -> str:
    """The errno name exactly as :func:`ringfence.errors.errno_name` (and so the live kernel) spells it.

    Aliases share a number (EOPNOTSUPP/ENOTSUP, EAGAIN/EWOULDBLOCK); transcripts compare names, so the model
    normalises through the number. Unknown names pass through unchanged.
    """
    try:
        return errno_name(errno_number(name))
    except ValueError:
        return name


class Refused(Exception):  # noqa: N818 - it is an outcome, not a bug
    """A kernel path returned ``-errno`` by ``rule``; ``detail`` says why in words."""

    __slots__ = ("detail", "errno", "rule")

    def __init__(self, errno: str, rule: Rule, detail: str = "") -> None:
        errno = spelling(errno)
        super().__init__(f"{errno}: {rule.id}" + (f" ({detail})" if detail else ""))
        self.errno = errno
        self.rule = rule
        self.detail = detail

    def explanation(self) -> Explanation:
        return Explanation(self.rule, self.detail)


@dataclass(frozen=True, slots=True)
class Reply:
    """A syscall's result: outcome, the explanation, and for filter registrations the ``pdu_size`` byte after it."""

    result: str
    explanation: Explanation
    pdu_size_out: int | None = None

    @staticmethod
    def ok(explanation: Explanation) -> Reply:
        return Reply(OK, explanation)

    @staticmethod
    def refused(exc: Refused) -> Reply:
        return Reply(exc.errno, exc.explanation())

    @property
    def rule(self) -> Rule:
        return self.explanation.rule


@dataclass(frozen=True, slots=True)
class Submitted:
    """``io_uring_enter``'s outcome: SQEs consumed (or an errno name) and the CQEs as ``(user_data, outcome)``."""

    submitted: int | str
    cqes: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SubmitReply:
    result: Submitted
    explanation: SubmitExplanation
