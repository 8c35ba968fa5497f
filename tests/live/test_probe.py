"""The feature probe on the running kernel: sanity per kernel version, and that it leaves the caller free."""

from __future__ import annotations

import argparse
import json

import pytest

from ringfence.abi.opcodes import SqeOp
from ringfence.abi.profiles import KernelProfile
from ringfence.cli import probe as cli_probe
from ringfence.live import _sys
from ringfence.live.probe import ProbeReport, probe, profile_from_report, render

pytestmark = pytest.mark.live


def test_report_matches_the_profile(probed: tuple[ProbeReport, KernelProfile]) -> None:
    report, profile = probed
    assert report.io_uring and report.setup_error is None
    assert report.op_last == profile.op_last == len(report.supported_ops)
    assert report.query is not None and report.query["nr_register_opcodes"] == profile.register_last
    assert report.query["sqe_flags"] == 0x7F
    assert report.classic_semantics == ("split" if profile.split_restrictions else "joint")
    assert profile_from_report(report) == profile


def test_pre_7_kernel_has_no_filters(probed: tuple[ProbeReport, KernelProfile]) -> None:
    report, profile = probed
    if profile.version >= (7, 0):
        pytest.skip(f"kernel {report.release} has filters")
    assert report.ring_filters == report.task_filters == report.task_restrictions == "EINVAL"
    assert report.pdu_sizes is None and report.source_cow is None
    assert report.classic_semantics == "joint" and report.classic_nop_outcome == "EACCES"


def test_7_kernel_reports_filters_and_payload_sizes(probed: tuple[ProbeReport, KernelProfile]) -> None:
    report, profile = probed
    if profile.version < (7, 0):
        pytest.skip(f"kernel {report.release} predates filters")
    assert report.ring_filters == report.task_filters == report.task_restrictions == "ok"
    assert report.pdu_sizes is not None
    assert {k: v for k, v in report.pdu_sizes.items() if v} == {op.name: n for op, n in profile.pdu_sizes.items()}
    assert report.source_cow is not None and report.source_cow == profile.source_cow
    assert report.pdu_sizes["NOP"] == 0 and report.pdu_sizes["SOCKET"] == 12


def test_probing_leaves_the_caller_unrestricted() -> None:
    nnp = _sys.no_new_privs()
    report = probe()
    assert _sys.no_new_privs() == nnp == report.no_new_privs


def test_render_is_aligned(probed: tuple[ProbeReport, KernelProfile]) -> None:
    lines = render(probed[0]).splitlines()
    columns = {line.index(":") + len(line.split(":", 1)[1]) - len(line.split(":", 1)[1].lstrip()) for line in lines}
    assert len(columns) == 1
    assert lines[0].startswith("kernel:")
    assert lines[-1].startswith(("profile:", "note:"))


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_probe.run(argparse.Namespace(json=True)) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == 1 and data["io_uring"] is True
    assert SqeOp.NOP.name in data["supported_ops"]


def test_cli_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_probe.run(argparse.Namespace(json=False)) == 0
    assert "profile:" in capsys.readouterr().out
