"""One error hierarchy for the whole package.

Library code raises these; only ``ringfence.cli`` turns them into text and exit codes.
Errors that correspond to a kernel errno carry both its number and its name, because the
model and the live backend compare outcomes by errno *name*.
"""

from __future__ import annotations

import errno as _errno
import os

#: Where libc has two names for one number, the one the kernel's sources use.
_KERNEL_SPELLING = {_errno.EOPNOTSUPP: "EOPNOTSUPP", _errno.EAGAIN: "EAGAIN", _errno.EDEADLK: "EDEADLK"}


def errno_name(number: int) -> str:
    """The kernel's name for a positive or negative errno (``-13`` -> ``EACCES``, ``-95`` -> ``EOPNOTSUPP``)."""
    n = abs(number)
    return _KERNEL_SPELLING.get(n) or _errno.errorcode.get(n, f"E{n}")


def outcome_of(value: int) -> str:
    """``"ok"`` for a non-negative kernel result, else the errno name of ``-value`` (how outcomes are compared)."""
    return "ok" if value >= 0 else errno_name(-value)


def errno_number(name: str) -> int:
    """The positive errno number for a name such as ``EACCES``."""
    value = getattr(_errno, name, None)
    if not isinstance(value, int):
        raise ValueError(f"unknown errno name {name!r}")
    return value


class RingfenceError(Exception):
    """Base of every error ringfence raises."""


class AsmError(RingfenceError):
    """Assembly source that cannot be assembled; points at line and column."""

    def __init__(self, message: str, *, line: int = 0, column: int = 0, source_line: str = "",
                 filename: str = "<input>") -> None:
        self.message = message
        self.line = line
        self.column = column
        self.source_line = source_line
        self.filename = filename
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.filename}:{self.line}:{self.column}: " if self.line else ""
        text = f"{where}error: {self.message}"
        if self.source_line:
            text += f"\n    {self.source_line}\n    {' ' * max(self.column - 1, 0)}^"
        return text


class DecodeError(RingfenceError):
    """Bytes that are not a whole number of 8-byte ``sock_filter`` records, or similar."""


class CheckError(RingfenceError):
    """A program the kernel would refuse; carries every diagnostic and the kernel errno name."""

    def __init__(self, message: str, *, errno_name: str = "EINVAL", diagnostics: tuple[object, ...] = ()) -> None:
        self.errno_name = errno_name
        self.diagnostics = diagnostics
        super().__init__(message)


class KernelError(RingfenceError, OSError):
    """The kernel answered with an errno. ``name`` is the symbolic errno (``EBADFD``)."""

    def __init__(self, number: int, operation: str) -> None:
        number = abs(number)
        self.name = errno_name(number)
        self.operation = operation
        OSError.__init__(self, number, f"{operation}: {self.name} ({os.strerror(number)})")


class UnsupportedError(RingfenceError):
    """A feature this kernel (or this profile) does not have."""


class ScenarioError(RingfenceError):
    """A scenario file that is malformed or refers to things that do not exist."""

    def __init__(self, message: str, *, path: str = "", step: int | None = None) -> None:
        self.message = message
        self.path = path
        self.step = step
        where = path + (f": step {step}" if step is not None else "")
        super().__init__(f"{where}: {message}" if where else message)


class PolicyError(RingfenceError):
    """A policy that cannot be loaded or compiled; ``where`` is ``file:line:col`` when known."""

    def __init__(self, message: str, *, where: str = "") -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class SandboxError(RingfenceError):
    """A sandbox that could not be set up: nothing was executed. ``step`` names where it stopped; ``errno_name``
    is the kernel's answer when there was one."""

    def __init__(self, message: str, *, step: str = "", errno_name: str | None = None) -> None:
        self.step = step
        self.errno_name = errno_name
        super().__init__(f"{step}: {message}" if step else message)


class ProofError(RingfenceError):
    """Two compilations that are not equivalent; carries a counterexample."""

    def __init__(self, message: str, *, counterexample: dict[str, int] | None = None) -> None:
        self.counterexample = counterexample or {}
        super().__init__(message)
