"""The prover: a compiled Plan allows exactly what its policy allows, for every request the kernel can build.

Two readings of the same policy meet in an SMT solver (z3; this is the only module that imports it):

* the **Plan**, from its bytes: each filter program is decoded from the registration
  (:meth:`~ringfence.bpf.insn.Program.from_bytes`), checked, and executed symbolically by
  :mod:`ringfence.bpf.symbolic` over z3 bit-vectors (this module supplies the algebra, never instruction
  semantics); a whole variant is applied to the kernel model, whose restriction state and filter chains
  (DENY_REST markers, classic records as the kernel parses them) are then read as formulas;
* the **policy**, from its syntax tree, following :mod:`ringfence.policy.semantics` rule for rule — not from
  :mod:`ringfence.policy.ir`, the compiler's own formulas, so a mistake there cannot hide behind one here.

Every proof quantifies over the contexts the named assumptions (:mod:`ringfence.policy.assumptions`) allow and
records the ones it needed (an unsat core, minimized). A disagreement comes back as a counterexample that is
replayed concretely (interpreter, model, policy evaluator) before it is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from ringfence.abi.layout import FilterRegistration
from ringfence.abi.opcodes import op_name
from ringfence.abi.profiles import KernelProfile
from ringfence.bpf.check import CheckedProgram, check
from ringfence.bpf.insn import CTX_LOAD, Program
from ringfence.bpf.interp import run
from ringfence.bpf.symbolic import symbolic_result
from ringfence.errors import CheckError, DecodeError, UnsupportedError
from ringfence.model.filters import FilterNode, run_chain, walk
from ringfence.model.restriction import sqe_denial
from ringfence.policy import assumptions as assume
from ringfence.policy import semantics
from ringfence.policy.ast import Action, BitMode, Bits, InNetworks, Masked, NoneOf, OneOf, Policy, Range, Rule, Test
from ringfence.policy.compile import Compiled
from ringfence.policy.evidence import Check, Counterexample, NotProvenError, Obligation, ProofReport
from ringfence.policy.fields import FIELDS, SOCK_TYPE_MASK, Field, Kind
from ringfence.policy.plan import Plan, Variant
from ringfence.policy.replay import Applied, apply_variant

try:
    import z3
except ImportError:  # pragma: no cover - exercised by a subprocess test without z3
    raise UnsupportedError("proving a Plan needs the z3 solver: pip install 'ringfence[prove]'") from None

U32: Final = 0xFFFFFFFF
PAYLOAD: Final = 16
CTX_WORDS: Final = 10
DEFAULT_TIMEOUT_MS: Final = 60_000
SOLVER: Final = f"z3 {z3.get_version_string()}"
_TRUE: Final = z3.BoolVal(True)
_FALSE: Final = z3.BoolVal(False)


def _all(parts: Iterable[Any]) -> Any:
    """Conjunction with the constants :data:`_TRUE` and :data:`_FALSE` folded here, by identity (most opcodes'
    formulas are constants: they never reach the solver, and asking z3 what a term is costs more than this)."""
    out = []
    for p in parts:
        if p is _FALSE:
            return _FALSE
        if p is not _TRUE:
            out.append(p)
    return _TRUE if not out else out[0] if len(out) == 1 else z3.And(*out)


def _any(parts: Iterable[Any]) -> Any:
    out = []
    for p in parts:
        if p is _TRUE:
            return _TRUE
        if p is not _FALSE:
            out.append(p)
    return _FALSE if not out else out[0] if len(out) == 1 else z3.Or(*out)


def _not(p: Any) -> Any:
    return _FALSE if p is _TRUE else _TRUE if p is _FALSE else z3.Not(p)


def _literal(p: Any) -> bool:
    return p is _TRUE or p is _FALSE


def _bool(value: bool) -> Any:
    return _TRUE if value else _FALSE


def _allows(term: Any) -> Any:
    """A program's return value as a verdict: any nonzero value allows."""
    return _bool(term.as_long() != 0) if z3.is_bv_value(term) else term != 0


# -- the context as solver variables -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Vars:
    """The free variables of every query: the ten context words, the SQE flags byte as submitted, the opcode."""

    words: tuple[Any, ...]
    raw: Any
    op: Any

    @staticmethod
    def fresh() -> _Vars:
        return _Vars(tuple(z3.BitVec(f"ctx{4 * i}", 32) for i in range(CTX_WORDS)), z3.BitVec("raw_flags", 8),
                     z3.BitVec("opcode", 8))

    def ctx(self, model: Any) -> bytes:
        return b"".join(model.eval(w, model_completion=True).as_long().to_bytes(4, "little") for w in self.words)

    def value(self, model: Any, term: Any) -> int:
        return int(model.eval(term, model_completion=True).as_long())


class _BpfAlgebra:
    """:mod:`ringfence.bpf.symbolic`'s algebra over z3 32-bit bit-vectors, whose arithmetic wraps as the kernel's
    does; division, comparison and right shift are the unsigned ones. Shift counts arrive already masked to five
    bits and division by zero never reaches ``udiv`` (the semantics table cuts both off). Records the context
    words a program loads."""

    __slots__ = ("_consts", "loads", "words")

    def __init__(self, words: tuple[Any, ...]) -> None:
        self.words = words
        self.loads: set[int] = set()
        self._consts: dict[int, Any] = {}

    def const(self, k: int) -> Any:
        k &= U32
        found = self._consts.get(k)
        if found is None:
            found = self._consts[k] = z3.BitVecVal(k, 32)
        return found

    def add(self, a: Any, b: Any) -> Any:
        return a + b

    def sub(self, a: Any, b: Any) -> Any:
        return a - b

    def mul(self, a: Any, b: Any) -> Any:
        return a * b

    def udiv(self, a: Any, b: Any) -> Any:
        return z3.UDiv(a, b)

    def urem(self, a: Any, b: Any) -> Any:
        return z3.URem(a, b)

    def or_(self, a: Any, b: Any) -> Any:
        return a | b

    def and_(self, a: Any, b: Any) -> Any:
        return a & b

    def xor(self, a: Any, b: Any) -> Any:
        return a ^ b

    def lsh(self, a: Any, b: Any) -> Any:
        return a << b

    def rsh(self, a: Any, b: Any) -> Any:
        return z3.LShR(a, b)

    def neg(self, a: Any) -> Any:
        return -a

    def eq(self, a: Any, b: Any) -> Any:
        return a == b

    def ugt(self, a: Any, b: Any) -> Any:
        return z3.UGT(a, b)

    def uge(self, a: Any, b: Any) -> Any:
        return z3.UGE(a, b)

    def test(self, a: Any, b: Any) -> Any:
        return (a & b) != 0

    def word(self, offset: int) -> Any:
        self.loads.add(offset)
        return self.words[offset // 4]

    def true(self) -> Any:
        return _TRUE

    def not_(self, c: Any) -> Any:
        return _not(c)

    def all_(self, a: Any, b: Any) -> Any:
        return _all((a, b))

    def any_(self, a: Any, b: Any) -> Any:
        return _any((a, b))

    def ite(self, c: Any, a: Any, b: Any) -> Any:
        return a if c is _TRUE else b if c is _FALSE else z3.If(c, a, b)


class _AssumptionTerms:
    """:class:`ringfence.policy.assumptions.Terms` over the same variables. Terms are memoized: the same
    constraints come back for opcode after opcode."""

    __slots__ = ("_memo", "v")

    def __init__(self, v: _Vars) -> None:
        self.v = v
        self._memo: dict[tuple[object, ...], Any] = {}

    def _get(self, key: tuple[object, ...], make: Callable[[], Any]) -> Any:
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = make()
        return found

    def const(self, k: int) -> Any:
        return self._get(("k", k & U32), lambda: z3.BitVecVal(k & U32, 32))

    def word(self, offset: int) -> Any:
        return self.v.words[offset // 4]

    def raw_flags(self) -> Any:
        return self._get(("raw",), lambda: z3.ZeroExt(24, self.v.raw))

    def and_(self, a: Any, b: Any) -> Any:
        return self._get(("&", a.get_id(), b.get_id()), lambda: a & b)

    def rsh(self, a: Any, bits: int) -> Any:
        return self._get((">>", a.get_id(), bits), lambda: z3.LShR(a, bits))

    def eq(self, a: Any, b: Any) -> Any:
        return self._get(("==", a.get_id(), b.get_id()), lambda: a == b)

    def not_(self, c: Any) -> Any:
        return self._get(("!", c.get_id()), lambda: z3.Not(c))

    def all_(self, cs: Sequence[Any]) -> Any:
        return self._get(("all", *(c.get_id() for c in cs)), lambda: _all(cs))

    def any_(self, cs: Sequence[Any]) -> Any:
        return self._get(("any", *(c.get_id() for c in cs)), lambda: _any(cs))

    def implies(self, a: Any, b: Any) -> Any:
        return self._get(("->", a.get_id(), b.get_id()), lambda: z3.Implies(a, b))


# -- the policy, from its syntax tree ----------------------------------------------------------------------------

class _PolicyFormula:
    """:mod:`ringfence.policy.semantics` again, over z3: ``opcode(op)`` holds iff ``opcode_verdict`` allows,
    ``flags()`` iff ``flags_allowed`` does (on the submitted flags)."""

    def __init__(self, policy: Policy, v: _Vars) -> None:
        self.policy = policy
        self.v = v
        self._cache: dict[int, Any] = {}
        self._flags: Any = None

    def byte(self, i: int) -> Any:
        shift = 8 * (i % 4)
        return z3.Extract(shift + 7, shift, self.v.words[i // 4])

    def _bytes(self, first: int, count: int) -> Any:
        """Bytes ``first..first+count-1`` as one big-endian (network-order) number."""
        parts = [self.byte(i) for i in range(first, first + count)]
        return parts[0] if count == 1 else z3.Concat(*parts)

    def family(self) -> Any:
        return self.v.words[PAYLOAD // 4]

    def read(self, f: Field) -> Any:
        """``semantics.read``: native (little-endian) integers, ports and addresses in network order."""
        if f.kind is Kind.PORT:
            return self._bytes(f.offset, f.size)
        if f.kind is Kind.ADDRESS:
            v4 = z3.ZeroExt(96, self._bytes(24, 4))
            return z3.If(self.family() == semantics.AF_INET, v4, self._bytes(24, 16))
        parts = [self.byte(i) for i in reversed(range(f.offset, f.offset + f.size))]
        return parts[0] if len(parts) == 1 else z3.Concat(*parts)

    @staticmethod
    def _fit(value: Any, *ks: int) -> tuple[Any, int]:
        """``value`` zero-extended to hold every constant in ``ks`` (a constant wider than the field compares as
        the integers do), and that width."""
        width = max(value.size(), *(k.bit_length() for k in ks))
        return (value if width == value.size() else z3.ZeroExt(width - value.size(), value)), width

    def _equal(self, f: Field, value: Any, wanted: int) -> Any:
        if f.kind is Kind.SOCKET_TYPE:
            kind, named = wanted & SOCK_TYPE_MASK, wanted & ~SOCK_TYPE_MASK
            v, w = self._fit(value, wanted)
            return z3.And(v & z3.BitVecVal(SOCK_TYPE_MASK, w) == z3.BitVecVal(kind, w),
                          v & z3.BitVecVal(named, w) == z3.BitVecVal(named, w))
        v, w = self._fit(value, wanted)
        return v == z3.BitVecVal(wanted, w)

    @staticmethod
    def _inside(address: Any, bits: int, network: Any) -> Any:
        """The ``bits``-wide address lies in ``network`` (its top ``prefixlen`` bits agree)."""
        p = network.prefixlen
        if p == 0:
            return _TRUE
        return z3.Extract(bits - 1, bits - p, address) == int(network.network_address) >> (bits - p)

    def _in_networks(self, test: InNetworks) -> Any:
        v4_nets = [n for n in test.networks if n.version == 4]
        v6_nets = [n for n in test.networks if n.version == 6]
        v4 = self._bytes(24, 4)
        v6 = self._bytes(24, 16)
        mapped = z3.Extract(127, 32, v6) == 0xFFFF
        low = z3.Extract(31, 0, v6)
        found4 = _any([self._inside(v4, 32, n) for n in v4_nets])
        found6 = _any([*(self._inside(v6, 128, n) for n in v6_nets),
                       _all([mapped, _any([self._inside(low, 32, n) for n in v4_nets])])])
        fam = self.family()
        if test.negate:
            found4, found6 = _not(found4), _not(found6)
        return z3.If(fam == semantics.AF_INET, found4, z3.If(fam == semantics.AF_INET6, found6, False))

    def test(self, f: Field, test: Test) -> Any:
        if isinstance(test, InNetworks):
            return self._in_networks(test)
        value = self.read(f)
        if isinstance(test, OneOf):
            return z3.Or(*[self._equal(f, value, k) for k in test.values])
        if isinstance(test, NoneOf):
            return z3.Not(z3.Or(*[self._equal(f, value, k) for k in test.values]))
        if isinstance(test, Range):
            v, w = self._fit(value, test.lo, test.hi)
            return z3.And(z3.ULE(z3.BitVecVal(test.lo, w), v), z3.ULE(v, z3.BitVecVal(test.hi, w)))
        if isinstance(test, Bits):
            v, w = self._fit(value, test.mask)
            hit, mask = v & z3.BitVecVal(test.mask, w), z3.BitVecVal(test.mask, w)
            return {BitMode.ALL: hit == mask, BitMode.NONE: hit == 0, BitMode.ANY: hit != 0}[test.mode]
        if isinstance(test, Masked):
            v, w = self._fit(value, test.mask, test.value)
            return v & z3.BitVecVal(test.mask, w) == z3.BitVecVal(test.value, w)
        raise AssertionError(test)

    def matches(self, rule: Rule) -> Any:
        return _all(self.test(FIELDS[p.field], t) for p in rule.predicates for t in p.tests)

    def opcode(self, op: int) -> Any:
        """Rules 2-4 for ``op``: no deny rule matches, no family-zero guard trips, an allow rule (or the default)
        admits."""
        found = self._cache.get(op)
        if found is not None:
            return found
        rules = self.policy.rules_for(op)
        deny = [self.matches(r) for r in rules if r.action is Action.DENY]
        allows = [self.matches(r) for r in rules if r.action is Action.ALLOW]
        parts = [_not(d) for d in deny]
        if op == semantics.CONNECT and semantics.guards_family_zero(self.policy):
            parts.append(self.family() != 0)
        parts.append(_any(allows) if allows else _bool(self.policy.default is Action.ALLOW))
        found = self._cache[op] = _all(parts)
        return found

    def flags(self) -> Any:
        """Rule 1 on the submitted flags byte."""
        if self._flags is None:
            if self.policy.flags is None:
                self._flags = _TRUE
            else:
                allowed, required = self.policy.flags.allowed, self.policy.flags.required
                self._flags = _flags_check(self.v.raw, allowed, required)
        return self._flags


def _flags_check(raw: Any, allowed: int, required: int) -> Any:
    """The classic flags rule: every required bit set, none outside allowed | required (8-bit flags byte)."""
    required &= 0xFF
    return z3.And(raw & required == required, raw & (~(allowed | required) & 0xFF) == 0)


def _ordered(ids: Iterable[str]) -> tuple[str, ...]:
    """Assumption ids in the table's order."""
    have = set(ids)
    return tuple(a.id for a in assume.ASSUMPTIONS if a.id in have)


# -- the solver --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Answer:
    """Whether two formulas agree under the assumptions: ``holds`` (None: unknown), the assumptions a proof
    needed, or a model where they differ."""

    holds: bool | None
    used: tuple[str, ...] = ()
    model: Any = None
    reason: str = ""


class _Solver:
    def __init__(self, timeout_ms: int) -> None:
        self.s = z3.SolverFor("QF_BV")
        self.s.set("timeout", timeout_ms)

    def differ(self, a: Any, b: Any, constraints: Callable[[], Sequence[tuple[str, Any]]]) -> _Answer:
        """Is there an assignment that satisfies every constraint where ``a`` and ``b`` differ? The constraints
        (named assumptions) are built only when the question needs the solver."""
        if a is b:
            return _Answer(True)
        self.s.push()
        try:
            self.s.add(z3.Xor(a, b))
            lits = []
            for name, c in constraints():
                lit = z3.Bool(f"assume:{name}")
                self.s.add(z3.Implies(lit, c))
                lits.append(lit)
            verdict = self.s.check(*lits)
            if verdict == z3.sat:
                return _Answer(False, model=self.s.model())
            if verdict == z3.unknown:
                return _Answer(None, reason=str(self.s.reason_unknown()))
            core = [lit for lit in lits if any(lit.eq(c) for c in self.s.unsat_core())]
            for lit in list(core):  # deletion-based minimization: keep only what the proof needs
                trial = [c for c in core if not c.eq(lit)]
                if self.s.check(*trial) == z3.unsat:
                    core = trial
            return _Answer(True, tuple(str(c).removeprefix("assume:") for c in core))
        finally:
            self.s.pop()


# -- the prover --------------------------------------------------------------------------------------------------

class _Prover:
    def __init__(self, plan: Plan, policy: Policy, profile: KernelProfile, timeout_ms: int) -> None:
        self.plan = plan
        self.policy = policy
        self.profile = profile
        self.v = _Vars.fresh()
        self.pol = _PolicyFormula(policy, self.v)
        self.solver = _Solver(timeout_ms)
        self.terms = _AssumptionTerms(self.v)
        self._programs: dict[bytes, tuple[Any, frozenset[int]]] = {}
        self._proven: dict[tuple[int, bytes, int], list[Obligation]] = {}
        self._assumed: dict[tuple[str, int, str], Any] = {}
        self._chains: dict[int, tuple[FilterNode, Any]] = {}
        self._classic_flags: dict[tuple[int, int], Any] = {}
        self._lemmas: dict[tuple[int, bytes], tuple[str, ...]] = {}

    def term(self, checked: CheckedProgram) -> tuple[Any, frozenset[int]]:
        """The program's return value as a term, and the context offsets it loads (cached per program)."""
        key = checked.source.to_bytes()
        found = self._programs.get(key)
        if found is None:
            alg = _BpfAlgebra(self.v.words)
            found = self._programs[key] = (symbolic_result(checked, alg), frozenset(alg.loads))
        return found

    def assumed(self, op: int, profile: KernelProfile, *, request: bool,
                context: bool = True) -> list[tuple[str, Any]]:
        """The constraints of the assumptions that concern ``op`` on ``profile``, by id; without ``context``, only
        those relating the context to the request (the others constrain nothing a context-free formula reads)."""
        out = []
        for a in assume.concerning(op, profile, request=request):
            if context or a.request:
                key = (a.id, op, profile.name)
                found = self._assumed.get(key)
                if found is None:
                    found = self._assumed[key] = a.constraint(self.terms, op, profile)
                out.append((a.id, found))
        return out

    # -- one program -------------------------------------------------------------------------------------------

    def program(self, variant: str, reg: FilterRegistration) -> list[Obligation]:
        key = (reg.opcode, reg.program, reg.pdu_size)
        if key in self._proven:
            return [replace(o, variant=variant) for o in self._proven[key]]
        op = reg.opcode
        try:
            decoded = Program.from_bytes(reg.program)
            checked = check(decoded)
        except (CheckError, DecodeError) as exc:
            out = [Obligation(Check.PROGRAM, variant, op, False, detail=f"the kernel would refuse it: {exc}")]
        else:
            out = [self._equivalent(variant, op, checked, reg.program),
                   self._payload(variant, op, checked, reg)]
        self._proven[key] = out
        return out

    def _equivalent(self, variant: str, op: int, checked: CheckedProgram, raw: bytes) -> Obligation:
        term, _ = self.term(checked)
        allow, want = _allows(term), self.pol.opcode(op)
        answer = self.solver.differ(allow, want, lambda: self.assumed(op, self.profile, request=False))
        size = len(checked.program)
        if answer.holds is not False:
            if answer.holds:
                self._lemmas[(op, checked.source.to_bytes())] = answer.used
            return Obligation(Check.PROGRAM, variant, op, answer.holds, answer.used, answer.reason, instructions=size)
        ctx = self.v.ctx(answer.model)
        got = run(checked, ctx).allowed
        wanted = semantics.opcode_verdict(self.policy, op, ctx).allowed
        example = Counterexample(op, ctx, got, wanted, self.profile.name, programs=(raw,),
                                 sides=("the filter", "the policy"))
        return self._confirmed(Obligation(Check.PROGRAM, variant, op, False, counterexample=example,
                                          instructions=size), ctx, op, got != wanted)

    def _payload(self, variant: str, op: int, checked: CheckedProgram, reg: FilterRegistration) -> Obligation:
        """No reachable load of a word past ``PAYLOAD + pdu_size``: a kernel with a smaller payload than the program
        reads would refuse the registration rather than feed it zeros only if the declaration covers every read."""
        term, loads = self.term(checked)
        end = PAYLOAD + reg.pdu_size
        beyond = sorted(k for k in loads if k >= PAYLOAD and k + 4 > end)
        size = len(checked.program)
        if not beyond:
            return Obligation(Check.PAYLOAD, variant, op, True, instructions=size)
        pcs = [pc for pc, ins in enumerate(checked.program.instructions) if ins.code == CTX_LOAD and ins.k in beyond]
        detail = (f"reads bytes {beyond[0]}-{beyond[-1] + 3} at pc {', '.join(map(str, pcs))}, past its declared "
                  f"pdu_size {reg.pdu_size}")
        zero = z3.BitVecVal(0, 32)
        cut = z3.substitute(term, *[(self.v.words[k // 4], zero) for k in beyond])
        answer = self.solver.differ(_allows(term), _allows(cut), lambda: self.assumed(op, self.profile, request=False))
        if answer.holds is not False:
            return Obligation(Check.PAYLOAD, variant, op, False, detail=detail + " (its verdict does not depend on "
                              "them, but a kernel with a smaller payload would feed it zeros)", instructions=size)
        ctx = self.v.ctx(answer.model)
        short = bytes(ctx[i] if not (i >= end and i // 4 * 4 in beyond) else 0 for i in range(len(ctx)))
        example = Counterexample(op, ctx, run(checked, ctx).allowed, run(checked, short).allowed, self.profile.name,
                                 programs=(reg.program,), sides=("the filter", f"with bytes past {end} zero it"))
        return Obligation(Check.PAYLOAD, variant, op, False, detail=detail, counterexample=example,
                          instructions=size)

    def _confirmed(self, ob: Obligation, ctx: bytes, op: int, disagree: bool,
                   raw_flags: int | None = None) -> Obligation:
        """A counterexample is reported only once the interpreter, model and evaluator reproduce it and it breaks
        no assumption; otherwise the prover itself is wrong, and says so."""
        broken = assume.violated(ctx, op, self.profile, raw_flags)
        if disagree and not broken:
            return ob
        why = f"breaks {', '.join(broken)}" if broken else "does not reproduce concretely"
        return replace(ob, holds=None, detail=f"the solver's counterexample {why}: a prover bug")

    # -- whole variants ----------------------------------------------------------------------------------------

    def _sides(self, applied: Applied, op: int) -> tuple[Any, Any, bool, tuple[str, ...]]:
        """What the variant and the policy say for requests of ``op`` (formulas over the submitted flags and the
        context), whether either reads the context, and the assumptions of the lemmas used.

        A chain whose one program was already proven equal to the policy's predicate for ``op`` (the ``filter``
        obligation, under the same context assumptions) is replaced by that predicate: the lemma, not the
        program, enters the whole-Plan query, which then only has the classic check and the flags to weigh."""
        classic = applied.classic
        if classic is None:
            allowed = _TRUE
        elif classic.sqe_op >> op & 1:
            key = (classic.flags_allowed & 0xFF, classic.flags_required & 0xFF)
            allowed = self._classic_flags.get(key)
            if allowed is None:
                allowed = self._classic_flags[key] = _flags_check(self.v.raw, *key)
        else:
            allowed = _FALSE
        wanted = self.pol.opcode(op)
        chain = self._chain(applied.heads[op])
        lemma: tuple[str, ...] = ()
        nodes = list(walk(applied.heads[op]))
        verdicts = [None if n.program is None else _allows(self.term(n.program)[0]) for n in nodes]
        real = [n.program for n, c in zip(nodes, verdicts, strict=True) if n.program is not None and not _literal(c)]
        rest_allow = all(c is _TRUE for c in verdicts if c is not None and _literal(c)) and None not in verdicts
        if len(real) == 1 and rest_allow and (op, real[0].source.to_bytes()) in self._lemmas:
            chain, lemma = wanted, self._lemmas[(op, real[0].source.to_bytes())]
        return (_all([allowed, chain]), _all([self.pol.flags(), wanted]), not (_literal(chain) and _literal(wanted)),
                lemma)

    def plan_check(self, variant: Variant, applied: Applied, setup: str, profile: KernelProfile,
                   ops: Iterable[int]) -> Obligation:
        """Every request of ``ops`` is allowed by the variant (classic check on the submitted flags, then the
        opcode's filter chain on the context) iff the policy allows it: one query over all opcodes.

        Opcodes whose both sides are constants on the context (no filter program, no predicate) share their
        formula over the flags byte, so they are grouped; only the others bring the context assumptions."""
        name = variant.mechanism
        if applied.error:
            return Obligation(Check.PLAN, name, None, False, detail=f"{setup}: {applied.error}")
        v = self.v
        groups: dict[tuple[int, int], tuple[Any, list[int]]] = {}
        by_constraint: dict[tuple[str, int], tuple[Any, list[int]]] = {}
        ops = list(ops)
        lemmas: set[str] = set()
        for op in ops:
            plan_allows, policy_allows, reads_ctx, lemma = self._sides(applied, op)
            lemmas.update(lemma)
            if plan_allows.eq(policy_allows):
                continue
            key = (plan_allows.get_id(), policy_allows.get_id()) if not reads_ctx else (op, -1)
            groups.setdefault(key, (z3.Xor(plan_allows, policy_allows), []))[1].append(op)
            for ident, c in self.assumed(op, profile, request=True, context=reads_ctx):
                by_constraint.setdefault((ident, c.get_id()), (c, []))[1].append(op)
        if not groups:
            return Obligation(Check.PLAN, name, None, True, _ordered(lemmas), detail=setup)

        every = set(ops)

        def among(some: list[int]) -> Any:
            """The opcode variable is one of ``some`` (within ``ops``, which the query already requires)."""
            return _TRUE if set(some) == every else _any([v.op == op for op in some])

        mismatch = _any([_all([among(some), differ]) for differ, some in groups.values()])
        by_id: dict[str, list[Any]] = {}
        for (ident, _), (c, some) in by_constraint.items():
            by_id.setdefault(ident, []).append(z3.Implies(among(some), c))
        answer = self.solver.differ(_all([_any([v.op == op for op in ops]), mismatch]), _FALSE,
                                    lambda: [(ident, _all(cs)) for ident, cs in by_id.items()])
        if answer.holds is not False:
            return Obligation(Check.PLAN, name, None, answer.holds, _ordered(lemmas | set(answer.used)),
                              setup if answer.holds else f"{setup}: {answer.reason}")
        op = v.value(answer.model, v.op)
        ctx, raw = self._request(applied, op, profile, v.value(answer.model, v.raw), v.ctx(answer.model))
        got = self._concrete_plan(applied, op, raw, ctx)
        wanted_now = semantics.decide(self.policy, op, raw, ctx).allowed
        own = {r.filter.program for r in variant.registrations if r.filter is not None}
        programs = tuple(dict.fromkeys(n.program.source.to_bytes() for n in walk(applied.heads[op])
                                       if n.program is not None and n.program.source.to_bytes() in own))
        example = Counterexample(op, ctx, got, wanted_now, profile.name, raw, programs,
                                 has_context=profile.bpf_filters)
        ob = Obligation(Check.PLAN, name, op, False, detail=setup, counterexample=example)
        broken = assume.violated(ctx, op, profile, raw)
        if got != wanted_now and not broken:
            return ob
        return replace(ob, holds=None, detail=f"{setup}: the solver's counterexample "
                       f"{'breaks ' + ', '.join(broken) if broken else 'does not reproduce concretely'}: a prover bug")

    def _request(self, applied: Applied, op: int, profile: KernelProfile, raw: int, ctx: bytes) -> tuple[bytes, int]:
        """The counterexample's request made whole: where neither side read the context, the query left it
        unconstrained, so solve again for ``op`` alone under every assumption, preferring no flags at all."""
        v = self.v
        plan_allows, policy_allows, _, _ = self._sides(applied, op)
        facts = [z3.Xor(plan_allows, policy_allows), v.op == op,
                 *(c for _, c in self.assumed(op, profile, request=True))]
        for preferred in (v.raw == 0, v.raw == raw):
            s = z3.SolverFor("QF_BV")
            s.add(*facts, preferred)
            if s.check() == z3.sat:
                return v.ctx(s.model()), v.value(s.model(), v.raw)
        return ctx, raw

    def _chain(self, head: FilterNode | None) -> Any:
        """Every program of the opcode's chain allows; a DENY_REST marker anywhere denies; no chain allows."""
        if head is None:
            return _TRUE
        found = self._chains.get(id(head))
        if found is None or found[0] is not head:
            parts = []
            for node in walk(head):
                if node.program is None:
                    parts = [_FALSE]
                    break
                parts.append(_allows(self.term(node.program)[0]))
            found = self._chains[id(head)] = (head, _all(parts))
        return found[1]

    @staticmethod
    def _concrete_plan(applied: Applied, op: int, raw: int, ctx: bytes) -> bool:
        if applied.classic is not None and sqe_denial(applied.classic, op, raw) is not None:
            return False
        return run_chain(applied.heads[op], ctx, detail=False).allowed

    def register_check(self, variant: Variant, applied: Applied) -> Obligation:
        if applied.error:
            return Obligation(Check.REGISTER, variant.mechanism, None, False, detail=applied.error)
        wrong = [r for r in range(self.profile.register_last)
                 if (applied.register_op is None or bool(applied.register_op >> r & 1))
                 != semantics.register_allowed(self.policy, r)]
        detail = f"register opcodes {wrong} differ from [register]" if wrong else ""
        return Obligation(Check.REGISTER, variant.mechanism, None, not wrong, detail=detail)

    def variant(self, variant: Variant) -> list[Obligation]:
        """Every obligation of one variant. A filters-only variant is applied to a kernel with one opcode more
        than the target (the same heads for the target's opcodes, plus one a newer kernel would add), and again
        by a task whose parent filtered every opcode."""
        out: list[Obligation] = []
        for reg in variant.registrations:
            if reg.filter is not None:
                out += self.program(variant.mechanism, reg.filter)
        known = range(self.profile.op_last)
        target = self.plan.target
        if variant.mechanism != "filters":
            fresh = apply_variant(variant, target, self.profile, inherited=False)
            out.append(self.plan_check(variant, fresh, "fresh task", self.profile, known))
        else:
            newer = replace(self.profile, name=f"{self.profile.name} with one more opcode",
                            op_last=self.profile.op_last + 1)
            fresh = apply_variant(variant, target, newer, inherited=False)
            out.append(self.plan_check(variant, fresh, "fresh task", self.profile, known))
            out.append(self.plan_check(variant, apply_variant(variant, target, self.profile, inherited=True),
                                       "inherited filters", self.profile, known))
            out.append(self.plan_check(variant, fresh, "a newer kernel's opcode", newer, [self.profile.op_last]))
        out.append(self.register_check(variant, fresh))
        return out


# -- differences between two sides ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Side:
    """One side of a ``diff``: a Plan variant as the model applies it, or one program attached to ``opcode``
    (which says nothing about other opcodes: they are left out of the comparison)."""

    label: str
    applied: Applied | None = None
    program: CheckedProgram | None = None
    opcode: int | None = None

    def allows(self, op: int, raw: int, ctx: bytes) -> bool:
        """The side's concrete verdict (the model's classic check, then the interpreter on the filter chain)."""
        if self.program is not None:
            return run(self.program, ctx).allowed
        assert self.applied is not None
        return _Prover._concrete_plan(self.applied, op, raw, ctx)


@dataclass(frozen=True, slots=True)
class Difference:
    """A request on which the two sides disagree: ``witness`` holds the context, the submitted flags and each
    side's verdict, replayed concretely; ``register`` is set instead for a register opcode."""

    opcode: int
    witness: Counterexample | None = None
    register: bool = False
    a_allows: bool = False
    b_allows: bool = False


class _Differ:
    def __init__(self, profile: KernelProfile, timeout_ms: int) -> None:
        self.profile = profile
        self.timeout_ms = timeout_ms
        self.v = _Vars.fresh()
        self.terms = _AssumptionTerms(self.v)
        self._programs: dict[bytes, Any] = {}
        self._chains: dict[int, Any] = {}

    def _term(self, checked: CheckedProgram) -> Any:
        key = checked.source.to_bytes()
        found = self._programs.get(key)
        if found is None:
            found = self._programs[key] = _allows(symbolic_result(checked, _BpfAlgebra(self.v.words)))
        return found

    def formula(self, side: Side, op: int) -> Any:
        """What ``side`` allows for requests of ``op``: a formula over the submitted flags and the context."""
        if side.program is not None:
            return self._term(side.program)
        assert side.applied is not None
        classic = side.applied.classic
        if classic is None:
            allowed = _TRUE
        elif classic.sqe_op >> op & 1:
            allowed = _flags_check(self.v.raw, classic.flags_allowed & 0xFF, classic.flags_required & 0xFF)
        else:
            allowed = _FALSE
        head = side.applied.heads[op]
        parts = []
        for node in walk(head) if head is not None else ():
            if node.program is None:
                parts = [_FALSE]
                break
            parts.append(self._term(node.program))
        return _all([allowed, *parts])

    def witness(self, op: int, a: Any, b: Any, widening_only: bool) -> tuple[int, bytes] | str | None:
        """A request (flags, context) the kernel can build on which ``a`` and ``b`` differ (``widening_only``: ``b``
        allows and ``a`` denies), preferring no flags; None when there is none, a reason when the solver gave up."""
        question = _all([b, _not(a)]) if widening_only else z3.Xor(a, b)
        if question is _FALSE or (not widening_only and a is b):
            return None
        s = z3.SolverFor("QF_BV")
        s.set("timeout", self.timeout_ms)
        s.add(question)
        for a_ in assume.concerning(op, self.profile, request=True):
            s.add(a_.constraint(self.terms, op, self.profile))
        s.push()
        s.add(self.v.raw == 0)
        verdict = s.check()
        if verdict != z3.sat:
            s.pop()
            verdict = s.check()
        if verdict == z3.unsat:
            return None
        if verdict == z3.unknown:
            return str(s.reason_unknown())
        model = s.model()
        return self.v.value(model, self.v.raw), self.v.ctx(model)


def differences(a: Side, b: Side, profile: KernelProfile, *, widening_only: bool = False,
                timeout_ms: int = DEFAULT_TIMEOUT_MS) -> tuple[Difference, ...]:
    """Every opcode (and register opcode) whose verdict differs between ``a`` and ``b``, each with a witness the
    kernel can build, confirmed by replaying it concretely on both sides; with ``widening_only``, only what
    ``b`` allows and ``a`` denies. Raises :class:`~ringfence.errors.ProofError` if the solver gives up or a
    witness does not reproduce (a prover bug, never reported as a difference)."""
    from ringfence.errors import ProofError

    d = _Differ(profile, timeout_ms)
    ops = [op for op in range(profile.op_last)
           if all(s.opcode is None or s.opcode == op for s in (a, b))]
    out: list[Difference] = []
    for op in ops:
        fa, fb = d.formula(a, op), d.formula(b, op)
        found = d.witness(op, fa, fb, widening_only)
        if found is None:
            continue
        if isinstance(found, str):
            raise ProofError(f"the solver gave up on {op_name(op)}: {found}")
        raw, ctx = found
        got_a, got_b = a.allows(op, raw, ctx), b.allows(op, raw, ctx)
        if got_a == got_b or assume.violated(ctx, op, profile, raw):
            raise ProofError(f"the witness for {op_name(op)} does not reproduce concretely: a prover bug")
        programs = tuple(dict.fromkeys(p for s in (a, b) for p in _programs_of(s, op)))
        example = Counterexample(op, ctx, got_a, got_b, profile.name, raw, programs, sides=(a.label, b.label),
                                 has_context=profile.bpf_filters)
        out.append(Difference(op, example, a_allows=got_a, b_allows=got_b))
    if a.applied is not None and b.applied is not None:
        for r in range(profile.register_last):
            ra = a.applied.register_op is None or bool(a.applied.register_op >> r & 1)
            rb = b.applied.register_op is None or bool(b.applied.register_op >> r & 1)
            if ra != rb and (rb or not widening_only):
                out.append(Difference(r, register=True, a_allows=ra, b_allows=rb))
    return tuple(out)


def _programs_of(side: Side, op: int) -> tuple[bytes, ...]:
    if side.program is not None:
        return (side.program.source.to_bytes(),)
    assert side.applied is not None
    head = side.applied.heads[op]
    return tuple(n.program.source.to_bytes() for n in (walk(head) if head is not None else ())
                 if n.program is not None)


def prove_plan(plan: Plan, policy: Policy, profile: KernelProfile, *,
               timeout_ms: int = DEFAULT_TIMEOUT_MS) -> ProofReport:
    """Prove every variant of ``plan`` against ``policy`` on ``profile``; the report says what held."""
    start = time.perf_counter()
    prover = _Prover(plan, policy, profile, timeout_ms)
    obligations = [o for variant in plan.variants for o in prover.variant(variant)]
    return ProofReport(tuple(obligations), time.perf_counter() - start, SOLVER)


def prove(compiled: Compiled, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> ProofReport:
    """:func:`prove_plan` for a compilation (only its Plan's bytes are read, never its formulas or programs)."""
    return prove_plan(compiled.plan, compiled.policy, compiled.profile, timeout_ms=timeout_ms)


def attach(compiled: Compiled, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Compiled:
    """What ``ringfence compile --prove`` calls: the compilation with its Plan's ``proof`` filled in; raises
    :class:`~ringfence.policy.evidence.NotProvenError` (with the report) unless every obligation holds."""
    report = prove(compiled, timeout_ms=timeout_ms)
    if report.result != "proven":
        raise NotProvenError(report)
    return replace(compiled, plan=replace(compiled.plan, proof=report.proof()))


__all__ = ["DEFAULT_TIMEOUT_MS", "SOLVER", "Difference", "Side", "attach", "differences", "prove", "prove_plan"]
