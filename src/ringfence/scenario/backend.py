"""The interface the model and the live kernel both implement, so one scenario file runs on either."""

from __future__ import annotations

from typing import Protocol

from ringfence.abi.profiles import KernelProfile
from ringfence.scenario.steps import Scenario
from ringfence.scenario.transcript import Transcript


class Backend(Protocol):
    """Runs whole scenarios. A backend never raises for a kernel error: errors are outcomes in the transcript."""

    #: "model" or "live".
    name: str

    @property
    def profile(self) -> KernelProfile:
        """The kernel behaviour this backend has (the model's chosen profile; the live kernel's probed one)."""
        ...

    def features(self) -> frozenset[str]:
        """Which of :data:`ringfence.scenario.steps.FEATURES` this backend can provide."""
        ...

    def run(self, scenario: Scenario) -> Transcript:
        """Perform every step in order and record each result."""
        ...
