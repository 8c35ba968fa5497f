"""What a proof found, as plain data: each obligation, its verdict, the assumptions it used, and for a failed one a
counterexample a person can replay with ``ringfence emu``.

Standard library only (the prover, :mod:`ringfence.policy.prove`, is the module that needs z3), so the command
line can read and print a report without it.
"""

from __future__ import annotations

import enum
import ipaddress
import shlex
from dataclasses import dataclass
from typing import Any, Final

from ringfence.abi import opcodes
from ringfence.abi.constants import AF, RESOLVE, SOCK, O
from ringfence.abi.opcodes import SqeFlag
from ringfence.errors import ProofError
from ringfence.policy.fields import FIELDS, Field
from ringfence.policy.fields import Kind as FieldKind
from ringfence.policy.plan import Proof
from ringfence.policy.semantics import read


class Check(enum.Enum):
    """What an obligation is about."""

    PROGRAM = "program"    # one filter program equals the policy's predicate for its opcode
    PAYLOAD = "payload"    # one filter program reads no payload byte beyond its declared pdu_size
    PLAN = "plan"          # a whole variant: classic records plus filter chains equal the policy
    REGISTER = "register"  # the register allow-list equals [register]


def op_name(op: int) -> str:
    """Like :func:`ringfence.abi.opcodes.op_name`, but an unknown opcode reads as ``opcode N`` in sentences."""
    name = opcodes.op_name(op)
    return f"opcode {op}" if name.isdigit() else name


def flag_names(value: int) -> str:
    names = [f.name or "" for f in SqeFlag if value & f]
    if value & ~0x7F:
        names.append(hex(value & ~0x7F))
    return "|".join(names) or "0"


def _bits(value: int, table: dict[str, int]) -> str:
    parts, rest = [], value
    for name, bit in sorted(((n, v) for n, v in table.items() if v and not v & (v - 1) and not n.startswith("__")),
                            key=lambda item: item[1]):
        if rest & bit:
            parts.append(name)
            rest &= ~bit
    if rest:
        parts.append(hex(rest))
    return "|".join(parts) or "0"


_AF_NAMES: Final = {v: n for n, v in reversed(list(AF.items()))}
_SOCK_KINDS: Final = {v: n for n, v in SOCK.items() if v <= 0xF}


def _field_text(f: Field, ctx: bytes) -> str:
    value = read(f, ctx)
    if f.name == "connect.addr":
        family = int.from_bytes(ctx[16:20], "little")
        if family == AF["AF_INET"]:
            return str(ipaddress.IPv4Address(ctx[24:28]))
        return str(ipaddress.IPv6Address(ctx[24:40])) if family == AF["AF_INET6"] else ctx[24:40].hex()
    if f.name in ("socket.family", "connect.family"):
        return f"{_AF_NAMES[value]} ({value})" if value in _AF_NAMES else str(value)
    if f.kind is FieldKind.SOCKET_TYPE:
        kind = _SOCK_KINDS.get(value & 0xF, str(value & 0xF))
        extra = value & ~0xF
        return kind + (f"|{_bits(extra, dict(SOCK))}" if extra else "")
    if f.name == "open.flags":
        return _bits(value, dict(O))
    if f.name == "open.resolve":
        return _bits(value, dict(RESOLVE))
    if f.name == "open.mode":
        return oct(value)
    if f.name == "sqe_flags":
        return flag_names(value)
    return hex(value) if f.name == "user_data" else str(value)


@dataclass(frozen=True, slots=True)
class Counterexample:
    """A request on which the Plan and the policy disagree: the filter context (and, for whole-Plan checks, the
    SQE flags as submitted), what each side decides, and the filter programs involved."""

    opcode: int
    ctx: bytes
    plan_allows: bool
    policy_allows: bool
    kernel: str
    raw_flags: int | None = None
    programs: tuple[bytes, ...] = ()
    #: What the two verdicts are: the Plan's and the policy's, or (payload checks) the program's on the whole
    #: context and on the context cut to its declared payload.
    sides: tuple[str, str] = ("the Plan", "the policy")
    #: False on a kernel without filters: there is no context, only the opcode and the submitted flags.
    has_context: bool = True

    def fields(self) -> dict[str, str]:
        """The context decoded: header bytes, then the fields the opcode's context carries."""
        if not self.has_context:
            out = {"opcode": f"{op_name(self.opcode)} ({self.opcode})"}
            if self.raw_flags is not None:
                out["submitted flags"] = flag_names(self.raw_flags)
            return out
        out = {"opcode": f"{op_name(self.ctx[8])} ({self.ctx[8]})", "pdu_size": str(self.ctx[10])}
        if self.raw_flags is not None:
            out["submitted flags"] = flag_names(self.raw_flags)
        if any(self.ctx[11:16]):
            out["pad"] = self.ctx[11:16].hex()
        for f in FIELDS.values():
            if f.carried_by(self.opcode):
                out[f.name] = _field_text(f, self.ctx)
        return out

    def emu_commands(self) -> tuple[str, ...]:
        """``ringfence emu`` command lines, ready to paste, that run each program on the context."""
        return tuple(f"echo {p.hex()} | ringfence emu - --input hex --ctx-hex {self.ctx.hex()} "
                     f"--kernel {shlex.quote(self.kernel)}" for p in self.programs)

    def render(self) -> str:
        first, second = self.sides
        lines = [f"counterexample for {op_name(self.opcode)}: {first} {'allows' if self.plan_allows else 'denies'}, "
                 f"{second} {'allows' if self.policy_allows else 'denies'}"]
        lines += [f"  {name:<16} {value}" for name, value in self.fields().items()]
        if self.has_context:
            lines.append(f"  context hex      {self.ctx.hex()}")
        lines += [f"  replay: {c}" for c in self.emu_commands()]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"opcode": self.opcode, "ctx": self.ctx.hex() if self.has_context else None, "raw_flags": self.raw_flags,
                "plan_allows": self.plan_allows, "policy_allows": self.policy_allows, "fields": self.fields(),
                "programs": [p.hex() for p in self.programs], "emu": list(self.emu_commands()),
                "sides": list(self.sides)}


@dataclass(frozen=True, slots=True)
class Obligation:
    """One thing the prover checked. ``holds`` is None when the solver gave up (time limit)."""

    kind: Check
    variant: str
    opcode: int | None
    holds: bool | None
    assumptions: tuple[str, ...] = ()
    detail: str = ""
    counterexample: Counterexample | None = None
    instructions: int = 0

    @property
    def name(self) -> str:
        what = {Check.PROGRAM: "filter", Check.PAYLOAD: "payload", Check.PLAN: "plan",
                Check.REGISTER: "register"}[self.kind]
        op = f" {op_name(self.opcode)}" if self.opcode is not None else ""
        setup = self.detail.split(":", 1)[0]
        return f"{self.variant}: {what}{op}" + (f" ({setup})" if setup and self.kind is Check.PLAN else "")

    @property
    def status(self) -> str:
        return {True: "proven", False: "refuted", None: "unknown"}[self.holds]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "variant": self.variant, "opcode": self.opcode,
                "opcode_name": None if self.opcode is None else op_name(self.opcode), "status": self.status,
                "assumptions": list(self.assumptions), "detail": self.detail, "instructions": self.instructions,
                "counterexample": None if self.counterexample is None else self.counterexample.to_json()}


@dataclass(frozen=True, slots=True)
class ProofReport:
    """Every obligation for one Plan, how long it took, and the solver that decided them."""

    obligations: tuple[Obligation, ...]
    seconds: float
    solver: str

    @property
    def result(self) -> str:
        if any(o.holds is False for o in self.obligations):
            return "refuted"
        return "proven" if all(o.holds for o in self.obligations) else "unproven"

    @property
    def assumptions(self) -> tuple[str, ...]:
        """Every assumption some obligation needed, in table order."""
        from ringfence.policy.assumptions import ASSUMPTIONS

        used = {a for o in self.obligations for a in o.assumptions}
        return tuple(a.id for a in ASSUMPTIONS if a.id in used)

    def failures(self) -> tuple[Obligation, ...]:
        return tuple(o for o in self.obligations if not o.holds)

    def proof(self) -> Proof:
        """The Plan's ``proof`` field."""
        return Proof(self.result, self.assumptions, tuple(o.name for o in self.obligations), round(self.seconds, 3),
                     self.solver)

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "assumptions": list(self.assumptions), "seconds": self.seconds,
                "solver": self.solver, "obligations": [o.to_json() for o in self.obligations]}


class NotProvenError(ProofError):
    """A Plan that does not mean its policy (or whose proof could not be finished); carries the whole report."""

    def __init__(self, report: ProofReport) -> None:
        self.report = report
        bad = report.failures()
        first = bad[0] if bad else None
        example = first.counterexample if first is not None else None
        message = f"the Plan is {report.result}: " + "; ".join(f"{o.name}: {o.status}" for o in bad[:5])
        if example is not None:
            message += "\n" + example.render()
        super().__init__(message, counterexample=None if example is None else {
            "opcode": example.opcode, "plan_allows": int(example.plan_allows),
            "policy_allows": int(example.policy_allows),
            **({} if example.raw_flags is None else {"raw_flags": example.raw_flags}),
            **{f"ctx[{i}]": int.from_bytes(example.ctx[i:i + 4], "little") for i in range(0, 40, 4)
               if example.has_context}})
