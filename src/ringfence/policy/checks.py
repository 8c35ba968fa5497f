"""Warnings about a policy that loads and compiles but may not mean what its author thinks.

Each finding names the rule (file:line:col) and says why in plain words. None of them blocks compilation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ringfence.abi.opcodes import RegisterOp, SqeFlag, SqeOp
from ringfence.abi.profiles import KernelProfile
from ringfence.policy.ast import Action, BitMode, Bits, NoneOf, OneOf, Policy, Pos, Range, Rule, TargetKind
from ringfence.policy.fields import FIELDS
from ringfence.policy.semantics import guards_family_zero


@dataclass(frozen=True, slots=True)
class Finding:
    """One warning: a stable ``code``, where, and the sentence."""

    code: str
    message: str
    pos: Pos = field(default_factory=Pos)

    def render(self) -> str:
        where = f"{self.pos}: " if self.pos.file else ""
        return f"{where}warning [{self.code}]: {self.message}"


def _op(op: int) -> str:
    return SqeOp(op).name if op < len(SqeOp) else str(op)


def _never_matches(rule: Rule) -> str | None:
    """A reason the rule's own tests contradict each other (simple, per-field checks)."""
    for p in rule.predicates:
        ones = [set(t.values) for t in p.tests if isinstance(t, OneOf)]
        nones = set().union(*(set(t.values) for t in p.tests if isinstance(t, NoneOf)))
        if ones:
            left = set.intersection(*ones) - nones
            for t in p.tests:
                if isinstance(t, Range):
                    left = {v for v in left if t.lo <= v <= t.hi}
            if not left:
                return f"no value of {p.field} passes all its tests"
        alls = [t.mask for t in p.tests if isinstance(t, Bits) and t.mode is BitMode.ALL]
        none_bits = [t.mask for t in p.tests if isinstance(t, Bits) and t.mode is BitMode.NONE]
        for a in alls:
            for n in none_bits:
                if a & n:
                    return f"{p.field} must both have and lack bits {a & n:#x}"
    return None


def _lifts_family_zero_guard(policy: Policy, rule: Rule) -> bool:
    """Whether ``rule`` is what lets CONNECT requests with family 0 through: without it they would be denied."""
    others = dataclasses.replace(policy, rules=tuple(r for r in policy.rules if r is not rule))
    return not guards_family_zero(policy) and guards_family_zero(others)


def findings(policy: Policy, profile: KernelProfile) -> tuple[Finding, ...]:
    out: list[Finding] = []
    for rule in policy.rules:
        for p in rule.predicates:
            f = FIELDS[p.field]
            if p.field == "user_data":
                out.append(Finding("user-data", "a predicate on user_data: the submitter chooses it, so it "
                                   "cannot keep anyone out", p.pos))
            if profile.version < f.since:
                out.append(Finding("field-unpopulated", f"{p.field} is not in the filter context before "
                                   f"{f.since[0]}.{f.since[1]} (kernel {profile.name}): the filter would refuse to "
                                   "load there", p.pos))
        why = _never_matches(rule)
        if why:
            out.append(Finding("never-matches", f"{rule.label()} can never match: {why}", rule.pos))
        if rule.action is Action.DENY and policy.default is Action.DENY:
            lonely = [op for op in rule.ops if not any(r.action is Action.ALLOW for r in policy.rules_for(op))]
            if lonely:
                out.append(Finding("no-effect", f"{rule.label()} changes nothing for "
                                   f"{', '.join(_op(o) for o in lonely)}: no allow rule admits it and the "
                                   "default denies it anyway", rule.pos))
        if rule.action is Action.ALLOW and rule.predicates:
            shadow = [op for op in rule.ops if any(r.action is Action.ALLOW and r.unconditional and r is not rule
                                                   for r in policy.rules_for(op))
                      and not (op == SqeOp.CONNECT and _lifts_family_zero_guard(policy, rule))]
            if shadow:
                out.append(Finding("no-effect", f"{rule.label()} changes nothing for "
                                   f"{', '.join(_op(o) for o in shadow)}: another rule allows it unconditionally",
                                   rule.pos))
    if policy.flags is not None and policy.flags.required & SqeFlag.FIXED_FILE:
        opens = [op for op in (SqeOp.OPENAT, SqeOp.OPENAT2, SqeOp.SOCKET)
                 if any(r.action is Action.ALLOW for r in policy.rules_for(op))]
        if opens:
            out.append(Finding("fixed-file-required", "FIXED_FILE is required, but the kernel refuses it on "
                               f"{', '.join(_op(o) for o in opens)} (their descriptor is a directory or none): "
                               "those requests always fail", policy.flags.pos))
    if (policy.target is TargetKind.TASK and policy.register is not None
            and RegisterOp.ENABLE_RINGS not in policy.register):
        out.append(Finding("rings-never-enabled", "[register] does not allow ENABLE_RINGS: a ring this task creates "
                           "disabled (R_DISABLED) can never be enabled, because an inherited register allow-list "
                           "binds rings from their creation"))
    return tuple(out)
