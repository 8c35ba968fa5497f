"""Run a command under a Landlock ruleset: the file-system and TCP half of a sandbox that ringfence's io_uring
policy does not cover.

    python landlock.py --read DIR [--read DIR ...] [--write DIR ...] [--connect PORT ...] -- CMD [ARGS...]

Reading and executing files is allowed beneath each ``--read`` directory, writing and creating beneath each
``--write`` directory (the running interpreter's installation and venv are always readable, so that Python
workloads start), and TCP connects only to the ``--connect`` ports (when the kernel's Landlock handles
TCP, ABI 4 and later). Everything else the ruleset handles is denied with EACCES, to ordinary system calls and
to io_uring requests alike: io_uring's OPENAT and CONNECT pass the same LSM hooks. Put it outside
``ringfence run`` (Landlock first, then the io_uring policy) or inside, in either order: both stack.

Standard library only; needs Linux 5.13 or later with Landlock enabled (exit 5 otherwise).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import struct
import sys

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446   # x86-64 and every other architecture
_VERSION = 1                                                  # LANDLOCK_CREATE_RULESET_VERSION
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_MAKE_BITS = sum(1 << b for b in range(4, 13))               # remove dir/file, make char/dir/reg/sock/fifo/block/sym
_TRUNCATE = 1 << 14                                           # ABI 3
_CONNECT_TCP = 1 << 1                                         # ABI 4
_PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _call(nr: int, *args: object) -> int:
    ret = _libc.syscall(ctypes.c_long(nr), *args)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


def restrict(read: list[str], write: list[str], connect: list[int]) -> int:
    """Apply the ruleset to the calling thread (and what it executes); returns the kernel's Landlock ABI."""
    abi = _call(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_VERSION))
    read_bits = _EXECUTE | _READ_FILE | _READ_DIR
    write_bits = _WRITE_FILE | _MAKE_BITS | (_TRUNCATE if abi >= 3 else 0)
    handled_net = _CONNECT_TCP if abi >= 4 else 0
    attr = struct.pack("=QQ", read_bits | write_bits, handled_net)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _call(_CREATE_RULESET, buf, ctypes.c_size_t(len(attr) if abi >= 4 else 8), ctypes.c_uint32(0))
    try:
        for paths, bits in ((read, read_bits), (write, read_bits | write_bits)):
            for path in paths:
                parent = os.open(path, os.O_PATH | os.O_CLOEXEC)
                try:
                    rule = ctypes.create_string_buffer(struct.pack("=Qi", bits, parent), 12)
                    _call(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), rule,
                          ctypes.c_uint32(0))
                finally:
                    os.close(parent)
        for port in connect if handled_net else ():
            rule = ctypes.create_string_buffer(struct.pack("=QQ", _CONNECT_TCP, port), 16)
            _call(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_NET_PORT), rule, ctypes.c_uint32(0))
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        _call(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return abi


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--read", action="append", default=[], metavar="DIR")
    parser.add_argument("--write", action="append", default=[], metavar="DIR")
    parser.add_argument("--connect", action="append", default=[], type=int, metavar="PORT")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    try:
        abi = restrict([*args.read, sys.base_prefix, sys.prefix], args.write, args.connect)
    except OSError as e:
        print(f"landlock: cannot apply the ruleset: {e.strerror}", file=sys.stderr)
        return 5
    if abi < 4:
        tcp = "not handled (ABI < 4)"
    else:
        tcp = "to ports " + ", ".join(map(str, args.connect)) if args.connect else "denied"
    print(f"landlock: ABI {abi}; reads beneath {', '.join(args.read) or 'nothing'}; writes beneath "
          f"{', '.join(args.write) or 'nothing'}; TCP connects {tcp}", file=sys.stderr, flush=True)
    try:
        os.execvp(command[0], command)
    except OSError as e:
        print(f"landlock: cannot execute {command[0]}: {e.strerror}", file=sys.stderr)
        return 127 if isinstance(e, FileNotFoundError) else 126


if __name__ == "__main__":
    sys.exit(main())
