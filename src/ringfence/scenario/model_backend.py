"""``ModelBackend``: the kernel model behind the :class:`ringfence.scenario.backend.Backend` protocol.

It sits on the scenario side: the model knows nothing of scenarios; this module turns steps into kernel calls."""

from __future__ import annotations

from typing import Final

from ringfence.abi.profiles import KernelProfile
from ringfence.errors import ScenarioError
from ringfence.model.kernel import Kernel
from ringfence.model.submit import SubmitReply
from ringfence.scenario.load import STEP_KINDS
from ringfence.scenario.steps import Scenario, Step
from ringfence.scenario.transcript import StepResult, Transcript

#: Step class name -> the ``do`` keyword of the scenario format, used as the transcript's ``op``.
_OPS: Final = {"SetNoNewPrivs": "nnp", "DropPrivileges": "drop_privileges", "Fork": "fork", "SpawnThread": "thread",
               "Exec": "exec", "CreateRing": "ring", "CloseRing": "close", "EnableRing": "enable",
               "Restrict": "restrict", "Filter": "filter", "Register": "register", "Submit": "submit"}
assert set(_OPS.values()) == set(STEP_KINDS), "keep the model's op names in step with the loader"


def op_name(step: Step) -> str:
    return _OPS.get(type(step).__name__, type(step).__name__.lower())


class ModelBackend:
    """Runs scenarios on a fresh :class:`Kernel` each time. Deterministic: same scenario, same transcript.

    ``detail=False`` skips the per-filter instruction counts in explanations (faster; verdicts identical).
    """

    name = "model"

    def __init__(self, profile: KernelProfile, *, detail: bool = True) -> None:
        self._profile = profile
        self._detail = detail

    @property
    def profile(self) -> KernelProfile:
        return self._profile

    def features(self) -> frozenset[str]:
        return frozenset({"netns", "unprivileged"})

    def run(self, scenario: Scenario) -> Transcript:
        """Every step in order. A malformed scenario raises :class:`ringfence.errors.ScenarioError`."""
        kernel = Kernel(self._profile, detail=self._detail)
        results = []
        for index, step in enumerate(scenario.steps):
            try:
                reply = kernel.apply(step, index)
            except ScenarioError as exc:
                if exc.path or not scenario.path:
                    raise
                named = ScenarioError(str(exc), path=scenario.path)
                named.step = index
                raise named from None
            if isinstance(reply, SubmitReply):
                results.append(StepResult(index, op_name(step), step.task, reply.result, None, reply.explain))
            else:
                results.append(StepResult(index, op_name(step), step.task, reply.result, reply.pdu_size_out,
                                          reply.explain))
        return Transcript(scenario.name, self.name, self._profile.name, tuple(results))
