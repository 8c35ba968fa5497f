"""The suites that run inside each booted 7.x kernel (``tests/guest``), reported on the host.

The guest runs them in the same boot as the conformance batch (conformance_vm); here their JUnit report is read
back: every failure or error fails this test with the guest's own message, and a run that collected nothing
fails too.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import conformance_tally as tally
import pytest
from conformance_vm import KernelRun

pytestmark = pytest.mark.vm


def test_guest_suites_pass(kernel_run: KernelRun) -> None:
    report = kernel_run.directory / "guest.xml"
    log = kernel_run.directory / "guest.txt"
    shown = log.read_text()[-3000:] if log.exists() else "(no guest.txt)"
    assert report.exists(), f"the guest tests left no report in {kernel_run.directory}:\n{shown}"
    cases = ET.parse(report).getroot().iter("testcase")
    passed, skipped, bad = 0, [], []
    for case in cases:
        name = f"{case.get('classname')}::{case.get('name')}"
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is not None:
            bad.append(f"{name}: {problem.get('message', '')}\n{(problem.text or '')[-1500:]}")
        elif case.find("skipped") is not None:
            skipped.append(f"{name}: {case.find('skipped').get('message', '')}")  # type: ignore[union-attr]
        else:
            passed += 1
    tally.COUNTS[f"guest tests on {kernel_run.suite} {kernel_run.release}"] = (
        f"{passed} passed, {len(skipped)} skipped, {len(bad)} failed")
    assert passed + len(bad) > 0, f"the guest collected no tests:\n{shown}"
    assert not bad, f"{len(bad)} guest test(s) failed on {kernel_run.release}:\n" + "\n\n".join(bad[:10])
