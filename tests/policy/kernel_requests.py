"""Requests submitted to a real kernel under a Plan, one at a time, in a forked child; their CQE results.

Used to hold :mod:`ringfence.policy.predict` against the kernel: on the host for ring Plans (classic
restrictions exist since 5.10), in the 7.x guest for task Plans and filters.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from typing import Final

from ringfence.abi import sqe as abisqe
from ringfence.abi.constants import AF, SOCK
from ringfence.abi.opcodes import SetupFlag, SqeOp
from ringfence.live import sqes
from ringfence.live.ring import Ring
from ringfence.policy.plan import Plan
from ringfence.sandbox.apply import restrict_ring, restrict_self

#: Each request needs descriptors the child makes with ordinary system calls (a socket, /dev/null).
Request = Callable[[dict[str, int]], abisqe.Sqe]
_STREAM: Final = SOCK["SOCK_STREAM"]
_IN4, _IN6, _UNIX = AF["AF_INET"], AF["AF_INET6"], AF["AF_UNIX"]

REQUESTS: Final[dict[str, Request]] = {
    "NOP": lambda fds: abisqe.nop(),
    "READ /dev/null": lambda fds: abisqe.rw(SqeOp.READ, fds["null"], 8),
    "WRITEV /dev/null": lambda fds: abisqe.rw(SqeOp.WRITEV, fds["null"], 8),
    "READ /dev/null, IO_LINK": lambda fds: abisqe.rw(SqeOp.READ, fds["null"], 8, flags=1 << 2),
    "READ /dev/null, IO_DRAIN": lambda fds: abisqe.rw(SqeOp.READ, fds["null"], 8, flags=1 << 1),
    "SOCKET inet stream": lambda fds: abisqe.socket(_IN4, _STREAM | SOCK["SOCK_CLOEXEC"]),
    "SOCKET inet6 stream": lambda fds: abisqe.socket(_IN6, _STREAM),
    "SOCKET inet dgram": lambda fds: abisqe.socket(_IN4, SOCK["SOCK_DGRAM"]),
    "SOCKET unix stream": lambda fds: abisqe.socket(_UNIX, _STREAM),
    "CONNECT 127.0.0.1:443": lambda fds: abisqe.connect(fds["tcp4"], abisqe.sockaddr(_IN4, "127.0.0.1", 443)),
    "CONNECT 127.0.0.1:8080": lambda fds: abisqe.connect(fds["tcp4b"], abisqe.sockaddr(_IN4, "127.0.0.1", 8080)),
    "CONNECT [::1]:80": lambda fds: abisqe.connect(fds["tcp6"], abisqe.sockaddr(_IN6, "::1", 80)),
    "OPENAT /etc/hostname rdonly": lambda fds: abisqe.openat("/etc/hostname", os.O_RDONLY),
    "OPENAT creat": lambda fds: abisqe.openat(f"/tmp/rf-predict-{os.getpid()}", os.O_CREAT | os.O_WRONLY, 0o600),
    "OPENAT2 beneath rdonly": lambda fds: abisqe.openat2("etc/hostname", abisqe.OpenHow(os.O_RDONLY, 0, 0x08),
                                                         dirfd=fds["root"]),
    "OPENAT2 rdwr": lambda fds: abisqe.openat2("/dev/null", abisqe.OpenHow(os.O_RDWR, 0, 0)),
}


def _descriptors() -> dict[str, int]:
    return {"null": os.open("/dev/null", os.O_RDWR), "root": os.open("/", os.O_RDONLY | os.O_DIRECTORY),
            "tcp4": socket.socket(socket.AF_INET).detach(), "tcp4b": socket.socket(socket.AF_INET).detach(),
            "tcp6": socket.socket(socket.AF_INET6).detach()}


def _submit(ring: Ring, sqe: abisqe.Sqe) -> int:
    prepared = sqes.prepare(sqe)
    ring.queue(prepared)
    ring.submit()
    cqes = ring.wait(quiet=2.0, limit=10.0)
    return cqes[0].res if cqes else -110


def kernel_results(plan: Plan, names: list[str], *, mechanism: str = "classic") -> dict[str, int]:
    """Apply ``plan`` in a forked child (``restrict_self`` for a task Plan, ``restrict_ring`` on an R_DISABLED
    ring for a ring Plan), submit each named request on its own, and return each CQE result."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read)
        try:
            fds = _descriptors()
            if plan.target == "task":
                restrict_self(plan, mechanism=mechanism, check=False)
                ring = Ring.setup(8)
            else:
                ring = Ring.setup(8, int(SetupFlag.R_DISABLED))
                restrict_ring(ring.fd, plan, check=False)
            out = {name: _submit(ring, REQUESTS[name](fds)) for name in names}
            os.write(write, json.dumps(out).encode())
            os._exit(0)
        except BaseException as exc:  # report anything to the parent, never fall into its code
            os.write(write, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
            os._exit(1)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    answer: dict[str, int] = json.loads(b"".join(chunks))
    if "error" in answer:
        raise AssertionError(f"the child failed: {answer['error']}")
    return answer
