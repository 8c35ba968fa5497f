"""A private apt configuration pointed at the machine's own Debian mirror, suites ``sid`` and ``experimental``.

The system's apt state is never touched: sources, lists and the package cache all live under
``<cache>/debian``. The mirror is whatever this machine already uses, so no host name is hard-coded.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from ringfence.vm.errors import KernelNotFoundError, VmUnavailableError
from ringfence.vm.tools import cache_root, find_tool

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
SOURCES_LIST = Path("/etc/apt/sources.list")
LISTS_MAX_AGE = 12 * 3600.0

_CODENAMES = frozenset((
    "hamm", "slink", "potato", "woody", "sarge", "etch", "lenny", "squeeze", "wheezy", "jessie", "stretch", "buster",
    "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
))
# Third parties use these too (a browser's ".../deb/ stable main"), so they count only on a Debian-looking URI.
_ALIASES = frozenset(("stable", "testing", "unstable", "oldstable", "oldoldstable", "experimental"))


# --- mirror detection -------------------------------------------------------------------------


def _is_debian(uri: str, suites: Iterable[str], signed_by: str) -> bool:
    """A Debian (not a third-party, not the security) archive, judged by keyring, suite and URI."""
    suites = list(suites)
    if suites and all(s.endswith(("-security", "/updates")) for s in suites):
        return False  # the security archive has no sid
    if "debian-archive-keyring" in signed_by:
        return True
    if signed_by.startswith("/"):
        return False  # signed with some other vendor's keyring
    bases = {s.split("-")[0].split("/")[0] for s in suites}
    return bool(bases & _CODENAMES) or (bool(bases & _ALIASES) and "debian" in uri.lower())


def parse_deb822(text: str) -> str | None:
    """First URI of the first enabled Debian ``deb`` stanza in deb822 ``.sources`` text."""
    for stanza in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        uris = fields.get("uris", "").split()
        if not uris or "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if _is_debian(uris[0], fields.get("suites", "").split(), fields.get("signed-by", "")):
            return uris[0]
    return None


def parse_sources_list(text: str) -> str | None:
    """URI of the first Debian ``deb`` line in one-line-style ``sources.list`` text."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        options = ""
        if m := re.match(r"^deb\s+\[([^\]]*)\]\s+(.*)$", line):
            options, rest = m.group(1), m.group(2)
        elif m := re.match(r"^deb\s+(.*)$", line):
            rest = m.group(1)
        else:
            continue
        parts = rest.split()
        signed_by = next((o.split("=", 1)[1] for o in options.split() if o.startswith("signed-by=")), "")
        if len(parts) >= 2 and _is_debian(parts[0], [parts[1]], signed_by):
            return parts[0]
    return None


def find_mirror() -> str:
    """The machine's Debian mirror (``$RINGFENCE_VM_MIRROR`` overrides), from its apt sources."""
    if override := os.environ.get("RINGFENCE_VM_MIRROR"):
        return override
    candidates: list[tuple[Path, bool]] = [(DEBIAN_SOURCES, True), (SOURCES_LIST, False)]
    parts = Path("/etc/apt/sources.list.d")
    if parts.is_dir():
        candidates += [(p, p.suffix == ".sources") for p in sorted(parts.iterdir())
                       if p != DEBIAN_SOURCES and p.suffix in (".sources", ".list")]
    for path, deb822 in candidates:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if uri := (parse_deb822(text) if deb822 else parse_sources_list(text)):
            return uri
    raise KernelNotFoundError("no Debian mirror in /etc/apt sources; set RINGFENCE_VM_MIRROR to a Debian mirror URI")


# --- Debian version ordering ------------------------------------------------------------------


def _order(c: str) -> int:
    """dpkg's character weight: ``~`` sorts before everything, letters before other symbols."""
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's comparison of one version part: alternating non-digit and digit runs."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def compare_versions(a: str, b: str) -> int:
    """Negative, zero or positive as ``a`` is older, equal or newer than ``b`` (dpkg semantics)."""
    def split(v: str) -> tuple[int, str, str]:
        epoch, _, rest = v.partition(":") if ":" in v else ("0", "", v)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return int(epoch or 0), upstream, revision

    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return ea - eb
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


# --- the private apt ----------------------------------------------------------------------------


class PrivateApt:
    """apt-get/apt-cache confined to ``<cache>/debian``: the local mirror's sid and experimental suites.

    (``<cache>/apt`` held an older sid-only configuration; it is left alone, so older checkouts sharing
    the cache keep working.)
    """

    def __init__(self, root: Path | None = None, suites: Sequence[str] = ("sid", "experimental")) -> None:
        self.root = root or cache_root() / "debian"
        self.suites = tuple(suites)
        self.lists = self.root / "lists"
        self.sources = self.root / "sources.list"
        self.stamp = self.root / "updated"  # mtime: last successful update

    def options(self) -> list[str]:
        """The ``-o`` options that confine apt to the private directory."""
        opts = {
            "Dir::Etc::SourceList": str(self.sources),
            "Dir::Etc::SourceParts": "/dev/null",
            "Dir::Etc::Preferences": "/dev/null",
            "Dir::Etc::PreferencesParts": "/dev/null",
            "Dir::State::Lists": str(self.lists),
            "Dir::State::status": "/dev/null",
            "Dir::Cache": str(self.root / "cache"),
            "APT::Architecture": "amd64",
            "APT::Sandbox::User": "root",  # the _apt user cannot write into a home directory
        }
        return [arg for k, v in opts.items() for arg in ("-o", f"{k}={v}")]

    def argv(self, tool: str) -> list[str]:
        """``tool`` with the private options, ready for more arguments."""
        return [find_tool(tool, "apt is needed to fetch the kernel (Debian/Ubuntu host)"), *self.options()]

    def _run(self, tool: str, args: Sequence[str], cwd: Path | None = None) -> str:
        proc = subprocess.run([*self.argv(tool), *args], cwd=cwd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            command = " ".join([tool, *args])
            raise VmUnavailableError(f"{command} failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
        return proc.stdout

    def lists_age(self) -> float:
        """Seconds since the last successful update (infinite if never)."""
        try:
            return time.time() - self.stamp.stat().st_mtime
        except OSError:
            return float("inf")

    def sources_text(self, mirror: str) -> str:
        return "".join(f"deb [signed-by={KEYRING}] {mirror} {suite} main\n" for suite in self.suites)

    def update(self) -> None:
        """Write the sources list and download the package lists of every suite (network)."""
        for d in (self.lists / "partial", self.root / "cache" / "archives" / "partial"):
            d.mkdir(parents=True, exist_ok=True)
        self.sources.write_text(self.sources_text(find_mirror()), encoding="utf-8")
        # apt-get update exits 0 on fetch errors unless told otherwise; then check for the lists as well
        self._run("apt-get", ["-q", "-o", "APT::Update::Error-Mode=any", "update"])
        missing = [s for s in self.suites if not any(self.lists.glob(f"*_dists_{s}_*Packages*"))]
        if missing:
            raise VmUnavailableError(f"apt-get update fetched no package list for {', '.join(missing)}")
        self.stamp.write_text("", encoding="utf-8")

    def package_names(self, prefix: str) -> list[str]:
        """Names known to the private lists that start with ``prefix`` (local, no network)."""
        return self._run("apt-cache", ["pkgnames", prefix]).split()

    def madison(self, packages: Sequence[str]) -> str:
        """``apt-cache madison`` for ``packages``: every version and the suite it is in (local)."""
        return self._run("apt-cache", ["madison", *packages]) if packages else ""

    def print_uris(self, packages: Sequence[str], cwd: Path) -> str:
        """What ``apt-get download`` would fetch, with sizes and hashes (local, no network)."""
        return self._run("apt-get", ["-q", "--print-uris", "download", *packages], cwd=cwd)

    def download(self, packages: Sequence[str], dest: Path) -> None:
        """``apt-get download`` of ``name=version`` specs into ``dest``, each file checked against the size and
        SHA256 the lists give (network)."""
        from ringfence.vm.download import fetch, parse_print_uris

        dest.mkdir(parents=True, exist_ok=True)
        files = parse_print_uris(self.print_uris(packages, dest))
        if not files:
            raise VmUnavailableError(f"apt offers no files for {', '.join(packages)}")
        fetch(self.argv("apt-get"), packages, files, dest, label=", ".join(packages))

    def suite_version(self, name: str, suite: str) -> str | None:
        """The version of ``name`` that ``suite`` offers, from the local lists; None if it has none."""
        for line in self.madison([name]).splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) >= 3 and parts[0] == name and parts[2].split()[-3].split("/")[0] == suite:
                return parts[1]
        return None
