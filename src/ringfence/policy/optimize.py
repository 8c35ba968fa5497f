"""Optimization passes over a lowered filter program: same verdict on every context, fewer instructions.

Each pass maps a :class:`~ringfence.bpf.builder.Built` to ``(Built, changed)``; :func:`optimize` runs them in
order until none changes anything. Passes keep the per-instruction comments in step with the instructions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ringfence.bpf.builder import Built

Pass = Callable[[Built], tuple[Built, bool]]

#: The passes, in the order they run.
PASSES: Final[tuple[Pass, ...]] = ()


def optimize(built: Built, passes: tuple[Pass, ...] = PASSES) -> Built:
    changed = True
    while changed:
        changed = False
        for p in passes:
            built, did = p(built)
            changed = changed or did
    return built
