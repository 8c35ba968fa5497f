"""The feature probe: matching a kernel against the static profiles (pure), and the probe on the running kernel
(``live``): sanity per kernel version, no adjustment on a known kernel, and that it leaves the caller free."""

from __future__ import annotations

import argparse
import json

import pytest

from ringfence.abi.opcodes import RegisterOp, SqeOp
from ringfence.abi.profiles import PROFILES, Adjustment, KernelProfile, ProfileMatch, profile
from ringfence.cli import probe as cli_probe
from ringfence.live import _sys
from ringfence.live.probe import ProbeReport, match_report, measured_features, probe, render

live = pytest.mark.live

#: Kernels the project has probed; each must match its static profile exactly (no adjustment).
KNOWN_KERNELS = {"6.18": "6.18", "7.2.13+deb14-amd64": "7.2", "7.3-amd64": "7.3"}


# --- matching, without a kernel ------------------------------------------------------------------

def _measured_like(prof: KernelProfile, **override: object) -> dict[str, object]:
    """What a probe of a kernel that behaves exactly like ``prof`` reports (as ``ProbeReport`` fields)."""
    fields: dict[str, object] = {
        "query": {"nr_request_opcodes": prof.op_last, "nr_register_opcodes": prof.register_last},
        "classic_semantics": "split" if prof.split_restrictions else "joint",
        "ring_filters": "ok" if prof.bpf_filters else "EINVAL",
        "task_filters": "ok" if RegisterOp.BPF_FILTER in prof.blind_ops else "EINVAL",
        "task_restrictions": "ok" if prof.task_restrictions else "EINVAL",
        "pdu_sizes": {op.name: prof.pdu_size(op) for op in SqeOp if op < prof.op_last} if prof.bpf_filters else None,
        "source_cow": prof.source_cow if prof.bpf_filters else None,
    }
    fields.update(override)
    return fields


@pytest.mark.parametrize("release", ["6.18.44-fc-v782", "7.2.13+deb14-amd64", "7.3-amd64", "7.0.1", "7.1.3"])
def test_a_kernel_that_behaves_like_its_profile_matches_exactly(release: str) -> None:
    base = ProfileMatch.compare(release, {}).profile
    match = match_report(release, _measured_like(base))
    assert match.matches_exactly and match.same_version and match.adjustments == ()
    assert match.adjusted() is base
    assert match.render() == f"{base.name} (matches exactly)"


def test_a_backport_is_an_adjustment_not_a_new_profile() -> None:
    match = match_report("7.2.14+deb14-amd64", _measured_like(profile("7.2"), source_cow=True,
                                                              query={"nr_request_opcodes": 66,
                                                                     "nr_register_opcodes": 38}))
    assert not match.matches_exactly and match.profile is PROFILES["7.2"]
    assert match.adjustments == (Adjustment("op_last", 65, 66), Adjustment("source_cow", False, True))
    adjusted = match.adjusted()
    assert adjusted.name == "7.2" and adjusted.source_cow and adjusted.op_last == 66
    assert adjusted.adjustments == match.adjustments and adjusted != PROFILES["7.2"]
    assert adjusted.label == "7.2 adjusted (op_last: profile 65, measured 66; source_cow: profile False, measured True)"
    assert PROFILES["7.2"].source_cow is False  # the static profile is untouched
    assert match.render() == "7.2 (2 adjustments)"


def test_payload_and_blind_set_differences_are_adjustments() -> None:
    pdu = {op.name: profile("7.2").pdu_size(op) for op in SqeOp if op < 65}
    pdu["CONNECT"] = 0
    match = match_report("7.2.1", _measured_like(profile("7.2"), pdu_sizes=pdu, task_restrictions="EINVAL"))
    fields = {a.field: a for a in match.adjustments}
    assert set(fields) == {"pdu_sizes", "blind_ops"}
    assert SqeOp.CONNECT not in fields["pdu_sizes"].measured  # type: ignore[operator]
    assert RegisterOp.RESTRICTIONS not in fields["blind_ops"].measured  # type: ignore[operator]
    assert fields["blind_ops"].to_json()["measured"] == ["BPF_FILTER", "QUERY", "SEND_MSG_RING"]


def test_unmeasured_fields_give_no_adjustment() -> None:
    match = match_report("7.2.13+deb14-amd64", {"query": None, "ring_filters": None})
    assert match.matches_exactly


def test_a_kernel_newer_than_every_profile_gets_the_nearest_and_says_so() -> None:
    match = match_report("7.4.0-amd64", _measured_like(profile("7.3")))
    assert match.profile.name == "7.3" and not match.same_version and match.matches_exactly
    assert match.render() == "7.3 (matches exactly, the nearest: no profile for 7.4)"


def test_match_json_round_trip_never_parses_a_name() -> None:
    match = match_report("7.2.14", _measured_like(profile("7.2"), source_cow=True,
                                                  pdu_sizes={"SOCKET": 12, "OPENAT": 24, "OPENAT2": 24}))
    data = match.to_json()
    assert data["profile"] == "7.2" and data["matches_exactly"] is False
    assert data["adjustments"][0] == {"field": "pdu_sizes", "profile": {"CONNECT": 24, "OPENAT": 24, "OPENAT2": 24,
                                                                        "SOCKET": 12},
                                      "measured": {"OPENAT": 24, "OPENAT2": 24, "SOCKET": 12}}
    again = ProfileMatch.from_json(data)
    assert again == match and again.adjusted() == match.adjusted()
    with pytest.raises(KeyError):
        profile("7.2+source_cow=True")  # adjusted profiles have no names of their own


def test_measured_features_maps_probe_outcomes() -> None:
    got = measured_features(op_last=65, register_last=38, classic_semantics="split", ring_filters="ok",
                            source_cow=None, pdu_sizes=None, task_restrictions=None, task_filters="ok",
                            blind_base=frozenset({RegisterOp.QUERY}))
    assert got["split_restrictions"] is True and got["bpf_filters"] is True and got["source_cow"] is None
    assert got["blind_ops"] == frozenset({RegisterOp.QUERY, RegisterOp.BPF_FILTER})


# --- the running kernel ----------------------------------------------------------------------------

@live
def test_report_matches_the_profile(probed: tuple[ProbeReport, KernelProfile]) -> None:
    report, profile = probed
    assert report.io_uring and report.setup_error is None
    assert report.op_last == profile.op_last == len(report.supported_ops)
    assert report.query is not None and report.query["nr_register_opcodes"] == profile.register_last
    assert report.query["sqe_flags"] == 0x7F
    assert report.classic_semantics == ("split" if profile.split_restrictions else "joint")
    assert report.profile == profile == report.match.adjusted()


@live
def test_a_known_kernel_needs_no_adjustment(probed: tuple[ProbeReport, KernelProfile]) -> None:
    report, profile = probed
    known = next((name for prefix, name in KNOWN_KERNELS.items() if report.release.startswith(prefix)), None)
    if known is None:
        pytest.skip(f"kernel {report.release} is not one the project has probed before")
    assert report.match.profile.name == known
    assert report.match.matches_exactly, [a.render() for a in report.match.adjustments]
    assert profile is PROFILES[known]


@live
def test_pre_7_kernel_has_no_filters(probed: tuple[ProbeReport, KernelProfile]) -> None:
    report, profile = probed
    if profile.version >= (7, 0):
        pytest.skip(f"kernel {report.release} has filters")
    assert report.ring_filters == report.task_filters == report.task_restrictions == "EINVAL"
    assert report.pdu_sizes is None and report.source_cow is None
    assert report.classic_semantics == "joint" and report.classic_nop_outcome == "EACCES"


@live
def test_7_kernel_reports_filters_and_payload_sizes(probed: tuple[ProbeReport, KernelProfile]) -> None:
    report, profile = probed
    if profile.version < (7, 0):
        pytest.skip(f"kernel {report.release} predates filters")
    assert report.ring_filters == report.task_filters == report.task_restrictions == "ok"
    assert report.pdu_sizes is not None
    assert {k: v for k, v in report.pdu_sizes.items() if v} == {op.name: n for op, n in profile.pdu_sizes.items()}
    assert report.source_cow is not None and report.source_cow == profile.source_cow
    assert report.pdu_sizes["NOP"] == 0 and report.pdu_sizes["SOCKET"] == profile.pdu_size(SqeOp.SOCKET) > 0


@live
def test_probing_leaves_the_caller_unrestricted() -> None:
    nnp = _sys.no_new_privs()
    report = probe()
    assert _sys.no_new_privs() == nnp == report.no_new_privs


@live
def test_render_is_aligned(probed: tuple[ProbeReport, KernelProfile]) -> None:
    lines = render(probed[0]).splitlines()
    columns = {line.index(":") + len(line.split(":", 1)[1]) - len(line.split(":", 1)[1].lstrip()) for line in lines}
    assert len(columns) == 1
    assert lines[0].startswith("kernel:")
    assert lines[-1].startswith(("profile:", "adjustment:", "note:"))


@live
def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_probe.run(argparse.Namespace(json=True)) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == 1 and data["io_uring"] is True and data["profile"] == data["match"]["profile"]
    assert SqeOp.NOP.name in data["supported_ops"]
    assert ProfileMatch.from_json(data["match"]) == probe().match


@live
def test_cli_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_probe.run(argparse.Namespace(json=False)) == 0
    out = capsys.readouterr().out
    assert "profile:" in out and ("matches exactly" in out or "adjustment:" in out)
