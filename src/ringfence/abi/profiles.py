"""What differs between kernel versions, as data (spec §1.2, §1.3, §2.10). Every layer reads it from here.

6.18's opcode counts were measured on the host (``IORING_REGISTER_QUERY``: 63 request opcodes, 36 register
opcodes); the 7.x values come from the spec and were confirmed by the probe on Debian's kernels (docs/
kernel-findings.md). The static profiles never change at run time. A live kernel may still differ from its
version's profile (a stable backport, say): the probe then reports a :class:`ProfileMatch` listing each
:class:`Adjustment`, and code that needs the adjusted behaviour takes :meth:`ProfileMatch.adjusted` from it.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from ringfence.abi.opcodes import RegisterOp, RestrictionOp, SqeOp

#: The value of a profile field an adjustment can change.
FeatureValue: TypeAlias = bool | int | Mapping[SqeOp, int] | frozenset[RegisterOp]


def _encode(value: FeatureValue) -> Any:
    """JSON form: mappings and sets by opcode name, sorted; scalars as they are."""
    if isinstance(value, frozenset):
        return sorted(op.name for op in value)
    if isinstance(value, Mapping):
        return {op.name: n for op, n in sorted(value.items())}
    return value


def _decode(field: str, value: Any) -> FeatureValue:
    if field == "blind_ops":
        return frozenset(RegisterOp[name] for name in value)
    if field == "pdu_sizes":
        return MappingProxyType({SqeOp[name]: int(n) for name, n in value.items()})
    if field not in MEASURED_FIELDS or not isinstance(value, bool | int):
        raise ValueError(f"not an adjustable profile field: {field}={value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One field in which a live kernel differs from its static profile: the profile's value and the measured one."""

    field: str
    profile: FeatureValue
    measured: FeatureValue

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "profile": _encode(self.profile), "measured": _encode(self.measured)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Adjustment:
        field = str(data["field"])
        return cls(field, _decode(field, data["profile"]), _decode(field, data["measured"]))

    def render(self) -> str:
        return f"{self.field}: profile {_encode(self.profile)}, measured {_encode(self.measured)}"


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
    #: How this profile differs from the static one of the same name (empty for the static profiles).
    adjustments: tuple[Adjustment, ...] = ()

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

    @property
    def label(self) -> str:
        """The name, plus the adjustments if any: ``7.2 adjusted (source_cow: profile False, measured True)``."""
        if not self.adjustments:
            return self.name
        return f"{self.name} adjusted ({'; '.join(a.render() for a in self.adjustments)})"

    def with_features(self, **changes: FeatureValue) -> KernelProfile:
        """A variant of this profile, e.g. ``with_features(source_cow=True)``; it keeps the name and records each
        change as an :class:`Adjustment` (never parse behaviour out of a name)."""
        adjustments = [*self.adjustments]
        for key, value in changes.items():
            current = getattr(self, key)
            if current != value:
                adjustments = [a for a in adjustments if a.field != key]
                original = next((a.profile for a in self.adjustments if a.field == key), current)
                if original != value:
                    adjustments.append(Adjustment(key, original, value))
        return dataclasses.replace(self, adjustments=tuple(adjustments), **changes)  # type: ignore[arg-type]


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
    """The static profile called ``name`` (``"7.2"``); raises ``KeyError`` naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown kernel profile {name!r}; known: {', '.join(PROFILES)}") from None


def release_version(release: str) -> tuple[int, int]:
    """``(major, minor)`` of a ``uname -r`` string (``7.2.13+deb14-amd64`` -> ``(7, 2)``)."""
    m = re.match(r"(\d+)\.(\d+)", release)
    if not m:
        raise ValueError(f"cannot read a kernel version from {release!r}")
    return int(m.group(1)), int(m.group(2))


def profile_for_release(release: str) -> KernelProfile:
    """The nearest profile at or below a ``uname -r`` string (``7.2.13+deb14-amd64`` -> 7.2)."""
    version = release_version(release)
    candidates = [p for p in PROFILES.values() if p.version <= version]
    if not candidates:
        raise KeyError(f"no profile for kernel {release} (oldest is {min(PROFILES)})")
    return max(candidates, key=lambda p: p.version)


def has_profile(release: str) -> bool:
    """Whether a profile was written for this kernel's version (else :func:`profile_for_release` is the nearest)."""
    return any(p.version == release_version(release) for p in PROFILES.values())


#: Profile fields the probe measures; the rest (``keep_filters_on_parse_failure``) only scenarios can tell.
MEASURED_FIELDS: Final = ("op_last", "register_last", "split_restrictions", "blind_ops", "bpf_filters", "pdu_sizes",
                          "source_cow")


@dataclass(frozen=True, slots=True)
class ProfileMatch:
    """Which static profile a kernel matches, and every measured difference from it.

    ``profile`` is always a static profile (the one for the kernel's version, or the nearest one below when
    there is none: ``same_version`` is then False). ``matches_exactly`` is the plain answer; code that must
    follow the kernel rather than the profile takes :meth:`adjusted`.
    """

    release: str
    profile: KernelProfile
    adjustments: tuple[Adjustment, ...]

    @property
    def matches_exactly(self) -> bool:
        return not self.adjustments

    @property
    def same_version(self) -> bool:
        return self.profile.version == release_version(self.release)

    def adjusted(self) -> KernelProfile:
        """The static profile with every adjustment applied (the profile itself when there is none)."""
        if not self.adjustments:
            return self.profile
        return self.profile.with_features(**{a.field: a.measured for a in self.adjustments})

    @classmethod
    def compare(cls, release: str, measured: Mapping[str, FeatureValue | None]) -> ProfileMatch:
        """Match ``release`` against its profile; ``measured`` maps :data:`MEASURED_FIELDS` to what the kernel
        answered (None, or a missing key: could not be measured, so no adjustment)."""
        base = profile_for_release(release)
        unknown = set(measured) - set(MEASURED_FIELDS)
        if unknown:
            raise ValueError(f"not measurable profile fields: {sorted(unknown)}")
        adjustments = []
        for field in MEASURED_FIELDS:
            value = measured.get(field)
            current = getattr(base, field)
            if value is None:
                continue
            if field == "pdu_sizes" and isinstance(value, Mapping):
                value = MappingProxyType({op: n for op, n in value.items() if n})
                if dict(value) == dict(current):
                    continue
            elif field == "blind_ops" and isinstance(value, frozenset) and value == current:
                continue
            if value != current:
                adjustments.append(Adjustment(field, current, value))
        return cls(release, base, tuple(adjustments))

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release, "profile": self.profile.name, "same_version": self.same_version,
                "matches_exactly": self.matches_exactly, "adjustments": [a.to_json() for a in self.adjustments]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProfileMatch:
        """Rebuild from :meth:`to_json` (``profile`` names a static profile; adjustments are explicit)."""
        return cls(str(data["release"]), profile(str(data["profile"])),
                   tuple(Adjustment.from_json(a) for a in data.get("adjustments", ())))

    def render(self) -> str:
        """One line: ``7.2 (matches exactly)``, or the profile and its adjustments."""
        major, minor = release_version(self.release)
        nearest = "" if self.same_version else f", the nearest: no profile for {major}.{minor}"
        if self.matches_exactly:
            return f"{self.profile.name} (matches exactly{nearest})"
        n = len(self.adjustments)
        return f"{self.profile.name} ({n} adjustment{'s' if n > 1 else ''}{nearest})"


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
