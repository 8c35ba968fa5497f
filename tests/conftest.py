"""Suite-wide settings: bounded, derandomized hypothesis in CI; environment switches that turn skips into failures."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def require_or_skip(env: str, reason: str) -> None:
    """Skip with ``reason``, unless ``env`` is set to 1, in which case the missing capability is a failure."""
    if os.environ.get(env) == "1":
        pytest.fail(f"{reason} (and {env}=1 requires it)")
    pytest.skip(reason)
