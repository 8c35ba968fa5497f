"""From counted request shapes to the smallest policy that allows them, generalised by stated rules.

"Exactly what was seen" overfits (a kernel-added flag bit, a ``SOCK_CLOEXEC``), so each shape is first reduced
by the rules in :data:`RULES`; every rule that changed something is named in the policy's comments, and every
rule lists what it dropped. Requests the kernel refused with ``EACCES`` (a sandbox already in place) are never
learned: they are listed as denials instead.
"""

from __future__ import annotations

import ipaddress
import json
import textwrap
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ringfence.abi.constants import O
from ringfence.abi.opcodes import SqeFlag, SqeOp, op_name
from ringfence.learn.seen import CONTEXT_OPS, Shape, from_json
from ringfence.learn.seen import to_json as seen_json
from ringfence.policy.ast import Action, BitMode, Bits, Flags, InNetworks, OneOf, Policy, Predicate, Rule
from ringfence.policy.fields import FIELDS, SOCK_TYPE_MASK
from ringfence.policy.write import dumps as write_policy
from ringfence.policy.write import value_text

#: The rules, by key: what each generalisation does and why.
RULES: dict[str, str] = {
    "kernel-bits": "request-flag bits above the seven IOSQE_* bits are the kernel's own bookkeeping: dropped",
    "forced-async": "IOSQE_ASYNC on an OPENAT/OPENAT2 with O_CREAT, O_TRUNC or O_TMPFILE is set by the kernel "
                    "(it forces those opens async): not counted as a flag the program sets",
    "largefile": "O_LARGEFILE is added by the kernel to every open: not pinned",
    "open-subset": "an open rule allows the flags seen and any subset of them; O_CLOEXEC is never pinned, every "
                   "other O_* flag not seen is refused",
    "open-mode": "open.mode is pinned to the mode seen for creating opens; other opens report 0 and are not tested",
    "sock-flags": "SOCK_CLOEXEC and SOCK_NONBLOCK are not pinned: socket.type compares the socket kind",
    "user-data": "user_data is never pinned (the submitter chooses it); a filter context carries no source port, "
                 "so none is pinned",
    "exact-connect": "CONNECT destinations (family, address, port) are pinned as seen; --widen v4=/24 or "
                     "v6=/64 widens addresses to prefixes",
    "widen": "CONNECT addresses widened to prefixes as asked",
    "denied": "requests the kernel refused with EACCES (a sandbox already in place) are not learned",
    "prep-failed": "requests of an opcode with a filter context that failed before the context was built (a prep "
                   "error) are not learned: no filter saw their arguments",
    "open-args": "this kernel offered only the io_uring tracepoints: argument predicates are left open (SOCKET, "
                 "OPENAT, OPENAT2 and CONNECT are allowed with any arguments)",
    "connect-args": "this kernel builds no CONNECT context (before 7.2): CONNECT arguments are left open",
}

DATA_PREFIX = "learn-data: "
MODES = ("tracepoints", "no-connect", "full")  # weakest first: a merge keeps the weaker

_FORCING = O["O_CREAT"] | O["O_TRUNC"] | O["__O_TMPFILE"]
_NEVER_PINNED_OPEN = O["O_LARGEFILE"] | O["O_CLOEXEC"]


@dataclass(frozen=True, slots=True)
class Options:
    """``widen``: prefix lengths for CONNECT addresses by version (4 or 6); ``mode``: ``full`` when filter
    contexts were observed, ``tracepoints`` when only the io_uring tracepoints were, ``no-connect`` when the kernel
    builds no CONNECT context."""

    name: str = "learned"
    widen: Mapping[int, int] = field(default_factory=dict)
    mode: str = "full"
    runs: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Learned:
    policy: Policy
    text: str
    rules_used: tuple[str, ...]
    denied: tuple[tuple[Shape, int], ...]
    not_learned: tuple[tuple[Shape, int], ...]


def describe(shape: Shape) -> str:
    """A request shape in words: ``SOCKET AF_INET, SOCK_STREAM|SOCK_CLOEXEC, protocol 0``."""
    parts = [op_name(shape.opcode)]
    ctx = dict(shape.ctx)
    kind = CONTEXT_OPS.get(shape.opcode)
    if kind == "socket" and ctx:
        parts.append(f"{value_text(FIELDS['socket.family'], int(ctx['socket.family']))}, "
                     f"{value_text(FIELDS['socket.type'], int(ctx['socket.type']))}, protocol {ctx['socket.protocol']}")
    elif kind == "open" and ctx:
        text = f"flags {value_text(FIELDS['open.flags'], int(ctx['open.flags']))}"
        if int(ctx["open.mode"]):
            text += f", mode {int(ctx['open.mode']):#o}"
        if int(ctx["open.resolve"]):
            text += f", resolve {value_text(FIELDS['open.resolve'], int(ctx['open.resolve']))}"
        parts.append(text)
    elif kind == "connect" and ctx:
        family = int(ctx["connect.family"])
        text = str(value_text(FIELDS["connect.family"], family))
        address = _address(family, str(ctx["connect.addr"]))
        if address is not None:
            text += f" {address} port {ctx['connect.port']}"
        parts.append(text)
    if shape.flags:
        parts.append("flags " + "|".join(f.name or "" for f in SqeFlag if shape.flags & f))
    return " ".join(parts)


def _address(family: int, hexed: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    raw = bytes.fromhex(hexed)
    if family == 2:
        return ipaddress.IPv4Address(raw[:4])
    if family == 10:
        return ipaddress.IPv6Address(raw[:16])
    return None


def _flags_of(shape: Shape, used: set[str]) -> int:
    flags = shape.flags
    if CONTEXT_OPS.get(shape.opcode) == "open" and shape.ctx and int(shape.field("open.flags")) & _FORCING \
            and flags & SqeFlag.ASYNC:
        used.add("forced-async")
        flags &= ~SqeFlag.ASYNC
    return flags


def _open_key(shape: Shape, used: set[str]) -> tuple[tuple[str, int], ...]:
    flags = int(shape.field("open.flags"))
    if flags & O["O_LARGEFILE"]:
        used.add("largefile")
    used.add("open-subset")
    key = [("open.flags", flags & ~_NEVER_PINNED_OPEN)]
    if flags & _FORCING & ~O["O_TRUNC"]:  # O_CREAT or O_TMPFILE: the mode means something
        used.add("open-mode")
        key.append(("open.mode", int(shape.field("open.mode"))))
    if shape.opcode == SqeOp.OPENAT2 and int(shape.field("open.resolve")):
        key.append(("open.resolve", int(shape.field("open.resolve"))))
    return tuple(key)


def _socket_key(shape: Shape, used: set[str]) -> tuple[tuple[str, int], ...]:
    type_ = int(shape.field("socket.type"))
    if type_ & ~SOCK_TYPE_MASK:
        used.add("sock-flags")
    return (("socket.family", int(shape.field("socket.family"))), ("socket.type", type_ & SOCK_TYPE_MASK),
            ("socket.protocol", int(shape.field("socket.protocol"))))


def _connect_key(shape: Shape, options: Options, used: set[str]) -> tuple[tuple[str, int | str], ...]:
    family = int(shape.field("connect.family"))
    address = _address(family, str(shape.field("connect.addr")))
    if address is None:
        return (("connect.family", family),)
    bits = options.widen.get(address.version)
    if bits is not None:
        used.add("widen")
        network = ipaddress.ip_network(f"{address}/{bits}", strict=False)
    else:
        used.add("exact-connect")
        network = ipaddress.ip_network(address)
    port = int(shape.field("connect.port"))
    return (("connect.family", family), ("connect.addr", str(network)), ("connect.port", port))


def _predicates(key: tuple[tuple[str, int | str], ...]) -> tuple[Predicate, ...]:
    out = []
    for name, value in key:
        if name == "open.flags":
            assert isinstance(value, int)
            known = 0
            for v in O.values():
                if v and not v & (v - 1):
                    known |= v
            refused = known & ~value & ~_NEVER_PINNED_OPEN
            out.append(Predicate(name, (Bits(BitMode.NONE, refused),)))
        elif name == "open.resolve":
            assert isinstance(value, int)
            out.append(Predicate(name, (Bits(BitMode.ALL, value),)))
        elif name == "connect.addr":
            out.append(Predicate(name, (InNetworks((ipaddress.ip_network(str(value)),)),)))
        else:
            assert isinstance(value, int)
            out.append(Predicate(name, (OneOf((value,)),)))
    return tuple(out)


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _outcomes(shapes: Mapping[Shape, int]) -> str:
    bad: Counter[str] = Counter()
    for s, n in shapes.items():
        if s.outcome != "ok":
            bad[s.outcome] += n
    return "" if not bad else " (" + ", ".join(f"{_times(n)} {e}" for e, n in sorted(bad.items())) + ")"


def generalise(counts: Mapping[Shape, int], options: Options) -> Learned:
    """The policy that allows what ``counts`` holds, generalised by :data:`RULES`, with its file text."""
    used: set[str] = {"kernel-bits", "user-data"}
    denied: Counter[Shape] = Counter()
    skipped: Counter[Shape] = Counter()
    flags = 0
    plain: dict[int, Counter[Shape]] = defaultdict(Counter)
    keyed: dict[tuple[int, tuple[tuple[str, int | str], ...]], Counter[Shape]] = defaultdict(Counter)
    for shape, n in counts.items():
        if shape.init and shape.outcome == "EACCES":
            used.add("denied")
            denied[shape] += n
            continue
        kind = CONTEXT_OPS.get(shape.opcode)
        ctx_expected = options.mode == "full" or (options.mode == "no-connect" and kind != "connect")
        if kind is not None and not shape.ctx and ctx_expected:
            used.add("prep-failed")
            skipped[shape] += n
            continue
        flags |= _flags_of(shape, used)
        if kind is None or not shape.ctx:
            plain[shape.opcode][shape] += n
            continue
        if kind == "open":
            key: tuple[tuple[str, int | str], ...] = _open_key(shape, used)
        elif kind == "socket":
            key = _socket_key(shape, used)
        else:
            key = _connect_key(shape, options, used)
        keyed[(shape.opcode, key)][shape] += n
    if options.mode == "tracepoints" and any(CONTEXT_OPS.get(op) for op in plain):
        used.add("open-args")
    if options.mode == "no-connect" and SqeOp.CONNECT in plain:
        used.add("connect-args")

    rules: list[Rule] = []
    rule_comments: list[list[str]] = []
    op_comments: list[dict[int, str]] = []
    if plain:
        ops = tuple(sorted(plain))
        rules.append(Rule(Action.ALLOW, ops, reason="learned: opcodes seen (their filter context carries no "
                                                    "arguments to test, or this kernel showed none)"))
        op_comments.append({op: f"seen {_times(sum(plain[op].values()))}{_outcomes(plain[op])}"
                            + ("; arguments left open" if op in CONTEXT_OPS else "") for op in ops})
        rule_comments.append([])
    for (opcode, key), shapes_ in sorted(keyed.items(), key=lambda kv: (kv[0][0], json.dumps(kv[0][1]))):
        total = sum(shapes_.values())
        seen = sorted({describe(Shape(s.opcode, 0, s.ctx)) for s in shapes_})
        rules.append(Rule(Action.ALLOW, (opcode,), _predicates(key),
                          reason=f"learned: seen {_times(total)}{_outcomes(shapes_)}"))
        rule_comments.append(["seen: " + "; ".join(seen)])
        op_comments.append({})
    kernel = (7, 2) if any(op == SqeOp.CONNECT for op, _ in keyed) else (7, 0)
    runs = list(options.runs)
    policy = Policy(options.name, tuple(rules), Action.DENY, kernel=kernel, flags=Flags(flags),
                    description=f"learned from {_times(len(runs)) if len(runs) != 1 else 'one run'} by "
                                "ringfence learn")
    header = [f"Learned by `ringfence learn` from {len(runs)} run(s):"] + [f"  {r}" for r in runs]
    header += ["Default deny: anything not seen is refused. Generalisations applied:"]
    for k, says in RULES.items():
        if k in used:
            header += textwrap.wrap(says, 112, initial_indent="  - ", subsequent_indent="    ")
    if denied:
        header += ["Denied while learning (EACCES), not allowed here:"]
        header += [f"  - {describe(s)}: {_times(n)}" for s, n in sorted(denied.items())]
    if skipped:
        header += ["Failed before a filter saw them, not allowed here:"]
        header += [f"  - {describe(s)}: {_times(n)} ({s.outcome})" for s, n in sorted(skipped.items())]
    header += ["The line below is what `ringfence learn --merge` reads back; keep it to merge later runs.",
               DATA_PREFIX + json.dumps({"version": 1, "mode": options.mode, "runs": runs,
                                         "widen": {f"v{v}": b for v, b in sorted(options.widen.items())},
                                         "seen": seen_json(counts)}, separators=(",", ":"))]
    flags_comments = ["IOSQE_* flags the program set (as the kernel reported them, kernel-added bits dropped)"]
    text = write_policy(policy, header=header, rule_comments=rule_comments, op_comments=op_comments,
                        flags_comments=flags_comments)
    return Learned(policy, text, tuple(k for k in RULES if k in used), tuple(sorted(denied.items())),
                   tuple(sorted(skipped.items())))


@dataclass(frozen=True, slots=True)
class Previous:
    """What an earlier ``ringfence learn`` wrote into its policy's comments."""

    counts: Counter[Shape]
    mode: str
    runs: tuple[str, ...]
    widen: dict[int, int]


def read_previous(text: str) -> Previous:
    """The learn data in a learned policy's text; ValueError when there is none or it cannot be read."""
    for line in text.splitlines():
        body = line.removeprefix("#").strip()
        if body.startswith(DATA_PREFIX):
            try:
                data = json.loads(body[len(DATA_PREFIX):])
                mode = str(data["mode"])
                if mode not in MODES:
                    raise ValueError(f"unknown mode {mode!r}")
                widen = {int(k.removeprefix("v")): int(v) for k, v in dict(data.get("widen", {})).items()}
                return Previous(from_json(data["seen"]), mode, tuple(str(r) for r in data["runs"]), widen)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"its learn-data line cannot be read ({exc})") from None
    raise ValueError("it has no learn-data line (was it written by `ringfence learn`?)")


def weaker(a: str, b: str) -> str:
    return a if MODES.index(a) <= MODES.index(b) else b
