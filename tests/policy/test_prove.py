"""The prover proves what the compiler produces, refutes what it should not, and its two readings are right:
its z3 algebra computes what the interpreter computes, its policy formula what the policy evaluator says."""

from __future__ import annotations

import dataclasses
import random

import pytest
from policygen import OPS, context, policy_data

z3 = pytest.importorskip("z3")

from ringfence.abi.opcodes import FilterFlag, SqeOp  # noqa: E402
from ringfence.abi.profiles import profile  # noqa: E402
from ringfence.bpf import Program, assemble, check, run  # noqa: E402
from ringfence.bpf.gen import context as random_context  # noqa: E402
from ringfence.bpf.gen import valid_program  # noqa: E402
from ringfence.bpf.symbolic import symbolic_result  # noqa: E402
from ringfence.errors import PolicyError  # noqa: E402
from ringfence.policy import prove  # noqa: E402
from ringfence.policy.build import allow, deny, policy  # noqa: E402
from ringfence.policy.compile import compile_policy  # noqa: E402
from ringfence.policy.evidence import Check, NotProvenError  # noqa: E402
from ringfence.policy.load import from_data, load  # noqa: E402
from ringfence.policy.plan import Plan, Registration, Variant  # noqa: E402
from ringfence.policy.semantics import opcode_verdict  # noqa: E402

K72 = profile("7.2")


@pytest.mark.parametrize("seed", range(150))
@pytest.mark.parametrize("optimized", [True, False], ids=["optimized", "no-optimize"])
def test_every_generated_plan_is_proven(seed: int, optimized: bool) -> None:
    compiled = compile_policy(from_data(policy_data(seed)), K72, optimized=optimized)
    report = prove.prove(compiled)
    assert report.result == "proven", [(o.name, o.status, o.detail) for o in report.failures()]
    variants = {v.mechanism for v in compiled.plan.variants}
    kinds = {(o.variant, o.kind) for o in report.obligations}
    for mechanism in variants:
        assert (mechanism, Check.PLAN) in kinds and (mechanism, Check.REGISTER) in kinds
    filters = sum(1 for v in compiled.plan.variants for r in v.registrations if r.filter is not None)
    assert sum(1 for o in report.obligations if o.kind is Check.PROGRAM) == filters


def test_the_example_policies_are_proven_on_every_filter_kernel() -> None:
    for name in ("7.2", "7.3"):
        report = prove.prove(compile_policy(load("examples/policies/web-client.toml"), profile(name)))
        assert report.result == "proven", report.failures()
        # the port test compares the whole word 20: it needs the two bytes after the port to be zero
        assert report.assumptions == ("connect.pad-zero",)


def test_attach_records_the_proof_in_the_plan() -> None:
    compiled = prove.attach(compile_policy(load("examples/policies/web-client.toml"), K72))
    proof = compiled.plan.proof
    assert proof is not None and proof.result == "proven" and proof.solver.startswith("z3 ")
    assert proof.assumptions == ("connect.pad-zero",)
    assert "classic: filter CONNECT" in proof.checked
    again = Plan.loads(compiled.plan.dumps())
    assert again.proof == proof and again.hash == compiled.plan.hash


def test_filters_only_variant_obligations() -> None:
    p = policy("nested", allow("READ", "WRITE"), allow("SOCKET", socket_family="AF_INET"), deny("NOP"),
               kernel="7.0+")
    report = prove.prove(compile_policy(p, profile("7.0"), mechanism="filters"))
    assert report.result == "proven"
    plans = [o.detail for o in report.obligations if o.kind is Check.PLAN]
    assert plans == ["fresh task", "inherited filters", "a newer kernel's opcode"]


def _replace_filter(plan: Plan, opcode: int, **changes: object) -> Plan:
    variants = []
    for v in plan.variants:
        regs = [Registration(r.kind, r.records, dataclasses.replace(r.filter, **changes), r.rules, r.comments)
                if r.filter is not None and r.filter.opcode == opcode else r for r in v.registrations]
        variants.append(Variant(v.mechanism, tuple(regs)))
    return dataclasses.replace(plan, variants=tuple(variants))


def test_a_program_reading_past_its_declared_payload_is_refused_with_a_counterexample() -> None:
    p = policy("ports", allow("CONNECT", connect_addr="10.0.0.0/8"), kernel="7.2+")
    compiled = compile_policy(p, K72)
    plan = _replace_filter(compiled.plan, int(SqeOp.CONNECT), pdu_size=4)  # reads up to byte 27
    report = prove.prove_plan(plan, p, K72)
    bad = [o for o in report.failures() if o.kind is Check.PAYLOAD]
    assert bad and "past its declared pdu_size 4" in bad[0].detail
    example = bad[0].counterexample
    assert example is not None and example.programs
    program = check(Program.from_bytes(example.programs[0]))
    short = example.ctx[:20] + bytes(20)
    assert run(program, example.ctx).allowed != run(program, short).allowed


def test_a_refused_plan_raises_from_attach_with_the_report() -> None:
    p = policy("ports", allow("CONNECT", connect_port=[80, 443]), kernel="7.2+")
    compiled = compile_policy(p, K72)
    broken = dataclasses.replace(compiled, plan=_replace_filter(compiled.plan, int(SqeOp.CONNECT),
                                                                program=assemble("ret #1").to_bytes()))
    with pytest.raises(NotProvenError) as info:
        prove.attach(broken)
    assert info.value.report.result == "refuted"
    assert info.value.counterexample["opcode"] == int(SqeOp.CONNECT)
    assert "ringfence emu" in str(info.value)


def test_a_dropped_deny_rest_is_caught_on_a_newer_kernels_opcode() -> None:
    p = policy("nested", allow("READ"), kernel="7.0+")
    compiled = compile_policy(p, profile("7.0"), mechanism="filters")
    (variant,) = compiled.plan.variants
    last = variant.registrations[-1]
    assert last.filter is not None and last.filter.flags & FilterFlag.DENY_REST
    regs = (*variant.registrations[:-1], dataclasses.replace(last, filter=dataclasses.replace(last.filter, flags=0)))
    plan = dataclasses.replace(compiled.plan, variants=(Variant("filters", regs),))
    report = prove.prove_plan(plan, p, profile("7.0"))
    (bad,) = report.failures()
    assert bad.detail == "a newer kernel's opcode" and bad.opcode == profile("7.0").op_last
    assert bad.counterexample is not None and bad.counterexample.plan_allows and not bad.counterexample.policy_allows


def test_register_allow_list_must_match() -> None:
    p = policy("reg", allow("READ"), register=["PROBE", "ENABLE_RINGS"], kernel="7.0+")
    compiled = compile_policy(p, K72)
    assert prove.prove(compiled).result == "proven"
    wider = dataclasses.replace(p, register=frozenset({*(p.register or ()), 0}))
    report = prove.prove_plan(compiled.plan, wider, K72)
    (bad,) = report.failures()
    assert bad.kind is Check.REGISTER and "[0]" in bad.detail


# -- the two readings --------------------------------------------------------------------------------------------

def _evaluate(term: object, ctx: bytes, words: tuple[object, ...]) -> int:
    subst = [(w, z3.BitVecVal(int.from_bytes(ctx[4 * i:4 * i + 4], "little"), 32)) for i, w in enumerate(words)]
    value = z3.simplify(z3.substitute(term, *subst))
    return int(value.as_long()) if z3.is_bv_value(value) else int(z3.is_true(value))


def test_the_z3_algebra_computes_what_the_interpreter_computes() -> None:
    r = random.Random(7)
    words = tuple(z3.BitVec(f"w{i}", 32) for i in range(10))
    tried = 0
    for _ in range(200):
        program = valid_program(r)
        checked = check(program)
        tried += 1
        term = symbolic_result(checked, prove._BpfAlgebra(words))
        for _ in range(4):
            ctx = random_context(r) if r.random() < 0.5 else bytes(r.choice([0, 1, 31, 32, 33, 255]) for _ in range(40))
            assert _evaluate(term, ctx, words) == run(checked, ctx).value, (program.to_bytes().hex(), ctx.hex())
    assert tried == 200


@pytest.mark.parametrize("source", [
    "ld [16]\ntax\nld #1\nlsh x\nret a",           # shift counts use their low five bits: 33 shifts by 1
    "ld [16]\ntax\nld #0x80000000\nrsh x\nret a",  # logical (unsigned) right shift
    "ld [16]\ntax\nld #7\ndiv x\nadd #1\nret a",   # X == 0 ends the program with 0
    "ld [16]\ntax\nld #0xfffffffe\ndiv x\nret a",  # unsigned division
    "ld [16]\njgt #0x7fffffff, big, small\nbig: ret #2\nsmall: ret #3",  # unsigned comparison
])
def test_kernel_semantics_in_the_algebra(source: str) -> None:
    words = tuple(z3.BitVec(f"w{i}", 32) for i in range(10))
    checked = check(assemble(source))
    term = symbolic_result(checked, prove._BpfAlgebra(words))
    for x in (0, 1, 2, 31, 32, 33, 0x80000000, 0xFFFFFFFF):
        ctx = bytes(16) + x.to_bytes(4, "little") + bytes(20)
        assert _evaluate(term, ctx, words) == run(checked, ctx).value, (source, x)


@pytest.mark.parametrize("seed", range(60))
def test_the_policy_formula_agrees_with_the_evaluator(seed: int) -> None:
    p = from_data(policy_data(seed))
    v = prove._Vars.fresh()
    formula = prove._PolicyFormula(p, v)
    r = random.Random(seed)
    for _ in range(40):
        op = int(SqeOp[r.choice(OPS)])
        ctx = context(r, op)
        assert bool(_evaluate(formula.opcode(op), ctx, v.words)) == opcode_verdict(p, op, ctx).allowed, \
            (seed, SqeOp(op).name, ctx.hex())


@pytest.mark.parametrize("flags", [None, ["IO_LINK"]])
def test_an_empty_register_list_is_refused_while_requests_are_allowed(flags: list[str] | None) -> None:
    """``[register] allowed = []`` cannot be said with classic records while any request is allowed (the prover
    refuted the Plans the compiler used to emit); with every request denied it is the empty record set."""
    p = policy("no-register", allow("READ"), default="allow", register=[], flags_allowed=flags)
    with pytest.raises(PolicyError, match="cannot be said"):
        compile_policy(p, K72)
    locked = compile_policy(policy("locked", register=[]), K72)
    assert locked.plan.variants[0].registrations[0].records == ()
    assert prove.prove(locked).result == "proven"


def test_a_register_only_ring_policy_before_7_0_says_both_sides() -> None:
    """Before 7.0 one classic registration restricts both sides, so the Plan lists the SQE side in full too (a
    Plan of REGISTER_OP records alone, as the compiler once emitted, denied every SQE: the prover refuted it)."""
    p = policy("old-ring", default="allow", target="ring", kernel="6.18+", register=["ENABLE_RINGS", "PROBE"])
    assert prove.prove(compile_policy(p, profile("6.18"))).result == "proven"
    assert prove.prove(compile_policy(p, profile("7.0"))).result == "proven"
