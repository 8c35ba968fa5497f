"""Fixtures for model-vs-kernel conformance: one boot per available 7.x kernel, and the end-of-run summary.

Every suite the private apt knows (sid, experimental) contributes its newest generic 7.x kernel; each is booted
once, lazily, the first time a test asks for its suite. ``RINGFENCE_VM_RESULTS=DIR`` re-reads an earlier run's
``DIR`` instead of booting (for iterating on the model without the VM runs).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import conformance_tally as tally
from conformance_data import ROOT, sizes_for
from conformance_kernel import KernelComparison, compare_kernel, findings_report
from conformance_vm import KernelRun, boot_and_run, new_results_dir, reread

from ringfence.vm.catalog import SUITES


def _require(env: str, reason: str) -> None:
    if os.environ.get(env) == "1":
        pytest.fail(f"{reason} (and {env}=1 requires it)")
    pytest.skip(reason)


class _Kernels:
    """Which kernel each suite offers, each kernel's batch run, and its comparison; everything computed once."""

    def __init__(self) -> None:
        self.images: dict[str, Any] | None = None
        self.failure: str | None = None
        self.runs: dict[str, KernelRun | str] = {}
        self.comparisons: dict[str, KernelComparison] = {}
        self.results: Path | None = None

    def _discover(self) -> dict[str, Any]:
        if self.images is None and self.failure is None:
            try:
                from ringfence.vm import available_per_suite, inside_guest
                from ringfence.vm.tools import check_boot_tools

                if inside_guest():
                    raise RuntimeError("already inside a VM: not nesting another one")
                check_boot_tools()
                self.images = available_per_suite()
            except Exception as exc:  # any reason the VMs cannot be had is reported, never hidden
                self.failure = f"no 7.x kernel VM: {type(exc).__name__}: {exc}"
        if self.failure is not None:
            _require("RINGFENCE_REQUIRE_VM", self.failure)
        assert self.images is not None
        return self.images

    def run(self, suite: str) -> KernelRun:
        if suite not in self.runs:
            self.runs[suite] = self._run(suite)
        run = self.runs[suite]
        if isinstance(run, str):
            _require("RINGFENCE_REQUIRE_VM", run)
            raise AssertionError("unreachable")
        return run

    def _run(self, suite: str) -> KernelRun | str:
        if reuse := os.environ.get("RINGFENCE_VM_RESULTS"):
            runs = reread(Path(reuse))
            if suite not in runs:
                pytest.skip(f"the recorded results in {reuse} hold no {suite} kernel")
            return runs[suite]
        images = self._discover()
        if suite not in images:
            pytest.skip(f"Debian {suite} offers no generic 7.x kernel now")
        image = images[suite]
        earlier = next((s for s in SUITES[:SUITES.index(suite)] if s in images and images[s].version == image.version),
                       None)
        if earlier is not None:
            pytest.skip(f"{suite}'s newest kernel is {earlier}'s too ({image.version}): compared there")
        if self.results is None:
            self.results = new_results_dir()
        try:
            return boot_and_run(suite, image, sizes_for(suite), self.results)
        except Exception as exc:  # a kernel that cannot boot or run the batch: a failure in CI
            return f"the {suite} kernel {image.version} did not run the batch: {type(exc).__name__}: {exc}"

    def comparison(self, suite: str) -> KernelComparison:
        if suite not in self.comparisons:
            run = self.run(suite)
            if "error" in run.out:
                pytest.fail(f"the batch failed in the {suite} kernel {run.release}: {run.out['error']}")
            notes = tuple(f"the first boot died and was retried: {f}" for f in run.boot_failures[:1])
            cmp = compare_kernel(suite, run.out, seconds=run.seconds, notes=notes)
            (run.directory / "findings.md").write_text(findings_report(cmp))
            self.comparisons[suite] = cmp
            tally.KERNELS[suite] = cmp
            tally.REPORTS[suite] = run.directory / "findings.md"
        return self.comparisons[suite]


_KERNELS = _Kernels()


@pytest.fixture(scope="session")
def vm_kernels() -> _Kernels:
    return _KERNELS


@pytest.fixture(params=SUITES)
def suite(request: pytest.FixtureRequest) -> str:
    """Each Debian suite whose newest 7.x kernel the suite boots."""
    return str(request.param)


@pytest.fixture
def kernel(suite: str, vm_kernels: _Kernels) -> KernelComparison:
    """The comparison of one suite's newest 7.x kernel (booted on first use)."""
    return vm_kernels.comparison(suite)


@pytest.fixture
def kernel_run(suite: str, vm_kernels: _Kernels) -> KernelRun:
    """One suite's raw batch run (booted on first use)."""
    return vm_kernels.run(suite)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not tally.COUNTS and not tally.KERNELS and not tally.HOST:
        return
    tr = terminalreporter
    tr.section("ringfence conformance")
    for where, kernel in sorted(tally.HOST.items()):
        tr.write_line(f"{where} kernel: {kernel}")
    for key in sorted(tally.COUNTS):
        tr.write_line(f"{key}: {tally.COUNTS[key]}")
    for line in tally.DISAGREEMENTS[:50]:
        tr.write_line(f"  DISAGREEMENT {line}")
    for suite in SUITES:
        cmp = tally.KERNELS.get(suite)
        if cmp is None:
            continue
        for line in cmp.summary_lines():
            tr.write_line(line)
        n = len(cmp.findings)
        verdict = ("no differences" if not n else f"{n} differences: FAILURE" if cmp.failing
                   else f"{n} findings (no profile for this kernel: reported, not failed)")
        report = tally.REPORTS[suite]
        shown = report.relative_to(ROOT) if report.is_relative_to(ROOT) else report
        tr.write_line(f"  {verdict}; report: {shown}")
