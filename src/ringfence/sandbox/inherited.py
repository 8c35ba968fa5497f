"""io_uring descriptors a process already holds: task restrictions never reach rings that exist before them."""

from __future__ import annotations

import os

from ringfence.errors import SandboxError, errno_name


def _listing(directory: str, what: str) -> list[str]:
    """The entries of a /proc directory; if it cannot be read (a Landlock ruleset without /proc, a hidepid
    mount), the check it serves cannot be made, so the sandbox is not set up rather than set up blind."""
    try:
        return os.listdir(directory)
    except OSError as exc:
        raise SandboxError(f"cannot list {directory} ({errno_name(exc.errno or 0)}), needed to find {what}; "
                           "allow reading /proc", step="checks", errno_name=errno_name(exc.errno or 0)) from exc


def io_uring_fds() -> list[int]:
    """Open descriptors of this process that are io_uring instances (``anon_inode:[io_uring]``)."""
    out = []
    for name in _listing("/proc/self/fd", "inherited io_uring descriptors"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:[io_uring]":
                out.append(int(name))
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
    return sorted(out)


def threads() -> int:
    """Threads in this process: restrictions are per thread, so siblings existing now would stay free."""
    return len(_listing("/proc/self/task", "this process's threads"))
