"""``ringfence explain``: what a filter program allows, read back from its bytes, in the policy language's terms.

The program is executed symbolically (:mod:`ringfence.policy.lift`: a decision diagram over tests on views of
context words); every path to a return is a conjunction of tests. Bits the kernel fixes (the opcode and
pdu_size bytes, padding, the payload of an opcode without one) decide some tests outright, so those branches
are cut. Each remaining test is translated into a rule predicate where the language can say it exactly
(``connect.port = 80``, ``open.flags = { none = [...] }``, an address prefix on a path that fixes the family);
where it cannot, the path stays a plain condition on a context word.

The explanation is checkable: :func:`explained_policy` is a policy that says it, :func:`compile_back` turns it
(or, outside the language, the word conditions) into a program again, and the prover shows both programs give
the same verdict on every context the kernel can build (``ringfence explain`` does this unless told not to).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ringfence.abi.constants import AF
from ringfence.abi.opcodes import SqeOp, op_name
from ringfence.abi.profiles import KernelProfile
from ringfence.bpf.insn import JEQ, JGE, JGT, JSET, Program
from ringfence.policy.ast import (
    Action,
    BitMode,
    Bits,
    InNetworks,
    Masked,
    NoneOf,
    OneOf,
    Policy,
    Predicate,
    Range,
    Rule,
)
from ringfence.policy.ast import Test as PolicyTest
from ringfence.policy.fields import FIELDS, SOCK_TYPE_MASK, Kind
from ringfence.policy.ir import FALSE, TRUE, Atom, Cmp, Formula, Operand, conj, disj
from ringfence.policy.lift import Branch, Leaf, Node, lift
from ringfence.policy.partition import Test, View

U32: Final = 0xFFFFFFFF
PAYLOAD: Final = 16
#: Beyond this many paths an explanation would not be read: the command says so instead.
PATH_LIMIT: Final = 512
_CONNECT: Final = int(SqeOp.CONNECT)
_SOCKET: Final = int(SqeOp.SOCKET)
_AF_INET: Final = AF["AF_INET"]
_AF_INET6: Final = AF["AF_INET6"]
_PORT_VIEW: Final = View.of_operand(Operand(20, U32, swap16=True))
_PORT_VIEW16: Final = View.of_operand(Operand(20, 0xFFFF, swap16=True))


class ExplainError(Exception):
    """The program cannot be explained as paths of tests (it computes, or has too many paths)."""


@dataclass(frozen=True, slots=True)
class Cond:
    """One test on a path and whether it holds there."""

    test: Test
    holds: bool

    def render(self) -> str:
        t = self.test
        view = f"word {t.offset}" if t.view.is_word else (
            f"word {t.offset} & {t.view.mask:#x}" if t.view.mask is not None else f"a view of word {t.offset}")
        op = {JEQ: ("=", "!="), JGT: (">", "<="), JGE: (">=", "<"), JSET: ("has bits of", "has no bits of")}[t.op]
        return f"{view} {op[0] if self.holds else op[1]} {t.k:#x}"


@dataclass(frozen=True, slots=True)
class Path:
    conds: tuple[Cond, ...]
    allows: bool


def known_bits(op: int, profile: KernelProfile) -> dict[int, tuple[int, int]]:
    """Context bits the kernel fixes for ``op`` on ``profile`` (word offset -> (mask, value)): the assumptions
    ``ctx.opcode``, ``ctx.flags-7bit``, ``ctx.pdu-size``, ``ctx.pad-zero``, ``ctx.no-payload-zero``,
    ``socket.tail-zero`` and ``connect.pad-zero`` of :mod:`ringfence.policy.assumptions`."""
    pdu = profile.pdu_size(op)
    out = {8: (0xFFFF80FF, op | pdu << 16), 12: (U32, 0)}
    if pdu == 0:
        out.update({w: (U32, 0) for w in range(16, 40, 4)})
    if op == _SOCKET:
        out.update({w: (U32, 0) for w in (28, 32, 36)})
    if op == _CONNECT and pdu:
        out[20] = (0xFFFF0000, 0)
    return out


def paths(program: Program, op: int, profile: KernelProfile) -> tuple[Path, ...]:
    """Every path of the program's decision diagram that the kernel's fixed bits leave possible."""
    from ringfence.policy.lift import LiftError

    try:
        root = lift(program).root
    except LiftError as e:
        raise ExplainError(f"the program is not a decision over context words ({e})") from None
    out: list[Path] = []

    def go(node: Node, known: dict[int, tuple[int, int]], conds: tuple[Cond, ...]) -> None:
        if isinstance(node, Leaf):
            out.append(Path(_essential(conds, base), node.value != 0))
            if len(out) > PATH_LIMIT:
                raise ExplainError(f"more than {PATH_LIMIT} paths")
            return
        assert isinstance(node, Branch)
        t = node.test
        fixed, value = known.get(t.offset, (0, 0))
        status = t.status(fixed, value)
        if status is not None:
            go(node.then if status else node.other, known, conds)
            return
        for holds, child in ((True, node.then), (False, node.other)):
            go(child, _learn(known, t, holds), (*conds, Cond(t, holds)))

    base = known_bits(op, profile)
    go(root, base, ())
    return tuple(out)


def _essential(conds: tuple[Cond, ...], base: dict[int, tuple[int, int]]) -> tuple[Cond, ...]:
    """The path without conditions the others imply (``family != AF_INET`` next to ``family = AF_INET6``)."""
    kept = list(conds)
    for c in conds:
        known = base
        for other in kept:
            if other is not c:
                known = _learn(known, other.test, other.holds)
        fixed, value = known.get(c.test.offset, (0, 0))
        if c.test.status(fixed, value) == c.holds:
            kept.remove(c)
    return tuple(kept)


def _learn(known: dict[int, tuple[int, int]], t: Test, holds: bool) -> dict[int, tuple[int, int]]:
    """What a test's outcome fixes about its word (equalities and single bits on plainly masked views)."""
    m = t.view.mask
    if m is None:
        return known
    fixed, value = known.get(t.offset, (0, 0))
    if t.op == JEQ and holds:
        fixed, value = fixed | m, (value & ~m) | (t.k & m)
    elif t.op == JSET and not holds:
        fixed, value = fixed | (m & t.k), value & ~(m & t.k)
    elif t.op in (JGT, JGE) and not holds and m == U32 and t.k == (0 if t.op == JGT else 1):
        fixed, value = U32, 0  # word <= 0
    elif t.op == JEQ and not holds and bin(m).count("1") == 1:
        fixed, value = fixed | m, (value & ~m) | (~t.k & m)
    elif t.op == JSET and holds and bin(m & t.k).count("1") == 1:
        fixed, value = fixed | (m & t.k), value | (m & t.k)
    else:
        return known
    return {**known, t.offset: (fixed, value)}


# -- tests into predicates ---------------------------------------------------------------------------------------

def _swap16(v: int) -> int:
    return ((v & 0xFF) << 8) | ((v >> 8) & 0xFF)


def _port(c: Cond) -> PolicyTest | None:
    t, view = c.test, c.test.view
    if view.sources in (_PORT_VIEW.sources, _PORT_VIEW16.sources):  # A holds the port in host order
        k = t.k
        if t.op == JEQ:
            return OneOf((k,)) if c.holds else NoneOf((k,))
        if t.op in (JGT, JGE):
            lo = k + 1 if t.op == JGT else k
            return (Range(lo, 0xFFFF) if lo <= 0xFFFF else None) if c.holds else (Range(0, lo - 1) if lo else None)
        return Bits(BitMode.ANY if c.holds else BitMode.NONE, k & 0xFFFF)
    if view.mask is None:
        return None
    m = _swap16(view.mask & 0xFFFF)
    k = _swap16(t.k & 0xFFFF)
    return _masked_test(t.op, c.holds, m, k, 0xFFFF, numeric=True)


def _masked_test(op: int, holds: bool, m: int, k: int, limit: int, *, numeric: bool,
                 kind_mask: int | None = None) -> PolicyTest | None:
    """A test on ``field & m`` (field bits), for a field whose values run to ``limit``."""
    full = m == limit
    exact = numeric and (full or (kind_mask is not None and m == kind_mask))
    if op == JEQ:
        if holds:
            if not exact and bin(m).count("1") == 1:
                return Bits(BitMode.NONE, m) if k == 0 else Bits(BitMode.ALL, m)
            return OneOf((k,)) if exact else Masked(m, k)
        if exact:
            return NoneOf((k,))
        if bin(m).count("1") == 1:
            return Bits(BitMode.ANY, m) if k == 0 else Bits(BitMode.NONE, m)
        return None
    if op == JSET:
        if holds and bin(m & k).count("1") == 1:
            return Bits(BitMode.ALL, m & k)
        return Bits(BitMode.ANY if holds else BitMode.NONE, m & k)
    if not full or not numeric:
        return None
    lo = k + 1 if op == JGT else k
    if holds:
        return Range(lo, limit) if lo <= limit else None
    return Range(0, lo - 1) if lo else None


def _wide_range(c: Cond, field: str, start: int, limit: int,
                known: dict[int, tuple[int, int]]) -> tuple[str, PolicyTest] | None:
    """An order test on one word of an 8-byte field as a range of the field: on its high word always; on its
    low word when the path fixes the high word."""
    t = c.test
    lo = t.k + 1 if t.op == JGT else t.k  # the word is >= lo when the test holds
    if t.offset == start + 4:
        cut = lo << 32
        if c.holds:
            return (field, Range(cut, limit)) if lo <= U32 else None
        return (field, Range(0, cut - 1)) if lo else None
    fixed, value = known.get(start + 4, (0, 0))
    if fixed != U32:
        return None
    base = value << 32
    if c.holds:
        return (field, Range(base | lo, base | U32)) if lo <= U32 else None
    return (field, Range(base, base | (lo - 1))) if lo else None


def _field_test(c: Cond, op: int, known: dict[int, tuple[int, int]] | None = None) -> tuple[str, PolicyTest] | None:
    """One condition as (field, test), when a field of ``op``'s context says it exactly."""
    t = c.test
    off = t.offset
    known = known or {}
    if op == _CONNECT and off == 20:
        found = _port(c)
        return None if found is None else ("connect.port", found)
    m = t.view.mask
    if m is None:
        return None
    for f in FIELDS.values():
        if not f.carried_by(op) or f.kind in (Kind.PORT, Kind.ADDRESS):
            continue
        used = [off + i for i in range(4) if m >> (8 * i) & 0xFF]
        if not used or not all(f.offset <= b < f.offset + f.size for b in used):
            continue
        shift = 8 * (off - f.offset)  # word bit b is field bit b + shift
        fm = (m << shift) if shift >= 0 else (m >> -shift)
        fk = (t.k << shift) if shift >= 0 else (t.k >> -shift)
        single_word = f.size <= 4
        if not single_word and m == U32 and t.op in (JGT, JGE):
            return _wide_range(c, f.name, f.offset, f.limit, known)
        if not single_word and m == U32 and t.op == JEQ and not c.holds:
            other = f.offset + 4 if off == f.offset else f.offset
            ofixed, ovalue = known.get(other, (0, 0))
            if ofixed == U32:  # the path fixes the other half: the whole value is known but for this word
                lo, hi = (t.k, ovalue) if off == f.offset else (ovalue, t.k)
                return f.name, NoneOf((hi << 32 | lo,))
        if f.kind is Kind.SOCKET_TYPE:  # OneOf means "the kind matches": exact only on the kind's own bits
            if t.op == JEQ and fm == SOCK_TYPE_MASK:
                test: PolicyTest | None = OneOf((fk,)) if c.holds else NoneOf((fk,))
            else:
                test = _masked_test(t.op, c.holds, fm, fk, f.limit, numeric=t.op in (JGT, JGE))
        else:
            test = _masked_test(t.op, c.holds, fm, fk, f.limit, numeric=single_word)
        return None if test is None else (f.name, test)
    return None


def _prefix_len(mask_le: int) -> int | None:
    """The prefix length of a word mask over network-order bytes (None if it is not a prefix)."""
    be = int.from_bytes(mask_le.to_bytes(4, "little"), "big")
    n = bin(be).count("1")
    return n if be == (U32 << (32 - n)) & U32 else None


def _addresses(conds: Sequence[Cond], family: int | None) -> list[PolicyTest] | None:
    """Address conditions (words 24-36 of CONNECT) as network tests; the path must fix the family."""
    if not conds:
        return []
    if family not in (_AF_INET, _AF_INET6):
        return None
    words = (24,) if family == _AF_INET else (24, 28, 32, 36)
    pos: dict[int, Cond] = {}
    out: list[PolicyTest] = []
    for c in conds:
        if c.test.op != JEQ or c.test.view.mask is None or c.test.offset not in words:
            return None
        if c.holds:
            if c.test.offset in pos:
                return None
            pos[c.test.offset] = c
    prefix_words = []
    for w in words:
        if w not in pos:
            break
        prefix_words.append(pos[w])
        if pos[w].test.view.mask != U32:
            break
    if len(prefix_words) != len(pos):
        return None

    def network(ws: Sequence[Cond]) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        bits = 0
        packed = b""
        for i, c in enumerate(ws):
            m = c.test.view.mask
            assert m is not None
            n = _prefix_len(m)
            if n is None or (n < 32 and i != len(ws) - 1):
                return None
            bits += n
            packed += (c.test.k & m).to_bytes(4, "little")
        packed += bytes((4 if family == _AF_INET else 16) - len(packed))
        addr = ipaddress.ip_address(packed)
        return ipaddress.ip_network(f"{addr}/{bits}")

    if pos:
        net = network(prefix_words)
        if net is None:
            return None
        out.append(InNetworks((net,)))
    for c in conds:
        if c.holds:
            continue
        before = [pos[w] for w in words if w < c.test.offset]
        if len(before) != words.index(c.test.offset) or any(b.test.view.mask != U32 for b in before):
            return None
        net = network([*before, c])
        if net is None:
            return None
        out.append(InNetworks((net,), negate=True))
    return out


def predicates(path: Path, op: int, base: dict[int, tuple[int, int]] | None = None) -> tuple[Predicate, ...] | None:
    """The path's conditions as rule predicates (one per field), or None where the language cannot say one."""
    known = dict(base or {})
    for c in path.conds:
        known = _learn(known, c.test, c.holds)
    addr = [c for c in path.conds if op == _CONNECT and c.test.offset >= 24]
    family = next((c.test.k for c in path.conds if op == _CONNECT and c.holds and c.test.op == JEQ
                   and c.test.offset == 16 and c.test.view.is_word), None)
    tests: dict[str, list[PolicyTest]] = {}
    for c in path.conds:
        if c in addr:
            continue
        found = _field_test(c, op, known)
        if found is None:
            return None
        tests.setdefault(found[0], []).append(found[1])
    nets = _addresses(addr, family)
    if nets is None:
        return None
    if nets:
        tests["connect.addr"] = nets
    return tuple(Predicate(name, tuple(_whole(name, t) for t in _merged(ts))) for name, ts in tests.items())


def _whole(name: str, t: PolicyTest) -> PolicyTest:
    """A mask over every bit of a plain field is an equality."""
    f = FIELDS[name]
    if isinstance(t, Masked) and t.mask == f.limit and f.kind in (Kind.NUMBER, Kind.BITS):
        return OneOf((t.value,))
    return t


def _merged(tests: Sequence[PolicyTest]) -> tuple[PolicyTest, ...]:
    """Tests on one field, same kinds combined (ranges intersected, exclusions joined), so that a rule can write
    the field once: one key per kind in one table."""
    out: list[PolicyTest] = []
    for t in tests:
        for i, o in enumerate(out):
            joined: PolicyTest | None = None
            if isinstance(t, Range) and isinstance(o, Range):
                joined = Range(max(t.lo, o.lo), min(t.hi, o.hi))
            elif isinstance(t, NoneOf) and isinstance(o, NoneOf):
                joined = NoneOf(tuple(dict.fromkeys(o.values + t.values)))
            elif isinstance(t, Bits) and isinstance(o, Bits) and t.mode is o.mode and t.mode is not BitMode.ANY:
                joined = Bits(t.mode, t.mask | o.mask)
            elif isinstance(t, Masked) and isinstance(o, Masked) and t.value & o.mask == o.value & t.mask:
                joined = Masked(t.mask | o.mask, t.value | o.value)
            elif isinstance(t, InNetworks) and isinstance(o, InNetworks) and t.negate and o.negate:
                joined = InNetworks(o.networks + t.networks, negate=True)
            if joined is not None:
                out[i] = joined
                break
        else:
            out.append(t)
    return tuple(out)


# -- the explanation ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Explanation:
    """What one opcode's program allows. ``action``: the paths listed are the ones that ``allow`` (the rest deny)
    or ``deny`` (the rest allow). ``rules`` are their predicates when every path is in the language (else None,
    and ``paths`` are plain word conditions)."""

    opcode: int
    action: Action
    paths: tuple[Path, ...]
    rules: tuple[tuple[Predicate, ...], ...] | None
    always: bool | None = None  # the program's verdict does not depend on the context

    @property
    def in_language(self) -> bool:
        return self.rules is not None


def explain_program(program: Program, op: int, profile: KernelProfile) -> Explanation:
    every = paths(program, op, profile)
    verdicts = {p.allows for p in every}
    if len(verdicts) == 1:
        return Explanation(op, Action.ALLOW, (), (), always=verdicts.pop())
    base = known_bits(op, profile)
    best: Explanation | None = None
    for action in (Action.ALLOW, Action.DENY):
        chosen: list[Path] = []
        rules: list[tuple[Predicate, ...]] | None = []
        for p in every:
            if p.allows != (action is Action.ALLOW):
                continue
            preds = predicates(p, op, base)
            if preds is not None:
                chosen.append(p)
                if rules is not None:
                    rules.append(preds)
                continue
            alternatives = _split(p, base)
            said = [predicates(a, op, base) for a in alternatives]
            if alternatives and all(x is not None for x in said):
                chosen += alternatives
                if rules is not None:
                    rules += [x for x in said if x is not None]
            else:
                chosen.append(p)
                rules = None
        cand = Explanation(op, action, tuple(chosen), None if rules is None else tuple(rules))
        if best is None or (cand.in_language, -len(cand.paths)) > (best.in_language, -len(best.paths)):
            best = cand
    assert best is not None
    return best


def _split(path: Path, base: dict[int, tuple[int, int]], bits_limit: int = 4) -> list[Path]:
    """A path whose negated masked equalities the language cannot say, as paths that together cover it: each
    ``word & m != k`` becomes one alternative per bit of ``m`` (that bit differs from ``k``'s); combinations
    the other conditions contradict are dropped, and conditions they imply are left out."""
    choices: list[list[Cond]] = []
    for c in path.conds:
        m = c.test.view.mask
        if c.test.op == JEQ and not c.holds and m is not None and 1 < bin(m).count("1") <= bits_limit:
            bits = [1 << i for i in range(32) if m >> i & 1]
            choices.append([Cond(Test(View.word(c.test.offset, b), JEQ, c.test.k & b), False) for b in bits])
        else:
            choices.append([c])
    combos: list[tuple[Cond, ...]] = [()]
    for options in choices:
        combos = [(*combo, o) for combo in combos for o in options]
        if len(combos) > PATH_LIMIT:
            return []
    out: list[Path] = []
    for combo in combos:
        if _contradicts(combo, base):
            continue
        out.append(Path(_essential(combo, base), path.allows))
    return out


def _contradicts(conds: Sequence[Cond], base: dict[int, tuple[int, int]]) -> bool:
    for c in conds:
        known = base
        for other in conds:
            if other is not c:
                known = _learn(known, other.test, other.holds)
        fixed, value = known.get(c.test.offset, (0, 0))
        if c.test.status(fixed, value) == (not c.holds):
            return True
    return False


def _zero_family_ok(path: Path) -> bool:
    """The path's payload conditions hold on a CONNECT context with family 0 (whose payload is all zero)."""
    return all(c.test.holds(0) == c.holds for c in path.conds if c.test.offset >= PAYLOAD)


def rules_for(e: Explanation) -> tuple[Rule, ...]:
    """Rules that say ``e`` for its opcode (the rest of a policy decides other opcodes)."""
    op = e.opcode
    if e.always is not None:
        return (Rule(Action.ALLOW if e.always else Action.DENY, (op,), reason="every request"),)
    assert e.rules is not None
    if e.action is Action.ALLOW:
        out = [Rule(Action.ALLOW, (op,), preds) for preds in e.rules]
        tests_connect = any(p.field.startswith("connect.") for preds in e.rules for p in preds)
        if op == _CONNECT and tests_connect:  # keep family-0 requests as the program decides them
            for path, preds in zip(e.paths, e.rules, strict=True):
                if _zero_family_ok(path):
                    rest = tuple(p for p in preds if not p.field.startswith("connect."))
                    out.append(Rule(Action.ALLOW, (op,), (*rest, Predicate("connect.family", (OneOf((0,)),))),
                                    reason="family-0 requests, as the program decides them"))
        return tuple(out)
    out = [Rule(Action.DENY, (op,), preds) for preds in e.rules]
    out.append(Rule(Action.ALLOW, (op,), reason="everything else"))
    if op == _CONNECT and any(p.field.startswith("connect.") for preds in e.rules for p in preds):
        out.append(Rule(Action.ALLOW, (op,), (Predicate("connect.family", (OneOf((0,)),)),),
                        reason="family-0 requests are decided by the deny rules alone, as in the program"))
    return tuple(out)


def explained_policy(explanations: Iterable[Explanation], profile: KernelProfile, *, name: str = "explained",
                     default: Action = Action.ALLOW, base: Policy | None = None) -> Policy:
    """A policy whose rules say the explanations (on top of ``base``'s flags, register list and target)."""
    rules = tuple(r for e in explanations for r in rules_for(e))
    if base is not None:
        return Policy(name, rules, default, base.target, profile.version, base.flags, base.register)
    return Policy(name, rules, default, kernel=profile.version)


def word_formula(e: Explanation) -> Formula | None:
    """The explanation as atoms on context words (what a program outside the language compiles back from)."""
    if e.always is not None:
        return TRUE if e.always else FALSE
    terms = []
    for path in e.paths:
        parts: list[Formula] = []
        for c in path.conds:
            v = c.test.view
            if v.mask is not None:
                operand = Operand(c.test.offset, v.mask)
            elif v.sources in (_PORT_VIEW.sources, _PORT_VIEW16.sources):
                operand = Operand(c.test.offset, 0xFFFF if v.sources == _PORT_VIEW16.sources else U32, swap16=True)
            else:
                return None
            cmp = {JEQ: Cmp.EQ, JGT: Cmp.GT, JGE: Cmp.GE, JSET: Cmp.SET}[c.test.op]
            atom: Formula = Atom(operand, cmp, c.test.k)
            parts.append(atom if c.holds else _not(atom))
        terms.append(conj(*parts))
    f = disj(*terms)
    return f if e.action is Action.ALLOW else _not(f)


def _not(f: Formula) -> Formula:
    from ringfence.policy.ir import neg
    return neg(f)


def compile_back(e: Explanation, profile: KernelProfile) -> tuple[Program, str]:
    """A program made from the explanation alone, and how: ``policy`` (the explained rules compiled) or
    ``words`` (the word conditions lowered). Raises :class:`ExplainError` if neither can say it."""
    from ringfence.policy.compile import ALLOW_ALL, DENY_ALL, compile_policy
    from ringfence.policy.lower import lower

    if e.in_language:
        compiled = compile_policy(explained_policy([e], profile), profile)
        if e.opcode in compiled.programs:
            return compiled.programs[e.opcode].built.program, "policy"
        allowed = compiled.decisions[e.opcode] == TRUE
        return Program.from_bytes(ALLOW_ALL if allowed else DENY_ALL), "policy"
    f = word_formula(e)
    if f is None:
        raise ExplainError("a test on a computed view of a word has no atom to compile back to")
    return lower(f).program, "words"


# -- rendering ---------------------------------------------------------------------------------------------------

def _value(field: str, v: int) -> object:
    f = FIELDS[field]
    if f.kind is Kind.BITS and v:
        names = _bit_names(field, v)
        return "|".join(str(n) for n in names) if all(not str(n).startswith("0x") for n in names) else v
    if f.kind in (Kind.NUMBER, Kind.SOCKET_TYPE):
        names = [n for n, x in f.names.items() if x == v and not n.startswith(("IOSQE_",))]
        if len(names) >= 1 and f.kind is Kind.NUMBER:
            return names[0]
        if f.kind is Kind.SOCKET_TYPE and names:
            return names[0]
    return v


def _bit_names(field: str, mask: int) -> list[object]:
    f = FIELDS[field]
    out: list[object] = []
    rest = mask
    for n, x in f.names.items():
        if x and x & (x - 1) == 0 and rest & x and not n.startswith("IOSQE_"):
            out.append(n)
            rest &= ~x
    if rest:
        out.append(hex(rest))
    return out


def test_data(field: str, t: PolicyTest) -> tuple[str, object]:
    """A test as TOML data: (key in an inline table, or "" for a plain value; the value)."""
    if isinstance(t, OneOf):
        vals = [_value(field, v) for v in t.values]
        return "", vals[0] if len(vals) == 1 else vals
    if isinstance(t, NoneOf):
        return "not_in", [_value(field, v) for v in t.values]
    if isinstance(t, Range):
        return "range", [t.lo, t.hi]
    if isinstance(t, Bits):
        return t.mode.value, _bit_names(field, t.mask)
    if isinstance(t, Masked):
        return "mask", (t.mask, t.value)
    assert isinstance(t, InNetworks)
    nets = [str(n) if n.prefixlen != n.max_prefixlen else str(n.network_address) for n in t.networks]
    return ("not_in" if t.negate else ""), (nets[0] if len(nets) == 1 and not t.negate else nets)


def _toml(v: object) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return str(v)


def render_predicate(p: Predicate) -> list[str]:
    """``field = value`` lines (one per test: the loader merges repeated fields' tests only within one table, so
    several tests on one field become one inline table where their keys differ)."""
    parts: dict[str, object] = {}
    plain: list[object] = []
    lines = []
    for t in p.tests:
        key, val = test_data(p.field, t)
        if key == "":
            plain.append(val)
        elif key == "mask":
            assert isinstance(val, tuple)
            if "mask" in parts:
                return [f"{p.field} = <{len(p.tests)} tests>"]
            parts["mask"], parts["equals"] = hex(val[0]), hex(val[1])
        elif key in parts:
            prev = parts[key]
            assert isinstance(prev, list) and isinstance(val, list)
            parts[key] = prev + val
        else:
            parts[key] = val
    inner = ", ".join(f"{k} = {_toml(v) if k not in ('mask', 'equals') else v}" for k, v in parts.items())
    if plain and not parts:
        lines.append(f"{p.field} = {_toml(plain[0])}")
    elif plain:
        lines.append(f"{p.field} = {{ in = {_toml(plain)}, {inner} }}")
    else:
        lines.append(f"{p.field} = {{ {inner} }}")
    return lines


def render_conditions(preds: Sequence[Predicate]) -> str:
    return " and ".join(line for p in preds for line in render_predicate(p)) or "always"


def render_policy_toml(policy: Policy) -> str:
    lines = ["[policy]", f"name = {_toml(policy.name)}", f'kernel = "{policy.kernel[0]}.{policy.kernel[1]}+"',
             f"target = {_toml(policy.target.value)}", f"default = {_toml(policy.default.value)}"]
    if policy.flags is not None:
        from ringfence.abi.opcodes import SqeFlag
        names = [f.name for f in SqeFlag if f & policy.flags.allowed and f.name]
        req = [f.name for f in SqeFlag if f & policy.flags.required and f.name]
        lines += ["", "[flags]", f"allowed = {_toml(names)}"] + ([f"required = {_toml(req)}"] if req else [])
    if policy.register is not None:
        from ringfence.abi.opcodes import RegisterOp
        regs = [RegisterOp(r).name if r < len(RegisterOp) else str(r) for r in sorted(policy.register)]
        lines += ["", "[register]", f"allowed = {_toml(regs)}"]
    for r in policy.rules:
        lines += ["", f"[[{r.action.value}]]"]
        lines.append(f"op = {_toml(op_name(r.ops[0]))}" if len(r.ops) == 1
                     else f"ops = {_toml([op_name(o) for o in r.ops])}")
        for p in r.predicates:
            lines += render_predicate(p)
        if r.reason:
            lines.append(f"reason = {_toml(r.reason)}")
    return "\n".join(lines) + "\n"


__all__ = ["Cond", "ExplainError", "Explanation", "Path", "explain_program", "explained_policy", "known_bits",
           "paths", "predicates", "render_conditions", "render_policy_toml", "rules_for", "word_formula"]
