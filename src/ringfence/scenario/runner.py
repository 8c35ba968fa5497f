"""Run a scenario on a backend and hold the transcript against the scenario's expectations."""

from __future__ import annotations

from dataclasses import dataclass

from ringfence.abi.opcodes import SqeOp
from ringfence.abi.profiles import KernelProfile, matches
from ringfence.scenario.backend import Backend
from ringfence.scenario.bind import bind
from ringfence.scenario.steps import Expect, Scenario, Step, SubmitExpect
from ringfence.scenario.transcript import Result, StepResult, SubmitResult, Transcript


def expected(step: Step, profile: KernelProfile) -> Expect:
    """The expectation of ``step`` for this kernel: the first matching selector, else the default."""
    for selector, value in step.expect.by_kernel:
        if matches(selector, profile):
            return value
    return step.expect.default


def profile_features(profile: KernelProfile) -> frozenset[str]:
    """Features a kernel profile implies."""
    out = set()
    if profile.bpf_filters:
        out.add("bpf_filter")
    if profile.task_restrictions:
        out.add("task_restrictions")
    if profile.pdu_size(SqeOp.CONNECT):
        out.add("connect_payload")
    return frozenset(out)


def skip_reason(scenario: Scenario, profile: KernelProfile, features: frozenset[str]) -> str | None:
    """Why a scenario does not apply to this kernel/backend, or None if it does."""
    if not any(matches(k, profile) for k in scenario.kernels):
        return f"written for kernels {', '.join(scenario.kernels)}, not {profile.name}"
    missing = [r for r in scenario.requires if r not in (features | profile_features(profile))]
    if missing:
        return f"needs {', '.join(missing)}"
    return None


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A step whose observed result is not the expected one."""

    index: int
    op: str
    expected: Expect
    observed: Result
    pdu: bool = False

    def render(self) -> str:
        what = "pdu_size write-back" if self.pdu else "result"
        return f"step {self.index} ({self.op}): {what} expected {self.expected!r}, observed {self.observed!r}"


def _matches(exp: Expect, got: StepResult) -> bool:
    if exp is None:
        return True
    res = got.result
    if isinstance(exp, SubmitExpect):
        if not isinstance(res, SubmitResult):
            return False
        if exp.submitted is not None and exp.submitted != res.submitted:
            return False
        return exp.cqes is None or tuple(sorted(exp.cqes)) == tuple(sorted(res.cqes))
    if isinstance(res, SubmitResult):
        return res.submitted == exp
    return res == exp


def check(scenario: Scenario, transcript: Transcript, profile: KernelProfile) -> list[Mismatch]:
    """Every step whose result differs from what the scenario expects for ``profile``."""
    out: list[Mismatch] = []
    for step, got in zip(scenario.steps, transcript.steps, strict=False):
        exp = expected(step, profile)
        if not _matches(exp, got):
            out.append(Mismatch(got.index, got.op, exp, got.result))
        want_pdu = getattr(step, "expect_pdu_size", None)
        if want_pdu is not None and got.pdu_size_out != want_pdu:
            out.append(Mismatch(got.index, got.op, str(want_pdu), str(got.pdu_size_out), pdu=True))
    return out


@dataclass(frozen=True, slots=True)
class Report:
    """One scenario on one backend: the transcript, mismatches against expectations, or why it was skipped."""

    scenario: Scenario
    backend: str
    kernel: str
    transcript: Transcript | None
    mismatches: tuple[Mismatch, ...] = ()
    skipped: str | None = None

    @property
    def passed(self) -> bool:
        return self.skipped is None and self.transcript is not None and not self.transcript.error \
            and not self.mismatches


def run(backend: Backend, scenario: Scenario) -> Report:
    """Run ``scenario`` on ``backend`` unless it does not apply, then check expectations. Policy steps are bound
    to the backend's kernel profile first (the report holds the bound scenario)."""
    profile = backend.profile
    reason = skip_reason(scenario, profile, backend.features())
    if reason:
        return Report(scenario, backend.name, profile.name, None, skipped=reason)
    scenario = bind(scenario, profile)
    transcript = backend.run(scenario)
    return Report(scenario, backend.name, transcript.kernel, transcript,
                  tuple(check(scenario, transcript, profile)))
