"""A private network namespace with only loopback up, so that a CONNECT can never reach another machine.

Hard safety rule of the live backend: a scenario that connects runs only after :func:`enter_private_netns`
succeeded in its first agent, and every agent checks before each CONNECT that its namespace differs from the
coordinator's (:func:`assert_private`).
"""

from __future__ import annotations

import fcntl
import socket
import struct

from ringfence.errors import RingfenceError
from ringfence.live import _sys

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = struct.Struct("=16sh22x")  # struct ifreq: name, then ifr_flags in the 24-byte union


class NetnsError(RingfenceError):
    """No private network namespace: connecting is refused."""


def enter_private_netns() -> int:
    """``unshare(CLONE_NEWNET)`` for the calling thread, then bring ``lo`` up; returns the new namespace inode."""
    _sys.unshare(_sys.CLONE_NEWNET)
    loopback_up()
    return _sys.netns_inode()


def loopback_up() -> None:
    """Bring ``lo`` up in the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = _IFREQ.pack(b"lo", 0)
        _, flags = _IFREQ.unpack(fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, _IFREQ.pack(b"lo", flags | IFF_UP))


def assert_private(outside_inode: int) -> None:
    """Raise unless the calling thread's network namespace is not the one identified by ``outside_inode``."""
    if _sys.netns_inode() == outside_inode:
        raise NetnsError("refusing to connect: not inside a private network namespace")
