"""What differs between kernel versions, as data (spec §1.2, §1.3, §2.10). Every layer reads it from here.

6.18's opcode counts were measured on the host (``IORING_REGISTER_QUERY``: 63 request opcodes, 36 register
opcodes); the 7.x values come from the spec. A live kernel may differ from its version's profile (a stable
backport, say): :func:`KernelProfile.with_features` derives a variant, and the probe says which applies.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ringfence.abi.opcodes import RegisterOp, RestrictionOp, SqeOp


@dataclass(frozen=True, slots=True)
class KernelProfile:
    """The io_uring sandboxing behaviour of one kernel version."""

    name: str
    version: tuple[int, int]
    op_last: int
    register_last: int
    #: 7.0+: SQE side and register side are restricted independently, SQE side at registration (§3.7).
    split_restrictions: bool
    #: Register opcodes accepted with ``fd == -1`` (§4.1). Empty before 6.13 (then ``-EBADF``).
    blind_ops: frozenset[RegisterOp]
    #: ``REGISTER_BPF_FILTER`` exists (7.0+, ``CONFIG_IO_URING_BPF``).
    bpf_filters: bool
    #: Payload size per opcode for filters (§2.10); opcodes not listed have 0.
    pdu_sizes: Mapping[SqeOp, int]
    #: 7.3-rc: sharing a filter table also marks the source copy-on-write (§6.6).
    source_cow: bool
    #: 7.0-rc7+: a failed ring ``REGISTER_RESTRICTIONS`` keeps the filter table (§3.4).
    keep_filters_on_parse_failure: bool = True

    @property
    def max_restrictions(self) -> int:
        """``IORING_MAX_RESTRICTIONS``: records accepted by one classic registration."""
        return RestrictionOp.LAST + self.register_last + self.op_last

    @property
    def task_restrictions(self) -> bool:
        return RegisterOp.RESTRICTIONS in self.blind_ops

    def pdu_size(self, opcode: int) -> int:
        return self.pdu_sizes.get(SqeOp(opcode), 0) if 0 <= opcode < len(SqeOp) else 0

    def knows_opcode(self, opcode: int) -> bool:
        return 0 <= opcode < self.op_last

    def knows_register_op(self, opcode: int) -> bool:
        return 0 <= opcode < self.register_last

    def with_features(self, **changes: object) -> KernelProfile:
        """A variant of this profile, e.g. ``with_features(source_cow=True)`` for a kernel with a backport."""
        suffix = "+" + ",".join(f"{k}={v}" for k, v in sorted(changes.items()))
        return dataclasses.replace(self, name=self.name + suffix, **changes)  # type: ignore[arg-type]


_BLIND_6_13: Final = frozenset({RegisterOp.SEND_MSG_RING, RegisterOp.QUERY})
_BLIND_7: Final = _BLIND_6_13 | {RegisterOp.RESTRICTIONS, RegisterOp.BPF_FILTER}
_PDU_7_0: Final = MappingProxyType({SqeOp.SOCKET: 12, SqeOp.OPENAT: 24, SqeOp.OPENAT2: 24})
_PDU_7_2: Final = MappingProxyType({**_PDU_7_0, SqeOp.CONNECT: 24})

PROFILES: Final[Mapping[str, KernelProfile]] = MappingProxyType({
    "6.18": KernelProfile("6.18", (6, 18), op_last=63, register_last=36, split_restrictions=False,
                          blind_ops=_BLIND_6_13, bpf_filters=False, pdu_sizes=MappingProxyType({}),
                          source_cow=False),
    "7.0": KernelProfile("7.0", (7, 0), 65, 38, True, _BLIND_7, True, _PDU_7_0, source_cow=False),
    "7.1": KernelProfile("7.1", (7, 1), 65, 38, True, _BLIND_7, True, _PDU_7_0, source_cow=False),
    "7.2": KernelProfile("7.2", (7, 2), 65, 38, True, _BLIND_7, True, _PDU_7_2, source_cow=False),
    "7.3": KernelProfile("7.3", (7, 3), 65, 38, True, _BLIND_7, True, _PDU_7_2, source_cow=True),
})

DEFAULT_PROFILE: Final = "7.2"


def profile(name: str) -> KernelProfile:
    """The profile for ``"7.2"``, or a variant named by :meth:`KernelProfile.with_features`
    (``"7.2+source_cow=True"``); raises ``KeyError`` naming the known ones."""
    base, _, features = name.partition("+")
    try:
        found = PROFILES[base]
    except KeyError:
        raise KeyError(f"unknown kernel profile {name!r}; known: {', '.join(PROFILES)}") from None
    if not features:
        return found
    changes: dict[str, object] = {}
    for item in features.split(","):
        key, _, value = item.partition("=")
        if key not in {f.name for f in dataclasses.fields(KernelProfile)} or value not in ("True", "False"):
            raise KeyError(f"unknown profile feature {item!r} in {name!r}")
        changes[key] = value == "True"
    return found.with_features(**changes)


def profile_for_release(release: str) -> KernelProfile:
    """The nearest profile at or below a ``uname -r`` string (``7.2.13+deb14-amd64`` -> 7.2)."""
    m = re.match(r"(\d+)\.(\d+)", release)
    if not m:
        raise ValueError(f"cannot read a kernel version from {release!r}")
    version = (int(m.group(1)), int(m.group(2)))
    candidates = [p for p in PROFILES.values() if p.version <= version]
    if not candidates:
        raise KeyError(f"no profile for kernel {release} (oldest is {min(PROFILES)})")
    return max(candidates, key=lambda p: p.version)


def matches(spec: str, prof: KernelProfile) -> bool:
    """Whether a version selector matches a profile: ``7.2``, ``7.0+``, ``<7.0``, ``>=7.2``, ``6.18-7.1``, ``*``."""
    spec = spec.strip()
    if spec in ("*", "all"):
        return True

    def ver(text: str) -> tuple[int, int]:
        a, b = text.strip().split(".")
        return int(a), int(b)

    v = prof.version
    if spec.endswith("+"):
        return v >= ver(spec[:-1])
    for prefix, test in (("<=", operator.le), (">=", operator.ge), ("<", operator.lt), (">", operator.gt)):
        if spec.startswith(prefix):
            return bool(test(v, ver(spec[len(prefix):])))
    if "-" in spec:
        lo, hi = spec.split("-", 1)
        return ver(lo) <= v <= ver(hi)
    return v == ver(spec)
