"""Per-scenario resources an agent process names in SQEs: descriptors, a temp directory, created sockets.

``"null"`` is ``/dev/null`` opened read-write, ``"zero"`` ``/dev/zero``, ``"pipe.r"``/``"pipe.w"`` the ends of
one pipe, ``"cwd"`` is ``AT_FDCWD``; ``"file"`` a regular file inside the scenario's temp directory (read-write,
:data:`FILE_BYTES` bytes of ``f``); ``"sock.a"``/``"sock.b"`` the ends of an ``AF_UNIX`` stream socket pair; and, in
a private network namespace only, ``"listen"``: a TCP socket listening on ``127.0.0.1`` port
:data:`LISTEN_PORT`. ``{tmp}`` in a path expands to the scenario's temp directory.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Final

from ringfence.abi.constants import AT_FDCWD
from ringfence.errors import ScenarioError

NAMES = ("null", "zero", "pipe.r", "pipe.w", "cwd", "file", "sock.a", "sock.b", "listen")
#: The regular file's name inside the temp directory, and its size.
FILE_NAME: Final = "ringfence-file"
FILE_BYTES: Final = 64
#: Where ``"listen"`` listens, inside the private network namespace.
LISTEN_PORT: Final = 7777


@dataclass(slots=True)
class Resources:
    """Descriptors by name, and the temp directory. Survive fork (copied) and exec (passed inheritable)."""

    tmp: str
    fds: dict[str, int] = field(default_factory=dict)

    @classmethod
    def open(cls, tmp: str, *, private_net: bool = False) -> Resources:
        """Open every resource; ``listen`` only when the caller is in a private network namespace."""
        rd, wr = os.pipe()
        fds = {"null": os.open("/dev/null", os.O_RDWR), "zero": os.open("/dev/zero", os.O_RDWR),
               "pipe.r": rd, "pipe.w": wr}
        regular = os.open(os.path.join(tmp, FILE_NAME), os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
        os.fchmod(regular, 0o666)  # an agent that dropped to an unprivileged uid may reopen it, as with {tmp}
        os.write(regular, b"f" * FILE_BYTES)
        fds["file"] = regular
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fds["sock.a"], fds["sock.b"] = a.detach(), b.detach()
        if private_net:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", LISTEN_PORT))
            listener.listen(16)
            fds["listen"] = listener.detach()
        return cls(tmp, fds)

    def fd(self, name: str | int) -> int:
        """The descriptor number for a resource name; ints pass through (fixed-file indexes, raw fds)."""
        if isinstance(name, int):
            return name
        if name == "cwd":
            return AT_FDCWD
        if name.lstrip("-").isdigit():
            if int(name) >= 0:  # a descriptor number reaches whatever the agent has open under it
                raise ScenarioError(f"refusing descriptor number {name}; name a resource ({', '.join(NAMES)})")
            return int(name)
        try:
            return self.fds[name]
        except KeyError:
            if name == "listen":
                raise ScenarioError("the `listen` resource exists only in a private network namespace: add "
                                    "\"netns\" to the scenario's `requires`") from None
            raise ScenarioError(f"unknown resource {name!r}; known: {', '.join(NAMES)}") from None

    def path(self, text: str) -> str:
        return text.replace("{tmp}", self.tmp)

    def make_inheritable(self) -> None:
        for fd in self.fds.values():
            os.set_inheritable(fd, True)
