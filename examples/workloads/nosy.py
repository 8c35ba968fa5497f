"""A file reader that also tries one thing a reader has no business doing: making a TCP socket.

    python nosy.py FILE     read FILE, then try SOCKET(AF_INET, SOCK_STREAM); finish either way

It exits 0 when the read worked, whether or not the socket was allowed: a sandbox that refuses the socket
(EACCES) lets it finish, and ``ringfence watch`` reports the refusal.
"""

from __future__ import annotations

import sys

from reader import read
from uring import Uring, done

from ringfence.abi import sqe as abisqe
from ringfence.abi.constants import AF, SOCK
from ringfence.abi.opcodes import SqeOp


def main(path: str) -> bool:
    ok = read(path)
    u = Uring()
    s = u.do(abisqe.socket(AF["AF_INET"], SOCK["SOCK_STREAM"]), "SOCKET(AF_INET, SOCK_STREAM) (not a reader's job)")
    if s >= 0:
        u.do(abisqe.Sqe(SqeOp.CLOSE, fd=s), "CLOSE (the socket)")
    return ok


if __name__ == "__main__":
    done(main(sys.argv[1]))
