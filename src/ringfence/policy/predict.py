"""What a sandbox will answer to a request, and why, in the policy's own words.

The kernel answers a denied request with EACCES and nothing else. To tell a user *which* rule let a request
through or stopped it, two independent answers are put side by side: the kernel model running the Plan's
actual bytes (:func:`ringfence.model.decide` on the state the registrations leave, as :mod:`.replay` builds it),
and the policy's reference evaluator (:mod:`.semantics`), which names the rule. A proven Plan makes them agree;
``agree`` is False only if they do not, which would be a bug worth reporting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ringfence.abi.ctx import BpfCtx
from ringfence.abi.opcodes import op_name
from ringfence.abi.profiles import KernelProfile
from ringfence.abi.sqe import Sqe
from ringfence.errors import PolicyError
from ringfence.model.decide import decide as model_decide
from ringfence.model.explain import Decision
from ringfence.model.outcome import Refused
from ringfence.model.prep import populate, prep
from ringfence.policy import semantics
from ringfence.policy.ast import Action, Policy
from ringfence.policy.plan import Plan
from ringfence.policy.replay import apply_variant


@dataclass(frozen=True, slots=True)
class Prediction:
    """One request: the kernel's answer at request init as the model computes it from the Plan (``errno`` None
    when it passes), the mechanism that decided, and the policy's reason."""

    sqe: Sqe
    errno: str | None
    mechanism: str
    because: str
    agree: bool
    decision: Decision

    @property
    def allowed(self) -> bool:
        return self.errno is None

    def to_json(self) -> dict[str, object]:
        return {"request": self.sqe.to_json(), "opcode": self.sqe.name, "allowed": self.allowed,
                "errno": self.errno, "mechanism": self.mechanism, "because": self.because, "agree": self.agree,
                "rule": self.decision.rule.id}


class Predictor:
    """A Plan variant applied once to the model; then any number of requests decided on it."""

    def __init__(self, policy: Policy, plan: Plan, profile: KernelProfile, *, mechanism: str = "classic") -> None:
        variant = next((v for v in plan.variants if v.mechanism == mechanism), None)
        if variant is None:
            raise PolicyError(f"the Plan has no {mechanism!r} variant "
                              f"(it has {', '.join(v.mechanism for v in plan.variants)})")
        applied = apply_variant(variant, plan.target, profile, inherited=False)
        if applied.error or applied.state is None:
            raise PolicyError(f"the Plan's {mechanism} variant does not apply on the {profile.name} model: "
                              f"{applied.error}")
        self.policy = policy
        self.profile = profile
        self.state = applied.state

    def request(self, sqe: Sqe) -> Prediction:
        decision = model_decide(self.state, sqe, self.profile)
        context = decision.filters.context if decision.filters is not None else None
        verdict = semantics.decide(self.policy, sqe.opcode, sqe.flags, context or _context(sqe, self.profile))
        return Prediction(sqe, decision.errno, decision.mechanism.value, _because(verdict, sqe, self.policy),
                          verdict.allowed == decision.allowed, decision)

    def requests(self, sqes: Iterable[Sqe]) -> list[Prediction]:
        return [self.request(sqe) for sqe in sqes]


def _context(sqe: Sqe, profile: KernelProfile) -> bytes:
    """The filter context the kernel would build for ``sqe`` (when no filter ran, the policy still has to be
    asked about the same values); prep's own flag bits included where prep accepts it."""
    try:
        added = prep(sqe)
    except Refused:
        added = 0
    pdu_size, payload = populate(sqe, profile)
    return BpfCtx(sqe.user_data, sqe.opcode, (sqe.flags | added) & 0x7F, pdu_size, payload).pack()


def _because(verdict: semantics.Verdict, sqe: Sqe, policy: Policy) -> str:
    """The policy's words for a verdict."""
    op = op_name(sqe.opcode)
    rule = verdict.rule
    if rule is not None:
        said = f"{rule.label()}" + (f" ({rule.reason})" if rule.reason else "")
        return f"allowed by {said}" if verdict.allowed else f"denied by {said}"
    return {
        "flags": "denied: its SQE flags are outside the policy's [flags]",
        "no-allow": f"denied: no allow rule for {op} matches (" + ", ".join(
            r.label() for r in policy.rules_for(sqe.opcode) if r.action is Action.ALLOW) + ")",
        "family-zero": "denied: a CONNECT whose address names no family",
        "default": f"{'allowed' if verdict.allowed else 'denied'} by default: no rule names {op}",
    }.get(verdict.by, verdict.by)
