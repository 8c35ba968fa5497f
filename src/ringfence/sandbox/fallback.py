"""The fallback for kernels without per-task io_uring sandboxing: a seccomp filter that makes io_uring unavailable.

``io_uring_setup``, ``io_uring_enter`` and ``io_uring_register`` fail with a chosen errno (``ENOSYS`` by
default), so programs fall back to ordinary system calls; every other system call is allowed. The filter checks
the architecture first: x86-64 calls, x32 calls (x86-64 with bit 0x40000000 in the number) and i386 compat
calls are each matched on their own numbers; any other architecture fails every system call with the same
errno rather than passing unexamined. It denies, it never kills. It is written with ringfence's own cBPF
toolchain over ``struct seccomp_data`` and checked by the seccomp checker before it is installed.
"""

from __future__ import annotations

import errno as _errno
from typing import Final

from ringfence.abi import seccomp
from ringfence.bpf.builder import Builder, Built
from ringfence.bpf.check import check
from ringfence.bpf.insn import ABS, ALU, AND, JEQ, JGE, JGT, LD, Instruction, K, W
from ringfence.bpf.target import SECCOMP

_NR: Final = 0
_ARCH: Final = 4
_FIRST, _LAST = min(seccomp.IO_URING_SYSCALLS.values()), max(seccomp.IO_URING_SYSCALLS.values())
DEFAULT_ERRNO: Final = _errno.ENOSYS


def program(errno: int = DEFAULT_ERRNO) -> Built:
    """The filter: ERRNO(``errno``) for the io_uring system calls under every x86 calling convention."""
    if not 1 <= errno <= seccomp.MAX_ERRNO:
        raise ValueError(f"errno {errno} is outside 1..{seccomp.MAX_ERRNO}")
    deny = int(seccomp.SeccompAction.ERRNO) | errno
    allow = int(seccomp.SeccompAction.ALLOW)
    b = Builder()
    x86_64, i386, other = b.label("x86_64"), b.label("i386"), b.label("other")
    in_range, above, denied, allowed = b.label("io_uring"), b.label("above"), b.label("deny"), b.label("allow")
    b.emit(Instruction(LD | W | ABS, k=_ARCH), "the calling convention")
    b.jump(JEQ, seccomp.AUDIT_ARCH_X86_64, x86_64, None)
    b.jump(JEQ, seccomp.AUDIT_ARCH_I386, i386, other)
    b.place(x86_64)
    b.emit(Instruction(LD | W | ABS, k=_NR), "x86-64 and x32: the number without the x32 bit")
    b.emit(Instruction(ALU | AND | K, k=~seccomp.X32_SYSCALL_BIT & 0xFFFFFFFF))
    b.ja(in_range)
    b.place(i386)
    b.emit(Instruction(LD | W | ABS, k=_NR), "i386: the io_uring calls have the same numbers")
    b.place(in_range)
    b.jump(JGE, _FIRST, above, allowed)
    b.place(above)
    b.jump(JGT, _LAST, allowed, denied)
    b.place(denied)
    b.ret(deny, "io_uring_setup, io_uring_enter, io_uring_register: fail with the chosen errno")
    b.place(allowed)
    b.ret(allow, "every other system call")
    b.place(other)
    b.ret(deny, "an architecture this filter does not know: fail every call rather than pass it unexamined")
    built = b.build_annotated()
    check(built.program, target=SECCOMP)
    return built


def install(errno: int = DEFAULT_ERRNO) -> None:
    """Set no_new_privs and install the filter on the calling thread (irreversible; inherited across exec)."""
    from ringfence.live import _sys

    code = program(errno).program.to_bytes()
    if not _sys.no_new_privs():
        _sys.set_no_new_privs()
    _sys.seccomp_filter(code)
