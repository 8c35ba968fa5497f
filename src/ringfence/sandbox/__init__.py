"""Put a program that uses io_uring in a sandbox: apply a Plan to the current task (then exec a command, or go
on in-process), or to a ring created disabled. Standard library only, and z3 is never needed: a Plan carries
what to register. :func:`restrict_self` and :func:`restrict_ring` are the in-process API; ``ringfence run``
is :mod:`.run`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ringfence.sandbox.apply import Applied, restrict_ring, restrict_self

__all__ = ["Applied", "restrict_ring", "restrict_self"]


def __getattr__(name: str) -> object:  # lazy: importing the package costs nothing
    if name in __all__:
        from ringfence.sandbox import apply

        return getattr(apply, name)
    raise AttributeError(name)
