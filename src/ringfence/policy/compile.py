"""A policy to a :class:`~ringfence.policy.plan.Plan`: classic restrictions where they can say it at no per-SQE
cost, one cBPF filter per opcode that needs predicates, registered in the order the kernel requires.

Mechanisms (spec'd in ``docs/policy.md``):

* ``classic``: SQE-opcode, SQE-flag and register-opcode allow-lists as restriction records (registered first:
  they are once-only, and a task with any filter can no longer take them), then the filters.
* ``filters``: filters only, for a task that already carries restriction state (a nested sandbox). A denied
  opcode gets an explicit deny filter — a DENY_REST marker cannot cover an opcode that already holds an
  inherited filter — and, for a default-deny policy, the last registration carries DENY_REST for opcodes newer
  than the compile target. What filters cannot express (flag and register allow-lists) is refused, never
  dropped.
* ``auto``: both variants, classic first; ``ringfence run`` picks at apply time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ringfence import __version__
from ringfence.abi.layout import FilterRegistration, Restriction
from ringfence.abi.opcodes import SQE_VALID_FLAGS, FilterFlag, RestrictionOp, op_name
from ringfence.abi.profiles import KernelProfile
from ringfence.bpf.builder import Built
from ringfence.bpf.check import check
from ringfence.bpf.insn import ABS, CTX_LOAD, LD, W
from ringfence.errors import PolicyError
from ringfence.policy import checks, optimize
from ringfence.policy.ast import Action, Policy, TargetKind, canonical
from ringfence.policy.fields import FIELDS
from ringfence.policy.ir import FALSE, TRUE, Formula, opcode_formula
from ringfence.policy.lower import lower
from ringfence.policy.plan import Plan, Registration, Variant, digest

MECHANISMS: Final = ("auto", "classic", "filters")
PAYLOAD: Final = 16
ALLOW_ALL: Final = bytes.fromhex("0600000001000000")
DENY_ALL: Final = bytes.fromhex("0600000000000000")


@dataclass(frozen=True, slots=True)
class OpcodeProgram:
    """The filter for one opcode: its formula, the program (with a comment per instruction) and the payload
    bytes it reads."""

    opcode: int
    formula: Formula
    built: Built
    pdu_size: int
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Compiled:
    """The Plan and what it was made from: per-opcode formulas and programs, and warnings."""

    policy: Policy
    profile: KernelProfile
    plan: Plan
    decisions: dict[int, Formula]
    programs: dict[int, OpcodeProgram]
    warnings: tuple[checks.Finding, ...]


def payload_read(built: Built) -> int:
    """Bytes of the payload a program reads: the end of its highest context load past offset 16."""
    ends = [ins.k + 4 for ins in built.program if ins.code in (LD | W | ABS, CTX_LOAD) and ins.k >= PAYLOAD]
    return max(ends, default=PAYLOAD) - PAYLOAD


def _program(policy: Policy, profile: KernelProfile, op: int, formula: Formula, *, optimized: bool,
             strict: bool) -> OpcodeProgram:
    rules = tuple(r.label() for r in policy.rules_for(op))
    built = lower(formula, comment=", ".join(rules))
    if optimized:
        built = optimize.optimize(built)
    check(built.program)  # the kernel's rules: a compiler bug must not reach a registration
    need = payload_read(built)
    have = profile.pdu_size(op)
    if need > have:
        fields = sorted({p.field for r in policy.rules_for(op) for p in r.predicates
                         if FIELDS[p.field].offset >= PAYLOAD})
        at = next((p.pos for r in policy.rules_for(op) for p in r.predicates if fields and p.field == fields[0]),
                  None)
        raise PolicyError(f"{op_name(op)}'s filter context on kernel {profile.name} does not carry "
                          f"{', '.join(fields)} (its payload is {have} bytes; "
                          f"{FIELDS[fields[0]].since[0]}.{FIELDS[fields[0]].since[1]} and later have it)"
                          if fields else f"{op_name(op)}: the program reads {need} payload bytes, the kernel has "
                                         f"{have}",
                          file=at.file if at else "", line=at.line if at else 0, column=at.column if at else 0)
    pdu = have if strict else (need + 3) // 4 * 4
    return OpcodeProgram(op, formula, built, pdu, rules)


def _filter(p: OpcodeProgram, *, strict: bool, deny_rest: bool = False) -> Registration:
    flags = (FilterFlag.SZ_STRICT if strict else 0) | (FilterFlag.DENY_REST if deny_rest else 0)
    return Registration("filter", filter=FilterRegistration(p.opcode, p.built.program.to_bytes(), int(flags),
                                                             p.pdu_size),
                        rules=p.rules, comments=p.built.comments)


def _plain(op: int, program: bytes, why: str, *, deny_rest: bool = False) -> Registration:
    flags = int(FilterFlag.DENY_REST) if deny_rest else 0
    return Registration("filter", filter=FilterRegistration(op, program, flags, 0), rules=(why,), comments=(why,))


def _classic_records(policy: Policy, profile: KernelProfile, decisions: dict[int, Formula]) -> tuple[Restriction, ...]:
    """The restriction records; raises :class:`PolicyError` for what records cannot say.

    Each side (SQE, register) is restricted only if records for it are given (7.0 and later), or both are by
    any record (before 7.0); an empty list restricts both to nothing.
    """
    sqe_side = (policy.flags is not None or policy.default is Action.DENY
                or any(f == FALSE for f in decisions.values()))
    register_side = policy.register is not None
    if not profile.split_restrictions and (sqe_side or register_side):
        sqe_side = register_side = True  # one registration restricts both sides: say both in full
    allowed_ops = [op for op, f in sorted(decisions.items()) if f != FALSE]
    registers = sorted(op for op in (policy.register if policy.register is not None else range(profile.register_last))
                       if op < profile.register_last)
    if register_side and not registers:
        if allowed_ops or not sqe_side:
            raise PolicyError("`[register] allowed = []` cannot be said with classic restrictions while any request "
                              "is allowed (a register allow-list needs at least one opcode); allow one, e.g. PROBE")
        return ()  # no record at all: both sides allow nothing
    records: list[Restriction] = []
    if sqe_side:
        records += [Restriction(RestrictionOp.SQE_OP, op) for op in allowed_ops]
        allowed = SQE_VALID_FLAGS if policy.flags is None else policy.flags.allowed
        records.append(Restriction(RestrictionOp.SQE_FLAGS_ALLOWED, allowed))
        if policy.flags is not None and policy.flags.required:
            records.append(Restriction(RestrictionOp.SQE_FLAGS_REQUIRED, policy.flags.required))
    if register_side:
        records += [Restriction(RestrictionOp.REGISTER_OP, op) for op in registers]
    return tuple(records)


def _classic(policy: Policy, profile: KernelProfile, decisions: dict[int, Formula],
             programs: dict[int, OpcodeProgram], strict: bool) -> Variant:
    regs: list[Registration] = []
    records = _classic_records(policy, profile, decisions)
    if records or policy.flags is not None or policy.register is not None:
        regs.append(Registration("restrictions", records, rules=("opcode, flag and register allow-lists",)))
    regs += [_filter(p, strict=strict) for _, p in sorted(programs.items())]
    if policy.target is TargetKind.RING:
        regs.append(Registration("enable"))
    return Variant("classic", tuple(regs))


def _filters_only(policy: Policy, decisions: dict[int, Formula], programs: dict[int, OpcodeProgram],
                  strict: bool) -> Variant:
    regs: list[Registration] = []
    default_deny = policy.default is Action.DENY
    for op, f in sorted(decisions.items()):
        if op in programs:
            regs.append(_filter(programs[op], strict=strict))
        elif f == FALSE:
            regs.append(_plain(op, DENY_ALL, f"{op_name(op)} is denied"))
        elif default_deny:
            regs.append(_plain(op, ALLOW_ALL, f"{op_name(op)} is allowed"))
    if default_deny and regs:  # the last registration denies every opcode still without a filter
        last = regs[-1]
        assert last.filter is not None
        reg = last.filter
        flags = reg.flags | int(FilterFlag.DENY_REST)
        regs[-1] = Registration("filter", filter=FilterRegistration(reg.opcode, reg.program, flags, reg.pdu_size),
                                rules=(*last.rules, "DENY_REST: every other opcode is denied"),
                                comments=last.comments)
    if policy.target is TargetKind.RING:
        regs.append(Registration("enable"))
    return Variant("filters", tuple(regs))


def compile_policy(policy: Policy, profile: KernelProfile, *, mechanism: str = "auto", optimized: bool = True,
                   strict: bool = False) -> Compiled:
    """Compile ``policy`` for the kernel ``profile``; raises :class:`PolicyError` when it cannot be done."""
    if mechanism not in MECHANISMS:
        raise PolicyError(f"mechanism {mechanism!r}: one of {', '.join(MECHANISMS)}")
    if profile.version < policy.kernel:
        raise PolicyError(f"the policy is written for kernels {policy.kernel_spec}; {profile.name} is older",
                          file=policy.sources[0] if policy.sources else "")
    task = policy.target is TargetKind.TASK
    if task and not profile.task_restrictions:
        raise PolicyError(f"kernel {profile.name} has no per-task io_uring restrictions (they arrived in 7.0)")
    for rule in policy.rules:
        unknown = [op for op in rule.ops if not profile.knows_opcode(op)]
        if unknown and rule.action is Action.ALLOW:
            raise PolicyError(f"{', '.join(op_name(o) for o in unknown)} does not exist on kernel {profile.name}",
                              where=str(rule.pos))
    decisions = {op: opcode_formula(policy, op) for op in range(profile.op_last)}
    conditional = {op: f for op, f in decisions.items() if f not in (TRUE, FALSE)}
    if conditional and not profile.bpf_filters:
        raise PolicyError(f"kernel {profile.name} has no io_uring filters; predicates on "
                          f"{', '.join(op_name(o) for o in conditional)} need them")
    programs = {op: _program(policy, profile, op, f, optimized=optimized, strict=strict)
                for op, f in conditional.items()}
    variants: list[Variant] = []
    if mechanism in ("auto", "classic"):
        if mechanism == "classic" and programs:
            raise PolicyError(f"classic restrictions cannot express the predicates on "
                              f"{', '.join(op_name(o) for o in programs)}: use --mechanism auto or filters")
        variants.append(_classic(policy, profile, decisions, programs, strict))
    filters_possible = policy.flags is None and policy.register is None and profile.bpf_filters
    if mechanism == "filters" and not filters_possible:
        missing = " and ".join(x for x, present in (("[flags]", policy.flags is not None),
                                                     ("[register]", policy.register is not None)) if present)
        raise PolicyError(f"filters cannot express {missing or 'anything on this kernel'}: a filters-only Plan "
                          "would drop it (use --mechanism classic or auto)")
    if mechanism in ("auto", "filters") and filters_possible:
        variants.append(_filters_only(policy, decisions, programs, strict))
    found = checks.findings(policy, profile)
    plan = Plan(policy.name, digest(canonical(policy)), policy.target.value, profile.name, policy.kernel_spec,
                _arch(), __version__, optimized, tuple(variants), None, tuple(f.render() for f in found))
    return Compiled(policy, profile, plan, decisions, programs, found)


def _arch() -> str:
    """The architecture the Plan's constants belong to: ringfence models x86-64 (open flags, byte order)."""
    return "x86_64"
