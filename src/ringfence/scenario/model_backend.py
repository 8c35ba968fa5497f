"""``ModelBackend``: the kernel model behind the :class:`ringfence.scenario.backend.Backend` protocol.

It sits on the scenario side: the model knows nothing of scenarios, and this module turns each step into the
kernel call it stands for (:func:`apply_step`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ringfence.abi.opcodes import RegisterOp
from ringfence.abi.profiles import KernelProfile
from ringfence.errors import ScenarioError
from ringfence.model import Kernel, QueueFullError, Reply, Submission, SubmitReply
from ringfence.scenario import steps as s
from ringfence.scenario.transcript import StepResult, SubmitResult, Transcript

Answer = Reply | SubmitReply


def _register(k: Kernel, step: s.Register) -> Reply:
    if step.opcode == RegisterOp.ENABLE_RINGS:
        return k.enable(step.task, step.ring, registered=step.registered_ring_index)
    return k.register(step.task, step.ring, step.opcode, result=step.result, registered=step.registered_ring_index)


def _submit(k: Kernel, step: s.Submit) -> SubmitReply:
    return k.submit(step.task, step.ring, [Submission(item.sqe, item.result) for item in step.sqes])


_APPLY: Final[dict[type[s.Step], Callable[[Kernel, Any], Answer]]] = {
    s.SetNoNewPrivs: lambda k, st: k.set_nnp(st.task),
    s.DropPrivileges: lambda k, st: k.drop_privileges(st.task, st.uid),
    s.Fork: lambda k, st: k.fork(st.task, st.child),
    s.SpawnThread: lambda k, st: k.spawn_thread(st.task, st.thread),
    s.Exec: lambda k, st: k.exec(st.task),
    s.UserNamespace: lambda k, st: k.unshare_userns(st.task),
    s.CreateRing: lambda k, st: k.create_ring(st.task, st.ring, st.setup_flags, st.entries),
    s.CloseRing: lambda k, st: k.close_ring(st.task, st.ring),
    s.PassRing: lambda k, st: k.pass_ring(st.task, st.ring, st.to, st.via),
    s.EnableRing: lambda k, st: k.enable(st.task, st.ring, has_arg=st.arg, nr_args=st.nr_args),
    s.Wait: lambda k, st: k.wait(st.task, st.ring, st.min_complete),
    s.Restrict: lambda k, st: k.restrict(st.task, st.ring, st.records, header=st.header, nr_args=st.nr_args,
                                         null=st.null),
    s.Filter: lambda k, st: k.register_filter(st.task, st.ring, st.registration,
                                              nr_args=1 if st.nr_args is None else st.nr_args),
    s.Register: _register,
    s.Submit: _submit,
}
assert set(_APPLY) == set(s.STEPS.values()) - {s.ApplyPolicy}, "every step kind needs a kernel call"


def apply_step(kernel: Kernel, step: s.Step, index: int) -> Answer:
    """Perform one step on ``kernel`` as ``step.task``; registrations are labelled with the step's position."""
    kernel.where = f"step {index}"
    if isinstance(step, s.ApplyPolicy):
        raise ScenarioError("a policy step must be bound to a kernel first (ringfence.scenario.bind)", step=index)
    try:
        return _APPLY[type(step)](kernel, step)
    except (KeyError, ValueError) as exc:  # QueueFullError too: the scenario asks for something no caller can do
        raise ScenarioError(str(exc.args[0]) if exc.args else type(exc).__name__, step=index) from None


def step_result(step: s.Step, index: int, answer: Answer) -> StepResult:
    """The transcript entry for one step's answer."""
    if isinstance(answer, SubmitReply):
        result = SubmitResult(answer.result.submitted, answer.result.cqes)
        return StepResult(index, step.kind, step.task, result, None, answer.explanation.to_json())
    return StepResult(index, step.kind, step.task, answer.result, answer.pdu_size_out, answer.explanation.to_json())


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

    def answers(self, scenario: s.Scenario) -> list[tuple[s.Step, Answer]]:
        """Every step with the model's typed answer (for explanations). A scenario the model cannot perform
        raises :class:`ringfence.errors.ScenarioError` naming the file and the step."""
        kernel = Kernel(self._profile, detail=self._detail)
        out: list[tuple[s.Step, Answer]] = []
        for index, step in enumerate(scenario.steps):
            try:
                out.append((step, apply_step(kernel, step, index)))
            except ScenarioError as exc:
                raise ScenarioError(exc.message, path=scenario.path, step=index) from None
        return out

    def run(self, scenario: s.Scenario) -> Transcript:
        """Every step in order."""
        results = [step_result(step, i, answer) for i, (step, answer) in enumerate(self.answers(scenario))]
        return Transcript(scenario.name, self.name, self._profile.name, tuple(results))


__all__ = ["ModelBackend", "QueueFullError", "apply_step", "step_result"]
