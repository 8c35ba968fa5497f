"""Oracle data: what an operation returns on a real kernel **when the sandbox lets it run**.

The model performs no I/O, so scenario SQEs declare the outcome of running them (``result``), and the random
scenario generator declares it from the knowledge collected here, in one place. None of it is a model of the
sandbox: the live kernel reports what really happens, so a wrong entry shows up as a model-vs-kernel
difference in the conformance run, never as a silent pass. Cases whose real result cannot be known here are
never generated (the functions return None).
"""

from __future__ import annotations

from typing import Final

from ringfence.abi.constants import O

#: READ/READV of ``/dev/zero`` and WRITE/WRITEV to ``/dev/null`` succeed; a fixed-file index with no file is EBADF.
RW_OK: Final = "ok"
MISSING_FIXED_FILE: Final = "EBADF"
#: ``/dev/null`` has no fsync method: ``vfs_fsync_range()`` answers EINVAL.
FSYNC_DEVNULL: Final = "EINVAL"
#: A SOCKET the prep accepts is created (inet and unix families exist in every kernel ringfence targets).
SOCKET_OK: Final = "ok"


def connect_result(family: str, kind: str, length: int, *, full: int, minimum: int) -> str:
    """CONNECT inside a private network namespace with only loopback up, to a port nobody listens on.

    An AF_UNIX path that does not exist is ENOENT with the full address length and EINVAL with a short one; an
    inet address length below the family's minimum (IPv6 takes the 24-byte form) or above 128 is EINVAL; a TCP
    connect to a closed loopback port is ECONNREFUSED, a UDP one just sets the peer.
    """
    if family == "AF_UNIX":
        return "ENOENT" if length == full else "EINVAL"
    if length < minimum or length > 128:
        return "EINVAL"
    return "ECONNREFUSED" if kind == "SOCK_STREAM" else "ok"


def open_result(kind: str, flags: int, mode: int, resolve: int, *, openat2: bool) -> str | None:
    """What the open returns when it runs (``build_open_flags`` then the path walk), or None if unsure.

    ``kind`` is ``fresh`` (a name in ``{tmp}`` that does not exist), ``dir`` (``{tmp}`` itself) or ``devnull``.
    """
    valid = 0
    for name in ("O_ACCMODE", "O_CREAT", "O_EXCL", "O_NOCTTY", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "__O_SYNC",
                 "O_DSYNC", "FASYNC", "O_DIRECT", "O_LARGEFILE", "O_DIRECTORY", "O_NOFOLLOW", "O_NOATIME",
                 "O_CLOEXEC", "O_PATH", "__O_TMPFILE"):
        valid |= O[name]
    path_flags = O["O_DIRECTORY"] | O["O_NOFOLLOW"] | O["O_PATH"] | O["O_CLOEXEC"]
    tmpfile = O["__O_TMPFILE"]
    if openat2:
        if flags & ~valid or resolve & ~0x3F or (resolve & 0x08 and resolve & 0x10):
            return "EINVAL"
        creates = flags & (O["O_CREAT"] | tmpfile)
        if (creates and mode & ~0o7777) or (not creates and mode):
            return "EINVAL"
    else:
        flags &= valid
        if flags & O["O_PATH"]:
            flags &= path_flags
    f = flags & ~O["O_CLOEXEC"]
    acc_write = f & O["O_ACCMODE"] != O["O_RDONLY"]
    if f & O["O_CREAT"] and f & O["O_DIRECTORY"]:
        return "EINVAL"
    if f & tmpfile and (f & (tmpfile | O["O_DIRECTORY"] | O["O_CREAT"]) != O["O_TMPFILE"] or not acc_write):
        return "EINVAL"
    if f & O["O_PATH"] and f & ~path_flags:
        return "EINVAL"  # openat2 only: OPENAT's prep already reduced the flags to the O_PATH subset
    if kind == "devnull":
        if acc_write or f & (O["O_CREAT"] | O["O_TRUNC"] | O["O_APPEND"] | tmpfile):
            return None  # never generated: /dev/null is opened read-only
        return "ENOTDIR" if f & O["O_DIRECTORY"] else "ok"
    if f & O["O_PATH"]:
        return "ENOENT" if kind == "fresh" else "ok"
    if f & tmpfile:
        return "ENOENT" if kind == "fresh" else "ok"
    if kind == "fresh":
        return "ok" if f & O["O_CREAT"] else "ENOENT"
    if f & O["O_CREAT"]:
        return "EEXIST" if f & O["O_EXCL"] else "EISDIR"
    return "EISDIR" if acc_write or f & O["O_TRUNC"] else "ok"
