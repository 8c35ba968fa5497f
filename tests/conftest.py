"""Suite-wide settings: bounded, derandomized hypothesis in CI; skips for a missing environment fail in CI.

Two kinds of skip exist. A *kernel* skip is a test written for another kernel version (the other side runs
on the other kernel: the host or the VM). An *environment* skip means this machine lacks something the test
needs (io_uring disabled, not root, a tool or package missing, no VM); its reason starts with
:data:`ENVIRONMENT` (``require_or_skip`` writes it; ``pytest.importorskip`` reasons count too). With
``RINGFENCE_REQUIRE_LIVE=1`` (set by ``scripts/test`` in CI) every environment skip fails the run, so a CI
machine that silently lost a capability cannot pass.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: How an environment skip's reason starts.
ENVIRONMENT = "environment: "
_IMPORT_SKIP = "could not import"
_REQUIRED = os.environ.get("RINGFENCE_REQUIRE_LIVE") == "1"
_environment_skips: list[str] = []


def require_or_skip(env: str, reason: str) -> NoReturn:
    """Skip for a missing environment, unless ``env`` is set to 1, in which case it is a failure."""
    if os.environ.get(env) == "1":
        pytest.fail(f"{reason} (and {env}=1 requires it)")
    pytest.skip(ENVIRONMENT + reason)


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _note(report: pytest.TestReport | pytest.CollectReport) -> None:
    if report.skipped:
        reason = _reason(report).removeprefix("Skipped: ")
        if reason.startswith(ENVIRONMENT) or reason.startswith(_IMPORT_SKIP):
            _environment_skips.append(f"{report.nodeid}: {reason}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _REQUIRED and _environment_skips:
        print(f"\n{len(_environment_skips)} test(s) skipped for a missing environment, which "
              "RINGFENCE_REQUIRE_LIVE=1 does not allow:")
        for line in _environment_skips[:20]:
            print("  " + line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
