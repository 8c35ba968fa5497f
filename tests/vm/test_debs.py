"""ringfence.vm.debs without the network: a stand-in apt that "downloads" a package built here with dpkg-deb."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from ringfence.vm import debs
from ringfence.vm.apt import PrivateApt
from ringfence.vm.errors import VmUnavailableError


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RINGFENCE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _build_deb(where: Path, name: str, version: str) -> Path:
    tree = where / f"build-{name}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr/include/x86_64-linux-gnu").mkdir(parents=True)
    (tree / "usr/include" / f"{name}.h").write_text(f"/* {name} {version} */\n")
    (tree / "DEBIAN/control").write_text(f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
                                         "Maintainer: nobody <nobody@invalid>\nDescription: test\n")
    out = where / f"{name}_{version.replace(':', '%3a')}_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(out)], check=True,
                   capture_output=True)
    return out


class FakeApt:
    """Fresh lists offering fixed versions; ``download`` copies prebuilt .debs and counts the calls."""

    def __init__(self, built: dict[str, Path], versions: dict[str, str], update_fails: bool = False) -> None:
        self.built, self.versions, self.update_fails = built, versions, update_fails
        self.downloads: list[str] = []
        self.lists = Path("/")

    def lists_age(self) -> float:
        return float("inf") if self.update_fails else 0.0

    def update(self) -> None:
        raise VmUnavailableError("no network here")

    def download(self, packages: Sequence[str], dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        for spec in packages:
            self.downloads.append(spec)
            shutil.copy(self.built[spec.split("=")[0]], dest)


def _use(monkeypatch: pytest.MonkeyPatch, apt: FakeApt) -> None:
    monkeypatch.setattr(debs, "PrivateApt", lambda: apt)
    monkeypatch.setattr(debs, "candidate_version", lambda _apt, name: apt.versions[name])


@pytest.mark.skipif(shutil.which("dpkg-deb") is None or shutil.which("dpkg") is None, reason="environment: needs dpkg")
def test_fetch_unpacks_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    built = {"libfoo-dev": _build_deb(tmp_path, "libfoo-dev", "1:2.15-1"),
             "linux-foo": _build_deb(tmp_path, "linux-foo", "7.2.13-1")}
    apt = FakeApt(built, {"libfoo-dev": "1:2.15-1", "linux-foo": "7.2.13-1"})
    _use(monkeypatch, apt)
    first = debs.ensure_packages(["libfoo-dev", "linux-foo"])
    assert [(p.name, p.version) for p in first] == [("libfoo-dev", "1:2.15-1"), ("linux-foo", "7.2.13-1")]
    assert first[0].root == cache / "packages" / "libfoo-dev_1%3a2.15-1"
    assert (first[0].root / "usr/include/libfoo-dev.h").read_text() == "/* libfoo-dev 1:2.15-1 */\n"
    assert first[1].include_dirs() == [first[1].root / "usr/include", first[1].root / "usr/include/x86_64-linux-gnu"]
    assert debs.ensure_packages(["linux-foo", "libfoo-dev"]) == first[::-1]
    assert apt.downloads == ["libfoo-dev=1:2.15-1", "linux-foo=7.2.13-1"]  # the second call fetched nothing


def test_without_network_the_newest_cached_version_is_used(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    for d in ("liburing-dev_2.9-1", "liburing-dev_2.15-1", "liburing-dev_2.14-3", ".liburing-dev_9.tmp1"):
        (cache / "packages" / d).mkdir(parents=True)
    assert [p.version for p in debs.cached_packages("liburing-dev")] == ["2.9-1", "2.14-3", "2.15-1"]
    apt = FakeApt({}, {}, update_fails=True)
    _use(monkeypatch, apt)
    assert [p.version for p in debs.ensure_packages(["liburing-dev"])] == ["2.15-1"]
    with pytest.raises(VmUnavailableError, match="no network"):
        debs.ensure_packages(["liburing-dev", "linux-libc-dev"])  # nothing cached for the second


def test_candidate_version_is_sids(monkeypatch: pytest.MonkeyPatch) -> None:
    """With sid and experimental in the lists, the version sid offers is taken (apt-cache madison's rows)."""
    rows = ("liburing-dev |   2.16-1 | http://mirror.invalid/debian experimental/main amd64 Packages\n"
            "liburing-dev |   2.15-1 | http://mirror.invalid/debian sid/main amd64 Packages\n")
    apt = PrivateApt(Path("/nonexistent"))
    monkeypatch.setattr(apt, "madison", lambda names: rows if names == ["liburing-dev"] else "")
    assert debs.candidate_version(apt, "liburing-dev") == "2.15-1"
    with pytest.raises(VmUnavailableError, match="not in the sid package lists"):
        debs.candidate_version(apt, "nothing-dev")
