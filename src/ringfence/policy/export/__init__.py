"""A Plan in the forms other programs take: JSON (the Plan itself), C for a liburing program, a Python module.

``asm`` and ``raw`` (one filter's listing or bytes) live with the command line, which has the compiled programs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ringfence.policy.ast import Policy
from ringfence.policy.plan import Plan

FORMATS: Final = ("json", "c", "python")


def rule_reasons(policy: Policy) -> dict[str, str]:
    """Each rule's label (how the Plan names it) mapped to the ``reason`` the policy gives for it. Rules that share
    a label (unnamed rules built without a file position) share the list of their reasons."""
    found: dict[str, list[str]] = {}
    for rule in policy.rules:
        if rule.reason and rule.reason not in found.setdefault(rule.label(), []):
            found[rule.label()].append(rule.reason)
    return {label: " | ".join(reasons) for label, reasons in found.items() if reasons}


def export(plan: Plan, fmt: str, *, reasons: Mapping[str, str] | None = None, prefix: str | None = None) -> str:
    """``plan`` as ``fmt`` (one of :data:`FORMATS`); ``reasons`` (see :func:`rule_reasons`) become comments."""
    if fmt == "json":
        return plan.dumps()
    if fmt == "c":
        from ringfence.policy.export.c import to_c

        return to_c(plan, reasons=reasons, prefix=prefix)
    if fmt == "python":
        from ringfence.policy.export.python import to_python

        return to_python(plan, reasons=reasons)
    raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "export", "rule_reasons"]
