"""Reading programs from files: formats, caps, special files, error positions (``bpf.formats``)."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from ringfence.bpf import SECCOMP, Program
from ringfence.bpf.formats import MAX_INPUT_BYTES, detect, load, parse_hex, read_path, read_program
from ringfence.errors import AsmError, DecodeError


def test_caps_fit_the_longest_program() -> None:
    assert MAX_INPUT_BYTES == {"raw": 32768, "hex": 2**20, "asm": 4 * 2**20}


def test_parse_hex_layouts_and_offsets() -> None:
    assert parse_hex("0x06,0x00 0000 00\n0000\t00") == bytes.fromhex("0600000000000000")
    with pytest.raises(DecodeError, match=r"f: byte offset 4: 'g' is not a hex digit"):
        parse_hex("06 0g", filename="f")
    with pytest.raises(DecodeError, match="byte offset 5: 'g'"):
        parse_hex("\u3000 0g", filename="f")  # offsets count UTF-8 bytes: the ideographic space is 3
    with pytest.raises(DecodeError, match="odd number of hex digits"):
        parse_hex("061")


def test_load_errors_name_the_file() -> None:
    with pytest.raises(DecodeError, match=r"p\.bpf: byte offset 8: 9 bytes .* \(1 byte left over\)"):
        load(bytes(9), "raw", filename="p.bpf")
    with pytest.raises(DecodeError, match="the hex gives 4 bytes"):
        load(b"06000000", "hex", filename="p.hex")
    with pytest.raises(DecodeError, match=r"p\.asm: byte offset 3: not UTF-8"):
        load(b"ret\xff", "asm", filename="p.asm")
    with pytest.raises(AsmError, match=r"p\.asm:1:1"):
        load(b"frob", "asm", filename="p.asm")
    with pytest.raises(DecodeError, match="more than 32768 bytes"):
        load(bytes(32776), "raw")
    assert load(bytes(32768), "raw") == Program.from_bytes(bytes(32768))
    assert load(b"ld [nr]\nret a", "asm", target=SECCOMP)[0].k == 0


def test_detect() -> None:
    assert detect("x.BPF", b"ret #0") == "raw"
    assert detect(None, b"0600000000000000\n") == "hex"
    assert detect(None, b"ret #0\n") == "asm"
    assert detect(None, b"\xff\xfe") == "raw"
    assert detect(None, b"ret #0", ("raw", "hex")) == "raw"


def test_read_path_refuses_special_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, what in (("/dev/zero", "a character device"), (str(fifo), "a FIFO"), (str(tmp_path), "a directory")):
        with pytest.raises(OSError, match=what):
            read_path(path)
    with pytest.raises(FileNotFoundError):
        read_path(str(tmp_path / "missing"))


def test_read_path_stops_after_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big"
    path.write_bytes(bytes(100_000))
    assert len(read_path(str(path), 10)) == 11
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(bytes(100_000))))
    assert len(read_path("-", 10)) == 11


def test_read_program(tmp_path: Path) -> None:
    path = tmp_path / "p.asm"
    path.write_text("ld [args.0.hi]\nret a\n")
    assert read_program(str(path), target=SECCOMP)[0].k == 20
    with pytest.raises(AsmError):
        read_program(str(path))
