"""A container's seccomp profile to the io_uring policy that keeps its intent (``ringfence import-seccomp``).

io_uring requests do what system calls do without making them, so a seccomp profile does not see them. For each
opcode, :data:`ringfence.abi.opinfo.OPINFO` names the system calls that do the same thing; the opcode is allowed
for a request exactly when the profile lets **every** one of them through with the arguments the request carries
(``docs/import-seccomp.md``):

* the profile is resolved for one container first (:func:`ringfence.policy.seccomp_profile.resolve`:
  capabilities, architecture, ``minKernel``);
* where rules for one system call overlap, the most restrictive action wins — the precedence the kernel applies
  between filters, and never more permissive than whatever libseccomp makes of the overlap;
* an argument the filter context carries (SOCKET's family, type and protocol; OPENAT's flags and mode) is
  tested exactly (:mod:`ringfence.policy.seccomp_args`); a denying rule that also tests an argument the filter
  cannot see denies wherever the rest of it holds, and an allowing rule that does is not carried over, so the
  policy never lets through a request the profile would have stopped;
* ALLOW and LOG let a call through; every other action denies, and a denied request fails with ``EACCES``.

What cannot be carried over is listed (:attr:`Imported.notes`), never dropped silently.
"""

from __future__ import annotations

import errno as errno_module
import itertools
import json
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Final

from ringfence.abi.opcodes import SqeOp
from ringfence.abi.opinfo import BY_SYSCALL, OPINFO
from ringfence.abi.seccomp import IO_URING_SYSCALLS
from ringfence.policy import build
from ringfence.policy.ast import Masked, NoneOf, OneOf, Policy, Range, Test
from ringfence.policy.fields import FIELDS, Kind
from ringfence.policy.seccomp_args import ARG_FIELDS, Box, as_blocks, cover, may_both_hold
from ringfence.policy.seccomp_profile import Act, Action, Comparison, Op, Resolved, Rule

#: A conjunction of boxes on distinct fields, sorted by field: one policy rule's predicates.
Conj = tuple[tuple[str, Box], ...]
POLICY_KERNEL: Final = "7.0+"


@dataclass(frozen=True, slots=True)
class Note:
    """Something the policy cannot say as the profile does, or a choice the importer made; ``where`` is the
    profile position it concerns."""

    kind: str
    message: str
    where: str = ""

    def render(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message, "where": self.where}


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy does with one opcode: ``allowed``, ``denied`` or ``conditional`` (rules on its context),
    and the profile rules that decided it."""

    opcode: SqeOp
    syscalls: tuple[str, ...]
    verdict: str
    allow: tuple[tuple[Conj, tuple[Rule, ...]], ...]
    deny: tuple[tuple[Conj, tuple[Rule, ...]], ...]
    by: str

    def to_json(self) -> dict[str, object]:
        return {"opcode": self.opcode.name, "syscalls": list(self.syscalls), "verdict": self.verdict,
                "by": self.by, "allow_rules": len(self.allow), "deny_rules": len(self.deny)}


@dataclass(frozen=True, slots=True)
class Imported:
    """The result: the policy (as loaded by the policy loader), its TOML text, per-opcode decisions, notes."""

    policy: Policy
    text: str
    decisions: tuple[Decision, ...]
    notes: tuple[Note, ...]
    resolved: Resolved

    def counts(self) -> dict[str, int]:
        out = {"allowed": 0, "conditional": 0, "denied": 0}
        for d in self.decisions:
            out[d.verdict] += 1
        return out


# -- rules to conjunctions --------------------------------------------------------------------------------------

def _where(resolved: Resolved, rule: Rule) -> str:
    pos = rule.where
    base = PurePath(pos.file).name or pos.file
    return f"{base}:{pos.line}:{pos.column}" if pos.line else base


def _trivial(cmp: Comparison) -> bool:
    """A comparison every argument value satisfies."""
    return (cmp.op is Op.MASKED_EQ and cmp.value == 0) or (cmp.op is Op.GE and cmp.value == 0) or \
        (cmp.op is Op.LE and cmp.value == (1 << 64) - 1)


def _translate(op: SqeOp, syscall: str, rule: Rule) -> tuple[list[Conj], list[Comparison]]:
    """The rule's comparisons the opcode's context can test, as conjunctions (none: the rule never matches such
    a request); and the comparisons it cannot test."""
    covers: list[tuple[str, tuple[Box, ...]]] = []
    unseen: list[Comparison] = []
    for cmp in rule.args:
        af = ARG_FIELDS.get((syscall, cmp.index))
        if af is None or not FIELDS[af.field].carried_by(int(op)):
            if not _trivial(cmp):
                unseen.append(cmp)
            continue
        covers.append((af.field, cover(af, cmp)))
    if any(not boxes for _, boxes in covers) or any(not as_blocks(c) for c in unseen):
        return [], unseen  # a comparison no value satisfies: the rule never matches
    conjs: list[Conj] = []
    for combo in itertools.product(*(boxes for _, boxes in covers)):
        parts = [(field, box) for (field, _), box in zip(covers, combo, strict=True) if box]
        merged = _conjoin(parts)
        if merged is not None and merged not in conjs:
            conjs.append(merged)
    return conjs, unseen


def _merge_tests(a: Box, b: Box) -> Box | None:
    """Two boxes on one field as one (None: they exclude each other). Only what the translation produces:
    lists, ranges and masks."""
    tests: list[Test] = list(a)
    for t in b:
        same = next((x for x in tests if type(x) is type(t)), None)
        if same is None:
            tests.append(t)
            continue
        tests.remove(same)
        if isinstance(t, OneOf) and isinstance(same, OneOf):
            values = tuple(v for v in same.values if v in t.values)
            if not values:
                return None
            tests.append(OneOf(values))
        elif isinstance(t, NoneOf) and isinstance(same, NoneOf):
            tests.append(NoneOf(tuple(sorted({*same.values, *t.values}))))
        elif isinstance(t, Range) and isinstance(same, Range):
            lo, hi = max(t.lo, same.lo), min(t.hi, same.hi)
            if lo > hi:
                return None
            tests.append(Range(lo, hi))
        elif isinstance(t, Masked) and isinstance(same, Masked):
            common = t.mask & same.mask
            if t.value & common != same.value & common:
                return None
            tests.append(Masked(t.mask | same.mask, t.value | same.value))
        else:  # pragma: no cover - the translation makes no other tests
            raise AssertionError((t, same))
    return tuple(tests)


def _conjoin(parts: Iterable[tuple[str, Box]]) -> Conj | None:
    by_field: dict[str, Box] = {}
    for field, box in parts:
        if field in by_field:
            merged = _merge_tests(by_field[field], box)
            if merged is None:
                return None
            by_field[field] = merged
        else:
            by_field[field] = box
    return tuple(sorted(by_field.items()))


# -- opcodes ----------------------------------------------------------------------------------------------------

@dataclass
class _Work:
    """Notes gathered while deciding, kept in order without repeats."""

    notes: list[Note]

    def add(self, kind: str, message: str, where: str = "") -> None:
        note = Note(kind, message, where)
        if note not in self.notes:
            self.notes.append(note)


def _decide(resolved: Resolved, op: SqeOp, work: _Work) -> Decision:
    syscalls = OPINFO[op].syscalls
    if not syscalls:
        return Decision(op, syscalls, "allowed", (), (), "no system call does the same")
    default_through = resolved.default.lets_through
    deny: dict[Conj, list[Rule]] = {}
    allow_sets: list[dict[Conj, list[Rule]] | None] = []  # per system call; None: always allowed
    for syscall in syscalls:
        allows: dict[Conj, list[Rule]] = {}
        for rule in resolved.rules_for(syscall):
            conjs, unseen = _translate(op, syscall, rule)
            where = _where(resolved, rule)
            if not rule.action.lets_through:
                if unseen and conjs:
                    shown = ", ".join(str(c) for c in unseen)
                    work.add("unseen-argument", f"{op.name}: the filter cannot see {shown}; {rule.describe()} is "
                             f"carried over as if {'that held' if len(unseen) == 1 else 'those held'}, so "
                             f"{op.name} is denied wherever the rest of the rule holds", where)
                for conj in conjs:
                    deny.setdefault(conj, []).append(rule)
            elif not default_through:
                if unseen:
                    shown = ", ".join(str(c) for c in unseen)
                    work.add("allow-dropped", f"{op.name}: {rule.describe()} is not carried over: the filter "
                             f"cannot see {shown}, so requests it alone would allow are denied", where)
                    continue
                for conj in conjs:
                    allows.setdefault(conj, []).append(rule)
        allow_sets.append(None if default_through or () in allows else allows)
    if () in deny:
        return Decision(op, syscalls, "denied", (), (((), tuple(deny[()])),),
                        f"denied by {_reason(resolved, deny[()])}")
    allow = _product(allow_sets)
    if allow is not None and not allow:
        missing = [s for s, a in zip(syscalls, allow_sets, strict=True) if a is not None and not a]
        return Decision(op, syscalls, "denied", (), (), f"{', '.join(missing)} not let through (defaultAction "
                        f"{resolved.default})")
    allow_rules = () if allow is None else tuple((c, tuple(r)) for c, r in allow.items())
    deny_rules = tuple((c, tuple(r)) for c, r in deny.items())
    if not allow_rules and not deny_rules:
        return Decision(op, syscalls, "allowed", (), (), "the profile lets every one of its system calls through")
    return Decision(op, syscalls, "conditional", allow_rules, deny_rules, "rules on its arguments")


def _product(sets: Sequence[dict[Conj, list[Rule]] | None]) -> dict[Conj, list[Rule]] | None:
    """Every system call must allow: the conjunction of each one's allowing conjunctions (None: no condition)."""
    out: dict[Conj, list[Rule]] | None = None
    for allows in sets:
        if allows is None:
            continue
        if out is None:
            out = dict(allows)
            continue
        nxt: dict[Conj, list[Rule]] = {}
        for (c1, r1), (c2, r2) in itertools.product(out.items(), allows.items()):
            merged = _conjoin((*c1, *c2))
            if merged is not None:
                nxt.setdefault(merged, []).extend([*r1, *r2])
        out = nxt
    return out


# -- notes about the whole profile ------------------------------------------------------------------------------

def _effect(action: Action) -> str:
    act = action.act
    if act is Act.ERRNO:
        name = errno_module.errorcode.get(action.data or 0, str(action.data))
        return f"fails with {name}"
    return {Act.KILL_PROCESS: "kills the process", Act.KILL_THREAD: "kills the thread", Act.TRAP: "raises SIGSYS",
            Act.TRACE: "stops for a tracer (ENOSYS without one)",
            Act.NOTIFY: "waits for a supervisor's answer, which may allow it"}.get(act, str(action))


def _action_notes(resolved: Resolved, decisions: Sequence[Decision], work: _Work) -> None:
    """What the profile does instead of EACCES: for the default action, and for each denying rule."""
    by_default = [d.opcode.name for d in decisions if d.verdict == "denied" and not d.deny]
    where_none = [d.opcode.name for d in decisions if d.allow]
    default = resolved.default
    if (by_default or where_none) and not (default.act is Act.ERRNO and default.data == errno_module.EACCES):
        which = [f"the {len(by_default)} opcode{'s' if len(by_default) > 1 else ''} listed as denied below"] \
            if by_default else []
        which += [f"{', '.join(where_none)} where no rule allows {'it' if len(where_none) == 1 else 'them'}"] \
            if where_none else []
        work.add("action", f"defaultAction {default}: the system call {_effect(default)}; a request the policy "
                 f"denies by default fails with EACCES instead ({'; '.join(which)})")
    seen: dict[tuple[str, str], tuple[Action, list[str]]] = {}
    for d in decisions:
        for _, rules in d.deny:
            for r in rules:
                if r.action.act is Act.ERRNO and r.action.data == errno_module.EACCES:
                    continue
                ops = seen.setdefault((str(r.action), _where(resolved, r)), (r.action, []))[1]
                if d.opcode.name not in ops:
                    ops.append(d.opcode.name)
    for (key, where), (action, ops) in seen.items():
        work.add("action", f"{key}: the system call {_effect(action)}; a request the policy denies for it fails "
                 f"with EACCES instead ({', '.join(ops)})", where)


def _overlap_notes(resolved: Resolved, work: _Work) -> None:
    """Rules of different verdicts for one system call that can both match one call."""
    for syscall in BY_SYSCALL:
        rules = resolved.rules_for(syscall)
        for a, b in itertools.combinations(rules, 2):
            if a.action.lets_through == b.action.lets_through:
                continue
            if all(may_both_hold(x, y) for x in a.args for y in b.args if x.index == y.index):
                deny, allow = (a, b) if not a.action.lets_through else (b, a)
                work.add("overlap", f"{deny.describe()} and {allow.describe()} (at {_where(resolved, allow)}) both "
                         "match some calls: the policy denies those (the more restrictive action); libseccomp "
                         "decides such overlaps by the order of its argument tree, and may allow them",
                         _where(resolved, deny))


def _io_uring_note(resolved: Resolved, work: _Work) -> None:
    stopped = []
    for name in IO_URING_SYSCALLS:
        rules = resolved.rules_for(name)
        through = any(r.action.lets_through and not r.args for r in rules) or (
            resolved.default.lets_through and not rules)
        if not through or any(not r.action.lets_through for r in rules):
            stopped.append(name)
    if stopped:
        work.add("io_uring-denied", f"the profile does not let {', '.join(stopped)} through: under it a container "
                 "cannot use io_uring at all, and `ringfence run` cannot apply this policy; --emit-profile writes "
                 "the profile with the io_uring system calls allowed")


# -- the policy file --------------------------------------------------------------------------------------------

def _field_data(field: str, box: Box) -> Any:
    """A box as the policy file spells it: bit fields and large values in hexadecimal."""
    bits = FIELDS[field].kind is Kind.BITS

    def _number(value: int) -> int | str:
        return value if value <= (0 if bits else 0xFFFF) else f"{value:#x}"

    if len(box) == 1 and isinstance(box[0], OneOf):
        values = [_number(v) for v in box[0].values]
        return values[0] if len(values) == 1 else values
    out: dict[str, Any] = {}
    for t in box:
        if isinstance(t, OneOf):
            out["in"] = [_number(v) for v in t.values]
        elif isinstance(t, NoneOf):
            out["not_in"] = [_number(v) for v in t.values]
        elif isinstance(t, Range):
            out["range"] = [_number(t.lo), _number(t.hi)]
        elif isinstance(t, Masked):
            out["mask"], out["equals"] = f"{t.mask:#x}", f"{t.value:#x}"
        else:  # pragma: no cover - the translation makes no other tests
            raise AssertionError(t)
    return out


def _fields(conj: Conj) -> dict[str, Any]:
    return {field.replace(".", "_"): _field_data(field, box) for field, box in conj}


def _reason(resolved: Resolved, rules: Iterable[Rule]) -> str:
    seen: list[str] = []
    for r in rules:
        text = f"{_where(resolved, r)}: {r.describe()}"
        if text not in seen:
            seen.append(text)
    return "; ".join(seen)


@dataclass(frozen=True, slots=True)
class _RuleOut:
    action: str
    ops: tuple[SqeOp, ...]
    conj: Conj
    reason: str
    name: str = ""


def _rules(resolved: Resolved, decisions: Sequence[Decision]) -> list[_RuleOut]:
    default_through = resolved.default.lets_through
    out: list[_RuleOut] = []
    grouped: dict[tuple[str, Conj, str], list[SqeOp]] = {}

    def add(action: str, op: SqeOp, conj: Conj, reason: str) -> None:
        grouped.setdefault((action, conj, reason), []).append(op)

    if not default_through:
        through = tuple(d.opcode for d in decisions
                        if d.verdict == "allowed" or (d.verdict == "conditional" and not d.allow))
        if through:
            out.append(_RuleOut("allow", through, (), "the profile lets through every system call these opcodes "
                                "stand for (see the comment on each)", "let-through"))
    else:
        denied = tuple(d.opcode for d in decisions if d.verdict == "denied")
        if denied:
            out.append(_RuleOut("deny", denied, (), "the profile denies a system call each of these opcodes "
                                "stands for (see the comment on each)", "stopped"))
    for d in decisions:
        if d.verdict != "conditional":
            continue
        for conj, rules in d.allow:
            add("allow", d.opcode, conj, _reason(resolved, rules))
        for conj, rules in d.deny:
            add("deny", d.opcode, conj, _reason(resolved, rules))
    out += [_RuleOut(action, tuple(ops), conj, reason) for (action, conj, reason), ops in grouped.items()]
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):  # pragma: no cover - not produced
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a TOML basic string is a JSON string without \/ and with \u escapes


def _comment(text: str, width: int = 116) -> list[str]:
    return textwrap.wrap(text, width, initial_indent="# ", subsequent_indent="#   ", break_on_hyphens=False,
                         break_long_words=False)


def _op_comment(d: Decision) -> str:
    if not d.syscalls:
        return "no system call does the same"
    text = ", ".join(d.syscalls)
    if d.verdict == "conditional":
        text += " (narrowed by the rules below)"
    elif d.verdict == "denied":
        return d.by
    return text


def _render(name: str, description: str, default: str, rules: Sequence[_RuleOut], *,
            decisions: Mapping[SqeOp, Decision], header: Sequence[str]) -> str:
    lines = [*header, "", "[policy]", f"name = {json.dumps(name)}", f"description = {json.dumps(description)}",
             f'kernel = "{POLICY_KERNEL}"', f'default = "{default}"']
    for rule in rules:
        lines += ["", f"[[{rule.action}]]"]
        if rule.name:
            lines.append(f"name = {json.dumps(rule.name)}")
        lines.append(f"reason = {json.dumps(rule.reason)}")
        if len(rule.ops) == 1 and rule.conj:
            lines.append(f'op = "{rule.ops[0].name}"')
        else:
            lines.append("ops = [")
            width = max(len(op.name) for op in rule.ops) + 4
            lines += [f"  {json.dumps(op.name) + ',':<{width}} # {_op_comment(decisions[op])}" for op in rule.ops]
            lines.append("]")
        for field, box in rule.conj:
            lines.append(f"{field} = {_toml_value(_field_data(field, box))}")
    return "\n".join(lines) + "\n"


# -- entry point ------------------------------------------------------------------------------------------------

def import_profile(resolved: Resolved, *, name: str) -> Imported:
    """The io_uring policy for the container ``resolved`` describes, its file text, and the notes."""
    work = _Work([])
    decisions = tuple(_decide(resolved, op, work) for op in SqeOp)
    _action_notes(resolved, decisions, work)
    _overlap_notes(resolved, work)
    if any(c.index == 2 for r in resolved.rules_for("openat") for c in r.args):
        work.add("largefile", "openat's flags are compared without O_LARGEFILE: the kernel adds it to every open on "
                 "64-bit kernels, so a filter cannot tell whether the caller passed it (and neither can a profile's "
                 "rule keep anyone out with it)")
    no_syscall = [d.opcode.name for d in decisions if not d.syscalls]
    work.add("no-syscall", f"no system call does what {', '.join(no_syscall)} do: the profile cannot speak for them, "
             "and they are allowed")
    work.add("register", "register opcodes (io_uring_register) are not restricted: a policy's [register] list needs "
             "classic restrictions, which a task can take only once")
    _io_uring_note(resolved, work)
    default = "allow" if resolved.default.lets_through else "deny"
    rules = _rules(resolved, decisions)
    profile = resolved.profile
    base = PurePath(profile.name).name or profile.name
    caps = ", ".join(c.removeprefix("CAP_") for c in resolved.caps) or "none"
    description = (f"io_uring requests the seccomp profile {base} lets through, for a container with capabilities "
                   f"{caps} on {resolved.arch} (ringfence import-seccomp)")
    header = [*_comment(f"An io_uring policy made by `ringfence import-seccomp` from the seccomp profile "
                        f"{base} (sha256 {profile.sha256}), for a container with capabilities {caps} on "
                        f"{resolved.arch}; docs/import-seccomp.md says how each rule was derived."), "#",
              "# Not carried over, or carried over differently:"]
    for note in work.notes:
        header += _comment(f"- [{note.kind}] {note.render()}")
    for skipped in resolved.skipped:
        pos = skipped.entry.pos
        header += _comment(f"- [skipped] {base}:{pos.line}:{pos.column}: {', '.join(skipped.entry.names[:4])}"
                           f"{', ...' if len(skipped.entry.names) > 4 else ''}: {skipped.why}")
    denied = [d for d in decisions if d.verdict == "denied"]
    if denied and default == "deny":
        header += ["#", "# Denied (no rule below allows them):"]
        header += [line for d in denied for line in _comment(f"- {d.opcode.name}: {_op_comment(d)}")]
    text = _render(name, description, default, rules, decisions={d.opcode: d for d in decisions}, header=header)
    built = [(build.allow if r.action == "allow" else build.deny)(*(op.name for op in r.ops), reason=r.reason,
                                                                   name=r.name, **_fields(r.conj)) for r in rules]
    policy = build.policy(name, *built, default=default, kernel=POLICY_KERNEL, description=description)
    return Imported(policy, text, decisions, tuple(work.notes), resolved)


def emit_profile(resolved: Resolved) -> str:
    """The profile with the io_uring system calls allowed: removed from every other entry (an entry left without
    names is dropped) and allowed by one entry of their own, first (none when the default action is ALLOW).
    Everything else is kept as written."""
    data: dict[str, Any] = json.loads(json.dumps(dict(resolved.profile.data)))
    names = set(IO_URING_SYSCALLS)
    kept = []
    for entry in data.get("syscalls") or []:
        if not isinstance(entry, dict):
            kept.append(entry)
            continue
        listed = entry.get("names") if isinstance(entry.get("names"), list) else None
        rest = [n for n in listed if n not in names] if listed is not None else None
        if (listed and not rest) or entry.get("name") in names:
            continue
        kept.append(entry if rest is None else {**entry, "names": rest})
    ours = {"names": sorted(names), "action": "SCMP_ACT_ALLOW", "args": [],
            "comment": "io_uring, restricted by the io_uring policy `ringfence run` applies "
                       "(ringfence import-seccomp)", "includes": {}, "excludes": {}}
    # a default of ALLOW already lets them through, and libseccomp refuses a rule with the default action
    data["syscalls"] = kept if resolved.default.act is Act.ALLOW else [ours, *kept]
    return json.dumps(data, indent=2) + "\n"
