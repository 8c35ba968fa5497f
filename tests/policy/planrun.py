"""Run a Plan on the kernel model: what the test suite uses to hold compiled Plans against the policy."""

from __future__ import annotations

from ringfence.abi.ctx import BpfCtx
from ringfence.abi.profiles import KernelProfile
from ringfence.abi.sqe import Sqe
from ringfence.model import Decision, Kernel, RingState
from ringfence.model.outcome import Refused
from ringfence.model.prep import populate, prep
from ringfence.policy.plan import Plan


def applied(plan: Plan, profile: KernelProfile, mechanism: str = "classic") -> tuple[Kernel, RingState]:
    """A model kernel whose task ``main`` (no_new_privs) applied the Plan's variant, and the state a ring it creates
    afterwards has (for a ring target: the ring, after its registrations and enable)."""
    variant = plan.variant(mechanism)
    assert variant is not None, mechanism
    k = Kernel(profile, detail=False)
    k.set_nnp("main")
    ring = None
    if plan.target == "ring":
        ring = "r"
        assert k.create_ring("main", ring, 1 << 6, 8).result == "ok"  # R_DISABLED
    for reg in variant.registrations:
        if reg.kind == "restrictions":
            reply = k.restrict("main", ring, reg.records)
        elif reg.kind == "filter":
            reply = k.register_filter("main", ring, reg.filter)
        else:
            reply = k.enable("main", ring)
        assert reply.result == "ok", (reg.kind, reply.explanation)
    if ring is None:
        return k, k.new_ring_state("main")
    return k, k.ring_state("main", ring)


def context(sqe: Sqe, profile: KernelProfile) -> bytes | None:
    """The context a filter would see for ``sqe`` (None when prep refuses it: no filter runs then)."""
    try:
        added = prep(sqe)
    except Refused:
        return None
    pdu, payload = populate(sqe, profile)
    return BpfCtx(sqe.user_data, sqe.opcode, (sqe.flags | added) & 0x7F, pdu, payload).pack()


def decide(k: Kernel, state: RingState, sqe: Sqe) -> Decision:
    return k.decide(state, sqe)
