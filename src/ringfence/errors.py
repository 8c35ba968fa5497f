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


class InputError(RingfenceError):
    """Input somebody wrote that cannot be accepted, and where: it reads ``file:line:col: message``.

    Every loader of user-written documents (scenarios, policies, programs named from them) raises this or a
    subclass, so a command can print one line a user can act on, and ``--json`` can carry the position.
    ``line``/``column`` are 1-based; 0 means not known (a whole-file problem, or data built in Python).
    """

    def __init__(self, message: str, *, file: str = "", line: int = 0, column: int = 0) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        super().__init__(self.render())

    @property
    def where(self) -> str:
        """``file:line:col``, ``file:line``, ``file``, or empty, as much as is known."""
        if not self.line:
            return self.file
        spot = f"{self.line}:{self.column}" if self.column else str(self.line)
        return f"{self.file or '<input>'}:{spot}"

    def detail(self) -> str:
        """The message with any context a subclass adds (a step number), without the position."""
        return self.message

    def render(self) -> str:
        where = self.where
        return f"{where}: {self.detail()}" if where else self.detail()

    def to_json(self) -> dict[str, object]:
        """The error as ``--json`` output carries it."""
        return {"type": type(self).__name__, "message": self.detail(), "file": self.file or None,
                "line": self.line or None, "column": self.column or None}


class UnreadableError(InputError):
    """A named input that cannot be read as a file at all: missing, a directory, a FIFO or device, no permission.

    Distinct from bad content because a command treats it as a usage error (exit 2), like ``check`` and ``asm``.
    """


class ScenarioError(InputError):
    """A scenario file that is malformed or refers to things that do not exist; ``step`` is its index if known."""

    def __init__(self, message: str, *, path: str = "", step: int | None = None, line: int = 0,
                 column: int = 0) -> None:
        self.step = step
        super().__init__(message, file=path, line=line, column=column)

    @property
    def path(self) -> str:
        return self.file

    @classmethod
    def of(cls, error: InputError, *, step: int | None = None) -> ScenarioError:
        """The same problem, at the same place, as a scenario error (``step`` kept if the error had one)."""
        if step is None and isinstance(error, ScenarioError):
            step = error.step
        return cls(error.message, path=error.file, step=step, line=error.line, column=error.column)

    def detail(self) -> str:
        return f"step {self.step}: {self.message}" if self.step is not None else self.message

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "step": self.step}


class PolicyError(InputError):
    """A policy that cannot be parsed or compiled; positioned like every :class:`InputError`.

    ``where`` may be given as ``file``, ``file:line`` or ``file:line:col`` text, as the policy loader knows it.
    """

    def __init__(self, message: str, *, where: str = "", file: str = "", line: int = 0, column: int = 0) -> None:
        if where and not file:
            file, line, column = _split_where(where)
        super().__init__(message, file=file, line=line, column=column)


def _split_where(where: str) -> tuple[str, int, int]:
    """``name:3:7`` → (name, 3, 7); trailing parts that are not numbers stay in the name."""
    parts = where.rsplit(":", 2)
    numbers: list[int] = []
    while len(parts) > 1 and parts[-1].isdigit():
        numbers.insert(0, int(parts.pop()))
    if not numbers:
        return where, 0, 0
    line = numbers[0]
    column = numbers[1] if len(numbers) > 1 else 0
    return ":".join(parts), line, column


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
