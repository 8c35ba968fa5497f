"""Warnings: an allow rule that lets family-0 CONNECTs through is not 'shadowed' by an unconditional allow."""

from __future__ import annotations

from ringfence.abi.profiles import profile
from ringfence.policy.checks import findings
from ringfence.policy.load import loads

HEAD = '[policy]\nname = "p"\nkernel = "7.2+"\ndefault = "allow"\n'
ZERO = '[[allow]]\nop = "CONNECT"\nconnect.family = 0\nreason = "z"\n'
REST = '[[allow]]\nop = "CONNECT"\nreason = "r"\n'
DENY_INET = '[[deny]]\nop = "CONNECT"\nconnect.family = "AF_INET"\nreason = "d"\n'


def _codes(text: str) -> list[str]:
    return [f.code for f in findings(loads(text), profile("7.2"))]


def test_family_zero_rule_that_lifts_the_guard_is_not_shadowed() -> None:
    # without the family-0 rule, the deny rule's connect test would deny family-0 contexts
    assert _codes(HEAD + DENY_INET + ZERO + REST) == []


def test_family_zero_rule_without_a_guard_to_lift_is_shadowed() -> None:
    # nothing else tests a connect field: the unconditional rule admits family 0 anyway
    assert _codes(HEAD + ZERO + REST) == ["no-effect"]
