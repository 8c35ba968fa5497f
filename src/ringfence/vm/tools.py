"""Locating host tools and the cache directory, with errors that say how to get what is missing."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from ringfence.vm.errors import ToolMissingError

SETUP_HINT = "run scripts/setup-vm.sh (as root) to install qemu-system-x86, busybox-static and kmod"
VNG_HINT = "install virtme-ng into the project's venv (pip install virtme-ng, or the project's `vm` extra)"
# depmod and friends live in sbin, which a non-root PATH often lacks.
_SBIN = ("/usr/sbin", "/sbin")


def cache_root() -> Path:
    """``$RINGFENCE_CACHE`` or ``~/.cache/ringfence``: every download and extraction lives below it."""
    value = os.environ.get("RINGFENCE_CACHE")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "ringfence"


@contextlib.contextmanager
def cache_lock() -> Iterator[None]:
    """The cache's lock file: one process at a time fetches, unpacks or runs apt over the private lists."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "lock", "w", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def find_tool(name: str, hint: str = SETUP_HINT) -> str:
    """Absolute path of ``name`` from PATH or sbin, else :class:`ToolMissingError` carrying ``hint``."""
    path = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN))
    if path is None:
        raise ToolMissingError(f"`{name}` not found; {hint}")
    return path


def find_vng() -> str:
    """virtme-ng's ``vng``, preferring the running interpreter's venv (it is usually not on PATH)."""
    beside = Path(sys.executable).parent / "vng"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return find_tool("vng", VNG_HINT)


def check_boot_tools() -> str:
    """Fail early, with one clear message, when a tool ``vng`` needs is absent; returns the vng path."""
    vng = find_vng()
    find_tool("qemu-system-x86_64")
    if not any(_static(Path(p)) for p in ("/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox")):
        raise ToolMissingError(f"a static `busybox` (for the guest's initramfs) not found; {SETUP_HINT}")
    return vng


def _static(path: Path) -> bool:
    """True for an existing binary without a dynamic loader (its ELF interpreter sits near the start)."""
    try:
        with open(path, "rb") as fh:
            return b"ld-linux" not in fh.read(4096)
    except OSError:
        return False
