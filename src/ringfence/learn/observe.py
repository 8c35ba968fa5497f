"""Run a workload where the kernel can be watched: traced from its first instruction, with observer filters.

The workload is forked, waits until tracing follows it, installs an allow-all filter for every opcode whose
filter context carries arguments (so the kernel builds that context, and the probes can read it), and then
execs the command (or calls a function, for tests). Observer filters allow everything and stack under any
sandbox the workload applies later, so they change no verdict.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
from collections.abc import Callable, Sequence

from ringfence.abi.layout import FilterRegistration
from ringfence.abi.opcodes import RegisterOp
from ringfence.learn.seen import CONTEXT_OPS
from ringfence.learn.tracefs import Session
from ringfence.live import _sys, task

#: ``ret #1``: allow.
ALLOW_ALL = struct.pack("<HBBI", 0x06, 0, 0, 1)


def filters_supported() -> bool:
    """Whether this kernel takes per-task io_uring filters (a blind call cannot change anything)."""
    return task.blind_support(RegisterOp.BPF_FILTER) in ("EFAULT", "EACCES")


def install_observers() -> None:
    """Allow-all filters on this task for the opcodes with a context (irreversible; the task is the workload)."""
    task.apply(filters=[FilterRegistration(op, ALLOW_ALL) for op in sorted(CONTEXT_OPS)],
               set_nnp=not _sys.has_cap_sys_admin())


def run(target: Sequence[str] | Callable[[], int], session: Session, *, observers: bool,
        poll: Callable[[float], None] | None = None, who: str = "learn") -> int:
    """Run ``target`` traced by ``session``; its exit status (128 + signal when killed, 127 not found).
    ``observers``: install allow-all filters in the workload first (learn; watch must not change what is
    built). ``poll``: called with a timeout while the workload runs (watch reads the trace as it comes)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the workload
        os.close(w)
        os.read(r, 1)
        os.close(r)
        try:
            if observers:
                install_observers()
            if callable(target):
                os._exit(target())
            os.execvp(target[0], list(target))
        except FileNotFoundError:
            print(f"ringfence {who}: {target[0] if not callable(target) else 'target'}: command not found",
                  file=sys.stderr)
            os._exit(127)
        except BaseException as exc:
            print(f"ringfence {who}: the workload could not start: {exc}", file=sys.stderr)
            os._exit(126)
    os.close(r)
    try:
        session.follow(pid)
        session.start()
    except BaseException:
        os.kill(pid, 9)  # never run the workload unobserved
        os.waitpid(pid, 0)
        os.close(w)
        raise
    os.write(w, b"g")
    os.close(w)
    try:
        if poll is None:
            _, status = os.waitpid(pid, 0)
        else:
            while not (done := os.waitpid(pid, os.WNOHANG))[0]:
                poll(0.2)
            status = done[1]
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): the workload does not outlive its observer
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise
    session.stop()
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP (what `timeout` and a closed terminal send) unwind like Ctrl-C, so the tracefs
    instance is removed and the workload killed instead of left behind."""
    def _stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
