"""Sandbox tests talk to the running kernel; kernel-version facts are keyed by the probed profile."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ringfence.abi.profiles import KernelProfile
from ringfence.live.probe import probed_profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policy"))  # planrun: a Plan on the model


@pytest.fixture(scope="session")
def kernel() -> KernelProfile:
    report, profile = probed_profile()
    if not report.io_uring:
        pytest.skip(f"io_uring unavailable here ({report.setup_error})")
    return profile
