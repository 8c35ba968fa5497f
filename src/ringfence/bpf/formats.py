"""Programs as files: raw ``sock_filter`` bytes, hex text, assembler source, C and Python arrays.

Used by the command line and by anything else that reads programs from disk.
"""

from __future__ import annotations

import re
import string
import sys
from pathlib import PurePath
from typing import Final, Literal

from ringfence.bpf.asm import assemble
from ringfence.bpf.insn import Program
from ringfence.errors import DecodeError

InputFormat = Literal["asm", "raw", "hex"]
INPUT_FORMATS: Final = ("asm", "raw", "hex")
_EXTENSIONS: Final[dict[str, InputFormat]] = {
    ".asm": "asm", ".s": "asm", ".bpf": "raw", ".bin": "raw", ".raw": "raw", ".hex": "hex",
}
_HEX_TEXT: Final = frozenset(string.hexdigits + string.whitespace + ",x")


def parse_hex(text: str) -> bytes:
    """Hex digits in any layout: whitespace or commas between groups, optional ``0x`` per group."""
    groups = [g.removeprefix("0x").removeprefix("0X") for g in re.split(r"[\s,]+", text.strip()) if g]
    digits = "".join(groups)
    if len(digits) % 2 or not all(c in string.hexdigits for c in digits):
        raise DecodeError("hex input must be an even number of hex digits")
    return bytes.fromhex(digits)


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
        return "raw"
    if "hex" in allowed and text.strip() and set(text) <= _HEX_TEXT and _whole_records(text):
        return "hex"
    if "asm" in allowed and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "asm"
    return "raw" if "raw" in allowed else allowed[0]


def _whole_records(text: str) -> bool:
    try:
        return len(parse_hex(text)) % 8 == 0
    except DecodeError:
        return False


def load(data: bytes, kind: InputFormat, *, filename: str = "<input>") -> Program:
    """Decode ``data`` as ``kind``; raises :class:`DecodeError` or :class:`AsmError`."""
    if kind == "raw":
        return Program.from_bytes(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(f"{filename}: not UTF-8 text; use raw input for binary programs") from None
    if kind == "hex":
        return Program.from_bytes(parse_hex(text))
    return assemble(text, filename=filename)


def read_path(path: str) -> bytes:
    """The bytes of ``path``; ``-`` is standard input. ``OSError`` propagates."""
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def read_program(path: str, kind: InputFormat | None = None,
                 allowed: tuple[InputFormat, ...] = INPUT_FORMATS) -> Program:
    """Read and decode a program file; the format is ``kind`` or detected (:func:`detect`)."""
    data = read_path(path)
    name = None if path == "-" else path
    return load(data, kind or detect(name, data, allowed), filename=name or "<stdin>")
