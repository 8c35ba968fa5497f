"""Optimization passes over a lowered filter program: same verdict on every context, fewer instructions.

Each pass maps a :class:`~ringfence.bpf.builder.Built` to ``(Built, changed)``; :func:`optimize` runs them in
order until none changes anything. Passes keep the per-instruction comments in step with the instructions.
A pass changes a program only to make it strictly better by a measure that cannot decrease forever (fewer
instructions, or a cheaper mean), so the loop ends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final

from ringfence.bpf.builder import Built
from ringfence.policy.cost import Weights
from ringfence.policy.passes import dead, loads, restructure, returns, thread

Pass = Callable[[Built], tuple[Built, bool]]

#: The passes, in the order they run: restructure first (it rebuilds whole programs), then the local
#: clean-ups for what it leaves or cannot handle.
PASSES: Final[tuple[Pass, ...]] = (restructure.restructure, loads.loads, thread.thread, returns.returns, dead.dead)


def passes(weights: Weights | None = None) -> tuple[Pass, ...]:
    """:data:`PASSES` with frequency weights given to the pass that uses them."""
    if not weights:
        return PASSES
    weighted: Pass = functools.partial(restructure.restructure, weights=weights)
    return (weighted, *PASSES[1:])


def optimize(built: Built, passes: tuple[Pass, ...] = PASSES, *, max_rounds: int = 16) -> Built:
    """Run ``passes`` in order until a round changes nothing (or ``max_rounds``, a guard against a pass that
    keeps changing its mind)."""
    for _ in range(max_rounds):
        changed = False
        for p in passes:
            built, did = p(built)
            changed = changed or did
        if not changed:
            break
    return built
