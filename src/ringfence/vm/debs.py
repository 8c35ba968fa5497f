"""Fetch Debian sid packages through the private apt configuration and unpack them into the cache.

For things a test needs from sid that the host lacks, such as newer headers (``liburing-dev``,
``linux-libc-dev``) to compile generated C against. Nothing is installed: each package is unpacked with
``dpkg -x`` into its own directory, named by package and version, under the cache root::

    packages/debs/                  the downloaded .deb files
    packages/<NAME>_<VERSION>/      one package's files (usr/include/..., usr/lib/...)

With the package lists fresh (see :data:`~ringfence.vm.apt.LISTS_MAX_AGE`) and the packages unpacked, a call
does no network access. When the lists cannot be refreshed, the newest unpacked version of each package is
used instead, if every requested package has one.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ringfence.vm.apt import LISTS_MAX_AGE, PrivateApt, compare_versions
from ringfence.vm.errors import VmError, VmUnavailableError
from ringfence.vm.tools import cache_lock, cache_root, find_tool

MULTIARCH = "x86_64-linux-gnu"


@dataclass(frozen=True)
class UnpackedPackage:
    """One package unpacked under the cache: ``root`` is where ``dpkg -x`` put its file tree."""

    name: str
    version: str
    root: Path

    def include_dirs(self) -> list[Path]:
        """The package's header directories (generic first, then the architecture's), for ``-I``."""
        dirs = [self.root / "usr/include", self.root / "usr/include" / MULTIARCH]
        return [d for d in dirs if d.is_dir()]


def packages_root() -> Path:
    return cache_root() / "packages"


def _dirname(name: str, version: str) -> str:
    return f"{name}_{version.replace(':', '%3a')}"


def cached_packages(name: str) -> list[UnpackedPackage]:
    """Versions of ``name`` already unpacked, oldest first."""
    root = packages_root()
    found = []
    for d in root.glob(f"{name}_*") if root.is_dir() else ():
        version = d.name.removeprefix(f"{name}_").replace("%3a", ":")
        if d.is_dir() and not d.name.startswith("."):
            found.append(UnpackedPackage(name, version, d))

    def order(a: UnpackedPackage, b: UnpackedPackage) -> int:
        return compare_versions(a.version, b.version)

    return sorted(found, key=functools.cmp_to_key(order))


def candidate_version(apt: PrivateApt, name: str) -> str:
    """The version of ``name`` that sid offers in the private lists (local, no network)."""
    version = apt.suite_version(name, "sid")
    if not version:
        raise VmUnavailableError(f"{name} is not in the sid package lists")
    return version


def _unpack(apt: PrivateApt, name: str, version: str) -> UnpackedPackage:
    dest = packages_root() / _dirname(name, version)
    if dest.is_dir():
        return UnpackedPackage(name, version, dest)
    debs = packages_root() / "debs"
    pattern = f"{_dirname(name, version)}_*.deb"  # apt names files NAME_VERSION_ARCH.deb
    matches = sorted(debs.glob(pattern)) if debs.is_dir() else []
    if not matches:
        apt.download([f"{name}={version}"], debs)
        matches = sorted(debs.glob(pattern))
        if not matches:
            raise VmError(f"apt-get download {name}={version} left no {pattern} in {debs}")
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    proc = subprocess.run([find_tool("dpkg", "dpkg is needed to unpack Debian packages"), "-x", str(matches[-1]),
                           str(tmp)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise VmError(f"dpkg -x {matches[-1]} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    tmp.rename(dest)
    return UnpackedPackage(name, version, dest)


def ensure_packages(names: Sequence[str], *, refresh: bool = False) -> list[UnpackedPackage]:
    """Sid's current version of each package, downloaded and unpacked into the cache (in ``names`` order).

    Raises :class:`VmUnavailableError` when a package cannot be had: no apt, no network and nothing cached,
    or a name sid does not have.
    """
    apt = PrivateApt()
    with cache_lock():
        if refresh or apt.lists_age() > LISTS_MAX_AGE or not apt.lists.is_dir():
            try:
                apt.update()
            except VmUnavailableError:
                cached = [cached_packages(n) for n in names]
                if all(cached):
                    return [c[-1] for c in cached]
                raise
        return [_unpack(apt, name, candidate_version(apt, name)) for name in names]


__all__ = ["UnpackedPackage", "cached_packages", "candidate_version", "ensure_packages", "packages_root"]
