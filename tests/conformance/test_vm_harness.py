"""The live harness inside each 7.x kernel, in the conformance boot: the probe, the harness's scenarios (against
their own expectations) and two program jobs. Constants come from the kernel's profile, not from one kernel."""

from __future__ import annotations

from typing import Any

import pytest
from conformance_kernel import KernelComparison
from conformance_vm import KernelRun

from ringfence.abi.opcodes import SqeOp

pytestmark = [pytest.mark.vm, pytest.mark.live]


def test_probe_on_the_guest_kernel(kernel_run: KernelRun, kernel: KernelComparison) -> None:
    probe: dict[str, Any] = kernel_run.out["probe"]
    prof = kernel.match.profile
    assert kernel_run.release.startswith("7.") and probe["io_uring"]
    assert probe["ring_filters"] == probe["task_filters"] == probe["task_restrictions"] == "ok"
    if not kernel.profiled:
        pytest.skip(f"{kernel.release} has no profile: its probe is compared in the findings report")
    assert probe["classic_semantics"] == ("split" if prof.split_restrictions else "joint")
    assert probe["query"]["nr_request_opcodes"] == prof.op_last
    assert probe["query"]["nr_register_opcodes"] == prof.register_last
    assert {k: v for k, v in probe["pdu_sizes"].items() if v} == {op.name: n for op, n in prof.pdu_sizes.items()}
    assert probe["pdu_sizes"][SqeOp.NOP.name] == 0
    assert probe["source_cow"] is prof.source_cow
    assert probe["match"]["matches_exactly"] is True and probe["match"]["profile"] == prof.name
    assert kernel_run.out["profile"] == prof.name


def test_harness_scenarios_and_jobs(kernel: KernelComparison) -> None:
    assert kernel.counts["harness compared"] > 0
    found = [f for f in kernel.findings if f.kind == "harness"]
    if found and kernel.profiled:
        pytest.fail("\n".join(f"{f.item}: {f.detail}" for f in found), pytrace=False)
    if found:
        pytest.skip(f"{kernel.release} has no profile: {len(found)} harness findings reported, not failed")
