"""Reading inputs: regular files or standard input only, capped, strict UTF-8, never blocking or endless."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest

from ringfence.errors import InputError, UnreadableError
from ringfence.inputs.read import SCENARIO_FILE, InputKind, decode_utf8, read_bytes, read_input

SMALL = InputKind("test file", 1024)


def test_regular_file_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_bytes(b"x = 1\n")
    source = read_input(path, SCENARIO_FILE)
    assert source.text == "x = 1\n" and source.path == path and source.directory == tmp_path
    piped = read_input("-", SCENARIO_FILE, stdin=io.BytesIO(b"y = 2\n"))
    assert piped.name == "<stdin>" and piped.path is None and piped.text == "y = 2\n"
    assert piped.directory == Path.cwd()


def test_size_cap_for_files_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 1025)
    with pytest.raises(InputError, match="more than the 1 KiB limit for test files") as info:
        read_bytes(path, SMALL)
    assert not isinstance(info.value, UnreadableError)
    exact = tmp_path / "exact"
    exact.write_bytes(b"y" * 1024)
    assert read_bytes(exact, SMALL) == b"y" * 1024
    with pytest.raises(InputError, match="limit"):
        read_bytes("-", SMALL, stdin=io.BytesIO(b"z" * 5000))


class _Endless(io.RawIOBase):
    """A standard input that never ends (like ``cat /dev/zero |``); counts what was read."""

    def __init__(self) -> None:
        self.taken = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = 1 << 16 if size < 0 else size
        self.taken += size
        return b"\0" * size


def test_endless_stdin_stops_past_the_cap() -> None:
    endless = _Endless()
    with pytest.raises(InputError):
        read_bytes("-", SMALL, stdin=endless)  # type: ignore[arg-type]
    assert endless.taken <= SMALL.max_bytes + 1


@pytest.mark.parametrize("name", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_devices_are_refused(name: str) -> None:
    with pytest.raises(UnreadableError, match="not a regular file"):
        read_bytes(name, SCENARIO_FILE)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done: list[BaseException] = []

    def attempt() -> None:
        try:
            read_bytes(fifo, SCENARIO_FILE)
        except UnreadableError as exc:
            done.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(5)
    assert done and "not a regular file" in str(done[0]) and time.monotonic() - started < 5


def test_missing_directory_and_permission(tmp_path: Path) -> None:
    with pytest.raises(UnreadableError, match="no such file"):
        read_bytes(tmp_path / "nope.toml", SCENARIO_FILE)
    with pytest.raises(UnreadableError, match="is a directory"):
        read_bytes(tmp_path, SCENARIO_FILE)
    target = tmp_path / "t"
    target.write_text("x")
    link = tmp_path / "l"
    link.symlink_to(target)
    assert read_bytes(link, SCENARIO_FILE) == b"x"
    with pytest.raises(UnreadableError, match="symbolic link"):
        read_bytes(link, SCENARIO_FILE, follow_symlinks=False)


def test_utf8_errors_name_line_column_and_byte() -> None:
    with pytest.raises(InputError) as info:
        decode_utf8(b'a = 1\nb = "\xc3\xa9\xff"\n', "f")  # the offending byte follows a two-byte character
    err = info.value
    assert (err.file, err.line, err.column) == ("f", 2, 7)
    assert "byte 13 (0xff)" in err.message
    assert decode_utf8(b"\xef\xbb\xbfx = 1", "f") == "x = 1"  # a byte-order mark is dropped
    with pytest.raises(InputError, match="byte 3"):
        decode_utf8(b"\xef\xbb\xbf\xc3", "f")


def test_decoding_ignores_the_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import locale

    monkeypatch.setattr(locale, "getpreferredencoding", lambda *_: "ascii")
    path = tmp_path / "u.toml"
    path.write_bytes('name = "café"\n'.encode())
    assert read_input(path, SCENARIO_FILE).text == 'name = "café"\n'
