"""Counts of what the conformance suite compared, printed at the end of the run."""

from __future__ import annotations

from collections import Counter

COUNTS: Counter[str] = Counter()
KERNELS: dict[str, str] = {}
DISAGREEMENTS: list[str] = []


def compared(kind: str, *, agreed: bool, detail: str = "") -> None:
    COUNTS[f"{kind} compared"] += 1
    if not agreed:
        COUNTS[f"{kind} disagreements"] += 1
        DISAGREEMENTS.append(f"{kind}: {detail}")
