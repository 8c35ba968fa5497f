"""The harness itself must be able to fail: unexpected errors, hangs and memory blow-ups are caught."""

from __future__ import annotations

import time

import pytest
from fuzz_harness import Entry, FuzzError, run_one
from hypothesis import strategies as st


def _entry(fn: object, allowed: tuple[type[BaseException], ...] = (ValueError,)) -> Entry:
    return Entry("self-test", fn, st.binary(), allowed, seconds=0.3, memory=64 * 2**20)  # type: ignore[arg-type]


def test_allowed_errors_pass() -> None:
    def refuse(data: bytes) -> None:
        raise ValueError("bad input")
    run_one(_entry(refuse), b"")


def test_other_errors_fail() -> None:
    def crash(data: bytes) -> None:
        raise RecursionError("deep")
    with pytest.raises(FuzzError, match="RecursionError"):
        run_one(_entry(crash), b"x")


def test_hangs_fail() -> None:
    def hang(data: bytes) -> None:
        end = time.monotonic() + 5
        while time.monotonic() < end:
            pass
    with pytest.raises(FuzzError, match="hang"):
        run_one(_entry(hang), b"")


def test_memory_blow_up_fails() -> None:
    def hog(data: bytes) -> None:
        blocks = [bytearray(16 * 2**20) for _ in range(64)]  # 1 GiB, well past the 64 MiB bound
        assert blocks
    with pytest.raises(FuzzError, match="memory"):
        run_one(_entry(hog), b"")
    bytearray(128 * 2**20)  # the limit is lifted afterwards
