"""Kernel selection by suite, series and release, apt output parsing, and the checked download (no network)."""

from __future__ import annotations

import hashlib
import io
import sys
import textwrap
from pathlib import Path

import pytest

from ringfence.vm import catalog
from ringfence.vm.apt import PrivateApt
from ringfence.vm.catalog import Candidate, Selector, SelectorError, choose, newest_per_suite, parse_selector
from ringfence.vm.download import DebFile, Progress, fetch, parse_print_uris
from ringfence.vm.errors import VmUnavailableError

# What `apt-cache madison` printed for the private lists (sid + experimental) on 2026-12-02, plus invented rows
# (7.2.9, 7.3.1, 7.4) for the ordering cases.
MADISON = """\
linux-image-7.2.13+deb14-rt-amd64-dbg |   7.2.13-1 | http://mirror.example.org/debian sid/main amd64 Packages
linux-image-7.2.13+deb14-cloud-amd64 |   7.2.13-1 | http://mirror.example.org/debian sid/main amd64 Packages
linux-image-7.3-rt-amd64 | 7.3~rc7-1~exp1 | http://mirror.example.org/debian experimental/main amd64 Packages
linux-image-7.2.13+deb14-amd64 |   7.2.13-1 | http://mirror.example.org/debian sid/main amd64 Packages
linux-image-7.3-amd64-dbg | 7.3~rc7-1~exp1 | http://mirror.example.org/debian experimental/main amd64 Packages
linux-image-7.3-cloud-amd64 | 7.3~rc7-1~exp1 | http://mirror.example.org/debian experimental/main amd64 Packages
linux-image-7.3-amd64 | 7.3~rc7-1~exp1 | http://mirror.example.org/debian experimental/main amd64 Packages
linux-image-7.3-amd64 | 7.3~rc7-1~exp1 | http://mirror.example.org/debian experimental/main Sources
linux-image-6.18.2+deb14-amd64 | 6.18.2-1 | http://mirror.example.org/debian sid/main amd64 Packages
linux-image-7.2.9+deb14-amd64 | 7.2.9-1 | http://mirror.example.org/debian trixie/main amd64 Packages
"""

SID = Candidate("7.2.13+deb14-amd64", "sid", "7.2.13-1")
RC = Candidate("7.3-amd64", "experimental", "7.3~rc7-1~exp1")


def test_madison_rows_are_generic_7x_images_of_known_suites() -> None:
    assert catalog.parse_madison(MADISON) == [RC, SID]


def test_image_names_keep_generic_7x_only() -> None:
    names = ["linux-image-7.3-amd64", "linux-image-7.3-cloud-amd64", "linux-image-amd64", "linux-image-7.3-amd64-dbg",
             "linux-image-6.18.2+deb14-amd64", "linux-image-7.2.13+deb14-amd64", "linux-image-7.11.0+deb14-amd64"]
    assert catalog.image_names(names) == ["linux-image-7.11.0+deb14-amd64", "linux-image-7.2.13+deb14-amd64",
                                          "linux-image-7.3-amd64"]


@pytest.mark.parametrize(("kernel", "suite", "expected"), [
    (None, None, Selector()),
    (None, "experimental", Selector(suite="experimental")),
    ("7.3", None, Selector(series="7.3")),
    ("7", "sid", Selector(suite="sid", series="7")),
    ("7.2.13+deb14", None, Selector(release="7.2.13+deb14-amd64")),
    ("7.3-amd64", None, Selector(release="7.3-amd64")),
    (" 7.2.13+deb14-amd64 ", None, Selector(release="7.2.13+deb14-amd64")),
])
def test_parse_selector(kernel: str | None, suite: str | None, expected: Selector) -> None:
    assert parse_selector(kernel, suite) == expected


@pytest.mark.parametrize(("kernel", "suite"), [("latest", None), ("7.x", None), (None, "bookworm"), ("", "stable")])
def test_bad_selectors_are_usage_errors(kernel: str | None, suite: str | None) -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector(kernel, suite)
    assert info.value.exit_code == 2


ROWS = [SID, RC, Candidate("7.2.9+deb14-amd64", "sid", "7.2.9-1"), Candidate("7.3.1+deb14-amd64", "sid", "7.3.1-1"),
        Candidate("7.4-amd64", "experimental", "7.4~rc1-1~exp1"), Candidate("7.30.0+deb14-amd64", "experimental",
                                                                           "7.30.0-1")]


@pytest.mark.parametrize(("kernel", "suite", "expected"), [
    (None, None, "7.3.1+deb14-amd64"),          # default: sid's newest
    (None, "experimental", "7.30.0+deb14-amd64"),
    ("7.3", None, "7.3.1+deb14-amd64"),         # 7.3.1-1 is newer than 7.3~rc7
    ("7.3", "experimental", "7.3-amd64"),
    ("7.2", None, "7.2.13+deb14-amd64"),        # 7.2.13 after 7.2.9 (not string order)
    ("7.4", "sid", None),
    ("7.2.9+deb14", None, "7.2.9+deb14-amd64"),
    ("7.3-amd64", "sid", None),                 # that release is only in experimental
    ("8", None, None),
])
def test_choose(kernel: str | None, suite: str | None, expected: str | None) -> None:
    found = choose(ROWS, parse_selector(kernel, suite))
    assert (found.release if found else None) == expected


def test_series_does_not_match_a_longer_minor() -> None:
    assert catalog.in_series("7.3-amd64", "7.3") and catalog.in_series("7.3.1+deb14-amd64", "7.3")
    assert not catalog.in_series("7.30.0+deb14-amd64", "7.3")
    assert catalog.in_series("7.30.0+deb14-amd64", "7")


def test_a_release_in_two_suites_is_taken_from_the_more_stable_one() -> None:
    both = [Candidate("7.3.1+deb14-amd64", "experimental", "7.3.1-1"), Candidate("7.3.1+deb14-amd64", "sid", "7.3.1-1")]
    found = choose(both, parse_selector("7.3"))
    assert found is not None and found.suite == "sid"


def test_newest_per_suite_is_what_the_conformance_suite_boots() -> None:
    assert newest_per_suite(catalog.parse_madison(MADISON)) == {"sid": SID, "experimental": RC}
    assert newest_per_suite([SID]) == {"sid": SID}


def test_catalog_round_trips_and_tolerates_a_missing_or_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "kernels.json"
    assert catalog.load(path) == []
    catalog.save(path, ROWS)
    assert catalog.load(path) == ROWS
    path.write_text("{not json")
    assert catalog.load(path) == []


def test_private_sources_list_names_every_suite_and_no_host(tmp_path: Path) -> None:
    apt = PrivateApt(tmp_path)
    text = apt.sources_text("http://mirror.example.org/debian")
    assert text.splitlines() == [
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example.org/debian sid main",
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example.org/debian "
        "experimental main"]
    opts = apt.options()
    assert f"Dir::State::Lists={tmp_path / 'lists'}" in opts and "Dir::Etc::SourceParts=/dev/null" in opts


# --- apt-get --print-uris and the checked download ----------------------------------------------

PRINT_URIS = """\
'http://mirror.example.org/debian/pool/main/l/linux/linux-base-7.3-amd64_7.3%7erc7-1%7eexp1_amd64.deb' \
linux-base-7.3-amd64_7.3~rc7-1~exp1_amd64.deb 410008 \
SHA256:c7944da51717723bf6ffa5ce39193a6b7a11707be39c446a0b2b34b6341b80a3
'http://mirror.example.org/debian/pool/main/l/linux-signed-amd64/linux-binary-7.3-amd64_7.3%7erc7-1%7eexp1_amd64.deb' \
linux-binary-7.3-amd64_7.3~rc7-1~exp1_amd64.deb 14425180 \
SHA256:a427422f7d200f39f253882e0703a04b6a48b92dbfa46d00f1257151ee0da05c
"""


def test_parse_print_uris() -> None:
    files = parse_print_uris("Reading package lists...\n" + PRINT_URIS)
    assert [f.name for f in files] == ["linux-base-7.3-amd64_7.3~rc7-1~exp1_amd64.deb",
                                       "linux-binary-7.3-amd64_7.3~rc7-1~exp1_amd64.deb"]
    assert files[1].size == 14425180 and files[1].sha256.startswith("a427422f")
    assert files[0].uri.endswith("linux-base-7.3-amd64_7.3%7erc7-1%7eexp1_amd64.deb")


def test_print_uris_without_sha256_is_refused() -> None:
    with pytest.raises(VmUnavailableError, match="SHA256"):
        parse_print_uris("'http://x.example.org/a.deb' a.deb 3 MD5Sum:900150983cd24fb0d6963f7d28e17f72\n")


def _fake_apt(tmp_path: Path, contents: dict[str, bytes], exit_code: int = 0) -> list[str]:
    """An ``apt-get`` stand-in: ``download`` writes the given files into the current directory."""
    script = tmp_path / "fake_apt.py"
    script.write_text(textwrap.dedent(f"""\
        import sys
        for name, data in {contents!r}.items():
            open(name, "wb").write(data)
        print("Get:1 fake")
        sys.exit({exit_code})
    """))
    return [sys.executable, str(script)]


def _deb(name: str, data: bytes) -> DebFile:
    return DebFile(f"http://mirror.example.org/{name}", name, len(data), hashlib.sha256(data).hexdigest())


class _Quiet(Progress):
    def __init__(self, label: str, total: int) -> None:
        self.out = io.StringIO()
        super().__init__(label, total, self.out)
        seen.append(self)


seen: list[_Quiet] = []


def test_download_checks_hashes_and_is_quiet_without_a_terminal(tmp_path: Path) -> None:
    files = [_deb("a.deb", b"alpha" * 100), _deb("b.deb", b"beta")]
    dest = tmp_path / "debs"
    seen.clear()
    fetch(_fake_apt(tmp_path, {"a.deb": b"alpha" * 100, "b.deb": b"beta"}), ["a=1", "b=1"], files, dest,
          label="7.3-amd64 from experimental", progress=_Quiet)
    assert (dest / "a.deb").read_bytes() == b"alpha" * 100
    lines = seen[0].out.getvalue().splitlines()
    assert lines[0] == "ringfence.vm: downloading 7.3-amd64 from experimental (0.0 MB)"
    assert lines[1].startswith("ringfence.vm: downloaded 7.3-amd64 from experimental")
    assert len(lines) == 2 and "\r" not in seen[0].out.getvalue()
    # everything verified: a second call runs nothing (a failing "apt" would raise)
    fetch(_fake_apt(tmp_path, {}, exit_code=100), ["a=1", "b=1"], files, dest, label="x", progress=_Quiet)


def test_download_with_a_wrong_hash_fails_and_leaves_nothing_behind(tmp_path: Path) -> None:
    files = [_deb("a.deb", b"alpha")]
    dest = tmp_path / "debs"
    with pytest.raises(VmUnavailableError, match="SHA256"):
        fetch(_fake_apt(tmp_path, {"a.deb": b"alphA"}), ["a=1"], files, dest, label="x", progress=_Quiet)
    assert not (dest / "a.deb").exists()


def test_download_replaces_a_corrupt_cached_file(tmp_path: Path) -> None:
    files = [_deb("a.deb", b"alpha")]
    dest = tmp_path / "debs"
    dest.mkdir()
    (dest / "a.deb").write_bytes(b"half")
    fetch(_fake_apt(tmp_path, {"a.deb": b"alpha"}), ["a=1"], files, dest, label="x", progress=_Quiet)
    assert (dest / "a.deb").read_bytes() == b"alpha"


def test_apt_failure_is_reported_with_its_output(tmp_path: Path) -> None:
    with pytest.raises(VmUnavailableError, match="exit 100"):
        fetch(_fake_apt(tmp_path, {}, exit_code=100), ["a=1"], [_deb("a.deb", b"a")], tmp_path / "d", label="x",
              progress=_Quiet)


def test_progress_line_on_a_terminal_redraws_in_place() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    bar = Progress("7.3-amd64", 2_000_000, out)
    bar.start()
    bar.update(1_000_000)
    bar.finish(True)
    text = out.getvalue()
    assert text.startswith("\rringfence.vm: downloading 7.3-amd64: 1.0 MB of 2.0 MB (50%")
    assert text.endswith("ringfence.vm: downloaded 7.3-amd64 (2.0 MB in 0.0 s)\n")
