"""io_uring descriptors a process already holds: task restrictions never reach rings that exist before them."""

from __future__ import annotations

import os


def io_uring_fds() -> list[int]:
    """Open descriptors of this process that are io_uring instances (``anon_inode:[io_uring]``)."""
    out = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:[io_uring]":
                out.append(int(name))
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
    return sorted(out)


def threads() -> int:
    """Threads in this process: restrictions are per thread, so siblings existing now would stay free."""
    return len(os.listdir("/proc/self/task"))
