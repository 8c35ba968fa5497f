"""The only ctypes module: raw io_uring syscalls, prctl, unshare, and mirrors of the kernel structs.

Everything unsafe lives here (style anchor: seccompy's ``_syscall``). Each call exists twice: ``*_raw`` returns
the kernel's result or the negative errno, as liburing does, for callers that record outcomes (the scenario
backend); the plain form raises :class:`~ringfence.errors.KernelError` carrying the errno name.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
from typing import Final

from ringfence.errors import KernelError

# io_uring syscall numbers are shared by every architecture except alpha.
NR_IO_URING_SETUP: Final = 425
NR_IO_URING_ENTER: Final = 426
NR_IO_URING_REGISTER: Final = 427
NR_PIDFD_GETFD: Final = 438

PR_SET_NO_NEW_PRIVS: Final = 38
PR_GET_NO_NEW_PRIVS: Final = 39
CLONE_NEWNET: Final = 0x40000000
CLONE_NEWUSER: Final = 0x10000000
CAP_SYS_ADMIN: Final = 21

# mmap offsets and feature / enter bits of the io_uring UAPI
IORING_OFF_SQ_RING: Final = 0
IORING_OFF_CQ_RING: Final = 0x8000000
IORING_OFF_SQES: Final = 0x10000000
IORING_FEAT_SINGLE_MMAP: Final = 1 << 0
IORING_FEAT_EXT_ARG: Final = 1 << 8
IORING_ENTER_GETEVENTS: Final = 1 << 0
IORING_ENTER_SQ_WAKEUP: Final = 1 << 1
IORING_ENTER_EXT_ARG: Final = 1 << 3
IORING_SQ_NEED_WAKEUP: Final = 1 << 0
IO_URING_OP_SUPPORTED: Final = 1 << 0

if os.uname().machine not in ("x86_64", "aarch64"):  # pragma: no cover - the project models 64-bit Linux
    raise ImportError(f"ringfence.live supports x86_64 and aarch64, not {os.uname().machine}")

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_prctl = _libc.prctl
_prctl.restype = ctypes.c_int
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_mprotect = _libc.mprotect
_mprotect.restype = ctypes.c_int
_mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_unshare = _libc.unshare
_unshare.restype = ctypes.c_int
_unshare.argtypes = [ctypes.c_int]

u8, u16, u32, s32, u64, s64 = (ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64,
                               ctypes.c_int64)


class SqringOffsets(ctypes.Structure):
    """``struct io_sqring_offsets`` (40 bytes)."""

    _fields_ = [("head", u32), ("tail", u32), ("ring_mask", u32), ("ring_entries", u32), ("flags", u32),
                ("dropped", u32), ("array", u32), ("resv1", u32), ("user_addr", u64)]


class CqringOffsets(ctypes.Structure):
    """``struct io_cqring_offsets`` (40 bytes)."""

    _fields_ = [("head", u32), ("tail", u32), ("ring_mask", u32), ("ring_entries", u32), ("overflow", u32),
                ("cqes", u32), ("flags", u32), ("resv1", u32), ("user_addr", u64)]


class Params(ctypes.Structure):
    """``struct io_uring_params`` (120 bytes): in: flags; out: sizes, features and mmap offsets."""

    _fields_ = [("sq_entries", u32), ("cq_entries", u32), ("flags", u32), ("sq_thread_cpu", u32),
                ("sq_thread_idle", u32), ("features", u32), ("wq_fd", u32), ("resv", u32 * 3),
                ("sq_off", SqringOffsets), ("cq_off", CqringOffsets)]


class Sqe(ctypes.Structure):
    """``struct io_uring_sqe`` (64 bytes), unions flattened to the member each opcode here uses."""

    _fields_ = [("opcode", u8), ("flags", u8), ("ioprio", u16), ("fd", s32), ("off", u64), ("addr", u64),
                ("len", u32), ("op_flags", u32), ("user_data", u64), ("buf_index", u16), ("personality", u16),
                ("file_index", s32), ("addr3", u64), ("pad2", u64)]


class Cqe(ctypes.Structure):
    """``struct io_uring_cqe`` (16 bytes)."""

    _fields_ = [("user_data", u64), ("res", s32), ("flags", u32)]


class ProbeOp(ctypes.Structure):
    """``struct io_uring_probe_op`` (8 bytes)."""

    _fields_ = [("op", u8), ("resv", u8), ("flags", u16), ("resv2", u32)]


PROBE_OPS: Final = 256


class Probe(ctypes.Structure):
    """``struct io_uring_probe`` with room for every possible opcode."""

    _fields_ = [("last_op", u8), ("ops_len", u8), ("resv", u16), ("resv2", u32 * 3), ("ops", ProbeOp * PROBE_OPS)]


class KernelTimespec(ctypes.Structure):
    _fields_ = [("tv_sec", s64), ("tv_nsec", s64)]


class GeteventsArg(ctypes.Structure):
    """``struct io_uring_getevents_arg``, passed with ``IORING_ENTER_EXT_ARG`` to bound a wait."""

    _fields_ = [("sigmask", u64), ("sigmask_sz", u32), ("min_wait_usec", u32), ("ts", u64)]


class Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class OpenHow(ctypes.Structure):
    """``struct open_how`` for OPENAT2 (24 bytes)."""

    _fields_ = [("flags", u64), ("mode", u64), ("resolve", u64)]


class QueryHeader(ctypes.Structure):
    """``struct io_uring_query_hdr`` of ``IORING_REGISTER_QUERY`` (40 bytes)."""

    _fields_ = [("next_entry", u64), ("query_data", u64), ("query_op", u32), ("size", u32), ("result", s32),
                ("resv", u32 * 3)]


class QueryOpcodes(ctypes.Structure):
    """Query op 0 (``IO_URING_QUERY_OPCODES``); the tail is room for fields newer kernels add."""

    _fields_ = [("nr_request_opcodes", u32), ("nr_register_opcodes", u32), ("feature_flags", u64),
                ("ring_setup_flags", u64), ("enter_flags", u64), ("sqe_flags", u64), ("more", u64 * 8)]


for _t, _n in ((SqringOffsets, 40), (CqringOffsets, 40), (Params, 120), (Sqe, 64), (Cqe, 16), (ProbeOp, 8),
               (GeteventsArg, 24), (OpenHow, 24), (QueryHeader, 40)):
    if ctypes.sizeof(_t) != _n:  # pragma: no cover - guards the declarations
        raise AssertionError(f"{_t.__name__} is {ctypes.sizeof(_t)} bytes, expected {_n}")


def address(obj: ctypes.Array[ctypes.c_char] | ctypes.Structure | ctypes.Array[Iovec] | None) -> int:
    """The user address of a ctypes object, or 0 (NULL) for None."""
    return 0 if obj is None else ctypes.addressof(obj)


def _raw(nr: int, *args: int) -> int:
    result = int(_syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args)))
    return -ctypes.get_errno() if result == -1 else result


def _checked(result: int, operation: str) -> int:
    if result < 0:
        raise KernelError(-result, operation)
    return result


def setup_raw(entries: int, params: Params) -> int:
    """``io_uring_setup``: the new ring fd, or ``-errno``."""
    return _raw(NR_IO_URING_SETUP, entries, ctypes.addressof(params))


def setup(entries: int, params: Params) -> int:
    return _checked(setup_raw(entries, params), "io_uring_setup")


def enter_raw(fd: int, to_submit: int, min_complete: int, flags: int, *, arg: int = 0, argsz: int = 0) -> int:
    """``io_uring_enter``: SQEs consumed (or events), or ``-errno``."""
    return _raw(NR_IO_URING_ENTER, fd, to_submit, min_complete, flags, arg, argsz)


def enter(fd: int, to_submit: int, min_complete: int, flags: int, *, arg: int = 0, argsz: int = 0) -> int:
    return _checked(enter_raw(fd, to_submit, min_complete, flags, arg=arg, argsz=argsz), "io_uring_enter")


def pidfd_getfd_raw(pidfd: int, target_fd: int) -> int:
    """``pidfd_getfd(2)``: a duplicate (close-on-exec) of another process's descriptor, or ``-errno``."""
    return _raw(NR_PIDFD_GETFD, pidfd, target_fd, 0)


def register_raw(fd: int, opcode: int, arg: int, nr_args: int) -> int:
    """``io_uring_register`` (``fd == -1`` is the blind, per-task path): result or ``-errno``."""
    injected = _FAULTS.next_register()
    if injected:
        return -injected
    return _raw(NR_IO_URING_REGISTER, fd, opcode & 0xFFFFFFFF, arg, nr_args)


class _Faults:
    """A test seam: ``RINGFENCE_FAULT=register:N[:ERRNO]`` makes this process's Nth ``io_uring_register`` call
    (1-based) fail with ``ERRNO`` (default ``EIO``) without reaching the kernel.

    It exists so tests can show that a sandbox is never half-applied. It can only make a call fail, never
    succeed, so it cannot weaken a sandbox: at worst the command does not run.
    """

    def __init__(self, spec: str) -> None:
        self.target = self.errno = self.count = 0
        kind, _, rest = spec.partition(":")
        if spec and (kind != "register" or not rest):
            raise ValueError(f"RINGFENCE_FAULT={spec!r}: expected register:N[:ERRNO]")
        if spec:
            number, _, name = rest.partition(":")
            if not number.isdigit() or int(number) < 1:
                raise ValueError(f"RINGFENCE_FAULT={spec!r}: N must be a call number from 1")
            self.target = int(number)
            if name and not isinstance(getattr(errno, name, None), int):
                raise ValueError(f"RINGFENCE_FAULT: {name!r} is not an errno name")
            self.errno = getattr(errno, name) if name else errno.EIO

    def next_register(self) -> int:
        if not self.target:
            return 0
        self.count += 1
        return self.errno if self.count == self.target else 0


_FAULTS = _Faults(os.environ.get("RINGFENCE_FAULT", ""))


def register(fd: int, opcode: int, arg: int, nr_args: int, operation: str = "") -> int:
    return _checked(register_raw(fd, opcode, arg, nr_args), operation or f"io_uring_register(op {opcode & 0x7fffffff})")


def mprotect(address: int, length: int, prot: int) -> None:
    """``mprotect(2)`` on memory this process mapped; raises :class:`KernelError`."""
    if _mprotect(address, length, prot) != 0:
        raise KernelError(ctypes.get_errno(), "mprotect")


class ReadOnlyPage:
    """A private page holding ``data`` that nobody can write, not even the kernel on the caller's behalf.

    Passing a structure from here shows whether the kernel *tries* to write into it: the write faults and the
    call fails with ``EFAULT`` at that point instead.
    """

    def __init__(self, data: bytes) -> None:
        if len(data) > mmap.PAGESIZE:
            raise ValueError("more than one page")
        self._map = mmap.mmap(-1, mmap.PAGESIZE)
        self._map.write(data)
        view = ctypes.c_char.from_buffer(self._map)
        self.address = ctypes.addressof(view)
        del view  # release the buffer export so that the mapping can be closed later
        if _mprotect(self.address, mmap.PAGESIZE, mmap.PROT_READ) != 0:
            raise KernelError(ctypes.get_errno(), "mprotect")

    def close(self) -> None:
        self._map.close()


def seccomp_filter(program: bytes) -> None:
    """Install a seccomp filter on the calling thread (``prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)``).

    The caller sets no_new_privs first (or has CAP_SYS_ADMIN). Irreversible.
    """
    count = len(program) // 8
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(count, ctypes.addressof(buf))
    if _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        raise KernelError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


class _SockFprog(ctypes.Structure):
    """``struct sock_fprog``: the length and address of a classic-BPF program."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


PR_SET_SECCOMP: Final = 22
SECCOMP_MODE_FILTER: Final = 2


def set_no_new_privs() -> None:
    """``prctl(PR_SET_NO_NEW_PRIVS, 1)`` for the calling thread (irreversible; inherited by its children)."""
    if _prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise KernelError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def no_new_privs() -> bool:
    """Whether the calling thread has no_new_privs."""
    result = _prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
    if result < 0:
        raise KernelError(ctypes.get_errno(), "prctl(PR_GET_NO_NEW_PRIVS)")
    return bool(result)


def unshare(flags: int) -> None:
    """``unshare(2)`` for the calling thread."""
    if _unshare(flags) != 0:
        raise KernelError(ctypes.get_errno(), f"unshare({flags:#x})")


def effective_caps() -> int:
    """The calling thread's effective capability mask (``CapEff`` of ``/proc/thread-self/status``)."""
    with open("/proc/thread-self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    raise RuntimeError("no CapEff line in /proc/thread-self/status")  # pragma: no cover


def has_cap_sys_admin() -> bool:
    return bool(effective_caps() >> CAP_SYS_ADMIN & 1)


def netns_inode() -> int:
    """Inode of the calling thread's network namespace: equal inodes mean the same namespace."""
    return os.stat("/proc/thread-self/ns/net").st_ino


# --- namespaces, mounts and capabilities: what the scenario harness contains its agents with --------------------

CLONE_NEWNS: Final = 0x00020000
CLONE_NEWUTS: Final = 0x04000000
CLONE_NEWIPC: Final = 0x08000000
CLONE_NEWPID: Final = 0x20000000
MS_RDONLY: Final = 0x1
MS_NOSUID: Final = 0x2
MS_NODEV: Final = 0x4
MS_NOEXEC: Final = 0x8
MS_REMOUNT: Final = 0x20
MS_NOATIME: Final = 0x400
MS_NODIRATIME: Final = 0x800
MS_BIND: Final = 0x1000
MS_REC: Final = 0x4000
MS_PRIVATE: Final = 0x40000
MS_RELATIME: Final = 0x200000
MNT_DETACH: Final = 0x2
PR_SET_PDEATHSIG: Final = 1
PR_SET_DUMPABLE: Final = 4
PR_CAPBSET_DROP: Final = 24
PR_CAP_AMBIENT: Final = 47
PR_CAP_AMBIENT_CLEAR_ALL: Final = 4
CAP_LAST_CAP_FILE: Final = "/proc/sys/kernel/cap_last_cap"
_LINUX_CAPABILITY_VERSION_3: Final = 0x20080522
_NR_PIVOT_ROOT: Final = {"x86_64": 155, "aarch64": 41}[os.uname().machine]

_mount = _libc.mount
_mount.restype = ctypes.c_int
_mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_umount2 = _libc.umount2
_umount2.restype = ctypes.c_int
_umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _b(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """``mount(2)``; raises :class:`KernelError` naming the target."""
    if _mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
        raise KernelError(ctypes.get_errno(), f"mount({target!r})")


def umount2(target: str, flags: int) -> None:
    if _umount2(_b(target), flags) != 0:
        raise KernelError(ctypes.get_errno(), f"umount2({target!r})")


def pivot_root(new_root: str, put_old: str) -> None:
    """``pivot_root(2)`` (no libc wrapper)."""
    new, old = ctypes.c_char_p(os.fsencode(new_root)), ctypes.c_char_p(os.fsencode(put_old))
    result = int(_syscall(ctypes.c_long(_NR_PIVOT_ROOT), new, old))
    if result != 0:
        raise KernelError(ctypes.get_errno(), "pivot_root")


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    if _prctl(option, arg2, arg3, 0, 0) != 0:
        raise KernelError(ctypes.get_errno(), f"prctl({option})")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", u32), ("pid", s32)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", u32), ("permitted", u32), ("inheritable", u32)]


def last_cap() -> int:
    """The highest capability number the running kernel knows."""
    with open(CAP_LAST_CAP_FILE) as f:
        return int(f.read())


def limit_caps(keep: int) -> None:
    """Cut the calling thread's capabilities to the mask ``keep``: bounding set (so exec cannot regain the rest),
    permitted and effective; inheritable and ambient empty."""
    for cap in range(last_cap() + 1):
        if not keep >> cap & 1:
            prctl(PR_CAPBSET_DROP, cap)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        word = keep >> (32 * i) & 0xFFFFFFFF
        data[i].effective, data[i].permitted, data[i].inheritable = word, word, 0
    if _libc.capset(ctypes.byref(header), ctypes.byref(data)) != 0:
        raise KernelError(ctypes.get_errno(), "capset")
