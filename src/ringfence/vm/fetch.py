"""Fetch Debian's newest 7.x kernel and install its modules where virtme-ng looks for them.

Layout under the cache root (``$RINGFENCE_CACHE``, default ``~/.cache/ringfence``)::

    apt/                private apt config, lists, .deb cache; apt/updated stamps the last update
    debs/<VER>/         the downloaded linux-binary and linux-modules packages
    kernels/<VER>/      the packages extracted with ``dpkg -x``

and ``/lib/modules/<VER>`` (a hard-linked copy of the extracted modules, plus ``depmod``).
Everything is idempotent: with the kernel present, a call does no network access.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ringfence.vm.apt import LISTS_MAX_AGE, PrivateApt, compare_versions, newest_kernel
from ringfence.vm.errors import KernelNotFoundError, VmError, VmUnavailableError
from ringfence.vm.tools import cache_root, find_tool

MODULES_ROOT = Path("/lib/modules")


@dataclass(frozen=True)
class KernelImage:
    """A bootable kernel: its release string, its image, and its installed module tree."""

    version: str
    vmlinuz: Path
    modules_dir: Path


def _log(message: str) -> None:
    print(f"ringfence.vm: {message}", file=sys.stderr, flush=True)


def _extracted(version: str) -> Path:
    return cache_root() / "kernels" / version


def _image_for(version: str) -> KernelImage | None:
    """The kernel if it is fully extracted and installed (modules + depmod), else None."""
    moddir = MODULES_ROOT / version
    vmlinuz = moddir / "vmlinuz"
    if vmlinuz.is_file() and (moddir / "modules.dep").is_file() and _extracted(version).is_dir():
        return KernelImage(version, vmlinuz, moddir)
    return None


def cached_kernels() -> list[KernelImage]:
    """Kernels already extracted and installed, oldest first."""
    root = cache_root() / "kernels"
    names = [p.name for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    images = [img for n in names if (img := _image_for(n)) is not None]

    def order(a: KernelImage, b: KernelImage) -> int:
        return compare_versions(a.version, b.version)

    return sorted(images, key=functools.cmp_to_key(order))


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """Serialise slow-path work between processes (e.g. parallel test workers)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "lock", "w", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise VmError(f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()}")


def _download_and_extract(apt: PrivateApt, version: str) -> Path:
    """Download linux-binary + linux-modules for ``version`` and ``dpkg -x`` them (atomically)."""
    dest = _extracted(version)
    if dest.is_dir():
        return dest
    wanted = [f"linux-binary-{version}", f"linux-modules-{version}"]
    if not all(w in apt.package_names(w) for w in wanted):
        wanted = [f"linux-image-{version}"]  # older layout: one package holds image and modules
        if wanted[0] not in apt.package_names(wanted[0]):
            raise KernelNotFoundError(f"linux-image-{version} is neither cached nor in sid")
    if (base := f"linux-base-{version}") in apt.package_names(base):
        wanted.append(base)  # small; holds modules.builtin and the kernel config
    debs = cache_root() / "debs" / version
    have = {p.name.split("_")[0] for p in debs.glob("*.deb")} if debs.is_dir() else set()
    if missing := [w for w in wanted if w not in have]:
        _log(f"downloading {', '.join(missing)}")
        apt.download(missing, debs)
    dpkg = find_tool("dpkg", "dpkg is needed to unpack the kernel packages")
    tmp = dest.with_name(f".{version}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for deb in sorted(debs.glob("*.deb")):
        if deb.name.split("_")[0] in wanted:
            _run([dpkg, "-x", str(deb), str(tmp)])
    tmp.rename(dest)
    return dest


def _install_modules(version: str, tree: Path) -> None:
    """Copy (hard-link when possible) the module tree to /lib/modules/<VER> and run depmod."""
    src = next((p for p in (tree / "usr/lib/modules" / version, tree / "lib/modules" / version) if p.is_dir()), None)
    if src is None:
        raise KernelNotFoundError(f"{tree} holds no lib/modules/{version}: not a kernel package?")
    dest = MODULES_ROOT / version
    for extra in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
        if not (src / extra).exists() and (found := next(tree.rglob(extra), None)):
            shutil.copy2(found, src / extra)  # some layouts keep these outside the module tree
    if not (dest / "vmlinuz").is_file():
        if not (src / "vmlinuz").is_file():
            boot = tree / "boot" / f"vmlinuz-{version}"
            if not boot.is_file():
                raise KernelNotFoundError(f"no vmlinuz for {version} in {tree}")
            shutil.copy2(boot, src / "vmlinuz")
        try:
            MODULES_ROOT.mkdir(parents=True, exist_ok=True)
            tmp = MODULES_ROOT / f".{version}.tmp{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            if subprocess.run(["cp", "-al", str(src), str(tmp)], capture_output=True, check=False).returncode:
                shutil.rmtree(tmp, ignore_errors=True)
                _run(["cp", "-a", str(src), str(tmp)])
            shutil.rmtree(dest, ignore_errors=True)
            tmp.rename(dest)
        except PermissionError as exc:
            raise VmUnavailableError(f"cannot install modules into {dest} ({exc}); run once as root") from exc
    if not (dest / "modules.dep").is_file():
        _run([find_tool("depmod"), version])


def _install(apt: PrivateApt, version: str) -> KernelImage:
    _install_modules(version, _download_and_extract(apt, version))
    image = _image_for(version)
    if image is None:
        raise VmError(f"kernel {version} was installed but is incomplete under {MODULES_ROOT / version}")
    return image


def ensure_kernel(version: str | None = None, *, refresh: bool = False) -> KernelImage:
    """Return a bootable kernel, fetching it first if needed.

    ``version`` (or ``$RINGFENCE_VM_KERNEL``) pins a release such as ``7.2.13+deb14-amd64``
    (the ``-amd64`` may be left off); otherwise the newest generic 7.x in sid is used. Package lists are
    refreshed when older than 12 hours or when ``refresh`` is true.
    """
    version = version or os.environ.get("RINGFENCE_VM_KERNEL") or None
    if version and not version.endswith("-amd64"):
        version += "-amd64"  # the release (uname -r) names packages, cache and module directories
    apt = PrivateApt()
    stale = refresh or apt.lists_age() > LISTS_MAX_AGE
    if version and not refresh and (image := _image_for(version)):
        return image
    if not version and not stale and (last := apt.remembered()) and (image := _image_for(last)):
        return image
    with _lock():
        if version and _extracted(version).is_dir():
            return _install(apt, version)  # already downloaded: only the module install is missing
        if stale or not apt.lists.is_dir():
            _log("updating the private sid package lists")
            try:
                apt.update()
            except VmUnavailableError as exc:
                cached = [] if version else cached_kernels()
                if not cached:
                    raise
                fallback = cached[-1]
                _log(f"warning: update failed, using cached kernel {fallback.version}: {exc}")
                return fallback
        if not version:
            newest = newest_kernel(apt.package_names("linux-image-7."))
            if newest is None:
                raise KernelNotFoundError("the sid package lists hold no generic linux-image-7.*-amd64")
            version = newest + "-amd64"
            apt.remember(version)
        return _install(apt, version)
