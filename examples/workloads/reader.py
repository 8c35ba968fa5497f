"""A file reader whose opens and reads are io_uring requests.

    python reader.py FILE            open FILE read-only, read it, print it
    python reader.py --create FILE   try to create FILE (O_CREAT|O_WRONLY): a read-only policy denies it
"""

from __future__ import annotations

import os
import sys

from uring import Uring, done

from ringfence.abi import sqe as abisqe
from ringfence.abi.opcodes import SqeOp


def read(path: str) -> bool:
    u = Uring()
    fd = u.do(abisqe.openat(path, os.O_RDONLY), f"OPENAT {path} O_RDONLY")
    if fd < 0:
        return False
    n = u.do(abisqe.Sqe(SqeOp.READ, fd=fd, len=4096), "READ", buffer=4096)
    u.do(abisqe.Sqe(SqeOp.CLOSE, fd=fd), "CLOSE")
    print(f"  read {n} bytes: {u.last_buffer[:60]!r}", flush=True)
    return n >= 0


def create(path: str) -> bool:
    u = Uring()
    return u.do(abisqe.openat(path, os.O_CREAT | os.O_WRONLY, 0o600), f"OPENAT {path} O_CREAT|O_WRONLY") >= 0


if __name__ == "__main__":
    if sys.argv[1] == "--create":
        done(create(sys.argv[2]))
    done(read(sys.argv[1]))
