"""Reading input files safely: regular files only (or ``-`` for standard input), a size cap per kind of input,
strict UTF-8 with errors that name the file and byte offset.

Opening never blocks (a FIFO is opened non-blocking and then refused), reading never runs past the cap (a
device such as ``/dev/zero`` is refused; standard input stops one byte past the cap), and decoding does not
depend on the locale.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from ringfence.errors import InputError, UnreadableError
from ringfence.inputs.text import clip

STDIN: Final = "-"
STDIN_NAME: Final = "<stdin>"
_CHUNK: Final = 1 << 16
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


@dataclass(frozen=True, slots=True)
class InputKind:
    """A kind of input file, named as messages name it, and the most bytes one may have."""

    name: str
    max_bytes: int

    def describe_limit(self) -> str:
        size = self.max_bytes
        text = f"{size >> 20} MiB" if size % (1 << 20) == 0 else f"{size >> 10} KiB" if size % 1024 == 0 \
            else f"{size} bytes"
        return f"the {text} limit for {self.name}s"


SCENARIO_FILE: Final = InputKind("scenario file", 1 << 20)
PROGRAM_FILE: Final = InputKind("program file", 256 << 10)
POLICY_FILE: Final = InputKind("policy file", 1 << 20)
PLAN_FILE: Final = InputKind("Plan", 16 << 20)


@dataclass(frozen=True, slots=True)
class Source:
    """One input's text. ``name`` is what messages call it (the path as given, or ``<stdin>``); ``path`` is
    None for standard input."""

    name: str
    text: str
    path: Path | None = None

    @property
    def directory(self) -> Path:
        """Where names inside the document are relative to: the file's directory, or the working directory."""
        return self.path.parent if self.path is not None else Path.cwd()


def _display(name: str | os.PathLike[str]) -> str:
    text = os.fspath(name)
    return STDIN_NAME if text == STDIN else clip(text, 200)


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno == errno.ELOOP:
        return "is a symbolic link, which is not followed here"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or type(exc).__name__


def _read_limited(read: BinaryIO | int, limit: int, name: str, kind: InputKind) -> bytes:
    parts: list[bytes] = []
    total = 0
    while total <= limit:
        want = min(_CHUNK, limit + 1 - total)
        chunk = os.read(read, want) if isinstance(read, int) else read.read(want)
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    if total > limit:
        raise InputError(f"more than {kind.describe_limit()}", file=name)
    return b"".join(parts)


def read_bytes(name: str | os.PathLike[str], kind: InputKind, *, stdin: BinaryIO | None = None,
               follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file (or of standard input for ``-``), at most ``kind.max_bytes``.

    Raises :class:`UnreadableError` for a file that cannot be opened or is not a regular file, and
    :class:`InputError` for one over the cap. ``follow_symlinks=False`` refuses a symbolic link as the last
    component.
    """
    shown = _display(name)
    if os.fspath(name) == STDIN:
        return _read_limited(stdin if stdin is not None else sys.stdin.buffer, kind.max_bytes, shown, kind)
    flags = _OPEN_FLAGS | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a FIFO or socket nobody is writing to
            raise UnreadableError("not a regular file", file=shown) from None
        raise UnreadableError(f"cannot read: {_why(exc)}", file=shown) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableError("is a directory, not a file", file=shown)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableError("not a regular file (a FIFO, device or socket is never read)", file=shown)
        if info.st_size > kind.max_bytes:
            raise InputError(f"{info.st_size} bytes, more than {kind.describe_limit()}", file=shown)
        try:
            return _read_limited(fd, kind.max_bytes, shown, kind)
        except OSError as exc:
            raise UnreadableError(f"cannot read: {_why(exc)}", file=shown) from None
    finally:
        os.close(fd)


def decode_utf8(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text (a leading byte-order mark dropped). An invalid byte is an :class:`InputError`
    at its line and column, naming its byte offset."""
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start
        line_start = body.rfind(b"\n", 0, offset) + 1
        column = len(body[line_start:offset].decode("utf-8")) + 1
        line = body.count(b"\n", 0, offset) + 1
        skipped = len(data) - len(body)
        raise InputError(f"not UTF-8 text: byte {offset + skipped} (0x{body[offset]:02x}) cannot be decoded",
                         file=name, line=line, column=column) from None


def read_input(name: str | os.PathLike[str], kind: InputKind, *, stdin: BinaryIO | None = None,
               follow_symlinks: bool = True) -> Source:
    """Read and decode one input (``-`` is standard input): :func:`read_bytes` then :func:`decode_utf8`."""
    shown = _display(name)
    data = read_bytes(name, kind, stdin=stdin, follow_symlinks=follow_symlinks)
    path = None if os.fspath(name) == STDIN else Path(name)
    return Source(shown, decode_utf8(data, shown), path)
