"""Run under ``examples/pairing/landlock.py``: try each access both as an ordinary system call and as an io_uring
request, print one JSON line per access with both answers (``ok`` or the errno name)."""

from __future__ import annotations

import json
import os
import socket
import sys

from ringfence.abi import sqe as abisqe
from ringfence.errors import errno_name
from ringfence.live import sqes
from ringfence.live.ring import Ring


def _uring(ring: Ring, request: abisqe.Sqe) -> str:
    prepared = sqes.prepare(request, buffer=1)
    ring.queue(prepared)
    ring.submit()
    cqes = ring.wait(quiet=5.0, limit=5.0)
    if not cqes:
        return "no CQE"
    res = cqes[0].res
    if res >= 0 and request.opcode.name == "OPENAT":
        os.close(res)
    return "ok" if res >= 0 else errno_name(-res)


def _syscall(action: object) -> str:
    try:
        result = action()  # type: ignore[operator]
    except OSError as e:
        return errno_name(e.errno or 0)
    if isinstance(result, int):
        os.close(result)
    return "ok"


def main() -> None:
    ring = Ring.setup(4)
    for arg in sys.argv[1:]:
        kind, _, target = arg.partition(":")
        if kind == "open":
            plain = _syscall(lambda path=target: os.open(path, os.O_RDONLY))
            uring = _uring(ring, abisqe.openat(target, os.O_RDONLY))
        else:  # connect:PORT on loopback; ECONNREFUSED means the request got past every check to the network
            port = int(target)
            with socket.socket() as s:
                plain = _syscall(lambda s=s, port=port: s.connect(("127.0.0.1", port)))
            with socket.socket() as s:
                uring = _uring(ring, abisqe.connect(s.fileno(), abisqe.sockaddr(socket.AF_INET, "127.0.0.1", port)))
            plain, uring = (("ok" if v == "ECONNREFUSED" else v) for v in (plain, uring))
        print(json.dumps({"access": arg, "syscall": plain, "io_uring": uring}), flush=True)


if __name__ == "__main__":
    main()
