"""Docker/OCI seccomp profiles (the JSON container runtimes read), read with positions and resolved for one container.

The format is the one Docker (moby) and Podman/Buildah/CRI-O (containers/common) accept: ``defaultAction``
with ``defaultErrnoRet``/``defaultErrno``, ``architectures`` or ``archMap``, and ``syscalls`` entries with
``names`` (or ``name``), ``action``, ``errnoRet``/``errno``, ``args`` (``index``, ``value``, ``valueTwo``,
``op``) and ``includes``/``excludes`` (``caps``, ``arches``, ``minKernel``). Every key is checked, a typo gets
the closest valid name, and every error is an :class:`~ringfence.errors.InputError` at ``file:line:col``
(the document is read by :mod:`ringfence.inputs`, as scenarios are).

:func:`resolve` then does what a runtime does before handing the rules to libseccomp: it keeps the entries whose
``includes``/``excludes`` hold for the container's capabilities and architecture, splits an entry that compares
one argument twice into one rule per comparison (runc's and containers/common's reading: such comparisons are
alternatives), and drops rules whose action is the default action (libseccomp refuses them; runtimes skip them).
"""

from __future__ import annotations

import enum
import errno as errno_module
import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from ringfence.errors import InputError
from ringfence.inputs.document import Format, load_document, parse_document
from ringfence.inputs.nodes import Array, Node, Scalar, Table, plain
from ringfence.inputs.position import Pos
from ringfence.inputs.read import InputKind
from ringfence.inputs.schema import U32, U64, Choice, Fields, Int, ListOf, Str, error_at, mismatch
from ringfence.inputs.suggest import did_you_mean
from ringfence.inputs.text import token

PROFILE_FILE: Final = InputKind("seccomp profile", 4 << 20)
MAX_ENTRIES: Final = 4096
MAX_NAMES: Final = 4096
#: What an ERRNO or TRACE action without a number returns (runc and containers/common use EPERM).
DEFAULT_ERRNO: Final = errno_module.EPERM


class Act(enum.Enum):
    """A seccomp action, most restrictive first (the kernel's precedence between filters)."""

    KILL_PROCESS = "SCMP_ACT_KILL_PROCESS"
    KILL_THREAD = "SCMP_ACT_KILL_THREAD"
    TRAP = "SCMP_ACT_TRAP"
    ERRNO = "SCMP_ACT_ERRNO"
    NOTIFY = "SCMP_ACT_NOTIFY"
    TRACE = "SCMP_ACT_TRACE"
    LOG = "SCMP_ACT_LOG"
    ALLOW = "SCMP_ACT_ALLOW"

    @property
    def rank(self) -> int:
        """0 for the most restrictive action."""
        return list(Act).index(self)

    @property
    def lets_through(self) -> bool:
        """Whether the system call runs (LOG only records it)."""
        return self in (Act.ALLOW, Act.LOG)


_ACTIONS: Final = MappingProxyType({**{a.value: a for a in Act}, "SCMP_ACT_KILL": Act.KILL_THREAD})


@dataclass(frozen=True, slots=True)
class Action:
    """An action and its data: the errno of ERRNO, the message number of TRACE (None for the others)."""

    act: Act
    data: int | None = None

    @property
    def lets_through(self) -> bool:
        return self.act.lets_through

    def __str__(self) -> str:
        if self.act is Act.ERRNO and self.data is not None:
            return f"{self.act.value}({errno_module.errorcode.get(self.data, str(self.data))})"
        if self.act is Act.TRACE and self.data is not None:
            return f"{self.act.value}({self.data})"
        return self.act.value


class Op(enum.Enum):
    """``SCMP_CMP_*``: how one 64-bit system call argument is compared (libseccomp's meaning)."""

    NE = "SCMP_CMP_NE"
    LT = "SCMP_CMP_LT"
    LE = "SCMP_CMP_LE"
    EQ = "SCMP_CMP_EQ"
    GE = "SCMP_CMP_GE"
    GT = "SCMP_CMP_GT"
    MASKED_EQ = "SCMP_CMP_MASKED_EQ"


_OPS: Final = MappingProxyType({o.value: o for o in Op})
_SYMBOL: Final = MappingProxyType({Op.NE: "!=", Op.LT: "<", Op.LE: "<=", Op.EQ: "==", Op.GE: ">=", Op.GT: ">"})


@dataclass(frozen=True, slots=True)
class Comparison:
    """One ``args`` item. For MASKED_EQ, ``value`` is the mask and ``value_two`` the datum: the argument matches
    when ``arg & mask == datum & mask`` (libseccomp masks both sides)."""

    index: int
    op: Op
    value: int
    value_two: int = 0
    pos: Pos = field(default=Pos(""), compare=False)

    def holds(self, arg: int) -> bool:
        """The comparison on a 64-bit argument value, as the filter libseccomp generates evaluates it."""
        v = self.value
        if self.op is Op.MASKED_EQ:
            return arg & v == self.value_two & v
        return {Op.NE: arg != v, Op.LT: arg < v, Op.LE: arg <= v, Op.EQ: arg == v, Op.GE: arg >= v,
                Op.GT: arg > v}[self.op]

    def __str__(self) -> str:
        if self.op is Op.MASKED_EQ:
            return f"arg{self.index} & {self.value:#x} == {self.value_two & self.value:#x}"
        shown = f"{self.value:#x}" if self.value > 0xFFFF else str(self.value)
        return f"arg{self.index} {_SYMBOL[self.op]} {shown}"


@dataclass(frozen=True, slots=True)
class Condition:
    """``includes`` or ``excludes``: capabilities, architectures, a minimum kernel."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None

    @property
    def empty(self) -> bool:
        return not self.caps and not self.arches and self.min_kernel is None


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``syscalls`` item as written."""

    names: tuple[str, ...]
    action: Action
    args: tuple[Comparison, ...]
    includes: Condition
    excludes: Condition
    comment: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Profile:
    """A whole profile. ``data`` is the document as plain JSON values (what ``--emit-profile`` edits)."""

    default: Action
    entries: tuple[Entry, ...]
    name: str
    sha256: str
    data: Mapping[str, Any]
    pos: Pos


# -- capabilities and architectures ----------------------------------------------------------------------------

#: Linux capabilities by name, in number order (``linux/capability.h``).
CAPABILITIES: Final = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

#: The capabilities container runtimes grant by default. Podman's (containers.conf ``default_capabilities``) are a
#: subset of Docker's, so they are the ones both grant; fewer capabilities only keep more of a profile's denials.
CAP_PRESETS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType({
    "podman": ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
               "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"),
    "docker": ("CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
               "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
               "CAP_SETUID", "CAP_SYS_CHROOT"),
    "none": (),
    "all": CAPABILITIES,
})
DEFAULT_CAPS: Final = "podman"

#: Architecture names as ``includes``/``excludes`` spell them (libseccomp's names, as runtimes compare them).
ARCHES: Final = ("amd64", "x86", "x32", "arm", "arm64", "mips", "mipsel", "mips64", "mips64n32", "mipsel64",
                 "mipsel64n32", "mips3l64n32", "ppc", "ppc64", "ppc64le", "s390", "s390x", "parisc", "parisc64",
                 "riscv64", "loongarch64")
#: ``uname -m`` to that name.
MACHINE_ARCH: Final = MappingProxyType({
    "x86_64": "amd64", "i386": "x86", "i686": "x86", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
    "ppc64": "ppc64", "s390x": "s390x", "riscv64": "riscv64", "mips64": "mips64", "loongarch64": "loongarch64",
})


def parse_caps(text: str) -> tuple[str, ...]:
    """``--caps``: comma-separated capability names (``CAP_`` optional, any case) and presets (``podman``,
    ``docker``, ``none``, ``all``); the union, sorted in capability order. :class:`ValueError` names a bad item."""
    wanted: set[str] = set()
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        if item.lower() in CAP_PRESETS:
            wanted.update(CAP_PRESETS[item.lower()])
            continue
        name = item.upper()
        name = name if name.startswith("CAP_") else f"CAP_{name}"
        if name not in CAPABILITIES:
            raise ValueError(f"unknown capability {token(item)}"
                             f"{did_you_mean(name, (*CAPABILITIES, *CAP_PRESETS))}")
        wanted.add(name)
    return tuple(c for c in CAPABILITIES if c in wanted)


# -- reading ----------------------------------------------------------------------------------------------------

_TOP: Final = ("defaultAction", "defaultErrnoRet", "defaultErrno", "architectures", "archMap", "syscalls", "flags",
               "listenerPath", "listenerMetadata")
_ENTRY: Final = ("name", "names", "action", "args", "comment", "includes", "excludes", "errnoRet", "errno")
_ARG: Final = ("index", "value", "valueTwo", "op")
_FILTER: Final = ("caps", "arches", "minKernel")
_ARCHMAP: Final = ("architecture", "subArchitectures")
_KERNEL: Final = re.compile(r"(\d{1,4})\.(\d{1,4})")
_SYSCALL_NAME: Final = Str(max_len=64, pattern=re.compile(r"[a-z_][a-z0-9_]*"), shape="a system call name",
                           min_len=1)
_TEXT: Final = Str(max_len=4096, lines=True)


def _absent(node: Node | None) -> bool:
    """Go's decoder leaves a field at its zero value for ``null``: treat it as not written."""
    return node is None or (isinstance(node, Scalar) and node.value is None)


def _optional(fields: Fields, key: str) -> Node | None:
    node = fields.node(key)
    return None if _absent(node) else node


def _errno(node: Node, name: str) -> int:
    """An errno given as a name (``EPERM``) or as integer text (``"1"``), as containers/common reads ``errno``."""
    text = Str(max_len=32).read(node, name)
    if text.strip().isdigit():
        value = int(text)
    else:
        number = getattr(errno_module, text.strip(), None)
        if not isinstance(number, int) or not text.strip().startswith("E"):
            raise error_at(node, f"{name}: unknown errno {token(text)}"
                                 f"{did_you_mean(text.strip(), tuple(errno_module.errorcode.values()))}")
        value = number
    if not 0 <= value <= U32:
        raise error_at(node, f"{name}: {value} is out of range")
    return value


def _action(fields: Fields, act_key: str, ret_key: str, name_key: str) -> Action:
    act = fields.need(act_key, Choice(_ACTIONS, what="seccomp action", fold=False))
    data: int | None = None
    ret = _optional(fields, ret_key)
    if ret is not None:
        data = Int(0, U32).read(ret, fields.label(ret_key))
    named = _optional(fields, name_key)
    if named is not None:
        data = _errno(named, fields.label(name_key))
    if act in (Act.ERRNO, Act.TRACE):
        return Action(act, DEFAULT_ERRNO if data is None else data)
    return Action(act)


def _condition(node: Node | None, path: str) -> Condition:
    if _absent(node):
        return Condition()
    assert node is not None
    fields = Fields(node, allowed=_FILTER, path=path)
    caps_node = _optional(fields, "caps")
    arches_node = _optional(fields, "arches")
    caps = ListOf(Str(max_len=64), 64).read(caps_node, fields.label("caps")) if caps_node else ()
    arches = ListOf(Str(max_len=64), 64).read(arches_node, fields.label("arches")) if arches_node else ()
    kernel: tuple[int, int] | None = None
    raw = _optional(fields, "minKernel")
    if raw is not None:
        text = Str(max_len=32).read(raw, fields.label("minKernel"))
        m = _KERNEL.fullmatch(text.strip())
        if not m:
            raise error_at(raw, f"{fields.label('minKernel')}: a kernel version like \"5.8\", not {token(text)}")
        kernel = (int(m.group(1)), int(m.group(2)))
    return Condition(tuple(caps), tuple(arches), kernel)


def _comparison(node: Node, path: str) -> Comparison:
    fields = Fields(node, allowed=_ARG, path=path)
    index = fields.need("index", Int(0, 5))
    op = fields.need("op", Choice(_OPS, what="comparison", fold=False))
    value = fields.get("value", Int(0, U64, text=False), 0)
    two = fields.get("valueTwo", Int(0, U64, text=False), 0)
    return Comparison(index, op, value, two, fields.pos())


def _entry(node: Node, i: int) -> Entry:
    path = f"syscalls[{i}]"
    fields = Fields(node, allowed=_ENTRY, path=path)
    name_node, names_node = _optional(fields, "name"), _optional(fields, "names")
    if name_node is not None and names_node is not None and not (isinstance(names_node, Array)
                                                                   and not names_node.items):
        raise fields.error("name", "`name` and `names` cannot both be given; use `names`")
    names: tuple[str, ...] = ()
    if names_node is not None:
        names = ListOf(_SYSCALL_NAME, MAX_NAMES).read(names_node, fields.label("names"))
    elif name_node is not None:
        names = (_SYSCALL_NAME.read(name_node, fields.label("name")),)
    action = _action(fields, "action", "errnoRet", "errno")
    args_node = _optional(fields, "args")
    args: tuple[Comparison, ...] = ()
    if args_node is not None:
        if not isinstance(args_node, Array):
            raise mismatch(args_node, fields.label("args"), "an array of argument comparisons")
        if len(args_node.items) > 64:
            raise error_at(args_node, f"{fields.label('args')}: more than 64 comparisons")
        args = tuple(_comparison(a, f"{path}.args[{j}]") for j, a in enumerate(args_node.items))
    comment_node = _optional(fields, "comment")
    comment = _TEXT.read(comment_node, fields.label("comment")) if comment_node is not None else ""
    return Entry(names, action, args, _condition(fields.node("includes"), f"{path}.includes"),
                 _condition(fields.node("excludes"), f"{path}.excludes"), comment,
                 fields.pos())


def _check_architectures(fields: Fields) -> None:
    arch_text = Str(max_len=64, pattern=re.compile(r"SCMP_ARCH_[A-Z0-9_]+"), shape="an SCMP_ARCH_* name")
    if fields.has("architectures") and fields.has("archMap") and not _absent(fields.node("architectures")) \
            and not _absent(fields.node("archMap")):
        raise fields.error("archMap", "`architectures` and `archMap` cannot both be given")
    node = _optional(fields, "architectures")
    if node is not None:
        ListOf(arch_text, 64).read(node, fields.label("architectures"))
    node = _optional(fields, "archMap")
    if node is not None:
        if not isinstance(node, Array):
            raise mismatch(node, fields.label("archMap"), "an array")
        for j, item in enumerate(node.items):
            sub = Fields(item, allowed=_ARCHMAP, path=f"archMap[{j}]")
            sub.need("architecture", arch_text)
            subs = _optional(sub, "subArchitectures")
            if subs is not None:
                ListOf(arch_text, 64).read(subs, sub.label("subArchitectures"))


def parse(text: str, name: str) -> Profile:
    """A profile from its text; ``name`` is what messages call the file."""
    root = parse_document(text, name, Format.JSON)
    return _profile(root, text, name)


def load(path: str) -> Profile:
    """Read a profile file (``-``: standard input); :class:`~ringfence.errors.UnreadableError` if it cannot be
    read, :class:`~ringfence.errors.InputError` at ``file:line:col`` if it is not a valid profile."""
    document = load_document(path, PROFILE_FILE, fmt=Format.JSON)
    return _profile(document.root, document.source.text, document.source.name)


def _profile(root: Node, text: str, name: str) -> Profile:
    top = Fields(root, allowed=_TOP, what="a seccomp profile")
    if not isinstance(root, Table):  # Fields already refused it; this tells mypy
        raise InputError("a seccomp profile is a JSON object", file=name)
    default = _action(top, "defaultAction", "defaultErrnoRet", "defaultErrno")
    _check_architectures(top)
    flags = _optional(top, "flags")
    if flags is not None:
        ListOf(Str(max_len=64), 16).read(flags, top.label("flags"))
    for key in ("listenerPath", "listenerMetadata"):
        node = _optional(top, key)
        if node is not None:
            Str(max_len=4096).read(node, top.label(key))
    calls = _optional(top, "syscalls")
    entries: tuple[Entry, ...] = ()
    if calls is not None:
        if not isinstance(calls, Array):
            raise mismatch(calls, top.label("syscalls"), "an array of entries")
        if len(calls.items) > MAX_ENTRIES:
            raise error_at(calls, f"{top.label('syscalls')}: more than {MAX_ENTRIES} entries")
        entries = tuple(_entry(item, i) for i, item in enumerate(calls.items))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Profile(default, entries, name, digest, MappingProxyType(plain(root)), root.pos)


# -- resolving for one container --------------------------------------------------------------------------------

#: The oldest kernel an io_uring policy applies to (task restrictions and filters arrived in 7.0).
POLICY_KERNEL: Final = (7, 0)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as libseccomp receives it: a system call, an action, comparisons that must all hold."""

    syscall: str
    action: Action
    args: tuple[Comparison, ...]
    entry: Entry

    @property
    def where(self) -> Pos:
        return self.entry.pos

    def describe(self) -> str:
        cond = " and ".join(str(c) for c in self.args)
        return f"{self.action} for {self.syscall}" + (f" when {cond}" if cond else "")


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry left out for this container, and why."""

    entry: Entry
    why: str


@dataclass(frozen=True, slots=True)
class Resolved:
    """The rules in force for one container: by system call name, in profile order."""

    profile: Profile
    caps: tuple[str, ...]
    arch: str
    default: Action
    rules: Mapping[str, tuple[Rule, ...]]
    skipped: tuple[Skipped, ...]
    same_as_default: tuple[Rule, ...]

    def rules_for(self, syscall: str) -> tuple[Rule, ...]:
        return self.rules.get(syscall, ())


def _kernel_applies(entry: Entry) -> tuple[bool, bool]:
    """Whether the entry's ``minKernel`` conditions hold on every kernel from :data:`POLICY_KERNEL` on, and on
    some such kernel (``includes``: from that version on; ``excludes``: before it)."""
    inc, exc = entry.includes.min_kernel, entry.excludes.min_kernel
    every = (inc is None or inc <= POLICY_KERNEL) and exc is None
    some = exc is None or exc > max(POLICY_KERNEL, inc or POLICY_KERNEL)
    return every, some


def _skip_reason(entry: Entry, caps: Collection[str], arch: str) -> str | None:
    """Why a runtime leaves the entry out for a container with ``caps`` on ``arch`` (None: it keeps it). Same
    order and meaning as Docker's and containers/common's: an excluded arch or any excluded capability held
    drops it; an include list of arches must name ``arch``, and every included capability must be held."""
    exc, inc = entry.excludes, entry.includes
    if exc.arches and arch in exc.arches:
        return f"excluded on {arch}"
    held = [c for c in exc.caps if c in caps]
    if held:
        return f"excluded with {held[0]}"
    if inc.arches and arch not in inc.arches:
        return f"only on {', '.join(inc.arches)}"
    missing = [c for c in inc.caps if c not in caps]
    if missing:
        return f"needs {', '.join(missing)}"
    return None


def _split(entry: Entry) -> tuple[tuple[Comparison, ...], ...]:
    """The comparison lists libseccomp receives for one entry: all of them in one rule, or, when an argument is
    compared more than once, one rule per comparison (runtimes do that: libseccomp takes one comparison per
    argument and rule)."""
    indexes = [c.index for c in entry.args]
    if len(indexes) != len(set(indexes)):
        return tuple((c,) for c in entry.args)
    return (entry.args,)


def resolve(profile: Profile, caps: Collection[str], arch: str) -> Resolved:
    """The rules in force for a container with ``caps`` on ``arch``, on any kernel from 7.0 on (a ``minKernel``
    condition keeps an allowing rule only if it holds on all of them, and a denying rule if it holds on one)."""
    rules: dict[str, list[Rule]] = {}
    skipped: list[Skipped] = []
    same: list[Rule] = []
    for entry in profile.entries:
        why = _skip_reason(entry, caps, arch)
        if why is None:
            every, some = _kernel_applies(entry)
            if entry.action.lets_through and not every:
                why = "not on every kernel from 7.0 on (minKernel)"
            elif not entry.action.lets_through and not some:
                why = "on no kernel from 7.0 on (minKernel)"
        if why is not None:
            skipped.append(Skipped(entry, why))
            continue
        for args in _split(entry):
            for name in entry.names:
                rule = Rule(name, entry.action, args, entry)
                if entry.action == profile.default:
                    same.append(rule)
                else:
                    rules.setdefault(name, []).append(rule)
    return Resolved(profile, tuple(caps), arch, profile.default,
                    MappingProxyType({k: tuple(v) for k, v in rules.items()}), tuple(skipped), tuple(same))


def verdict(resolved: Resolved, syscall: str, args: tuple[int, ...]) -> Action:
    """The action for one call, with overlapping rules resolved by precedence (the most restrictive action of
    the rules that match; the default when none does). The importer's reading of a profile, kept executable
    for tests."""
    matching = [r.action for r in resolved.rules_for(syscall)
                if all(c.holds(args[c.index] if c.index < len(args) else 0) for c in r.args)]
    if not matching:
        return resolved.default
    return min(matching, key=lambda a: a.act.rank)
