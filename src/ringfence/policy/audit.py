"""``ringfence audit``: what a policy (or one filter program) leaves open that its author may think is closed.

A finding is a judgement, not an error: each has a stable ``code``, a **severity** and a sentence that says why.
The equivalences it weighs are data in :mod:`ringfence.abi.opinfo` (``ROUTES``, ``COMPANIONS``, the widening
routes); the policy-level warnings the compiler already gives (:mod:`ringfence.policy.checks`) are reused, with
a severity attached, never re-derived.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from ringfence.abi.opcodes import RegisterOp, SqeFlag, SqeOp, op_name
from ringfence.abi.opinfo import (
    COMPANIONS,
    DIRECT_DESCRIPTOR_OPS,
    ROUTE_OF,
    ROUTES,
    WIDENING_OPS,
    WIDENING_REGISTER,
)
from ringfence.abi.profiles import KernelProfile
from ringfence.bpf.check import check
from ringfence.bpf.insn import CTX_LOAD, Program
from ringfence.policy import checks
from ringfence.policy.ast import Action, Policy, Pos
from ringfence.policy.ir import FALSE, TRUE, opcode_formula
from ringfence.policy.lift import Branch, Leaf, LiftError, lift, nodes

PAYLOAD: Final = 16


class Severity(enum.IntEnum):
    """How much a finding matters; ``--fail-on`` compares against it."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    message: str
    pos: Pos = field(default_factory=Pos)
    opcodes: tuple[str, ...] = ()

    def render(self) -> str:
        where = f"{self.pos}: " if self.pos.file else ""
        return f"{where}{self.severity.label} [{self.code}]: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "severity": self.severity.label, "message": self.message,
                "file": self.pos.file or None, "line": self.pos.line or None, "column": self.pos.column or None,
                "opcodes": list(self.opcodes)}


#: The compiler's own warnings, weighed.
_CHECK_SEVERITY: Final = {"user-data": Severity.MEDIUM, "field-unpopulated": Severity.HIGH,
                          "never-matches": Severity.LOW, "no-effect": Severity.LOW,
                          "fixed-file-required": Severity.LOW, "rings-never-enabled": Severity.MEDIUM}


class Status(enum.Enum):
    """An opcode under a policy: allowed whatever the request says, denied outright, or allowed on conditions."""

    OPEN = "open"
    DENIED = "denied"
    CONDITIONAL = "conditional"


def statuses(policy: Policy, profile: KernelProfile) -> dict[SqeOp, Status]:
    """Each opcode the kernel knows (and ringfence names), by its decision formula."""
    out: dict[SqeOp, Status] = {}
    for op in range(min(profile.op_last, len(SqeOp))):
        f = opcode_formula(policy, op)
        out[SqeOp(op)] = Status.OPEN if f == TRUE else Status.DENIED if f == FALSE else Status.CONDITIONAL
    return out


def _names(ops: Iterable[int]) -> str:
    return ", ".join(op_name(o) for o in ops)


def _rule_pos(policy: Policy, ops: Iterable[int]) -> Pos:
    """Where the first rule naming one of ``ops`` was written (else nowhere)."""
    wanted = set(ops)
    return next((r.pos for r in policy.rules if wanted & set(r.ops)), Pos(policy.sources[0] if policy.sources else ""))


def _routes(st: dict[SqeOp, Status], policy: Policy) -> list[Finding]:
    out = []
    for route in ROUTES:
        members = [op for op in route.opcodes if op in st]
        # restricted by the author: a rule names it (an opcode denied only by the default was never in use)
        closed = [op for op in members if st[op] is not Status.OPEN and policy.rules_for(op)]
        open_ = [op for op in members if st[op] is Status.OPEN]
        if closed and open_:
            out.append(Finding("route-open", Severity.HIGH,
                               f"{_names(closed)} {'is' if len(closed) == 1 else 'are'} restricted but "
                               f"{_names(open_)} {'is' if len(open_) == 1 else 'are'} allowed unconditionally: "
                               f"{route.note} (route {route.name!r})", _rule_pos(policy, closed),
                               tuple(op.name for op in closed + open_)))
    for comp in COMPANIONS:
        lead, *rest = comp.opcodes
        if lead in st and st[lead] is not Status.OPEN:
            open_ = [op for op in rest if st.get(op) is Status.OPEN]
            if SqeOp.SOCKET in open_:
                out.append(Finding("connect-without-socket", Severity.MEDIUM,
                                   f"{lead.name} is restricted but SOCKET is allowed unconditionally: any family "
                                   "and type of socket can be created, and a datagram socket needs no CONNECT",
                                   _rule_pos(policy, [lead]), (lead.name, "SOCKET")))
            sends = [op for op in open_ if op is not SqeOp.SOCKET]
            if sends:
                # with SOCKET restricted (to stream sockets, say), an address on a send may be ignored
                sev = Severity.MEDIUM if SqeOp.SOCKET in open_ else Severity.LOW
                out.append(Finding("addressed-send-open", sev,
                                   f"{lead.name} is restricted but {_names(sends)} "
                                   f"{'is' if len(sends) == 1 else 'are'} allowed unconditionally: {comp.note}",
                                   _rule_pos(policy, [lead]), (lead.name, *(op.name for op in sends))))
    return out


def _widening(st: dict[SqeOp, Status], policy: Policy, profile: KernelProfile) -> list[Finding]:
    fixed_only = policy.flags is not None and bool(policy.flags.required & SqeFlag.FIXED_FILE)
    sev = Severity.HIGH if fixed_only else Severity.LOW
    why = ("FIXED_FILE is required, so the fixed table is the whole reach of the ring" if fixed_only
           else "it matters once a policy relies on fixed files only")
    out = []
    for op, what in WIDENING_OPS.items():
        if op in st and st[op] is not Status.DENIED:
            out.append(Finding("widening-route", sev, f"{op.name} is allowed: it {what}; {why}",
                               _rule_pos(policy, [op]), (op.name,)))
    direct = [op for op in DIRECT_DESCRIPTOR_OPS if op in st and st[op] is not Status.DENIED]
    if direct:
        out.append(Finding("direct-descriptor", sev if fixed_only else Severity.INFO,
                           f"{_names(direct)} can install a direct descriptor (file_index) into the fixed table, "
                           "and no filter context shows file_index", _rule_pos(policy, direct),
                           tuple(op.name for op in direct)))
    reg_pos = Pos(policy.sources[0] if policy.sources else "")
    if policy.register is None:
        out.append(Finding("register-unrestricted", Severity.MEDIUM,
                           "register opcodes are not restricted (no [register]): "
                           + "; ".join(f"{r.name} {w}" for r, w in WIDENING_REGISTER.items()
                                       if r in (RegisterOp.PERSONALITY, RegisterOp.FILES)),
                           reg_pos, ()))
    else:
        for r, w in WIDENING_REGISTER.items():
            if r in policy.register and r < profile.register_last:
                out.append(Finding("widening-register", sev if r is not RegisterOp.PERSONALITY else Severity.MEDIUM,
                                   f"[register] allows {r.name}: it {w}", reg_pos, ()))
    return out


def audit_policy(policy: Policy, profile: KernelProfile) -> tuple[Finding, ...]:
    """Every finding for ``policy`` as compiled for ``profile`` (fields are judged against its minimum kernel)."""
    st = statuses(policy, profile)
    src = Pos(policy.sources[0] if policy.sources else "")
    out: list[Finding] = []
    if policy.default is Action.ALLOW:
        out.append(Finding("no-default-deny", Severity.HIGH,
                           "default = \"allow\": every opcode without a rule is allowed, including the ones a newer "
                           "kernel adds", src))
    cmds = [op for op in (SqeOp.URING_CMD, SqeOp.URING_CMD128) if op in st and st[op] is not Status.DENIED]
    if cmds:
        out.append(Finding("passthrough-allowed", Severity.HIGH,
                           f"{_names(cmds)} {'is' if len(cmds) == 1 else 'are'} allowed: a driver command's "
                           "sub-command is invisible to filters, so it cannot be restricted by what it does",
                           _rule_pos(policy, cmds), tuple(op.name for op in cmds)))
    out += _routes(st, policy)
    if policy.flags is None:
        out.append(Finding("flags-unrestricted", Severity.LOW,
                           "SQE flags are not restricted (no [flags]): FIXED_FILE, BUFFER_SELECT, links and "
                           "the rest are all available", src))
    out += _widening(st, policy, profile)
    minimum = next((p for p in _profiles() if p.version == policy.kernel), profile)
    for f in checks.findings(policy, minimum):
        out.append(Finding(f.code, _CHECK_SEVERITY.get(f.code, Severity.LOW), f.message, f.pos))
    return tuple(sorted(out, key=lambda f: -f.severity))


def _profiles() -> tuple[KernelProfile, ...]:
    from ringfence.abi.profiles import PROFILES
    return tuple(PROFILES.values())


def audit_program(program: Program, opcode: int, profile: KernelProfile, where: str = "") -> tuple[Finding, ...]:
    """Findings for one filter program attached to ``opcode`` on ``profile``, from its bytes alone."""
    checked = check(program)
    pos = Pos(where)
    insns = checked.program.instructions
    name = op_name(opcode)
    out: list[Finding] = []
    loads = {(pc, i.k) for pc, i in enumerate(insns) if i.code == CTX_LOAD}
    user = sorted(pc for pc, k in loads if k < 8)
    if user:
        out.append(Finding("user-data", Severity.MEDIUM, f"pc {', '.join(map(str, user))}: reads user_data, which "
                           "the submitter chooses, so it cannot keep anyone out", pos, (name,)))
    end = PAYLOAD + profile.pdu_size(opcode)
    beyond = sorted(pc for pc, k in loads if k >= PAYLOAD and k + 4 > end)
    if beyond:
        out.append(Finding("field-unpopulated", Severity.HIGH,
                           f"pc {', '.join(map(str, beyond))}: reads past the {profile.pdu_size(opcode)} payload "
                           f"bytes kernel {profile.name} gives {name}: the filter would refuse to load there",
                           pos, (name,)))
    leaves: set[int] | None
    try:
        leaves = {n.value for n in nodes(lift(checked.program).root) if isinstance(n, Leaf)}
        conditional = any(isinstance(n, Branch) for n in nodes(lift(checked.program).root))
    except LiftError:
        leaves, conditional = None, True
    can_allow = leaves is None or any(v != 0 for v in leaves)
    if leaves is not None and not conditional:
        out.append(Finding("constant", Severity.INFO, f"the program {'allows' if can_allow else 'denies'} every "
                           f"{name} request: a classic restriction says that at no cost per request", pos, (name,)))
    op = SqeOp(opcode) if opcode < len(SqeOp) else None
    if op in (SqeOp.URING_CMD, SqeOp.URING_CMD128) and can_allow:
        out.append(Finding("passthrough-allowed", Severity.HIGH, f"{name} can be allowed: a driver command's "
                           "sub-command is invisible to filters", pos, (name,)))
    route = ROUTE_OF.get(op) if op is not None else None
    if route is not None and (conditional or not can_allow):
        others = [o for o in route.opcodes if o is not op and profile.knows_opcode(o)]
        out.append(Finding("route-open", Severity.MEDIUM,
                           f"this program restricts {name}; {_names(others)} reach the same operation "
                           f"({route.note}) and need filters of their own", pos, (name, *(o.name for o in others))))
    if op is not None and op in WIDENING_OPS and can_allow:
        out.append(Finding("widening-route", Severity.LOW, f"{name} can be allowed: it {WIDENING_OPS[op]}", pos,
                           (name,)))
    if op in DIRECT_DESCRIPTOR_OPS and can_allow:
        out.append(Finding("direct-descriptor", Severity.INFO, f"{name} can install a direct descriptor "
                           "(file_index) into the fixed table, and no filter context shows file_index", pos, (name,)))
    return tuple(sorted(out, key=lambda f: -f.severity))


__all__ = ["Finding", "Severity", "Status", "audit_policy", "audit_program", "statuses"]
