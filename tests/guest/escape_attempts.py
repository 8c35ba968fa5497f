"""A program that tries to get around the io_uring sandbox it runs in (``ringfence run``), one JSON line per try.

Each line: ``{"attempt": ..., "how": "sqe" | "register" | "count", "res": kernel answer, "sqe": request}``. ``res``
is the CQE result of the request, or the ``io_uring_register`` result (negative errno on failure). It decides
nothing: tests/guest/test_escapes.py holds each answer against the policy's prediction and docs/escapes.md.

Arguments: ``--exec-child`` (the exec attempt's second half, made when ``ESCAPE_EXEC`` is set). The environment
may name ``ESCAPE_RING`` (``PID:FD:PARAMS``): a ring an unrestricted process holds, and its params in hex.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from ringfence.abi import sqe as abisqe
from ringfence.abi.constants import AF, SOCK
from ringfence.abi.opcodes import REGISTER_USE_REGISTERED_RING, RegisterOp, SetupFlag, SqeFlag, SqeOp
from ringfence.abi.opinfo import ROUTES
from ringfence.live import _sys, sqes
from ringfence.live.ring import Ring

WAIT = 20.0  # seconds for one completion (an emulated VM is slow)
FILE_INDEX_ALLOC = 0xFFFFFFFF  # IORING_FILE_INDEX_ALLOC: a direct descriptor in any free slot
IORING_ENTER_REGISTERED_RING = 1 << 4
NR_PIDFD_GETFD = 438
CQE_F_NOTIF = 1 << 3
T0 = time.monotonic()
TAKEN = "a ring taken with pidfd_getfd from an unrestricted process"
DENIED = abisqe.socket(AF["AF_UNIX"], SOCK["SOCK_STREAM"])  # denied by every policy the test runs this under


def say(attempt: str, how: str, res: int, sqe: abisqe.Sqe | None = None) -> None:
    line: dict[str, object] = {"attempt": attempt, "how": how, "res": res, "t": round(time.monotonic() - T0, 2)}
    if sqe is not None:
        line["sqe"] = sqe.to_json()
    print(json.dumps(line), flush=True)


def submit(ring: Ring, chain: list[abisqe.Sqe]) -> list[int]:
    """Queue ``chain`` in one submission; each request's result, in order (-ETIMEDOUT if none came).

    The result is a request's first CQE. A zero-copy send that prep accepted posts a second one, a notification
    (``IORING_CQE_F_NOTIF``, res 0) that its buffer is free, even when the request was then denied: it is not
    the request's result."""
    for i, sqe in enumerate(chain):
        ring.queue(sqes.prepare(abisqe.Sqe(**{**_fields(sqe), "user_data": i + 1})))
    ring.submit()
    got: dict[int, int] = {}
    for c in ring.wait(quiet=WAIT, limit=WAIT):
        if not c.flags & CQE_F_NOTIF:
            got.setdefault(c.user_data, c.res)
    return [got.get(i + 1, -110) for i in range(len(chain))]


def _fields(sqe: abisqe.Sqe) -> dict[str, object]:
    return {name: getattr(sqe, name) for name in abisqe.Sqe.__dataclass_fields__}


def one(ring: Ring, attempt: str, sqe: abisqe.Sqe) -> int:
    res = submit(ring, [sqe])[0]
    say(attempt, "sqe", res, sqe)
    return res


def in_fork(attempt: str, body: Callable[[], int]) -> None:
    """Run ``body`` in a forked child; report its answer."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.write(write, str(body()).encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    say(attempt, "sqe", int(answer or b"-5"), DENIED)


def on_new_ring(flags: int = 0, **kw: int) -> int:
    with Ring.setup(8, flags, **kw) as ring:
        return submit(ring, [DENIED])[0]


def contexts() -> None:
    """New rings, children, threads, exec, SQPOLL: all created after the sandbox, all restricted."""
    say("a second ring", "sqe", on_new_ring(), DENIED)
    in_fork("a ring made by a forked child", on_new_ring)
    box: list[int] = []
    thread = threading.Thread(target=lambda: box.append(on_new_ring()))
    thread.start()
    thread.join()
    say("a ring made by a new thread", "sqe", box[0] if box else -5, DENIED)
    if os.environ.get("ESCAPE_EXEC"):  # a Python start-up: slow in an emulated VM, so in one run only
        done = subprocess.run([sys.executable, __file__, "--exec-child"], capture_output=True, text=True,
                              check=False, timeout=300)
        say("a ring made by an exec'd program", "sqe", int(done.stdout.strip() or "-5"), DENIED)
    say("an SQPOLL ring (the poller thread submits)", "sqe",
        on_new_ring(int(SetupFlag.SQPOLL), sq_thread_idle=1000), DENIED)


def disabled_ring(fds: dict[str, int]) -> None:
    """A ring created R_DISABLED: register calls before it is enabled, requests after."""
    with Ring.setup(8, SetupFlag.R_DISABLED) as ring:
        say("R_DISABLED ring: REGISTER_PERSONALITY before enabling", "register", ring.register_personality())
        say("R_DISABLED ring: REGISTER_FILES before enabling", "register", ring.register_files([fds["null"]]))
        say("R_DISABLED ring: REGISTER_RESTRICTIONS (no records)", "register", ring.register_restrictions([]))
        say("R_DISABLED ring: ENABLE_RINGS", "register", ring.enable())
        say("R_DISABLED ring: REGISTER_PERSONALITY after enabling", "register", ring.register_personality())
        one(ring, "R_DISABLED ring, enabled: the denied request", DENIED)


def chains(ring: Ring, fds: dict[str, int]) -> None:
    """A denied request inside a link chain, at either end; IO_DRAIN and IO_HARDLINK."""
    read = abisqe.rw(SqeOp.READ, fds["null"], 8)
    link, hard, drain = int(SqeFlag.IO_LINK), int(SqeFlag.IO_HARDLINK), int(SqeFlag.IO_DRAIN)
    for name, chain in (("linked: allowed READ then the denied request", [_with(read, link), DENIED]),
                        ("linked: the denied request then an allowed READ", [_with(DENIED, link), read]),
                        ("hard-linked: the denied request then an allowed READ", [_with(DENIED, hard), read]),
                        ("drained: the denied request with IO_DRAIN", [_with(DENIED, drain)])):
        for i, res in enumerate(submit(ring, chain)):
            say(f"{name} [{i + 1}/{len(chain)}]", "sqe", res, chain[i])


def _with(sqe: abisqe.Sqe, flags: int = 0, **kw: object) -> abisqe.Sqe:
    return abisqe.Sqe(**{**_fields(sqe), "flags": sqe.flags | flags, **kw})


def messages(ring: Ring) -> None:
    """MSG_RING as a request, and the blind register form that needs no source ring."""
    with Ring.setup(8) as other:
        one(ring, "MSG_RING request into another ring", abisqe.Sqe(SqeOp.MSG_RING, fd=other.fd, len=7, off=77))
        raw = _sys.Sqe()
        raw.opcode, raw.fd, raw.len, raw.off = SqeOp.MSG_RING, other.fd, 7, 78
        res = _sys.register_raw(-1, RegisterOp.SEND_MSG_RING, ctypes.addressof(raw), 1)
        say("blind REGISTER_SEND_MSG_RING into another ring", "register", res)
        seen = [c for c in other.reap() if c.user_data == 78]
        say("blind REGISTER_SEND_MSG_RING: completions delivered", "count", len(seen))


class _RsrcUpdate(ctypes.Structure):
    _fields_ = [("offset", ctypes.c_uint32), ("resv", ctypes.c_uint32), ("data", ctypes.c_uint64)]


def registered_ring() -> None:
    """A ring's descriptor registered (REGISTER_RING_FDS), then used by index for enter and register."""
    with Ring.setup(8) as ring:
        _by_index(ring)


def _by_index(ring: Ring) -> None:
    update = _RsrcUpdate(0xFFFFFFFF, 0, ring.fd)
    res = _sys.register_raw(ring.fd, RegisterOp.RING_FDS, ctypes.addressof(update), 1)
    say("REGISTER_RING_FDS", "register", res)
    if res < 0:
        return
    index = update.offset
    ring.queue(sqes.prepare(DENIED))
    _sys.enter_raw(index, 1, 1, IORING_ENTER_REGISTERED_RING | _sys.IORING_ENTER_GETEVENTS)
    cqes = ring.reap()  # waited for by the enter call itself
    say("the denied request, entered through the registered ring index", "sqe", cqes[0].res if cqes else -110,
        DENIED)
    res = _sys.register_raw(index, RegisterOp.PERSONALITY | REGISTER_USE_REGISTERED_RING, 0, 0)
    say("REGISTER_PERSONALITY through the registered ring index", "register", res)


def fixed_files(ring: Ring, fds: dict[str, int]) -> None:
    """Filtered operations on registered files and into direct descriptors."""
    say("REGISTER_FILES (a socket, /dev/null, empty slots)", "register",
        ring.register_files([fds["tcp4"], fds["null"], -1, -1, -1, -1]))
    fixed = int(SqeFlag.FIXED_FILE)
    tries = (
        ("CONNECT on a registered socket (FIXED_FILE) to a denied port",
         _with(abisqe.connect(0, abisqe.sockaddr(AF["AF_INET"], "127.0.0.1", 8080)), fixed)),
        ("READ of a registered file (FIXED_FILE)", _with(abisqe.rw(SqeOp.READ, 1, 8), fixed)),
        ("SOCKET of a denied family as a direct descriptor", _with(DENIED, file_index=FILE_INDEX_ALLOC)),
        ("OPENAT for writing into a direct descriptor",
         _with(abisqe.openat(f"/tmp/rf-escape-{os.getpid()}", os.O_WRONLY | os.O_CREAT, 0o600),
               file_index=FILE_INDEX_ALLOC)),
        ("OPENAT read-only into a direct descriptor",
         _with(abisqe.openat("/etc/hostname", os.O_RDONLY), file_index=FILE_INDEX_ALLOC)),
    )
    for name, sqe in tries:
        one(ring, name, sqe)


def route_requests(fds: dict[str, int]) -> list[tuple[str, abisqe.Sqe]]:
    """Every member of every equivalent route (abi.opinfo.ROUTES), as a request on harmless descriptors."""
    wr = os.O_WRONLY | os.O_CREAT
    scratch = f"/tmp/rf-escape-route-{os.getpid()}"
    special = {
        SqeOp.OPENAT: abisqe.openat(scratch, wr, 0o600),
        SqeOp.OPENAT2: abisqe.openat2(scratch, abisqe.OpenHow(wr, 0o600, 0x08), dirfd=fds["tmp"]),
        SqeOp.SEND: abisqe.rw(SqeOp.SEND, fds["tcp4"], 8),
        SqeOp.RECV: abisqe.rw(SqeOp.RECV, fds["tcp4"], 8),
    }
    out = [("OPENAT2 read-only without RESOLVE_BENEATH",
            abisqe.openat2("/etc/hostname", abisqe.OpenHow(os.O_RDONLY, 0, 0)))]
    for route in ROUTES:
        for op in route.opcodes:
            socket_route = route.name in ("send", "receive")
            sqe = special.get(op) or abisqe.Sqe(op, fd=fds["tcp4"] if socket_route else fds["null"])
            out.append((f"route {route.name}: {op.name}", sqe))
    return out


def taken_ring() -> None:
    """A ring an unrestricted process created, taken from it with pidfd_getfd (io_uring descriptors cannot be
    sent with SCM_RIGHTS: the kernel refuses them)."""
    spec = os.environ.get("ESCAPE_RING")
    if not spec:
        return
    pid, fd, params_hex = spec.split(":")
    pidfd = os.pidfd_open(int(pid))
    libc = ctypes.CDLL(None, use_errno=True)
    got = libc.syscall(NR_PIDFD_GETFD, pidfd, int(fd), 0)
    if got < 0:
        say(TAKEN, "sqe", -ctypes.get_errno(), DENIED)
        return
    ring = Ring(got, _sys.Params.from_buffer_copy(bytes.fromhex(params_hex)))
    one(ring, TAKEN, DENIED)
    ring.close()


def main() -> None:
    if sys.argv[1:] == ["--exec-child"]:
        print(on_new_ring())
        return
    fds = {"null": os.open("/dev/null", os.O_RDWR), "tmp": os.open("/tmp", os.O_RDONLY | os.O_DIRECTORY),
           "tcp4": socket.socket(socket.AF_INET).detach()}
    with Ring.setup(8) as ring:
        one(ring, "the denied request", DENIED)
        one(ring, "an allowed request", abisqe.rw(SqeOp.READ, fds["null"], 8))
        contexts()
        disabled_ring(fds)
        chains(ring, fds)
        messages(ring)
        registered_ring()
        fixed_files(ring, fds)
        for name, sqe in route_requests(fds):
            one(ring, name, sqe)
    taken_ring()


if __name__ == "__main__":
    main()
