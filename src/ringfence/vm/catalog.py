"""Which Debian kernels exist, in which suite, and which one a selector means (no network, no apt).

The catalog is a table of :class:`Candidate` rows built from ``apt-cache madison`` output after a list
update, and stored as JSON so that choosing a kernel later needs neither the network nor apt. Selectors:

* a suite (``--suite experimental``): the newest generic 7.x kernel of that suite;
* a series (``--kernel 7.3``, or ``7``): the newest release of that series in any suite;
* an exact release (``--kernel 7.2.13+deb14-amd64``; ``-amd64`` may be left off).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from ringfence.vm.apt import compare_versions
from ringfence.vm.errors import VmError

#: Suites the private apt configuration knows, most stable first; the default suite is the first.
SUITES: tuple[str, ...] = ("sid", "experimental")
DEFAULT_SUITE = SUITES[0]
MAJOR = "7"
# Generic amd64 flavour only: "-cloud-", "-rt-", "-dbg" and "-unsigned" names do not match.
IMAGE_RE = re.compile(r"^linux-image-(?P<ver>\d[0-9A-Za-z.+~]*(?:-\d+)?)-amd64$")
_SERIES_RE = re.compile(r"^\d+(?:\.\d+)?$")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One kernel a suite offers: its release (``uname -r``), suite and Debian package version."""

    release: str
    suite: str
    version: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Selector:
    """What the caller asked for; every field that is set must match."""

    suite: str | None = None
    series: str | None = None
    release: str | None = None

    def describe(self) -> str:
        parts = [f"suite {self.suite}" if self.suite else "", f"series {self.series}" if self.series else "",
                 f"release {self.release}" if self.release else ""]
        return ", ".join(p for p in parts if p) or f"the newest {MAJOR}.x of {DEFAULT_SUITE}"

    def matches(self, release: str, suite: str | None) -> bool:
        """Whether an installed or offered kernel fits (an unknown suite fits only a selector without one)."""
        if self.release and release != self.release:
            return False
        if self.series and not in_series(release, self.series):
            return False
        wanted = self.suite or (None if self.release or self.series else DEFAULT_SUITE)
        return wanted is None or suite == wanted


class SelectorError(VmError, ValueError):
    """A ``--kernel``/``--suite`` value that cannot name a kernel (a usage error: exit code 2)."""

    exit_code: ClassVar[int] = 2


def release_of(text: str) -> str:
    """``7.2.13+deb14`` -> ``7.2.13+deb14-amd64``: releases name packages, cache and module directories."""
    return text if text.endswith("-amd64") else text + "-amd64"


def in_series(release: str, series: str) -> bool:
    """``7.3-amd64`` and ``7.3.1+deb14-amd64`` are in series ``7.3`` and ``7``; ``7.30.0`` is not in ``7.3``."""
    return re.match(re.escape(series) + r"(?:[.~+-]|$)", release) is not None


def parse_selector(kernel: str | None = None, suite: str | None = None) -> Selector:
    """A :class:`Selector` from the CLI's ``--kernel`` and ``--suite`` values (either may be None)."""
    if suite is not None and suite not in SUITES:
        raise SelectorError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    kernel = (kernel or "").strip()
    if not kernel:
        return Selector(suite=suite)
    if _SERIES_RE.match(kernel):
        return Selector(suite=suite, series=kernel)
    if not re.match(r"^\d+\.\d+[0-9A-Za-z.+~-]*$", kernel):
        raise SelectorError(f"cannot read a kernel from {kernel!r}: want a series like 7.3 or a release like "
                            "7.2.13+deb14-amd64")
    return Selector(suite=suite, release=release_of(kernel))


def _newest_first(rows: Iterable[Candidate]) -> list[Candidate]:
    def order(a: Candidate, b: Candidate) -> int:
        return compare_versions(a.version, b.version) or SUITES.index(b.suite) - SUITES.index(a.suite)

    return sorted(rows, key=functools.cmp_to_key(order), reverse=True)


def choose(candidates: Iterable[Candidate], selector: Selector) -> Candidate | None:
    """The newest candidate (by Debian version; the more stable suite on a tie) that the selector allows."""
    fitting = [c for c in candidates if selector.matches(c.release, c.suite)]
    return _newest_first(fitting)[0] if fitting else None


def newest_per_suite(candidates: Iterable[Candidate]) -> dict[str, Candidate]:
    """Each suite's newest generic 7.x kernel, in :data:`SUITES` order (suites without one are left out)."""
    rows = list(candidates)
    out = {s: c for s in SUITES if (c := choose(rows, Selector(suite=s)))}
    return out


def parse_madison(text: str) -> list[Candidate]:
    """Rows of ``apt-cache madison`` for ``linux-image-*`` packages, generic 7.x amd64 images only.

    A line reads ``linux-image-7.3-amd64 | 7.3~rc7-1~exp1 | http://mirror/debian experimental/main amd64
    Packages``; the suite is the distribution part before ``/``.
    """
    rows: list[Candidate] = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not (m := IMAGE_RE.match(parts[0])) or not m.group("ver").startswith(MAJOR + "."):
            continue
        where = parts[2].split()
        if len(where) < 2 or where[-1] != "Packages":
            continue  # source packages and anything else
        suite = where[1].split("/")[0]
        if suite in SUITES:
            rows.append(Candidate(release_of(m.group("ver")), suite, parts[1]))
    return sorted(set(rows), key=lambda c: (c.suite, c.release, c.version))


def image_names(package_names: Sequence[str]) -> list[str]:
    """The generic 7.x ``linux-image-*`` names among ``apt-cache pkgnames`` output."""
    return sorted(n for n in package_names if (m := IMAGE_RE.match(n)) and m.group("ver").startswith(MAJOR + "."))


def save(path: Path, candidates: Iterable[Candidate]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([c.to_json() for c in candidates], indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def load(path: Path) -> list[Candidate]:
    """The saved catalog, or an empty one if there is none (or it cannot be read)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [Candidate(str(d["release"]), str(d["suite"]), str(d["version"])) for d in data]
    except (OSError, ValueError, KeyError, TypeError):
        return []
