"""Bind a scenario to a kernel: compile its ``policy`` steps for that kernel's profile and put the Plan's
registrations in their place.

Backends only ever see kernel calls. Binding happens where the profile is known and before anything is sent to
a remote kernel (the conformance suite binds on the host, for the VM's kernel), so no backend imports the
policy compiler.
"""

from __future__ import annotations

import dataclasses

from ringfence.abi.profiles import KernelProfile
from ringfence.errors import PolicyError, ScenarioError
from ringfence.scenario import steps as s


def needs_binding(scenario: s.Scenario) -> bool:
    return any(isinstance(step, s.ApplyPolicy) for step in scenario.steps)


def expand(step: s.ApplyPolicy, profile: KernelProfile, index: int, path: str) -> list[s.Step]:
    """The registrations a policy step stands for on ``profile``."""
    from ringfence.policy.ast import Policy
    from ringfence.policy.compile import compile_policy

    assert isinstance(step.policy, Policy)
    # The Plan's "classic" variant is classic records *plus* the filters for predicates; compiling with
    # mechanism="classic" means "classic records only" and refuses predicates, so that variant comes from "auto".
    mechanism = "auto" if step.mechanism == "classic" else step.mechanism
    try:
        plan = compile_policy(step.policy, profile, mechanism=mechanism).plan
    except PolicyError as exc:
        raise ScenarioError(f"policy: {exc}", path=path, step=index) from None
    variant = plan.variant(step.mechanism)
    if variant is None:
        raise ScenarioError(f"policy: no {step.mechanism} variant", path=path, step=index)
    task, expect, line = step.task, step.expect, step.line
    out: list[s.Step] = []
    for reg in variant.registrations:
        if reg.kind == "restrictions":
            out.append(s.Restrict(task=task, expect=expect, line=line, ring=step.ring, records=reg.records))
        elif reg.kind == "filter":
            assert reg.filter is not None
            out.append(s.Filter(task=task, expect=expect, line=line, ring=step.ring, registration=reg.filter,
                                expect_pdu_size=profile.pdu_size(reg.filter.opcode)))
        elif step.ring is not None:
            out.append(s.EnableRing(task=task, expect=expect, line=line, ring=step.ring))
    return out


def bind(scenario: s.Scenario, profile: KernelProfile) -> s.Scenario:
    """``scenario`` with every policy step expanded for ``profile``; unchanged if it has none."""
    if not needs_binding(scenario):
        return scenario
    steps: list[s.Step] = []
    for index, step in enumerate(scenario.steps):
        if isinstance(step, s.ApplyPolicy):
            steps += expand(step, profile, index, scenario.path)
        else:
            steps.append(step)
    return dataclasses.replace(scenario, steps=tuple(steps), meta={**scenario.meta, "bound_to": profile.name})
