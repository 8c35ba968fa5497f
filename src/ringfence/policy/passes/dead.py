"""Dead code: instructions no path from the entry reaches are dropped."""

from __future__ import annotations

from ringfence.bpf.builder import Built
from ringfence.bpf.cfg import Cfg
from ringfence.policy.passes.graph import items, rebuild


def dead(built: Built) -> tuple[Built, bool]:
    reach = Cfg.of(built.program).reachable
    if all(reach):
        return built, False
    return rebuild([it if r else None for it, r in zip(items(built), reach, strict=True)]), True
