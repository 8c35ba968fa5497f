"""Kernel drift: a suite whose newest kernel has no profile gives a findings report, not a failure (no VM boot).

The input is batch output recorded from a real kernel (Debian 7.2.13, trimmed, ``data/recorded-7.2.13.json``),
relabelled as if a suite's newest kernel had moved on. Relabelled 7.4 has no profile: the model runs with the
nearest (7.3, source-side copy-on-write), and 7.2.13's answers on the copy-on-write scenarios become findings.
Relabelled 7.3.0 has a profile: the same answers are failures.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

from conformance_data import ROOT
from conformance_kernel import compare_kernel, findings_report

RECORDED = Path(__file__).parent / "data" / "recorded-7.2.13.json"


@cache
def _recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    for i, item in enumerate(data["in"]["scenarios"]):
        if isinstance(item, str):
            data["in"]["scenarios"][i] = str(ROOT / item)
    return data


def _as_if(release: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recorded run, as if the kernel were ``release`` (batch input, batch output)."""
    data = copy.deepcopy(_recorded())
    data["out"]["kernel"] = data["out"]["probe"]["release"] = release
    return data["in"], data["out"]


def test_newest_kernel_without_a_profile_gives_findings_not_a_failure() -> None:
    sent, out = _as_if("7.4.0-amd64")
    cmp = compare_kernel("experimental", {**out, "sent": sent})
    assert not cmp.profiled and cmp.match.profile.name == "7.3" and not cmp.match.same_version
    assert cmp.findings and not cmp.failing
    assert "NO PROFILE for this version: model ran with the nearest, 7.3" in cmp.headline()
    probe = [f for f in cmp.findings if f.kind == "probe"]
    assert [f.detail for f in probe] == [
        "the kernel differs from profile 7.3: source_cow: profile True, measured False"]
    cow = {f.item: f.detail for f in cmp.findings if f.kind == "corpus"}
    assert "derived/cow_ring_created_before_parent_filter" in cow
    assert "step 5 (submit): submission differs: model=submitted=1 cqes=[1:ok] kernel=submitted=1 cqes=[1:EACCES]" in (
        cow["derived/cow_ring_created_before_parent_filter"])
    assert "derived/split_register_op_only" not in cow  # unrelated scenarios still agree
    report = findings_report(cmp)
    assert report.startswith("# Model vs kernel: 7.4.0-amd64 (experimental)")
    assert "No profile was written for this kernel's version" in report and "not failures" in report
    assert "### corpus: derived/cow_ring_created_before_parent_filter" in report


def test_the_same_answers_fail_a_kernel_that_has_a_profile() -> None:
    sent, out = _as_if("7.3.0-amd64")
    cmp = compare_kernel("experimental", {**out, "sent": sent})
    assert cmp.profiled and cmp.match.same_version and cmp.failing
    assert "every difference below is a conformance failure" in findings_report(cmp)


def test_the_recording_agrees_with_its_own_profile() -> None:
    sent, out = _recorded()["in"], _recorded()["out"]
    cmp = compare_kernel("sid", {**out, "sent": sent})
    assert cmp.profiled and cmp.match.matches_exactly and not cmp.findings, [f.detail for f in cmp.findings]
    assert cmp.counts["corpus compared"] == 6 and cmp.counts["checker compared"] == 11


def test_the_suite_reports_drift_in_ci_without_failing(tmp_path: Path) -> None:
    """The whole VM conformance suite on a recorded run, in CI mode: it passes, says so plainly, writes the report."""
    sent, out = _as_if("7.4.0-amd64")
    run = tmp_path / "experimental"
    run.mkdir()
    (run / "in.json").write_text(json.dumps(sent))
    (run / "out.json").write_text(json.dumps(out))
    env = {**os.environ, "CI": "true", "RINGFENCE_REQUIRE_VM": "1", "RINGFENCE_VM_RESULTS": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           str(Path(__file__).parent / "test_vm_conformance.py"),
                           str(Path(__file__).parent / "test_vm_harness.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    assert "experimental: 7.4.0-amd64 (NO PROFILE for this version: model ran with the nearest, 7.3" in text
    assert "findings (no profile for this kernel: reported, not failed)" in text
    report = (run / "findings.md").read_text()
    assert "source_cow: profile True, measured False" in report
    assert "derived/cow_child_forked_before_parent_filter" in report
