"""The Plan: what to register, in which order, for one policy on one kernel — a self-describing artefact.

A Plan is plain data (JSON, versioned by ``format``) that ``ringfence run`` applies without the compiler or
the prover: the target, the kernel profile and architecture it was compiled for, the compiler version, each
variant's registrations (classic restriction records, filters with their program bytes), the proof's result
and the named assumptions it used, and a SHA-256 hash over all of it. Standard library only: the apply path
imports this module.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Final

from ringfence.abi.layout import FilterRegistration, Restriction

FORMAT: Final = 1


class PlanError(ValueError):
    """A Plan document that is not one: wrong format, missing fields, or a hash that does not match."""


@dataclass(frozen=True, slots=True)
class Registration:
    """One ``io_uring_register`` call of a Plan.

    ``kind`` is ``restrictions`` (``records``), ``filter`` (``filter``) or ``enable`` (a ring target's last
    step). ``rules`` name the policy rules it implements; ``comments`` hold, per instruction of a filter's
    program, which rule the instruction belongs to.
    """

    kind: str
    records: tuple[Restriction, ...] = ()
    filter: FilterRegistration | None = None
    rules: tuple[str, ...] = ()
    comments: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "restrictions":
            out["records"] = [[r.opcode, r.value] for r in self.records]
        if self.filter is not None:
            f = self.filter
            out.update(opcode=f.opcode, flags=f.flags, pdu_size=f.pdu_size, program=f.program.hex())
        if self.rules:
            out["rules"] = list(self.rules)
        if self.comments:
            out["comments"] = list(self.comments)
        return out

    @staticmethod
    def from_json(data: dict[str, Any]) -> Registration:
        kind = _get(data, "kind", str)
        if kind not in ("restrictions", "filter", "enable"):
            raise PlanError(f"unknown registration kind {kind!r}")
        records = tuple(Restriction(int(o), int(v)) for o, v in data.get("records", []))
        flt = None
        if kind == "filter":
            flt = FilterRegistration(_get(data, "opcode", int), bytes.fromhex(_get(data, "program", str)),
                                     _get(data, "flags", int), _get(data, "pdu_size", int))
        return Registration(kind, records, flt, tuple(data.get("rules", [])), tuple(data.get("comments", [])))


@dataclass(frozen=True, slots=True)
class Variant:
    """One way to apply the policy: ``classic`` (restriction records plus filters) or ``filters`` (filters
    only: what a task that already has restriction state can still add)."""

    mechanism: str
    registrations: tuple[Registration, ...]

    def to_json(self) -> dict[str, Any]:
        return {"mechanism": self.mechanism, "registrations": [r.to_json() for r in self.registrations]}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Variant:
        return Variant(_get(data, "mechanism", str), tuple(Registration.from_json(r) for r in data["registrations"]))


@dataclass(frozen=True, slots=True)
class Proof:
    """The prover's verdict on a Plan: ``result`` is ``proven``, ``refuted`` or ``unproven``."""

    result: str
    assumptions: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()
    seconds: float = 0.0
    solver: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "assumptions": list(self.assumptions), "checked": list(self.checked),
                "seconds": self.seconds, "solver": self.solver}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Proof:
        return Proof(_get(data, "result", str), tuple(data.get("assumptions", [])), tuple(data.get("checked", [])),
                     float(data.get("seconds", 0.0)), str(data.get("solver", "")))


@dataclass(frozen=True, slots=True)
class Plan:
    """A compiled policy. ``variants`` come in the order ``run`` tries them (``--mechanism auto`` keeps both)."""

    policy: str
    policy_hash: str
    target: str
    kernel: str
    minimum_kernel: str
    arch: str
    compiler: str
    optimized: bool
    variants: tuple[Variant, ...]
    proof: Proof | None = None
    warnings: tuple[str, ...] = field(default=())

    def body(self) -> dict[str, Any]:
        """Everything the hash covers."""
        return {"format": FORMAT, "policy": self.policy, "policy_hash": self.policy_hash, "target": self.target,
                "kernel": self.kernel, "minimum_kernel": self.minimum_kernel, "arch": self.arch,
                "compiler": self.compiler, "optimized": self.optimized,
                "variants": [v.to_json() for v in self.variants],
                "proof": None if self.proof is None else self.proof.to_json(), "warnings": list(self.warnings)}

    @property
    def hash(self) -> str:
        return digest(self.body())

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n"

    def variant(self, mechanism: str) -> Variant | None:
        return next((v for v in self.variants if v.mechanism == mechanism), None)

    @staticmethod
    def from_json(data: Any) -> Plan:
        """Rebuild a Plan and check its hash; raises :class:`PlanError`."""
        if not isinstance(data, dict):
            raise PlanError("a Plan is a JSON object")
        if data.get("format") != FORMAT:
            raise PlanError(f"Plan format {data.get('format')!r}; this ringfence reads format {FORMAT}")
        try:
            proof = data.get("proof")
            plan = Plan(_get(data, "policy", str), _get(data, "policy_hash", str), _get(data, "target", str),
                        _get(data, "kernel", str), _get(data, "minimum_kernel", str), _get(data, "arch", str),
                        _get(data, "compiler", str), bool(data.get("optimized", True)),
                        tuple(Variant.from_json(v) for v in data["variants"]),
                        None if proof is None else Proof.from_json(proof), tuple(data.get("warnings", [])))
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"not a valid Plan: {exc}") from None
        if data.get("hash") != plan.hash:
            raise PlanError("the Plan's hash does not match its contents: it was changed after compilation")
        if plan.to_json() != data:  # the hash covers what was read: anything else would be unchecked
            extra = sorted(set(data) - set(plan.to_json()))
            raise PlanError("the Plan holds " + (f"keys this ringfence does not know: {', '.join(extra)}" if extra
                            else "values that are not what compile writes") + ": it was changed after compilation")
        return plan

    @staticmethod
    def loads(text: str) -> Plan:
        try:
            return Plan.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise PlanError(f"not JSON: {exc.msg} at line {exc.lineno}") from None


def digest(data: Any) -> str:
    """SHA-256 over canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _get(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PlanError(f"`{key}` should be {kind.__name__}, not {type(value).__name__}")
    return value
