"""ringfence.vm: mirror detection and version ordering (fast), and one real boot of the 7.x kernel (``vm``).

The VM tests skip when the machine cannot run a VM (tools, kernel or network missing), unless
``RINGFENCE_REQUIRE_VM=1``, in which case they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ringfence.vm import (
    KernelImage,
    VmResult,
    VmUnavailableError,
    ensure_kernel,
    inside_guest,
    known_kernels,
    run_in_vm,
)
from ringfence.vm.apt import PrivateApt, compare_versions, parse_deb822, parse_sources_list
from ringfence.vm.catalog import Selector, choose
from ringfence.vm.download import fetch, parse_print_uris, verified

MIRROR = "http://mirror.example.org/debian"

DEB822 = f"""\
Types: deb
URIs: https://repo.example.com/node_20.x
Suites: nodistro
Components: main
Signed-By: /usr/share/keyrings/nodesource.gpg

Types: deb
URIs: http://disabled.example.org/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
# a comment inside a stanza
URIs: {MIRROR}
  http://second.example.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main
"""

ONE_LINE = f"""\
# deb http://commented.example.org/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/google.gpg] https://dl.example.com/linux/chrome/deb/ stable main
deb https://repo.example.com/node_20.x nodistro main
deb-src {MIRROR} bookworm main
deb http://security.example.org/debian-security bookworm-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {MIRROR} bookworm main contrib
"""


# --- fast unit tests ------------------------------------------------------------------------


def test_deb822_picks_first_enabled_debian_stanza() -> None:
    assert parse_deb822(DEB822) == MIRROR


def test_deb822_accepts_keyring_without_known_suite_and_rejects_third_party() -> None:
    keyring_only = ("Types: deb\nURIs: http://k.example.org/d\nSuites: custom\n"
                    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    assert parse_deb822(keyring_only) == "http://k.example.org/d"
    assert parse_deb822("Types: deb\nURIs: http://x.example.org/u\nSuites: jammy\nComponents: main\n") is None
    assert parse_deb822("") is None


def test_one_line_sources_skip_third_party_security_and_deb_src() -> None:
    assert parse_sources_list(ONE_LINE) == MIRROR
    assert parse_sources_list(f"deb {MIRROR} sid main\n") == MIRROR
    assert parse_sources_list("deb https://repo.example.com/node nodistro main\n") is None
    assert parse_sources_list("deb [arch=amd64] https://dl.example.com/linux/chrome/deb/ stable main\n") is None
    assert parse_sources_list("deb http://ftp.example.org/debian stable main\n") == "http://ftp.example.org/debian"


VERSION_PAIRS = [
    ("7.2.9+deb14", "7.2.13+deb14"),
    ("7.9.1+deb14", "7.10.0+deb14"),
    ("7.2.13~rc1+deb14", "7.2.13+deb14"),
    ("6.1.0-9", "6.1.0-18"),
    ("7.2", "7.2.0"),
    ("1.0~~", "1.0~"),
    ("1.0", "1.0a"),
    ("1.0a", "1.0+"),
    ("9.9", "1:0.1"),
]


@pytest.mark.parametrize(("older", "newer"), VERSION_PAIRS)
def test_version_ordering(older: str, newer: str) -> None:
    assert compare_versions(older, newer) < 0
    assert compare_versions(newer, older) > 0
    assert compare_versions(newer, newer) == 0


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="environment: needs dpkg to cross-check")
@pytest.mark.parametrize(("older", "newer"), VERSION_PAIRS)
def test_version_ordering_agrees_with_dpkg(older: str, newer: str) -> None:
    assert subprocess.run(["dpkg", "--compare-versions", older, "lt", newer], check=False).returncode == 0


# --- real VM ----------------------------------------------------------------------------------

GUEST_SCRIPT = textwrap.dedent("""\
    import ctypes, os, sys
    print("release", os.uname().release)
    print("uid", os.getuid())
    print("cwd", os.getcwd())
    print("env", os.environ.get("RF_PROBE"))
    libc = ctypes.CDLL(None, use_errno=True)
    print("unshare_net", libc.unshare(0x40000000), ctypes.get_errno())
    pid = os.fork()
    if pid == 0:
        os._exit(5)
    print("child", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    with open(os.path.join(sys.argv[1], "from-guest.txt"), "w") as fh:
        fh.write(os.uname().release)
    print("to stderr", file=sys.stderr)
    sys.exit(3)
""")


def _unavailable(reason: str) -> None:
    if os.environ.get("RINGFENCE_REQUIRE_VM") == "1":
        pytest.fail(f"RINGFENCE_REQUIRE_VM=1 but no VM: {reason}")
    pytest.skip(f"no VM here: {reason}")


@pytest.fixture(scope="session")
def vm_kernel() -> KernelImage:
    if inside_guest():
        pytest.skip("already inside the VM: not nesting another one")
    try:
        return ensure_kernel()
    except VmUnavailableError as exc:
        _unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def vm_run(vm_kernel: KernelImage, tmp_path_factory: pytest.TempPathFactory) -> tuple[VmResult, Path]:
    """One boot for the whole session: the guest script checks several things at once."""
    shared = tmp_path_factory.mktemp("vm-rw")
    script = shared / "probe.py"
    script.write_text(GUEST_SCRIPT, encoding="utf-8")
    try:
        result = run_in_vm([sys.executable, str(script), str(shared)], kernel=vm_kernel, rwdirs=[str(shared)],
                           cwd="/", env={"RF_PROBE": "it's here"}, timeout=600)
    except VmUnavailableError as exc:
        _unavailable(str(exc))
        raise
    print(f"VM kernel {result.kernel_version}: boot {result.boot_seconds:.1f} s, total {result.duration:.1f} s")
    return result, shared


def _lines(result: VmResult) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


@pytest.mark.vm
def test_guest_runs_a_7x_kernel(vm_run: tuple[VmResult, Path]) -> None:
    result, _ = vm_run
    assert result.kernel_version.startswith("7.")
    assert _lines(result)["release"] == result.kernel_version


@pytest.mark.vm
def test_exit_code_stdout_and_stderr_come_back(vm_run: tuple[VmResult, Path]) -> None:
    result, _ = vm_run
    assert result.exit_code == 3, result.stderr
    assert "release 7." in result.stdout
    assert result.stderr.strip() == "to stderr"


@pytest.mark.vm
def test_guest_is_root_with_cwd_env_fork_and_netns(vm_run: tuple[VmResult, Path]) -> None:
    lines = _lines(vm_run[0])
    assert lines["uid"] == "0"
    assert lines["cwd"] == "/"
    assert lines["env"] == "it's here"
    assert lines["unshare_net"] == "0 0"
    assert lines["child"] == "5"


@pytest.mark.vm
def test_file_written_in_rwdir_is_visible_on_host(vm_run: tuple[VmResult, Path]) -> None:
    result, shared = vm_run
    assert (shared / "from-guest.txt").read_text(encoding="utf-8") == result.kernel_version


@pytest.mark.vm
def test_real_download_is_checked_against_apt_hashes(vm_kernel: KernelImage, tmp_path: Path) -> None:
    """The download path on the real mirror, with the small linux-base package (the kernels are usually cached)."""
    apt = PrivateApt()
    want = choose(known_kernels(), Selector(release=vm_kernel.version, suite=vm_kernel.suite))
    assert want is not None and want.version == vm_kernel.debian_version
    packages = [f"linux-base-{want.release}={want.version}"]
    try:
        files = parse_print_uris(apt.print_uris(packages, tmp_path))
        assert [f.name.split("_")[0] for f in files] == [f"linux-base-{want.release}"]
        fetch(apt.argv("apt-get"), packages, files, tmp_path, label=f"linux-base-{want.release}")
    except VmUnavailableError as exc:
        _unavailable(str(exc))
    assert verified(tmp_path / files[0].name, files[0]) and files[0].size > 100_000


@pytest.mark.vm
def test_second_ensure_kernel_is_cached_and_fast(vm_kernel: KernelImage) -> None:
    start = time.monotonic()
    again = ensure_kernel(vm_kernel.version)
    assert ensure_kernel() == vm_kernel  # the lists were just refreshed by the fixture if they were stale
    assert again == vm_kernel
    assert time.monotonic() - start < 1.0
    assert again.vmlinuz.is_file()
    assert (again.modules_dir / "modules.dep").is_file()
