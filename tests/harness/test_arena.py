"""The agent's arena: raw SQE addresses land in it, and both its neighbours are unreadable guard pages."""

from __future__ import annotations

import ctypes

import pytest

from ringfence.harness.arena import PAGE, Arena
from ringfence.scenario.caps import ARENA_SIZE


def _protection(address: int) -> str:
    """The permission bits /proc/self/maps shows for the mapping holding ``address``."""
    with open("/proc/self/maps", encoding="ascii") as maps:
        for line in maps:
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if start <= address < end:
                return perms
    raise AssertionError(f"{address:#x} is not mapped")


def test_arena_is_writable_and_zeroed_between_guard_pages() -> None:
    arena = Arena()
    first, last = arena.address(0), arena.address(ARENA_SIZE - 1)
    assert ctypes.string_at(first, 16) == bytes(16)
    ctypes.memmove(last, b"x", 1)
    assert ctypes.string_at(last, 1) == b"x"
    assert _protection(first).startswith("rw")
    assert _protection(first - 1).startswith("---")
    assert _protection(arena.address(ARENA_SIZE)).startswith("---")
    assert _protection(arena.address(ARENA_SIZE) + PAGE - 1).startswith("---")


@pytest.mark.parametrize("offset", [-1, ARENA_SIZE + 1])
def test_offsets_outside_the_arena_are_refused(offset: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        Arena().address(offset)
