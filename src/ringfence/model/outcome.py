"""How a modelled kernel path ends: ``"ok"`` or an errno name, and the spec row that decided it.

Ordered errno tables (spec §0) are written as a sequence of checks that raise :class:`Refused`; the first
one that fires decides, exactly as the kernel's early returns do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from ringfence.errors import errno_name, errno_number

OK: Final = "ok"


@cache
def spelling(name: str) -> str:
    """The errno name exactly as :func:`ringfence.errors.errno_name` (and so the live backend) spells it.

    Aliases share a number (EOPNOTSUPP/ENOTSUP, EAGAIN/EWOULDBLOCK); transcripts compare names, so the model
    normalises through the number. Unknown names pass through unchanged.
    """
    try:
        return errno_name(errno_number(name))
    except ValueError:
        return name


class Refused(Exception):  # noqa: N818 - it is an outcome, not a bug
    """A kernel path returned ``-errno``. ``rule`` names the spec row, ``detail`` says why in words."""

    __slots__ = ("detail", "errno", "rule")

    def __init__(self, errno: str, rule: str, detail: str = "") -> None:
        errno = spelling(errno)
        super().__init__(f"{errno}: {rule}" + (f" ({detail})" if detail else ""))
        self.errno = errno
        self.rule = rule
        self.detail = detail

    def explain(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result": self.errno, "rule": self.rule}
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True, slots=True)
class Reply:
    """A syscall's result as the transcript records it: outcome, the pdu_size write-back, the explanation."""

    result: str
    explain: dict[str, Any] = field(default_factory=dict)
    pdu_size_out: int | None = None

    @staticmethod
    def ok(rule: str, **extra: Any) -> Reply:
        return Reply(OK, {"result": OK, "rule": rule, **extra})

    @staticmethod
    def refused(exc: Refused, **extra: Any) -> Reply:
        return Reply(exc.errno, {**exc.explain(), **extra})
