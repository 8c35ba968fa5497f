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

from ringfence.abi.opcodes import SqeOp
from ringfence.abi.profiles import profile
from ringfence.model import Kernel, Reply, Ring
from ringfence.scenario import parse
from ringfence.scenario import steps as s
from ringfence.scenario.generate import generate

DENIED = ("classic", "filter")
OPS = [SqeOp.NOP, SqeOp.READ, SqeOp.WRITE, SqeOp.FSYNC, SqeOp.SOCKET, SqeOp.OPENAT, SqeOp.OPENAT2, SqeOp.CONNECT]

sqes = st.builds(
    s.Sqe,
    opcode=st.sampled_from([int(op) for op in OPS]),
    user_data=st.integers(0, 2**64 - 1),
    flags=st.integers(0, 0x7F).map(lambda f: f & ~0x01),
    fd=st.just("null"),
    family=st.sampled_from([1, 2, 10]),
    type=st.sampled_from([1, 2, 1 | 0o2000000, 2 | 0o4000]),
    path=st.sampled_from(["/dev/null", "{tmp}/x"]),
    open_flags=st.integers(0, 0o37777777),
    mode=st.sampled_from([0, 0o600, 0o4755]),
    resolve=st.sampled_from([0, 0x10]),
    addr_family=st.just(2),
    addr=st.sampled_from(["127.0.0.1", "127.42.0.1", "10.0.0.1"]),
    port=st.integers(1, 65535),
    addr_len=st.sampled_from([None, 0, 1, 16, 24, 28]),
)
KERNELS = st.sampled_from(["7.0", "7.2", "7.3"])
SEEDS = st.integers(0, 2**31)


def _scenario(seed: int) -> s.Scenario:
    return parse(generate(seed, max_steps=30))


@MODEL_SETTINGS
@given(seed=SEEDS, kernel=KERNELS, probes=st.lists(sqes, min_size=1, max_size=6))
def test_children_are_never_less_restricted(seed: int, kernel: str, probes: list[s.Sqe]) -> None:
    k = Kernel(profile(kernel), detail=False)
    owed: list[tuple[str, s.Sqe]] = []
    for index, step in enumerate(_scenario(seed).steps):
        child = step.child if isinstance(step, s.Fork) else step.thread if isinstance(step, s.SpawnThread) else None
        denied = [p for p in probes if k.probe_task(step.task, p) in DENIED] if child else []
        k.apply(step, index)
        owed += [(child, p) for p in denied if child]
        for task, p in owed:
            assert k.probe_task(task, p) in DENIED, (index, task, p)


@MODEL_SETTINGS
@given(seed=SEEDS, kernel=KERNELS, probes=st.lists(sqes, min_size=1, max_size=6))
def test_rings_are_at_least_as_restricted_as_their_creator(seed: int, kernel: str, probes: list[s.Sqe]) -> None:
    k = Kernel(profile(kernel), detail=False)
    owed: list[tuple[Ring, s.Sqe]] = []
    for index, step in enumerate(_scenario(seed).steps):
        denied = [p for p in probes if k.probe_task(step.task, p) in DENIED] if isinstance(step, s.CreateRing) else []
        reply = k.apply(step, index)
        if isinstance(step, s.CreateRing) and isinstance(reply, Reply) and reply.result == "ok":
            ring = k.ring_of(k.task(step.task), step.ring)
            assert ring is not None
            owed += [(ring, p) for p in denied]
        for ring, p in owed:
            assert k.probe_ring(ring, p) in DENIED, (index, ring.name, p)


def _canonical(opcode: int) -> s.Sqe:
    """An SQE of ``opcode`` that passes validity and prep, so only restrictions can stop it."""
    return s.Sqe(opcode=opcode, path="/dev/null", family=2, type=1, addr_family=2, addr="127.0.0.1", port=1)


@MODEL_SETTINGS
@given(seed=SEEDS, kernel=KERNELS)
def test_deny_rest_never_un_denies(seed: int, kernel: str) -> None:
    k = Kernel(profile(kernel), detail=False)
    owed: list[tuple[Any, int]] = []
    for index, step in enumerate(_scenario(seed).steps):
        reply = k.apply(step, index)
        if isinstance(step, s.Filter) and isinstance(reply, Reply) and reply.result == "ok":
            filled = reply.explain.get("deny_rest_filled", [])
            target: Any = k.task(step.task) if step.ring is None else k.ring_of(k.task(step.task), step.ring)
            owed += [(target, int(SqeOp[name])) for name in filled]
        for target, opcode in owed:
            verdict = (k.probe_task(target.name, _canonical(opcode)) if not isinstance(target, Ring)
                       else k.probe_ring(target, _canonical(opcode)))
            assert verdict in DENIED, (index, opcode)


@MODEL_SETTINGS
@given(seed=SEEDS, kernel=st.sampled_from(["6.18", "7.0", "7.2", "7.3"]))
def test_failed_registrations_change_nothing(seed: int, kernel: str) -> None:
    k = Kernel(profile(kernel), detail=False)
    for index, step in enumerate(_scenario(seed).steps):
        before = k.fingerprint()
        reply = k.apply(step, index)
        if isinstance(step, s.Restrict | s.Filter | s.Register | s.EnableRing) and reply.result != "ok":
            assert k.fingerprint() == before, (index, step)
