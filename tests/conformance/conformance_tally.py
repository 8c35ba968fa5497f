"""What the conformance suite compared, kept for the end-of-run summary."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

#: Host-kernel counts (the VM kernels keep theirs in their comparison).
COUNTS: Counter[str] = Counter()
HOST: dict[str, str] = {}
DISAGREEMENTS: list[str] = []
#: suite -> KernelComparison, and suite -> its findings report
KERNELS: dict[str, Any] = {}
REPORTS: dict[str, Path] = {}


def compared(kind: str, *, agreed: bool, detail: str = "") -> None:
    COUNTS[f"{kind} compared"] += 1
    if not agreed:
        COUNTS[f"{kind} disagreements"] += 1
        DISAGREEMENTS.append(f"{kind}: {detail}")
