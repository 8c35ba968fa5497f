"""Properties over random scenarios (the generator's) and random SQEs: restrictions only ever tighten.

* a child (fork or thread) is never less restricted than its parent was when it was created;
* a ring created by a restricted task is at least as restricted as the task was at that moment;
* an opcode filled by DENY_REST is denied for good on that state;
* a failed registration changes no restriction state anywhere.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from model_settings import MODEL_SETTINGS

from ringfence.abi import sqe as abisqe
from ringfence.abi.opcodes import SqeOp
from ringfence.abi.profiles import profile
from ringfence.abi.sqe import OpenHow, Sqe
from ringfence.model import Kernel, Mechanism, Reply, Ring, RingState
from ringfence.model.submit import ring_state
from ringfence.scenario import parse
from ringfence.scenario import steps as s
from ringfence.scenario.generate import generate
from ringfence.scenario.model_backend import apply_step

DENIED = (Mechanism.CLASSIC, Mechanism.FILTER)
_FLAGS = st.integers(0, 0x7F).map(lambda f: f & ~0x01)
_UD = st.integers(0, 2**64 - 1)
sqes = st.one_of(
    st.builds(lambda op, ud, fl: Sqe(int(op), fl, ud, fd=0),
              st.sampled_from([SqeOp.NOP, SqeOp.READ, SqeOp.WRITE, SqeOp.FSYNC]), _UD, _FLAGS),
    st.builds(lambda fam, ty, ud, fl: abisqe.socket(fam, ty, 0, user_data=ud, flags=fl),
              st.sampled_from([1, 2, 10]), st.sampled_from([1, 2, 1 | 0o2000000, 2 | 0o4000]), _UD, _FLAGS),
    st.builds(lambda path, of, mode, ud, fl: abisqe.openat(path, of, mode, user_data=ud, flags=fl),
              st.sampled_from(["/dev/null", "{tmp}/x"]), st.integers(0, 0o37777777), st.sampled_from([0, 0o600]),
              _UD, _FLAGS),
    st.builds(lambda path, of, res, ud, fl: abisqe.openat2(path, OpenHow(of, 0, res), user_data=ud, flags=fl),
              st.sampled_from(["/dev/null", "{tmp}/x"]), st.integers(0, 0o37777777), st.sampled_from([0, 0x10]),
              _UD, _FLAGS),
    st.builds(lambda addr, port, length, ud, fl: abisqe.connect(0, abisqe.sockaddr(2, addr, port), length,
                                                                user_data=ud, flags=fl),
              st.sampled_from(["127.0.0.1", "127.42.0.1", "10.0.0.1"]), st.integers(1, 65535),
              st.sampled_from([None, 0, 1, 16, 24, 28]), _UD, _FLAGS),
)
KERNELS = st.sampled_from(["7.0", "7.2", "7.3"])
SEEDS = st.integers(0, 2**31)


def _scenario(seed: int) -> s.Scenario:
    return parse(generate(seed, max_steps=30))


def _denied(k: Kernel, state: RingState, sqe: Sqe) -> bool:
    decision = k.decide(state, sqe)
    return not decision.allowed and decision.mechanism in DENIED


def _now(ring: Ring) -> RingState:
    """How ``ring`` treats an SQE at init now, leaving its drain bookkeeping out (it adds flags filters see)."""
    state = ring_state(ring)
    return RingState(state.classic, state.filters, state.setup_flags, state.owner)


@MODEL_SETTINGS
@given(seed=SEEDS, kernel=KERNELS, probes=st.lists(sqes, min_size=1, max_size=6))
def test_children_are_never_less_restricted(seed: int, kernel: str, probes: list[Sqe]) -> None:
    k = Kernel(profile(kernel), detail=False)
    owed: list[tuple[str, Sqe]] = []
    for index, step in enumerate(_scenario(seed).steps):
        child = step.child if isinstance(step, s.Fork) else step.thread if isinstance(step, s.SpawnThread) else None
        denied = [p for p in probes if _denied(k, k.new_ring_state(step.task), p)] if child else []
        apply_step(k, step, index)
        owed += [(child, p) for p in denied if child]
        for task, p in owed:
            assert _denied(k, k.new_ring_state(task), p), (index, task, p)


@MODEL_SETTINGS
@given(seed=SEEDS, kernel=KERNELS, probes=st.lists(sqes, min_size=1, max_size=6))
def test_rings_are_at_least_as_restricted_as_their_creator(seed: int, kernel: str, probes: list[Sqe]) -> None:
    k = Kernel(profile(kernel), detail=False)
    owed: list[tuple[Ring, Sqe]] = []
    for index, step in enumerate(_scenario(seed).steps):
        creating = isinstance(step, s.CreateRing)
        denied = [p for p in probes if _denied(k, k.new_ring_state(step.task), p)] if creating else []
        reply = apply_step(k, step, index)
        if isinstance(step, s.CreateRing) and isinstance(reply, Reply) and reply.result == "ok":
            ring = k.ring_of(k.task(step.task), step.ring)
            assert ring is not None
            owed += [(ring, p) for p in denied]
        for ring, p in owed:
            assert _denied(k, _now(ring), p), (index, ring.name, p)


def _canonical(opcode: int) -> Sqe:
    """An SQE of ``opcode`` that passes validity and prep, so only restrictions can stop it."""
    if opcode == SqeOp.SOCKET:
        return abisqe.socket(2, 1)
    if opcode == SqeOp.OPENAT:
        return abisqe.openat("/dev/null", 0)
    if opcode == SqeOp.OPENAT2:
        return abisqe.openat2("/dev/null", OpenHow())
    if opcode == SqeOp.CONNECT:
        return abisqe.connect(0, abisqe.sockaddr(2, "127.0.0.1", 1))
    return Sqe(opcode)


@MODEL_SETTINGS
@given(seed=SEEDS, kernel=KERNELS)
def test_deny_rest_never_un_denies(seed: int, kernel: str) -> None:
    k = Kernel(profile(kernel), detail=False)
    owed: list[tuple[Any, int]] = []
    for index, step in enumerate(_scenario(seed).steps):
        reply = apply_step(k, step, index)
        install = reply.explanation.install if isinstance(reply, Reply) else None
        if isinstance(step, s.Filter) and install is not None:
            target: Any = k.task(step.task) if step.ring is None else k.ring_of(k.task(step.task), step.ring)
            owed += [(target, int(SqeOp[name])) for name in install.deny_rest_filled]
        for target, opcode in owed:
            state = _now(target) if isinstance(target, Ring) else k.new_ring_state(target.name)
            assert _denied(k, state, _canonical(opcode)), (index, opcode)


@MODEL_SETTINGS
@given(seed=SEEDS, kernel=st.sampled_from(["6.18", "7.0", "7.2", "7.3"]))
def test_failed_registrations_change_nothing(seed: int, kernel: str) -> None:
    k = Kernel(profile(kernel), detail=False)
    for index, step in enumerate(_scenario(seed).steps):
        before = k.fingerprint()
        reply = apply_step(k, step, index)
        if isinstance(step, s.Restrict | s.Filter | s.Register | s.EnableRing) and reply.result != "ok":
            assert k.fingerprint() == before, (index, step)
