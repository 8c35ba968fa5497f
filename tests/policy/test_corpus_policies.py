"""The policy corpus: example policies and liburing's cbpf_filter cases as policies.

* every policy file compiles with ``ringfence compile`` for every kernel it is written for, without warnings;
  every rule of an example says why (``reason``);
* every scenario under ``tests/corpus/scenarios/policies`` applies a policy with ``do = "policy"`` and passes on
  the model for every kernel profile it applies to; every policy file is applied by one;
* a policy scenario that re-expresses a liburing case submits the same requests with the same expectations, and
  running both on the model gives the same results;
* per request, on the model: the kernel state after the hand-written liburing filter and after the compiled
  policy decide alike, on the liburing scenario's requests and on generated ones (the only allowed difference is
  the documented one: a policy that tests CONNECT fields refuses a context that reports family 0).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from planrun import applied, context

from ringfence.abi import sqe as abisqe
from ringfence.abi.opcodes import SetupFlag, SqeOp
from ringfence.abi.profiles import PROFILES, KernelProfile
from ringfence.cli import main as cli_main
from ringfence.model import Kernel, RingState
from ringfence.policy.ast import Policy, TargetKind
from ringfence.policy.compile import compile_policy
from ringfence.policy.load import load as load_policy
from ringfence.scenario import load, runner, steps
from ringfence.scenario.model_backend import ModelBackend

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "policies").glob("*.toml"))
LIBURING_POLICIES = sorted((ROOT / "tests" / "corpus" / "policies" / "liburing").glob("*.toml"))
#: made by ``ringfence import-seccomp`` (tests/policy/test_seccomp_import.py checks they are current)
SECCOMP_POLICIES = sorted((ROOT / "tests" / "corpus" / "policies" / "seccomp").glob("*.toml"))
POLICIES = EXAMPLES + LIBURING_POLICIES + SECCOMP_POLICIES
SCENARIOS = sorted((ROOT / "tests" / "corpus" / "scenarios" / "policies").rglob("*.toml"))
PAIRED = [p for p in SCENARIOS if "equivalent" in load(p).meta]


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _profiles_for(policy: Policy) -> list[KernelProfile]:
    return [p for p in PROFILES.values() if p.version >= policy.kernel
            and (policy.target is TargetKind.RING or p.task_restrictions)]


# -- compiling ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", POLICIES, ids=_id)
def test_policy_compiles_without_warnings(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kernels = _profiles_for(load_policy(path))
    assert kernels, f"{path.name}: no kernel profile to compile for"
    for prof in kernels:
        out = tmp_path / f"{prof.name}.json"
        code = cli_main.main(["compile", str(path), "--kernel", prof.name, "-o", str(out)])
        err = capsys.readouterr().err
        assert code == 0, f"{path.name} on {prof.name}: {err}"
        assert "warning" not in err, f"{path.name} on {prof.name}: {err}"
        assert out.stat().st_size > 0


@pytest.mark.parametrize("path", EXAMPLES, ids=_id)
def test_example_rules_say_why(path: Path) -> None:
    policy = load_policy(path)
    assert policy.description
    assert all(rule.reason for rule in policy.rules), [r.label() for r in policy.rules if not r.reason]


@pytest.mark.parametrize("path", POLICIES, ids=_id)
def test_policies_are_proven(path: Path) -> None:
    """Every example and liburing policy, on every kernel it applies to, compiles to a Plan the prover proves."""
    from ringfence.policy import prove

    policy = load_policy(path)
    kernels = [p for p in PROFILES.values() if p.version >= policy.kernel
               and (p.task_restrictions or policy.target is TargetKind.RING)]
    assert kernels
    for prof in kernels:
        report = prove.prove(compile_policy(policy, prof))
        assert report.result == "proven", f"{path.name} on {prof.name}: {report}"


# -- scenarios on the model -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SCENARIOS, ids=_id)
def test_policy_scenario_passes_on_the_model(path: Path) -> None:
    scenario = load(path)
    assert any(isinstance(s, steps.ApplyPolicy) for s in scenario.steps), "applies no policy"
    ran = []
    for prof in PROFILES.values():
        report = runner.run(ModelBackend(prof), scenario)
        if report.skipped:
            continue
        assert report.transcript is not None and not report.transcript.error, report.transcript
        assert report.passed, f"{prof.name}: " + "; ".join(m.render() for m in report.mismatches)
        ran.append(prof.name)
    assert ran, "the scenario applies to no kernel profile"


def _applied_files(path: Path) -> Iterator[Path]:
    for step in load(path).steps:
        if isinstance(step, steps.ApplyPolicy) and step.source != "<inline policy>":
            yield (path.parent / step.source).resolve()


def test_every_policy_file_is_applied_by_a_scenario() -> None:
    used = {f for p in SCENARIOS for f in _applied_files(p)}
    assert not [p.name for p in POLICIES if p.resolve() not in used]


# -- the liburing cases: policy against hand-written program ------------------------------------------------


def _submits(scenario: steps.Scenario) -> list[steps.Submit]:
    return [s for s in scenario.steps if isinstance(s, steps.Submit)]


def _liburing(path: Path) -> steps.Scenario:
    return load(path.parent / load(path).meta["equivalent"])


@pytest.mark.parametrize("path", PAIRED, ids=_id)
def test_same_requests_and_expectations(path: Path) -> None:
    mine, theirs = _submits(load(path)), _submits(_liburing(path))
    assert [(s.task, s.ring, s.sqes, s.expect) for s in mine] == [(s.task, s.ring, s.sqes, s.expect) for s in theirs]


@pytest.mark.parametrize("path", PAIRED, ids=_id)
def test_same_results_as_the_liburing_program(path: Path) -> None:
    """Both scenarios on the model: every submit step gives the same result."""
    mine, theirs = load(path), _liburing(path)
    compared = 0
    for prof in PROFILES.values():
        a, b = runner.run(ModelBackend(prof), mine), runner.run(ModelBackend(prof), theirs)
        assert bool(a.skipped) == bool(b.skipped), (prof.name, a.skipped, b.skipped)
        if a.skipped:
            continue
        assert a.transcript is not None and b.transcript is not None
        got = [s.result for s in a.transcript.steps if s.op == "submit"]
        want = [s.result for s in b.transcript.steps if s.op == "submit"]
        assert got == want, prof.name
        compared += 1
    assert compared


def _single(path: Path) -> tuple[steps.Filter, steps.ApplyPolicy] | None:
    """The liburing filter step and the policy step standing for it, when each scenario has just one."""
    filters = [s for s in _liburing(path).steps if isinstance(s, steps.Filter)]
    policies = [s for s in load(path).steps if isinstance(s, steps.ApplyPolicy)]
    if len(filters) != 1 or len(policies) != 1:
        return None
    return filters[0], policies[0]


SINGLE = [p for p in PAIRED if _single(p) is not None]


def _program_state(step: steps.Filter, prof: KernelProfile) -> tuple[Kernel, RingState]:
    """The model after the liburing case's own registration (task, or a ring of ``main``)."""
    k = Kernel(prof, detail=False)
    k.set_nnp("main")
    if step.ring is None:
        assert k.register_filter("main", None, step.registration).result == "ok"
        return k, k.new_ring_state("main")
    assert k.create_ring("main", step.ring, 0, 8).result == "ok"
    assert k.register_filter("main", step.ring, step.registration).result == "ok"
    return k, k.ring_state("main", step.ring)


def _generated(r: random.Random, count: int) -> Iterator[abisqe.Sqe]:
    """Requests around the values the liburing cases test: families, types, open flags, resolve bits,
    addresses (IPv4, IPv6, IPv4-mapped, Unix), ports, short address lengths."""
    v4 = ["127.0.0.1", "127.0.0.2", "127.0.0.99", "127.0.0.127", "127.42.0.1", "127.42.0.255", "10.0.0.1"]
    v6 = ["::1", "::2", "2001:db8::1", "2001:db8::dead", "2001:db8:dead::1", "2001:db9::1", "fe80::1",
          "fe80:cafe::beef", "fe81::1", "::ffff:127.0.0.1", "::ffff:127.0.0.127", "::ffff:127.42.0.1"]
    for _ in range(count):
        ud = r.getrandbits(64)
        op = r.choice(["NOP", "READ", "SOCKET", "OPENAT", "OPENAT2", "CONNECT", "CONNECT"])
        if op == "SOCKET":
            yield abisqe.socket(r.choice([1, 2, 10, 16, 17, r.randrange(64)]),
                                r.choice([1, 2, 3, 5, 1 | 0o2000000, 2 | 0o4000, 1 | 0o4000]),
                                r.choice([0, 6, 17]), user_data=ud)
        elif op in ("OPENAT", "OPENAT2"):
            flags = r.choice([0, 0o1, 0o2, 0o100, 0o100 | 0o2, 0o1000, 0o200000, 0o10000000, r.getrandbits(22)])
            if op == "OPENAT":
                yield abisqe.openat("x", flags, r.choice([0, 0o644]), user_data=ud)
            else:
                resolve = r.choice([0, 0x08, 0x10, 0x18, r.getrandbits(6)])
                yield abisqe.openat2("x", abisqe.OpenHow(flags, r.choice([0, 0o600]), resolve), user_data=ud)
        elif op == "CONNECT":
            family = r.choice([2, 2, 10, 10, 1])
            addr = {2: r.choice(v4), 10: r.choice(v6), 1: "/tmp/s"}[family]
            port = 0 if family == 1 else r.choice([1, 22, 80, 443, 8080])
            length = r.choice([None, None, None, 0, 1, 2, 8, 16])
            yield abisqe.connect(0, abisqe.sockaddr(family, addr, port), length, user_data=ud)
        else:
            yield abisqe.Sqe(int(SqeOp[op]), 0, ud)


@pytest.mark.parametrize("path", SINGLE, ids=_id)
def test_policy_decides_like_the_liburing_program(path: Path) -> None:
    pair = _single(path)
    assert pair is not None
    flt, apply = pair
    assert isinstance(apply.policy, Policy)
    requests = [item.sqe for s in _submits(_liburing(path)) for item in s.sqes]
    checked = 0
    for prof in PROFILES.values():
        if runner.run(ModelBackend(prof), _liburing(path)).skipped:
            continue
        plan = compile_policy(apply.policy, prof).plan
        pk, ps = applied(plan, prof, apply.mechanism)
        lk, ls = _program_state(flt, prof)
        for sqe in requests:  # the liburing case's own requests: no difference at all
            ours, theirs = pk.decide(ps, sqe), lk.decide(ls, sqe)
            assert ours.errno == theirs.errno, (prof.name, sqe, ours.rule.id, theirs.rule.id)
        for sqe in _generated(random.Random(f"{path.stem}/{prof.name}"), 400):
            ours, theirs = pk.decide(ps, sqe), lk.decide(ls, sqe)
            if ours.errno == theirs.errno:
                continue
            ctx = context(sqe, prof)
            family_zero = sqe.opcode == SqeOp.CONNECT and ctx is not None and not int.from_bytes(ctx[16:20], "little")
            assert family_zero and ours.errno == "EACCES" and theirs.errno is None, (prof.name, sqe)
        checked += 1
    assert checked


def test_ring_policies_apply_to_disabled_rings() -> None:
    """Ring-target policy steps act on rings created R_DISABLED (the Plan enables them)."""
    for path in SCENARIOS:
        scenario = load(path)
        disabled = {s.ring for s in scenario.steps
                    if isinstance(s, steps.CreateRing) and s.setup_flags & SetupFlag.R_DISABLED}
        for s in scenario.steps:
            if isinstance(s, steps.ApplyPolicy) and isinstance(s.policy, Policy) and \
                    s.policy.target is TargetKind.RING:
                assert s.ring in disabled, (path.name, s.ring)
