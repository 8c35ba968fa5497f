"""Hypothesis settings for the model's property tests: derandomized and bounded (CI-stable)."""
from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings

# No shrinking: an example is a whole generated scenario (named by its seed), and shrinking those is slow.
settings.register_profile("model", derandomize=True, max_examples=100, deadline=None, database=None,
                          phases=(Phase.explicit, Phase.reuse, Phase.generate),
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: Apply with ``@MODEL_SETTINGS`` on each property test (the suite-wide profile stays as the root conftest set it).
MODEL_SETTINGS = settings.get_profile("model")
