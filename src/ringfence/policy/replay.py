"""A Plan variant applied to the kernel model, read back as what request init depends on.

The prover reads a variant's meaning from here rather than from the Plan's own description: the model parses
classic records, installs filters, places DENY_REST markers and shares tables as the kernel does (and is itself
checked against real kernels), so the state below is what the registrations really leave behind.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from ringfence.abi.layout import FilterRegistration
from ringfence.abi.opcodes import SetupFlag
from ringfence.abi.profiles import KernelProfile
from ringfence.model.filters import FilterNode
from ringfence.model.kernel import Kernel
from ringfence.model.restriction import RestrictionState
from ringfence.policy.plan import Variant

ALLOW_ALL: Final = bytes.fromhex("0600000001000000")


@dataclass(frozen=True, slots=True)
class Applied:
    """A variant as the kernel model leaves it: the classic state request init checks (None: SQE side not
    restricted), the filter heads by opcode, and the register allow-list (None: not restricted); ``error`` says
    which registration the model refused, if one was."""

    classic: RestrictionState | None
    heads: tuple[FilterNode | None, ...]
    register_op: int | None
    error: str = ""


_PARENTS: dict[str, tuple[Kernel, Iterator[int]]] = {}


def _parent(profile: KernelProfile) -> tuple[Kernel, str]:
    """A model kernel whose task ``main`` holds an allow-all filter on every opcode, and the name of a fresh child
    forked from it. Built once per profile: children share its table copy-on-write and never change it."""
    found = _PARENTS.get(profile.name)
    if found is None or found[0].profile != profile:
        k = Kernel(profile, detail=False)
        k.set_nnp("main")
        for op in range(profile.op_last):
            k.register_filter("main", None, FilterRegistration(op, ALLOW_ALL, 0, 0))
        found = _PARENTS[profile.name] = (k, itertools.count(1))
    k, serial = found
    child = f"child{next(serial)}"
    k.fork("main", child)
    return k, child


def apply_variant(variant: Variant, target: str, profile: KernelProfile, *, inherited: bool) -> Applied:
    """Register ``variant`` on a model kernel as ``ringfence run`` would: by a fresh task, or (``inherited``) by
    a child of a task that filtered every opcode (a nested sandbox: its allow-all filters change no verdict but
    fill every head, so DENY_REST marks nothing). A task target is read through a ring the task creates
    afterwards; a ring target is created disabled, registered on and enabled."""
    if inherited:
        k, task = _parent(profile)
    else:
        k, task = Kernel(profile, detail=False), "main"
        k.set_nnp(task)
    ring = None
    if target == "ring":
        ring = f"{task}-ring"
        k.create_ring(task, ring, int(SetupFlag.R_DISABLED), 8)
    for index, reg in enumerate(variant.registrations):
        if reg.kind == "restrictions":
            reply = k.restrict(task, ring, reg.records)
        elif reg.kind == "filter":
            reply = k.register_filter(task, ring, reg.filter)
        else:
            reply = k.enable(task, ring)
        if reply.result != "ok":
            return Applied(None, (), None, f"registration {index + 1} ({reg.kind}) fails with {reply.result}: "
                                           f"{reply.explanation}")
    if ring is None:
        ring = f"{task}-probe"
        k.create_ring(task, ring, 0, 8)
    state = k.ring_state(task, ring)
    made = k.ring_of(k.task(task), ring)
    assert made is not None
    heads = tuple(state.filters.heads) if state.filters is not None else (None,) * profile.op_last
    return Applied(state.classic, heads, made.state.register_op if made.reg_restricted else None)
