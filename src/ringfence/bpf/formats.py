"""Programs as files: raw ``sock_filter`` bytes, hex text, assembler source, C and Python arrays.

Used by the command line and by anything else that reads programs from disk. Input is untrusted:
only regular files (or standard input) are read, never more than the largest input that could hold a
program of 4096 instructions in its format (:data:`MAX_INPUT_BYTES`, generous for text), and every
decoding error names the file and the byte offset. File names in messages are made printable.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import string
import sys
from collections.abc import Mapping
from pathlib import PurePath
from types import MappingProxyType
from typing import BinaryIO, Final, Literal

from ringfence.bpf.asm import assemble
from ringfence.bpf.insn import MAXINSNS, Program
from ringfence.bpf.printable import printable, shorten
from ringfence.bpf.target import IOURING, Target
from ringfence.errors import DecodeError

InputFormat = Literal["asm", "raw", "hex"]
INPUT_FORMATS: Final = ("asm", "raw", "hex")
_EXTENSIONS: Final[dict[str, InputFormat]] = {
    ".asm": "asm", ".s": "asm", ".bpf": "raw", ".bin": "raw", ".raw": "raw", ".hex": "hex",
}
_HEX_TEXT: Final = frozenset(string.hexdigits + string.whitespace + ",x")
_RECORD: Final = 8

#: Largest input read per format: 4096 instructions of 8 bytes raw; for text, room for 4096 generously
#: commented lines (hex at up to 256 characters per instruction, assembler at up to 1 KiB).
MAX_INPUT_BYTES: Final[Mapping[str, int]] = MappingProxyType({
    "raw": MAXINSNS * _RECORD, "hex": MAXINSNS * 256, "asm": MAXINSNS * 1024,
})


def _where(filename: str, offset: int) -> str:
    return f"{printable(filename)}: byte offset {offset}"


def parse_hex(text: str, *, filename: str = "<input>") -> bytes:
    """Hex digits in any layout: whitespace or commas between groups, optional ``0x`` per group.

    A :class:`DecodeError` names the byte offset (in the UTF-8 text) of the first bad character.
    """
    digits: list[str] = []
    for match in re.finditer(r"[^\s,]+", text):
        group, start = match.group(), match.start()
        if group[:2] in ("0x", "0X"):
            group, start = group[2:], start + 2
        for i, char in enumerate(group):
            if char not in string.hexdigits:
                offset = len(text[:start + i].encode())
                raise DecodeError(f"{_where(filename, offset)}: {shorten(char)!r} is not a hex digit")
        digits.append(group)
    joined = "".join(digits)
    if len(joined) % 2:
        raise DecodeError(f"{printable(filename)}: an odd number of hex digits ({len(joined)}); "
                          "each byte takes two")
    return bytes.fromhex(joined)


def decode_raw(data: bytes, *, filename: str = "<input>") -> Program:
    """Native-endian ``sock_filter`` records; a partial record at the end is an error naming its offset."""
    extra = len(data) % _RECORD
    if extra:
        raise DecodeError(f"{_where(filename, len(data) - extra)}: {len(data)} bytes is not a whole number of "
                          f"8-byte instructions ({extra} byte{'s' if extra > 1 else ''} left over)")
    return Program.from_bytes(data)


def to_hex(program: Program) -> str:
    """One instruction per line: the 8 raw bytes as 16 hex digits."""
    return "".join(i.pack().hex() + "\n" for i in program)


def to_c(program: Program, name: str = "filter") -> str:
    rows = "".join(f"\t{{ {i.code:#06x}, {i.jt}, {i.jf}, {i.k:#010x} }},\n" for i in program)
    return f"struct sock_filter {name}[] = {{\n{rows}}};\n"


def to_python(program: Program) -> str:
    rows = "".join(f"    ({i.code:#06x}, {i.jt}, {i.jf}, {i.k:#010x}),\n" for i in program)
    return f"[\n{rows}]\n"


def detect(name: str | None, data: bytes, allowed: tuple[InputFormat, ...] = ("asm", "raw", "hex")) -> InputFormat:
    """The format of ``data``: by file extension, else by content (hex text, other text, or binary)."""
    if name:
        kind = _EXTENSIONS.get(PurePath(name).suffix.lower())
        if kind in allowed:
            return kind
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "raw" if "raw" in allowed else allowed[0]
    if "hex" in allowed and text.strip() and set(text) <= _HEX_TEXT and _whole_records(text):
        return "hex"
    if "asm" in allowed and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "asm"
    return "raw" if "raw" in allowed else allowed[0]


def _whole_records(text: str) -> bool:
    try:
        return len(parse_hex(text)) % _RECORD == 0
    except DecodeError:
        return False


def load(data: bytes, kind: InputFormat, *, filename: str = "<input>", target: Target = IOURING) -> Program:
    """Decode ``data`` as ``kind``; raises :class:`DecodeError` or :class:`AsmError`."""
    limit = MAX_INPUT_BYTES[kind]
    if len(data) > limit:
        raise DecodeError(f"{printable(filename)}: more than {limit} bytes, larger than any {kind} program of "
                          f"{MAXINSNS} instructions")
    if kind == "raw":
        return decode_raw(data, filename=filename)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{_where(filename, exc.start)}: not UTF-8 text; use raw input for binary programs") \
            from None
    if kind == "hex":
        data = parse_hex(text, filename=filename)
        if len(data) % _RECORD:
            raise DecodeError(f"{printable(filename)}: the hex gives {len(data)} bytes, not a whole number of "
                              "8-byte instructions")
        return Program.from_bytes(data)
    return assemble(text, filename=filename, target=target)


def _read_capped(stream: BinaryIO | int, limit: int) -> bytes:
    """At most ``limit + 1`` bytes (one more than allowed, so that "too large" is detectable)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = os.read(stream, limit + 1 - size) if isinstance(stream, int) else stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


_KINDS: Final = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                 (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_path(path: str, limit: int = max(MAX_INPUT_BYTES.values())) -> bytes:
    """The bytes of ``path`` (``-`` is standard input), at most ``limit + 1`` of them.

    Only regular files are read; anything else (a FIFO, ``/dev/zero``, a directory) raises an
    :class:`OSError` without blocking, as does a file that cannot be opened.
    """
    if path == "-":
        return _read_capped(sys.stdin.buffer, limit)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise OSError(errno.EINVAL, f"{what}, not a regular file", path)
        return _read_capped(fd, limit)
    finally:
        os.close(fd)


def read_program(path: str, kind: InputFormat | None = None, allowed: tuple[InputFormat, ...] = INPUT_FORMATS,
                 *, target: Target = IOURING) -> Program:
    """Read and decode a program file; the format is ``kind`` or detected (:func:`detect`).

    ``OSError`` (cannot open, not a regular file) is the caller's usage error; :class:`DecodeError` and
    :class:`~ringfence.errors.AsmError` are invalid content, with the file and the position.
    """
    limit = MAX_INPUT_BYTES[kind] if kind else max(MAX_INPUT_BYTES[k] for k in allowed)
    data = read_path(path, limit)
    name = "<stdin>" if path == "-" else path
    return load(data, kind or detect(None if path == "-" else path, data, allowed), filename=name, target=target)
