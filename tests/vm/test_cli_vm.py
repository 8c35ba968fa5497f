"""``ringfence vm list`` and selector errors, on installed-kernel records made up here (no VM, no network)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ringfence.cli import vm as cli_vm
from ringfence.cli.main import build_parser
from ringfence.vm import KernelImage

IMAGES = [
    KernelImage("7.2.13+deb14-amd64", Path("/lib/modules/7.2.13+deb14-amd64/vmlinuz"),
                Path("/lib/modules/7.2.13+deb14-amd64"), "sid", "7.2.13-1"),
    KernelImage("7.3-amd64", Path("/lib/modules/7.3-amd64/vmlinuz"), Path("/lib/modules/7.3-amd64"), "experimental",
                "7.3~rc7-1~exp1"),
    KernelImage("7.4.1+deb14-amd64", Path("/lib/modules/7.4.1+deb14-amd64/vmlinuz"),
                Path("/lib/modules/7.4.1+deb14-amd64"), None, None),
]


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_vm, "cached_kernels", lambda: IMAGES)


def test_list_shows_release_suite_debian_version_and_profile(installed: None, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    assert cli_vm.run(argparse.Namespace(vm_command="list", json=False)) == 0
    assert capsys.readouterr().out.splitlines() == [
        "release             suite         debian version  profile",
        "7.2.13+deb14-amd64  sid           7.2.13-1        7.2",
        "7.3-amd64           experimental  7.3~rc7-1~exp1  7.3",
        "7.4.1+deb14-amd64   ?             ?               7.3 (nearest)",
    ]


def test_list_json(installed: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_vm.run(argparse.Namespace(vm_command="list", json=True)) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[1] == {"release": "7.3-amd64", "suite": "experimental", "debian_version": "7.3~rc7-1~exp1",
                       "profile": "7.3", "profile_exact": True, "vmlinuz": "/lib/modules/7.3-amd64/vmlinuz",
                       "modules_dir": "/lib/modules/7.3-amd64"}
    assert rows[2]["profile_exact"] is False


def test_a_malformed_selector_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["vm", "fetch", "--kernel", "newest"])
    assert cli_vm.run(args) == 2
    assert "want a series like 7.3" in capsys.readouterr().err


def test_fetch_and_run_take_suite_and_kernel() -> None:
    args = build_parser().parse_args(["vm", "run", "--suite", "experimental", "--kernel", "7.3", "--", "true"])
    assert (args.suite, args.kernel, args.cmd) == ("experimental", "7.3", ["true"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["vm", "fetch", "--suite", "bookworm"])
