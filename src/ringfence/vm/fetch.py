"""Fetch Debian 7.x kernels by suite, series or release, and install their modules where virtme-ng looks.

Layout under the cache root (``$RINGFENCE_CACHE``, default ``~/.cache/ringfence``)::

    debian/             private apt config (sources.list), lists, .deb cache; debian/updated stamps the last
                        update, debian/kernels.json is the catalog (release, suite, Debian version) read then
    debs/<REL>/         the downloaded linux-binary, linux-modules and linux-base packages
    kernels/<REL>/      the packages extracted with ``dpkg -x``, plus origin.json (suite, Debian version)

and ``/lib/modules/<REL>`` (a hard-linked copy of the extracted modules, plus ``depmod``).
Everything is idempotent: with the kernel present and the lists fresh, a call does no network access.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ringfence.vm import catalog
from ringfence.vm.apt import LISTS_MAX_AGE, PrivateApt, compare_versions
from ringfence.vm.catalog import Candidate, Selector, parse_selector
from ringfence.vm.download import fetch, parse_print_uris
from ringfence.vm.errors import KernelNotFoundError, VmError, VmUnavailableError
from ringfence.vm.tools import cache_lock, cache_root, find_tool

MODULES_ROOT = Path("/lib/modules")
ORIGIN = "origin.json"


@dataclass(frozen=True)
class KernelImage:
    """A bootable kernel: its release string, its image, its module tree, and where it came from."""

    version: str
    vmlinuz: Path
    modules_dir: Path
    suite: str | None = None           # the Debian suite it was fetched from (None: not recorded)
    debian_version: str | None = None  # the packages' Debian version, e.g. 7.3~rc7-1~exp1


def _log(message: str) -> None:
    print(f"ringfence.vm: {message}", file=sys.stderr, flush=True)


def _extracted(release: str) -> Path:
    return cache_root() / "kernels" / release


def _catalog_path() -> Path:
    return cache_root() / "debian" / "kernels.json"


def _origin(release: str) -> tuple[str | None, str | None]:
    try:
        data = json.loads((_extracted(release) / ORIGIN).read_text(encoding="utf-8"))
        return data.get("suite"), data.get("version")
    except (OSError, ValueError, AttributeError):
        return None, _version_from_debs(release)


def _version_from_debs(release: str) -> str | None:
    """The Debian version in a downloaded package's file name (kernels fetched before origin.json)."""
    debs = cache_root() / "debs" / release
    for deb in sorted(debs.glob(f"linux-binary-{release}_*.deb")) if debs.is_dir() else []:
        return deb.name.split("_")[1].replace("%3a", ":")
    return None


def _image_for(release: str) -> KernelImage | None:
    """The kernel if it is fully extracted and installed (modules + depmod), else None."""
    moddir = MODULES_ROOT / release
    vmlinuz = moddir / "vmlinuz"
    if vmlinuz.is_file() and (moddir / "modules.dep").is_file() and _extracted(release).is_dir():
        suite, version = _origin(release)
        return KernelImage(release, vmlinuz, moddir, suite, version)
    return None


def _order(a: KernelImage, b: KernelImage) -> int:
    if a.debian_version and b.debian_version:
        return compare_versions(a.debian_version, b.debian_version)
    return compare_versions(a.version, b.version)


def cached_kernels() -> list[KernelImage]:
    """Kernels already extracted and installed, oldest first."""
    root = cache_root() / "kernels"
    names = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else []
    images = [img for n in names if (img := _image_for(n)) is not None]
    return sorted(images, key=functools.cmp_to_key(_order))


def known_kernels() -> list[Candidate]:
    """The catalog from the last list update (empty if never updated); local, no network."""
    return catalog.load(_catalog_path())


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise VmError(f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()}")


def update_catalog(apt: PrivateApt | None = None) -> list[Candidate]:
    """Refresh the package lists of every suite and rebuild the catalog (network)."""
    apt = apt or PrivateApt()
    _log(f"updating the private package lists ({', '.join(apt.suites)})")
    apt.update()
    rows = catalog.parse_madison(apt.madison(catalog.image_names(apt.package_names("linux-image-"))))
    catalog.save(_catalog_path(), rows)
    return rows


def _packages(apt: PrivateApt, want: Candidate) -> list[str]:
    """``name=version`` of the packages that make up one kernel (image, modules, and the small base)."""
    known = set(apt.package_names(f"linux-binary-{want.release}")) | set(
        apt.package_names(f"linux-modules-{want.release}")) | set(apt.package_names(f"linux-base-{want.release}"))
    names = [f"linux-binary-{want.release}", f"linux-modules-{want.release}"]
    if not set(names) <= known:
        names = [f"linux-image-{want.release}"]  # older layout: one package holds image and modules
    if f"linux-base-{want.release}" in known:
        names.append(f"linux-base-{want.release}")  # holds modules.builtin and the kernel config
    return [f"{n}={want.version}" for n in names]


def _download_and_extract(apt: PrivateApt, want: Candidate) -> Path:
    """Download the kernel's packages (checked against apt's SHA256) and ``dpkg -x`` them, atomically."""
    dest = _extracted(want.release)
    if dest.is_dir():
        return dest
    debs = cache_root() / "debs" / want.release
    debs.mkdir(parents=True, exist_ok=True)
    packages = _packages(apt, want)
    files = parse_print_uris(apt.print_uris(packages, debs))
    if not files:
        raise KernelNotFoundError(f"apt offers no files for {', '.join(packages)}")
    fetch(apt.argv("apt-get"), packages, files, debs, label=f"{want.release} from {want.suite}")
    dpkg = find_tool("dpkg", "dpkg is needed to unpack the kernel packages")
    tmp = dest.with_name(f".{want.release}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in files:
        _run([dpkg, "-x", str(debs / f.name), str(tmp)])
    _write_origin(tmp, want)
    tmp.rename(dest)
    return dest


def _write_origin(tree: Path, want: Candidate) -> None:
    (tree / ORIGIN).write_text(json.dumps(want.to_json()) + "\n", encoding="utf-8")


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


def _install(apt: PrivateApt, want: Candidate) -> KernelImage:
    tree = _download_and_extract(apt, want)
    if not (tree / ORIGIN).is_file():
        _write_origin(tree, want)  # fetched before origins were recorded
    _install_modules(want.release, tree)
    image = _image_for(want.release)
    if image is None:
        raise VmError(f"kernel {want.release} was installed but is incomplete under {MODULES_ROOT / want.release}")
    return image


def _installed(selector: Selector) -> list[KernelImage]:
    return [i for i in cached_kernels() if selector.matches(i.version, i.suite)]


def _ready(want: Candidate) -> KernelImage | None:
    """The installed image of ``want``, recording its origin if an older fetch did not."""
    image = _image_for(want.release)
    if image is not None and image.suite is None:
        _write_origin(_extracted(want.release), want)
        image = _image_for(want.release)
    return image


def ensure_kernel(kernel: str | None = None, *, suite: str | None = None, refresh: bool = False) -> KernelImage:
    """Return a bootable kernel, fetching it first if needed.

    ``kernel`` (or ``$RINGFENCE_VM_KERNEL``) is a series (``7.3``: its newest release in any suite) or an
    exact release (``7.2.13+deb14-amd64``; ``-amd64`` may be left off); ``suite`` (or ``$RINGFENCE_VM_SUITE``)
    limits the choice to ``sid`` or ``experimental``. Neither: the newest 7.x of sid. The lists are refreshed
    when older than 12 hours or when ``refresh`` is true; if that fails, the newest installed kernel that fits
    is used.
    """
    selector = parse_selector(kernel or os.environ.get("RINGFENCE_VM_KERNEL") or None,
                              suite or os.environ.get("RINGFENCE_VM_SUITE") or None)
    apt = PrivateApt()
    if selector.release and not selector.suite and not refresh and (image := _image_for(selector.release)):
        return image  # an exact release that is installed: no lists needed
    stale = refresh or apt.lists_age() > LISTS_MAX_AGE or not _catalog_path().is_file()
    if not stale and (want := catalog.choose(known_kernels(), selector)) and (image := _ready(want)):
        return image
    with cache_lock():
        rows = known_kernels()
        if stale:
            try:
                rows = update_catalog(apt)
            except VmUnavailableError as exc:
                if fallback := _installed(selector):
                    _log(f"warning: the list update failed, using the installed {fallback[-1].version}: {exc}")
                    return fallback[-1]
                raise
        want = catalog.choose(rows, selector)
        if want is None:
            if selector.release and _extracted(selector.release).is_dir():
                suite_seen, version = _origin(selector.release)
                return _install(apt, Candidate(selector.release, suite_seen or "unknown", version or "unknown"))
            offered = ", ".join(f"{c.release} ({c.suite})" for c in rows) or "none"
            raise KernelNotFoundError(f"no Debian kernel fits {selector.describe()}; the lists offer: {offered}")
        return _ready(want) or _install(apt, want)


def available_per_suite(*, refresh: bool = False) -> dict[str, KernelImage]:
    """Each suite's newest 7.x kernel, fetched if needed: the set the conformance suite boots.

    If the lists cannot be refreshed, an older catalog is used (with a warning); with none, this raises.
    """
    if refresh or PrivateApt().lists_age() > LISTS_MAX_AGE or not _catalog_path().is_file():
        with cache_lock():
            try:
                update_catalog()
            except VmUnavailableError as exc:
                if not known_kernels():
                    raise
                _log(f"warning: the list update failed, using the catalog of the last update: {exc}")
    newest = catalog.newest_per_suite(known_kernels())
    if not newest:
        raise KernelNotFoundError("the package lists offer no generic 7.x kernel in any suite")
    return {s: ensure_kernel(c.release, suite=s) for s, c in newest.items()}
