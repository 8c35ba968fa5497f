"""The seccomp filter of a contained agent: the calls that would undo the containment or reach the whole kernel fail.

It is a deny list, not an allow list: the agent is a Python interpreter whose own system calls are many and
change between versions, while the calls below are what root inside the agents' namespaces could use against the
containment or the host (mounting, changing root, entering or making namespaces, tracing, modules, kexec, BPF,
performance counters, keyrings, clocks). They fail with EPERM. Two calls are allowed narrowly because scenario
steps need them: ``unshare`` with exactly ``CLONE_NEWUSER`` (the ``userns`` step; a nested user namespace gives
no power outside the agents' own), and ``pidfd_getfd`` (the ``pass_ring`` step; the agents' PID namespace holds
only the scenario's own agents, so no other process can be named). io_uring requests are not system calls and pass
seccomp by design; the namespaces contain them. Calls under any other calling convention (x32, i386 compat on
x86-64) fail with ENOSYS, so a filter keyed on native numbers cannot be bypassed by changing convention.
The numbers are those of the kernel's UAPI headers (``asm/unistd_64.h``, ``asm-generic/unistd.h``).
"""

from __future__ import annotations

import errno
import functools
import platform
from collections.abc import Mapping
from typing import Final

from ringfence.abi import seccomp
from ringfence.bpf.builder import Builder, Built
from ringfence.bpf.check import check
from ringfence.bpf.insn import ABS, JEQ, JGE, LD, Instruction, W
from ringfence.bpf.target import SECCOMP
from ringfence.live import _sys

AUDIT_ARCH_AARCH64: Final = 0xC00000B7

#: name: (x86-64 number, aarch64 number)
DENIED: Final[Mapping[str, tuple[int, int]]] = {
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51),
    "open_tree": (428, 428), "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442),
    "setns": (308, 268),
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271), "kcmp": (312, 272),
    "init_module": (175, 105), "finit_module": (313, 273), "delete_module": (176, 106),
    "kexec_load": (246, 104), "kexec_file_load": (320, 294), "reboot": (169, 142),
    "bpf": (321, 280), "perf_event_open": (298, 241), "userfaultfd": (323, 282),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264),
    "swapon": (167, 224), "swapoff": (168, 225), "acct": (163, 89), "quotactl": (179, 60),
    "quotactl_fd": (443, 443),
    "settimeofday": (164, 170), "clock_settime": (227, 112), "adjtimex": (159, 171), "clock_adjtime": (305, 266),
    "sethostname": (170, 161), "setdomainname": (171, 162), "syslog": (103, 116),
    "fanotify_init": (300, 262), "lookup_dcookie": (212, 18), "vhangup": (153, 58),
}
#: ``unshare`` is allowed with exactly this flag word (and denied with any other).
UNSHARE: Final = (272, 97)
_ARG0_LOW, _ARG0_HIGH = 16, 20     # seccomp_data.args[0], little-endian halves
_ARCHES: Final = {"x86_64": (seccomp.AUDIT_ARCH_X86_64, 0), "aarch64": (AUDIT_ARCH_AARCH64, 1)}


@functools.cache
def code() -> bytes:
    """This machine's filter as ``sock_filter`` bytes, built and checked once per process (before the forks)."""
    return program().program.to_bytes()


def program(machine: str | None = None) -> Built:
    """The filter for ``machine`` (default: this one), checked by the seccomp checker."""
    arch, column = _ARCHES[machine or platform.machine()]
    allow = int(seccomp.SeccompAction.ALLOW)
    eperm = int(seccomp.SeccompAction.ERRNO) | errno.EPERM
    enosys = int(seccomp.SeccompAction.ERRNO) | errno.ENOSYS
    b = Builder()
    native, other, denied, allowed = b.label("native"), b.label("other"), b.label("deny"), b.label("allow")
    unshare = b.label("unshare")
    b.emit(Instruction(LD | W | ABS, k=4), "the calling convention")
    b.jump(JEQ, arch, native, other)
    b.place(native)
    b.emit(Instruction(LD | W | ABS, k=0), "the system call number")
    if column == 0:
        b.jump(JGE, seccomp.X32_SYSCALL_BIT, other, None, "x32 numbers")
    b.jump(JEQ, UNSHARE[column], unshare, None, "unshare")
    for name, numbers in sorted(DENIED.items(), key=lambda kv: kv[1][column]):
        b.jump(JEQ, numbers[column], denied, None, name)
    b.ja(allowed)
    b.place(unshare)
    b.emit(Instruction(LD | W | ABS, k=_ARG0_HIGH), "unshare's flags, high half")
    low = b.label("low")
    b.jump(JEQ, 0, low, denied)
    b.place(low)
    b.emit(Instruction(LD | W | ABS, k=_ARG0_LOW), "unshare's flags, low half")
    b.jump(JEQ, _sys.CLONE_NEWUSER, allowed, denied, "CLONE_NEWUSER alone: the userns step")
    b.place(denied)
    b.ret(eperm, "a call that would undo the containment or reach the whole kernel")
    b.place(allowed)
    b.ret(allow, "every other system call")
    b.place(other)
    b.ret(enosys, "another calling convention: every call fails")
    built = b.build_annotated()
    check(built.program, target=SECCOMP)
    return built
