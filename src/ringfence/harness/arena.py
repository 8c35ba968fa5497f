"""The agent's arena: the only memory a scenario's raw ``addr`` can point the kernel at.

A raw address in a scenario is an offset into this mapping, never a host address, so the kernel reads and writes
nothing of the harness on a scenario's behalf. The arena is :data:`ARENA_SIZE` bytes of zeroed, private memory
between two pages mapped ``PROT_NONE``: an offset at the end, or a length that runs past it, faults (``EFAULT``)
instead of reaching a neighbour. One arena per agent process; a forked child gets its own copy (copy-on-write),
threads share their process's.
"""

from __future__ import annotations

import ctypes
import mmap
from typing import Final

from ringfence.live import _sys
from ringfence.scenario.caps import ARENA_SIZE

PAGE: Final = mmap.PAGESIZE
PROT_NONE: Final = 0  # the mmap module has no name for it


class Arena:
    """``[guard page][ARENA_SIZE bytes, read-write][guard page]``; :meth:`address` turns an offset into an address."""

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, ARENA_SIZE + 2 * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        view = ctypes.c_char.from_buffer(self._map)
        self._base = ctypes.addressof(view)
        del view  # release the buffer export so that the mapping can be closed
        _sys.mprotect(self._base, PAGE, PROT_NONE)
        _sys.mprotect(self._base + PAGE + ARENA_SIZE, PAGE, PROT_NONE)

    def address(self, offset: int) -> int:
        """The address of ``offset`` (0..ARENA_SIZE; ARENA_SIZE is the first byte of the trailing guard page)."""
        if not 0 <= offset <= ARENA_SIZE:
            raise ValueError(f"arena offset {offset} outside 0..{ARENA_SIZE}")
        return self._base + PAGE + offset
