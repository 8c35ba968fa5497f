"""A policy as data: the syntax tree both the TOML/JSON loader and the Python builder produce.

Positions are kept for messages but never take part in equality, so a policy built in Python and the same
policy loaded from a file compare equal. Values are already resolved to numbers (constant names looked up);
what each test means is defined once, in :mod:`ringfence.policy.semantics`.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from dataclasses import field as dc_field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Action(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"


class TargetKind(enum.Enum):
    """What a policy governs: the task that applies it (``fd = -1``; inherited by every ring and task it creates
    later), or one ring created disabled and enabled once the policy is on it."""

    TASK = "task"
    RING = "ring"


@dataclass(frozen=True, slots=True)
class Pos:
    """Where something was written: file, line and column (1-based; 0 when unknown)."""

    file: str = ""
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


# -- tests on one field ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OneOf:
    """The field equals one of ``values``. For ``socket.type`` a value is a kind plus flag bits: the kind must
    match exactly, named flag bits must be set, other flag bits are ignored."""

    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class NoneOf:
    """The field equals none of ``values`` (same per-field meaning as :class:`OneOf`)."""

    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Range:
    """``lo <= field <= hi``."""

    lo: int
    hi: int


class BitMode(enum.Enum):
    ALL = "all"    # every bit set
    NONE = "none"  # no bit set
    ANY = "any"    # at least one bit set


@dataclass(frozen=True, slots=True)
class Bits:
    mode: BitMode
    mask: int


@dataclass(frozen=True, slots=True)
class Masked:
    """``field & mask == value``."""

    mask: int
    value: int


@dataclass(frozen=True, slots=True)
class InNetworks:
    """The address lies in one of ``networks`` (``negate``: in none of them)."""

    networks: tuple[Network, ...]
    negate: bool = False


Test = OneOf | NoneOf | Range | Bits | Masked | InNetworks


@dataclass(frozen=True, slots=True)
class Predicate:
    """Every test on one field must hold."""

    field: str
    tests: tuple[Test, ...]
    pos: Pos = dc_field(default=Pos(), compare=False)


@dataclass(frozen=True, slots=True)
class Rule:
    """Allow or deny ``ops`` when every predicate holds (no predicate: always)."""

    action: Action
    ops: tuple[int, ...]
    predicates: tuple[Predicate, ...] = ()
    reason: str = ""
    name: str = ""
    pos: Pos = dc_field(default=Pos(), compare=False)

    @property
    def unconditional(self) -> bool:
        return not self.predicates

    def label(self) -> str:
        """How messages and comments name this rule: its name, else its action and where it was written."""
        if self.name:
            return self.name
        if not self.pos.line:
            return f"{self.action.value} rule"
        base = self.pos.file.replace("\\", "/").rsplit("/", 1)[-1]  # no machine path in comments and Plans
        return f"{self.action.value} rule at {base}:{self.pos.line}:{self.pos.column}"


@dataclass(frozen=True, slots=True)
class Flags:
    """SQE flags the submitter may set (``allowed``) and must set (``required``), as it sets them."""

    allowed: int
    required: int = 0
    pos: Pos = dc_field(default=Pos(), compare=False)


@dataclass(frozen=True, slots=True)
class Policy:
    """A whole policy, includes merged. ``kernel`` is the minimum kernel version it is written for.

    ``flags`` None: SQE flags are not restricted; ``register`` None: register opcodes are not restricted.
    """

    name: str
    rules: tuple[Rule, ...] = ()
    default: Action = Action.DENY
    target: TargetKind = TargetKind.TASK
    kernel: tuple[int, int] = (7, 0)
    flags: Flags | None = None
    register: frozenset[int] | None = None
    description: str = ""
    sources: tuple[str, ...] = dc_field(default=(), compare=False)

    def rules_for(self, opcode: int) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if opcode in r.ops)

    @property
    def kernel_spec(self) -> str:
        return f"{self.kernel[0]}.{self.kernel[1]}+"


def canonical(policy: Policy) -> dict[str, object]:
    """The policy as plain sorted data, positions and sources left out: what its hash covers."""
    def test(t: Test) -> list[object]:
        if isinstance(t, InNetworks):
            return ["in_networks", sorted(str(n) for n in t.networks), t.negate]
        if isinstance(t, OneOf | NoneOf):
            return [type(t).__name__, sorted(t.values)]
        if isinstance(t, Range):
            return ["range", t.lo, t.hi]
        if isinstance(t, Bits):
            return ["bits", t.mode.value, t.mask]
        return ["masked", t.mask, t.value]

    rules = sorted(([r.action.value, sorted(r.ops), sorted([p.field, sorted(test(t) for t in p.tests)]
                                                          for p in r.predicates), r.reason, r.name]
                    for r in policy.rules), key=repr)
    return {"name": policy.name, "default": policy.default.value, "target": policy.target.value,
            "kernel": list(policy.kernel), "description": policy.description,
            "flags": None if policy.flags is None else [policy.flags.allowed, policy.flags.required],
            "register": None if policy.register is None else sorted(policy.register), "rules": rules}
