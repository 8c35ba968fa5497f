"""The kernel invariants a compiled filter may rely on, one named entry each: what every context the kernel
builds for an opcode satisfies, and how the flags filters see relate to the flags submitted.

Proofs quantify over every context that satisfies the assumptions for its opcode and record the ones they
needed; the compiler (and its optimizer) may rely on nothing else. Each constraint is written once over a small
algebra (:class:`Terms`) so the prover (z3 terms) and the tests (concrete contexts) read the same text. Each
entry is backed by a conformance scenario of the same name that checks it on every real kernel of the suite
(``tests/corpus/scenarios/assumptions``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol, TypeVar

from ringfence.abi.constants import AF, O
from ringfence.abi.opcodes import SQE_VALID_FLAGS, SqeFlag, SqeOp
from ringfence.abi.profiles import KernelProfile

V = TypeVar("V")
C = TypeVar("C")

U32: Final = 0xFFFFFFFF
_SOCKET: Final = int(SqeOp.SOCKET)
_CONNECT: Final = int(SqeOp.CONNECT)
_OPENAT: Final = int(SqeOp.OPENAT)
_OPENAT2: Final = int(SqeOp.OPENAT2)
_AF_INET: Final = AF["AF_INET"]
_AF_INET6: Final = AF["AF_INET6"]
#: Flag bits the kernel itself may add to a request before filters run (forced async, drain).
KERNEL_ADDED: Final = int(SqeFlag.ASYNC | SqeFlag.IO_DRAIN)


class Terms(Protocol[V, C]):
    """Unsigned 32-bit words ``V`` and conditions ``C``: the context's words, the submitted flags, and the few
    operations the constraints need."""

    def const(self, k: int) -> V: ...
    def word(self, offset: int) -> V: ...   # the native-endian u32 at context offset ``offset``
    def raw_flags(self) -> V: ...           # the SQE flags byte as submitted, zero-extended
    def and_(self, a: V, b: V) -> V: ...
    def rsh(self, a: V, bits: int) -> V: ...  # logical right shift by a constant
    def eq(self, a: V, b: V) -> C: ...
    def not_(self, c: C) -> C: ...
    def all_(self, cs: Sequence[C]) -> C: ...
    def any_(self, cs: Sequence[C]) -> C: ...
    def implies(self, a: C, b: C) -> C: ...


class Constraint(Protocol):
    def __call__(self, t: Terms[V, C], opcode: int, profile: KernelProfile, /) -> C: ...


@dataclass(frozen=True, slots=True)
class Assumption:
    """One invariant. ``concerns`` says for which opcodes (on a kernel) it constrains the context; ``request``
    marks those that relate the context to the request as submitted (used by whole-Plan proofs)."""

    id: str
    sentence: str
    concerns: Callable[[int, KernelProfile], bool]
    constraint: Constraint
    request: bool = False

    @property
    def scenario(self) -> str:
        """The conformance scenario that checks it on real kernels (a file name, without ``.toml``)."""
        return self.id.replace(".", "_").replace("-", "_")


def _is(t: Terms[V, C], offset: int, mask: int, value: int) -> C:
    """``word(offset) & mask == value``."""
    return t.eq(t.and_(t.word(offset), t.const(mask)), t.const(value))


def _zero(t: Terms[V, C], *offsets: int) -> C:
    return t.all_([_is(t, k, U32, 0) for k in offsets])


def _every(op: int, profile: KernelProfile) -> bool:
    return profile.bpf_filters


def _payload(op: int, size: int) -> Callable[[int, KernelProfile], bool]:
    return lambda o, p: o == op and p.pdu_size(o) == size


def _opens(op: int, profile: KernelProfile) -> bool:
    return op in (_OPENAT, _OPENAT2) and profile.pdu_size(op) == 24


# -- the constraints ---------------------------------------------------------------------------------------------

def _opcode(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    return _is(t, 8, 0xFF, op)


def _flags_7bit(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    return _is(t, 8, 0x8000, 0)


def _pdu_size(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    return _is(t, 8, 0xFF0000, profile.pdu_size(op) << 16)


def _pad(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    return t.all_([_is(t, 8, 0xFF000000, 0), _zero(t, 12)])


def _no_payload(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    return _zero(t, 16, 20, 24, 28, 32, 36)


def _socket_tail(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    return _zero(t, 28, 32, 36)


def _connect_pad(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    return _is(t, 20, 0xFFFF0000, 0)


def _connect_inet_tail(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    return t.implies(_is(t, 16, U32, _AF_INET), _zero(t, 28, 32, 36))


def _connect_other_family(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    inet = t.any_([_is(t, 16, U32, _AF_INET), _is(t, 16, U32, _AF_INET6)])
    return t.implies(t.not_(inet), _zero(t, 20, 24, 28, 32, 36))


def _openat_mode(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    return t.implies(_is(t, 16, O["O_CREAT"] | O["__O_TMPFILE"], 0), _zero(t, 24, 28))


def _openat_resolve(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    return _zero(t, 32, 36)


def _largefile(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    return t.implies(_is(t, 16, O["O_PATH"], 0), _is(t, 16, O["O_LARGEFILE"], O["O_LARGEFILE"]))


def _flags_valid(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    return t.eq(t.and_(t.raw_flags(), t.const(0xFF & ~SQE_VALID_FLAGS)), t.const(0))


def _flags_post_prep(t: Terms[V, C], op: int, profile: KernelProfile) -> C:
    seen = t.and_(t.rsh(t.word(8), 8), t.const(SQE_VALID_FLAGS))
    raw = t.and_(t.raw_flags(), t.const(SQE_VALID_FLAGS))
    kept = t.const(SQE_VALID_FLAGS & ~KERNEL_ADDED)
    # every submitted bit is seen; apart from ASYNC and IO_DRAIN, no other bit is
    return t.all_([t.eq(t.and_(seen, raw), raw), t.eq(t.and_(seen, kept), t.and_(raw, kept))])


def _always(op: int, profile: KernelProfile) -> bool:
    return True


def _no_payload_op(op: int, profile: KernelProfile) -> bool:
    return profile.bpf_filters and profile.pdu_size(op) == 0


ASSUMPTIONS: Final[tuple[Assumption, ...]] = (
    Assumption("ctx.opcode", "The context's opcode byte (8) is the opcode the filter is registered for.",
               _every, _opcode),
    Assumption("ctx.flags-7bit", "The sqe_flags byte (9) has bit 7 clear: the kernel masks the request's flags "
               "with 0x7f.", _every, _flags_7bit),
    Assumption("ctx.pdu-size", "The pdu_size byte (10) is this kernel's payload size for the opcode (0, 12 or 24).",
               _every, _pdu_size),
    Assumption("ctx.pad-zero", "Bytes 11-15, the padding after pdu_size, are zero.", _every, _pad),
    Assumption("ctx.no-payload-zero", "For an opcode without a payload on this kernel, bytes 16-39 are zero.",
               _no_payload_op, _no_payload),
    Assumption("socket.tail-zero", "SOCKET: bytes 28-39, past the protocol, are zero.", _payload(_SOCKET, 12),
               _socket_tail),
    Assumption("connect.pad-zero", "CONNECT: bytes 22-23, after the port, are zero.", _payload(_CONNECT, 24),
               _connect_pad),
    Assumption("connect.inet-tail-zero", "CONNECT with family AF_INET: bytes 28-39, past the IPv4 address, are "
               "zero.", _payload(_CONNECT, 24), _connect_inet_tail),
    Assumption("connect.other-family-zero", "CONNECT with a family other than AF_INET and AF_INET6 (0 included: an "
               "address too short to name one): the port, padding and address bytes 20-39 are zero.",
               _payload(_CONNECT, 24), _connect_other_family),
    Assumption("openat.mode-zero", "OPENAT without O_CREAT or O_TMPFILE: open.mode is 0.", _payload(_OPENAT, 24),
               _openat_mode),
    Assumption("openat.resolve-zero", "OPENAT: open.resolve is 0.", _payload(_OPENAT, 24), _openat_resolve),
    Assumption("open.largefile", "OPENAT and OPENAT2: open.flags has O_LARGEFILE unless it has O_PATH (the kernel "
               "adds it on 64-bit machines).", _opens, _largefile),
    Assumption("request.flags-valid", "A request whose SQE flags byte has bit 7 set fails at init (EINVAL) before "
               "restrictions and filters see it: only flags 0x00-0x7f reach them.", _always, _flags_valid,
               request=True),
    Assumption("request.flags-post-prep", "Filters see the flags the submitter set plus, at most, IOSQE_ASYNC and "
               "IOSQE_IO_DRAIN, which the kernel adds itself (forced async, draining).", _every, _flags_post_prep,
               request=True),
)

BY_ID: Final[Mapping[str, Assumption]] = MappingProxyType({a.id: a for a in ASSUMPTIONS})


def concerning(opcode: int, profile: KernelProfile, *, request: bool = False) -> tuple[Assumption, ...]:
    """The assumptions that constrain ``opcode``'s context on ``profile`` (with ``request``: also those that
    relate it to the submitted flags)."""
    return tuple(a for a in ASSUMPTIONS if a.concerns(opcode, profile) and (request or not a.request))


class _Concrete:
    """:class:`Terms` over one context and one flags byte: Python ints and bools."""

    __slots__ = ("ctx", "raw")

    def __init__(self, ctx: bytes, raw: int) -> None:
        self.ctx = ctx
        self.raw = raw

    def const(self, k: int) -> int:
        return k & U32

    def word(self, offset: int) -> int:
        return int.from_bytes(self.ctx[offset:offset + 4], "little")

    def raw_flags(self) -> int:
        return self.raw & 0xFF

    def and_(self, a: int, b: int) -> int:
        return a & b

    def rsh(self, a: int, bits: int) -> int:
        return a >> bits

    def eq(self, a: int, b: int) -> bool:
        return a == b

    def not_(self, c: bool) -> bool:
        return not c

    def all_(self, cs: Sequence[bool]) -> bool:
        return all(cs)

    def any_(self, cs: Sequence[bool]) -> bool:
        return any(cs)

    def implies(self, a: bool, b: bool) -> bool:
        return not a or b


def violated(ctx: bytes, opcode: int, profile: KernelProfile, raw_flags: int | None = None) -> tuple[str, ...]:
    """The ids of the assumptions ``ctx`` (for a request of ``opcode`` submitted with ``raw_flags``, if given)
    breaks: what a test holds the model's contexts and a counterexample's context to."""
    terms = _Concrete(ctx, raw_flags or 0)
    return tuple(a.id for a in concerning(opcode, profile, request=raw_flags is not None)
                 if not a.constraint(terms, opcode, profile))
