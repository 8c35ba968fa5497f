"""Ask the running kernel whether it accepts a classic-BPF program as a seccomp filter (test helper, ctypes).

Each question runs in a forked child, because an accepted filter stays installed for the rest of that
process and may forbid every further system call, ``exit_group`` included. The answer is read from how
the child ends, never from anything it would have to do after installing:

* before installing, a failure exits with ``64 + errno`` (no filter is installed, so exiting works);
* after a successful install the child calls ``_exit(0)``. The filter decides what happens to that
  call: it exits 0, or the filter kills it (SIGSYS), or refuses both exit calls so that glibc's
  ``_exit`` falls through to ``hlt`` (SIGSEGV). Every one of those outcomes means "accepted";
* any other exit code is a bug in this helper, and a child still alive after the timeout is a hang.

Core dumps are disabled in the child (``PR_SET_DUMPABLE`` 0, ``RLIMIT_CORE`` 0): killed children must
not leave ``core`` files behind.

Forking a test runner's large process for every program is slow, so :class:`Session` starts this file
as a small server (standard library only) that forks per program and answers over a pipe.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import select
import signal
import struct
import subprocess
import sys
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal

# The server imports nothing of ringfence: these restate ringfence.abi.seccomp (a test checks they agree).
NR_SECCOMP_X86_64: Final = 317
PR_SET_NO_NEW_PRIVS: Final = 38
PR_SET_SECCOMP: Final = 22
SECCOMP_MODE_FILTER: Final = 2
SECCOMP_SET_MODE_FILTER: Final = 1

PR_SET_DUMPABLE: Final = 4
_REJECTED_BASE: Final = 64
_EXIT_BEFORE_INSTALL_BUG: Final = 3
_EXIT_NO_NEW_PRIVS: Final = 5
_EXIT_AFTER_INSTALL: Final = 4

Method = Literal["seccomp", "prctl"]


class SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    errno_name: str | None  # for a refusal
    how: str                # "exit 0", "signal SIGSYS", "errno EINVAL", ...


_libc = ctypes.CDLL(None, use_errno=True)


def available() -> str | None:
    """None if this machine can run the differential, else why not."""
    if os.uname().machine != "x86_64":
        return "the seccomp differential uses x86-64 system call numbers"
    try:
        with open("/proc/self/status") as f:
            if not any(line.startswith("Seccomp:") for line in f):
                return "the kernel has no seccomp"
    except OSError as exc:
        return f"cannot read /proc/self/status: {exc}"
    return None


def _child(data: bytes, count: int, method: Method) -> None:
    """Runs in the forked child; never returns."""
    installed = False
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        ulong = ctypes.c_ulong
        _libc.prctl(ctypes.c_int(PR_SET_DUMPABLE), ulong(0), ulong(0), ulong(0), ulong(0))
        if _libc.prctl(ctypes.c_int(PR_SET_NO_NEW_PRIVS), ulong(1), ulong(0), ulong(0), ulong(0)) != 0:
            os._exit(_EXIT_NO_NEW_PRIVS)
        buf = ctypes.create_string_buffer(data or b"\0", max(len(data), 8))
        prog = SockFprog(count, ctypes.addressof(buf))
        exit_now = _libc._exit
        if method == "seccomp":
            rc = _libc.syscall(ctypes.c_long(NR_SECCOMP_X86_64), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                               ctypes.c_long(0), ctypes.byref(prog))
        else:
            rc = _libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog),
                             ulong(0), ulong(0))
        if rc == 0:
            installed = True
            exit_now(0)
        os._exit(_REJECTED_BASE + ctypes.get_errno())
    finally:
        os._exit(_EXIT_AFTER_INSTALL if installed else _EXIT_BEFORE_INSTALL_BUG)


def install(data: bytes, *, count: int | None = None, method: Method = "seccomp",
            timeout: float = 10.0) -> Outcome:
    """Whether the kernel installs ``data`` (raw ``sock_filter`` bytes; ``count`` defaults to its length)."""
    n = len(data) // 8 if count is None else count
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        _child(data, n, method)
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise TimeoutError(f"seccomp child for a {n}-instruction program hung")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return Outcome(True, None, f"signal {signal.Signals(os.WTERMSIG(status)).name}")
    code = os.WEXITSTATUS(status)
    if code in (0, _EXIT_AFTER_INSTALL):
        return Outcome(True, None, f"exit {code}")
    if code >= _REJECTED_BASE:
        name = errno.errorcode.get(code - _REJECTED_BASE, str(code - _REJECTED_BASE))
        return Outcome(False, name, f"errno {name}")
    if code == _EXIT_NO_NEW_PRIVS:
        raise RuntimeError("prctl(PR_SET_NO_NEW_PRIVS) failed")
    raise RuntimeError(f"seccomp child exited {code} before installing: a bug in the helper")


_REQUEST: Final = struct.Struct("=BII")  # method (0 seccomp, 1 prctl), count, byte length


def _serve() -> None:
    """Server loop: one request per program on stdin, one ``accepted errno how`` line per answer on stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout
    while head := stdin.read(_REQUEST.size):
        method, count, size = _REQUEST.unpack(head)
        data = stdin.read(size)
        try:
            out = install(data, count=count, method="prctl" if method else "seccomp")
            stdout.write(f"{int(out.accepted)} {out.errno_name or '-'} {out.how.replace(' ', '_')}\n")
        except (TimeoutError, RuntimeError) as exc:
            stdout.write(f"E - {str(exc).replace(' ', '_')}\n")
        stdout.flush()


class Session:
    """A running server; ``ask()`` installs one program in a fresh child of it."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-I", "-S", __file__, "--serve"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=30)

    def ask(self, data: bytes, *, count: int | None = None, method: Method = "seccomp") -> Outcome:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        n = len(data) // 8 if count is None else count
        self._proc.stdin.write(_REQUEST.pack(method == "prctl", n, len(data)) + data)
        self._proc.stdin.flush()
        accepted, name, how = self._proc.stdout.readline().decode().split()
        if accepted == "E":
            raise RuntimeError(how.replace("_", " "))
        return Outcome(accepted == "1", None if name == "-" else name, how.replace("_", " "))


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    _serve()
