"""libseccomp itself, as the oracle for what a seccomp profile means: the filter a container runtime would install.

A profile's JSON is turned into libseccomp rules the way Docker and containers/common do it (written here again,
independently of :mod:`ringfence.policy.seccomp_profile`): entries kept or dropped by ``includes``/``excludes``
for the capabilities and architecture, an entry comparing one argument twice split into one rule per comparison,
a rule whose action is the default action skipped, names the native architecture does not have ignored. The
filter libseccomp generates is exported and run by ringfence's seccomp interpreter on ``seccomp_data`` values.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ringfence.abi.seccomp import SeccompData
from ringfence.bpf import Program, check, run
from ringfence.bpf.check import CheckedProgram
from ringfence.bpf.target import SECCOMP

_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
        "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
_ACTIONS = {"SCMP_ACT_KILL": 0x0, "SCMP_ACT_KILL_THREAD": 0x0, "SCMP_ACT_KILL_PROCESS": 0x80000000,
            "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
            "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_NOTIFY": 0x7FC00000}
ALLOW = 0x7FFF0000
LOG = 0x7FFC0000


class _Cmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def _library() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_Cmp)]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    return lib


LIB = _library()


def available() -> bool:
    return LIB is not None


def syscall_number(name: str) -> int | None:
    """The native (x86-64) number, None for a name the architecture does not have."""
    assert LIB is not None
    nr = int(LIB.seccomp_syscall_resolve_name(name.encode()))
    return nr if nr >= 0 else None


def _errno_value(entry: Mapping[str, Any], ret_key: str, name_key: str) -> int:
    named = entry.get(name_key)
    if named:
        return int(named) if str(named).isdigit() else int(getattr(errno, str(named)))
    value = entry.get(ret_key)
    return errno.EPERM if value is None else int(value)


def action_value(entry: Mapping[str, Any], *, default: bool = False) -> int:
    act = entry["defaultAction" if default else "action"]
    base = _ACTIONS[act]
    if act in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        keys = ("defaultErrnoRet", "defaultErrno") if default else ("errnoRet", "errno")
        return base | (_errno_value(entry, *keys) & 0xFFFF)
    return base


def _kept(entry: Mapping[str, Any], caps: Collection[str], arch: str) -> bool:
    """Docker's and containers/common's test, in their order."""
    inc, exc = entry.get("includes") or {}, entry.get("excludes") or {}
    if exc.get("arches") and arch in exc["arches"]:
        return False
    if any(c in caps for c in exc.get("caps") or ()):
        return False
    if exc.get("minKernel"):
        return False  # 7.x is newer than any bound a profile has today
    if inc.get("arches") and arch not in inc["arches"]:
        return False
    if any(c not in caps for c in inc.get("caps") or ()):
        return False
    if inc.get("minKernel"):
        major, minor = (int(x) for x in str(inc["minKernel"]).split("."))
        return (major, minor) <= (7, 0)
    return True


@dataclass
class Filter:
    """The exported filter, and what libseccomp said about each rule it refused (``rule index: errno``)."""

    program: CheckedProgram
    default: int
    refused: dict[str, int] = field(default_factory=dict)
    code: bytes = b""

    def action(self, syscall: str, args: tuple[int, ...] = ()) -> int:
        """The filter's full return value (action | data) for one x86-64 call."""
        nr = syscall_number(syscall)
        assert nr is not None, syscall
        padded = (*args, 0, 0, 0, 0, 0, 0)[:6]
        return run(self.program, SeccompData(nr=nr, args=padded).pack()).value  # type: ignore[arg-type]

    def lets_through(self, syscall: str, args: tuple[int, ...] = ()) -> bool:
        return self.action(syscall, args) & 0xFFFF0000 in (ALLOW, LOG)


def build(profile: Mapping[str, Any], caps: Collection[str], arch: str = "amd64") -> Filter:
    """The filter a runtime installs for ``profile`` (the JSON as Python data), native architecture only."""
    assert LIB is not None
    default = action_value(profile, default=True)
    ctx = LIB.seccomp_init(default)
    assert ctx, "seccomp_init failed"
    refused: dict[str, int] = {}
    try:
        for i, entry in enumerate(profile.get("syscalls") or ()):
            if not _kept(entry, caps, arch):
                continue
            act = action_value(entry)
            if act == default:
                continue
            args = entry.get("args") or []
            indexes = [a["index"] for a in args]
            groups = [[a] for a in args] if len(indexes) != len(set(indexes)) else [args]
            names = entry.get("names") or ([entry["name"]] if entry.get("name") else [])
            for name in names:
                nr = syscall_number(name)
                if nr is None:
                    continue
                for group in groups:
                    cmps = (_Cmp * max(1, len(group)))(*[
                        _Cmp(a["index"], _OPS[a["op"]], a.get("value", 0), a.get("valueTwo", 0)) for a in group])
                    rc = LIB.seccomp_rule_add_array(ctx, act, nr, len(group), cmps)
                    if rc < 0:
                        refused[f"{i}:{name}"] = -rc
        with tempfile.TemporaryFile() as out:
            assert LIB.seccomp_export_bpf(ctx, out.fileno()) == 0
            out.seek(0)
            code = out.read()
    finally:
        LIB.seccomp_release(ctx)
    return Filter(check(Program.from_bytes(code), target=SECCOMP), default, refused, code)

