"""A TCP echo server and client whose every socket operation is an io_uring request.

    python echo.py server PORT          accept one connection, echo one message, exit
    python echo.py client PORT MESSAGE  connect to 127.0.0.1:PORT, send MESSAGE, print the echo
    python echo.py client6 PORT MESSAGE the same over IPv6 (::1)

Binding and listening use ordinary system calls; SOCKET, ACCEPT, CONNECT, RECV, SEND and CLOSE go through
io_uring, so an io_uring sandbox decides them.
"""

from __future__ import annotations

import socket
import sys

from uring import Uring, done

from ringfence.abi import sqe as abisqe
from ringfence.abi.constants import AF, SOCK
from ringfence.abi.opcodes import SqeOp


def _socket(u: Uring, family: str) -> int:
    return u.do(abisqe.socket(AF[family], SOCK["SOCK_STREAM"] | SOCK["SOCK_CLOEXEC"]),
                f"SOCKET({family}, SOCK_STREAM)")


def server(port: int) -> bool:
    u = Uring()
    fd = _socket(u, "AF_INET")
    if fd < 0:
        return False
    s = socket.socket(fileno=fd)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    print(f"  listening on 127.0.0.1:{port}", flush=True)
    conn = u.do(abisqe.Sqe(SqeOp.ACCEPT, fd=fd), "ACCEPT", wait=300.0)  # clients may start slowly (emulated CPUs)
    if conn < 0:
        return False
    n = u.do(abisqe.Sqe(SqeOp.RECV, fd=conn, len=256), "RECV", buffer=256, wait=60.0)
    ok = n > 0 and u.do(abisqe.Sqe(SqeOp.SEND, fd=conn, len=n), "SEND (the echo)", data=u.last_buffer) == n
    u.do(abisqe.Sqe(SqeOp.CLOSE, fd=conn), "CLOSE")
    return ok


def client(port: int, message: str, family: str = "AF_INET") -> bool:
    u = Uring()
    fd = _socket(u, family)
    if fd < 0:
        return False
    host = "127.0.0.1" if family == "AF_INET" else "::1"
    if u.do(abisqe.connect(fd, abisqe.sockaddr(AF[family], host, port)), f"CONNECT {host} port {port}") < 0:
        return False
    data = message.encode()
    u.do(abisqe.Sqe(SqeOp.SEND, fd=fd, len=len(data)), "SEND", data=data)
    n = u.do(abisqe.Sqe(SqeOp.RECV, fd=fd, len=256), "RECV", buffer=256)
    print(f"  echo: {u.last_buffer.decode(errors='replace') if n > 0 else ''}", flush=True)
    return n == len(data)


if __name__ == "__main__":
    role, port = sys.argv[1], int(sys.argv[2])
    if role == "server":
        done(server(port))
    done(client(port, sys.argv[3], "AF_INET6" if role == "client6" else "AF_INET"))
