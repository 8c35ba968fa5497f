"""The kernel's observation points, set up in a tracefs instance of our own and removed afterwards.

* the io_uring tracepoints ``io_uring_submit_req`` (opcode, request flags), ``io_uring_req_failed`` (a request
  refused before issue, with its errno) and ``io_uring_complete`` (the result);
* function-exit probes (fprobe events with BTF argument access) on the kernel's per-opcode filter-context builders
  ``io_socket_bpf_populate``, ``io_openat_bpf_populate`` and ``io_connect_bpf_populate``: at their return the
  context they were handed holds exactly what a filter will read. They run only for opcodes that have a filter,
  which is why learning installs allow-all observer filters first.

A kernel without those builders (before 7.0, or without BTF argument access) offers the tracepoints only; the
session says which points it has in :attr:`Session.kinds`, and the caller says so to the user.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from ringfence.errors import UnsupportedError

ROOTS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
TRACEPOINTS = ("io_uring_submit_req", "io_uring_req_failed", "io_uring_complete")

#: The context builders: event name, kernel function, and the fields read from the context at its return.
PROBES = {
    "socket": ("rf_socket", "io_socket_bpf_populate",
               "family=bctx->socket.family type=bctx->socket.type protocol=bctx->socket.protocol"),
    "open": ("rf_open", "io_openat_bpf_populate",
             "flags=bctx->open.flags mode=bctx->open.mode resolve=bctx->open.resolve"),
    # the address is 16 bytes at offset 24 of struct io_uring_bpf_ctx (v4 in the first four)
    "connect": ("rf_connect", "io_connect_bpf_populate",
                "family=bctx->connect.family port=bctx->connect.port addr=+24(bctx):x8[16]"),
}


def find_root() -> Path:
    """Where tracefs is mounted, mounting it if it is not (as root)."""
    for root in ROOTS:
        if (root / "events").is_dir():
            return root
    if ROOTS[0].is_dir() and os.geteuid() == 0:
        done = subprocess.run(["mount", "-t", "tracefs", "nodev", str(ROOTS[0])], capture_output=True, text=True,
                              check=False)
        if done.returncode == 0 and (ROOTS[0] / "events").is_dir():
            return ROOTS[0]
    raise UnsupportedError("tracefs is not available here (not mounted at /sys/kernel/tracing, and it cannot be "
                           "mounted: learn and watch need root and a kernel with tracing)")


def _write(path: Path, text: str, *, append: bool = False) -> None:
    """One write(2), as tracefs wants its commands (Python's append mode seeks, which tracefs refuses)."""
    fd = os.open(path, os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC))
    try:
        os.write(fd, text.encode("ascii"))
    finally:
        os.close(fd)


class Session:
    """One tracefs instance with the io_uring tracepoints and, where the kernel has them, the context probes."""

    def __init__(self, *, contexts: bool = True, tracepoints: tuple[str, ...] = TRACEPOINTS,
                 failed_filter: str = "", buffer_kb: int = 8192) -> None:
        self.root = find_root()
        for tp in tracepoints:
            if not (self.root / "events" / "io_uring" / tp).is_dir():
                raise UnsupportedError(f"this kernel has no io_uring:{tp} tracepoint")
        self.group = f"ringfence_{os.getpid()}"
        self.instance = self.root / "instances" / f"ringfence-{os.getpid()}"
        self.kinds: dict[str, str] = {}   # context kind -> event name, for the probes this kernel accepted
        self.refused: dict[str, str] = {}  # context kind -> why the kernel refused its probe
        self._tracepoints = tracepoints
        self._failed_filter = failed_filter
        self._buffer_kb = buffer_kb
        self._contexts = contexts
        self._opened = False

    def open(self) -> None:
        try:
            self.instance.mkdir()
        except OSError as exc:
            raise UnsupportedError(f"cannot make a tracefs instance ({exc.strerror})") from None
        self._opened = True
        _write(self.instance / "buffer_size_kb", str(self._buffer_kb))
        _write(self.instance / "tracing_on", "0")
        for option, value in (("hash-ptr", "0"), ("event-fork", "1")):
            with contextlib.suppress(OSError):
                _write(self.instance / "options" / option, value)
        if self._contexts:
            for kind, (event, function, fields) in PROBES.items():
                line = f"f:{self.group}/{event} {function}%return req=req sf=bctx->sqe_flags {fields}\n"
                try:
                    _write(self.root / "dynamic_events", line, append=True)
                    self.kinds[kind] = event
                except OSError as exc:
                    self.refused[kind] = f"{function}: {exc.strerror}{self._error_log()}"
        for tp in self._tracepoints:
            events = self.instance / "events" / "io_uring" / tp
            if tp == "io_uring_req_failed" and self._failed_filter:
                _write(events / "filter", self._failed_filter)
            _write(events / "enable", "1")
        for event in self.kinds.values():
            _write(self.instance / "events" / self.group / event / "enable", "1")

    def _error_log(self) -> str:
        """The kernel's own words for the last refused definition (tracefs's error_log), when it kept them."""
        try:
            lines = (self.root / "error_log").read_text().splitlines()
        except OSError:
            return ""
        said = [line.split("error:", 1)[1].strip() for line in lines if "error:" in line]
        return f" ({said[-1]})" if said else ""

    def follow(self, pid: int) -> None:
        """Trace only ``pid`` and what it creates from now on."""
        _write(self.instance / "set_event_pid", str(pid))

    def start(self) -> None:
        _write(self.instance / "tracing_on", "1")

    def stop(self) -> None:
        _write(self.instance / "tracing_on", "0")

    def text(self) -> str:
        return (self.instance / "trace").read_text(encoding="utf-8", errors="replace")

    def pipe(self) -> Path:
        return self.instance / "trace_pipe"

    def lost(self) -> int:
        """Events the ring buffer dropped (overruns), all CPUs."""
        total = 0
        for stats in (self.instance / "per_cpu").glob("cpu*/stats"):
            for line in stats.read_text().splitlines():
                key, _, value = line.partition(":")
                if key.strip() in ("overrun", "dropped events"):
                    total += int(value.strip() or 0)
        return total

    def close(self) -> None:
        if not self._opened:
            return
        with contextlib.suppress(OSError):
            self.stop()
        for tp in self._tracepoints:
            with contextlib.suppress(OSError):
                _write(self.instance / "events" / "io_uring" / tp / "enable", "0")
        for event in self.kinds.values():
            with contextlib.suppress(OSError):
                _write(self.instance / "events" / self.group / event / "enable", "0")
        with contextlib.suppress(OSError):
            self.instance.rmdir()
        for event in self.kinds.values():
            with contextlib.suppress(OSError):
                _write(self.root / "dynamic_events", f"-:{self.group}/{event}\n", append=True)
        self._opened = False


@contextlib.contextmanager
def session(**kwargs: object) -> Iterator[Session]:
    s = Session(**kwargs)  # type: ignore[arg-type]
    try:
        s.open()
        yield s
    finally:
        s.close()
