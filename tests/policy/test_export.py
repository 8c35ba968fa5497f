"""Exports of a Plan that need no compiler: JSON round trips, the Python module (run without ringfence), names.

The C export is compiled and run in test_export_c.py.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from policygen import policy_data

from ringfence.abi.layout import FilterRegistration, Restriction, TaskRestrictionHeader, pack_task_restrictions
from ringfence.abi.opcodes import RegisterOp, SqeOp
from ringfence.abi.profiles import profile
from ringfence.bpf.insn import Program
from ringfence.bpf.text import FORMS
from ringfence.errors import PolicyError
from ringfence.policy.ast import TargetKind
from ringfence.policy.compile import compile_policy
from ringfence.policy.export import FORMATS, export, names, rule_reasons
from ringfence.policy.export.c import instruction, to_c
from ringfence.policy.export.text import c_comment, identifier
from ringfence.policy.load import from_data, load
from ringfence.policy.plan import Plan, Proof

ROOT = Path(__file__).resolve().parents[2]
WEB_CLIENT = ROOT / "examples" / "policies" / "web-client.toml"
PROFILE = profile("7.2")


def _plans(seed: int) -> list[Plan]:
    """The Plans of one random policy under several compile options (those that compile)."""
    plans = []
    policy = from_data(policy_data(seed))
    for target in TargetKind:
        for opts in ({}, {"optimized": False}, {"strict": True}, {"mechanism": "filters"}):
            try:
                plans.append(compile_policy(dataclasses.replace(policy, target=target), PROFILE, **opts).plan)
            except PolicyError:
                continue
    return plans


# -- JSON ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(60))
def test_json_round_trips(seed: int) -> None:
    for plan in _plans(seed):
        text = export(plan, "json")
        again = Plan.loads(text)
        assert again == plan and again.hash == plan.hash
        assert export(again, "json") == text


def test_json_keeps_the_proof_and_refuses_an_edit() -> None:
    plan = dataclasses.replace(compile_policy(load(str(WEB_CLIENT)), PROFILE).plan,
                               proof=Proof("proven", ("prep is the model's",), ("CONNECT",), 1.5, "z3"))
    text = export(plan, "json")
    assert Plan.loads(text) == plan
    data = json.loads(text)
    data["variants"][0]["registrations"][1]["program"] = "0600000001000000"
    with pytest.raises(ValueError, match="hash does not match"):
        Plan.from_json(data)


@pytest.mark.parametrize("edit", ["top", "registration", "variant"])
def test_json_refuses_what_the_hash_does_not_cover(edit: str) -> None:
    """A key the Plan does not have would pass unchecked by the hash: a Plan is exactly what compile wrote."""
    data = json.loads(export(compile_policy(load(str(WEB_CLIENT)), PROFILE).plan, "json"))
    {"top": data, "registration": data["variants"][0]["registrations"][0],
     "variant": data["variants"][0]}[edit]["unknown_key"] = 1
    with pytest.raises(ValueError, match="changed after compilation"):
        Plan.from_json(data)


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="one of json, c, python"):
        export(compile_policy(load(str(WEB_CLIENT)), PROFILE).plan, "yaml")
    assert FORMATS == ("json", "c", "python")


# -- Python --------------------------------------------------------------------------------------------------------

_DUMP = """
import json, sys
sys.path.insert(0, sys.argv[1])
import exported as m
assert "ringfence" not in sys.modules
out = {"meta": [m.POLICY, m.TARGET, m.KERNEL, m.PLAN_HASH], "variants": {}}
for name, steps in m.VARIANTS.items():
    rows = []
    for s in steps:
        if s["kind"] == "restrictions":
            rows.append(["restrictions", [list(r) for r in s["records"]], m.pack_records(s["records"]).hex(),
                         m.pack_task_restrictions(s["records"]).hex()])
        elif s["kind"] == "filter":
            rows.append(["filter", s["opcode"], s["flags"], s["pdu_size"], s["program"].hex(),
                         [list(i) for i in s["instructions"]], m.pack_bpf(s, 0x1122334455667788).hex()])
        else:
            rows.append(["enable"])
    out["variants"][name] = rows
print(json.dumps(out))
"""


def _run_module(source: str, tmp_path: Path) -> dict[str, object]:
    """Import the module in an interpreter without site-packages (so without ringfence) and dump its data."""
    (tmp_path / "exported.py").write_text(source, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", _DUMP, str(tmp_path)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def _expected(plan: Plan) -> dict[str, object]:
    variants: dict[str, list[list[object]]] = {}
    for v in plan.variants:
        rows: list[list[object]] = []
        for reg in v.registrations:
            if reg.kind == "restrictions":
                recs = [Restriction(r.opcode, r.value) for r in reg.records]
                rows.append(["restrictions", [[r.opcode, r.value] for r in reg.records],
                             b"".join(r.pack() for r in recs).hex(), pack_task_restrictions(recs).hex()])
            elif reg.kind == "filter":
                f = reg.filter
                assert f is not None
                rows.append(["filter", f.opcode, f.flags, f.pdu_size, f.program.hex(),
                             [[i.code, i.jt, i.jf, i.k] for i in Program.from_bytes(f.program)],
                             f.pack(0x1122334455667788).hex()])
            else:
                rows.append(["enable"])
        variants[v.mechanism] = rows
    return {"meta": [plan.policy, plan.target, plan.kernel, plan.hash], "variants": variants}


@pytest.mark.parametrize("seed", range(0, 60, 6))
def test_python_module_holds_the_plan(seed: int, tmp_path: Path) -> None:
    policy = from_data(policy_data(seed))
    for plan in _plans(seed)[:3]:
        source = export(plan, "python", reasons=rule_reasons(policy))
        assert "ringfence" not in {n.names[0].name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)}
        assert _run_module(source, tmp_path) == _expected(plan)


def test_python_module_names_and_comments(tmp_path: Path) -> None:
    policy = load(str(WEB_CLIENT))
    plan = compile_policy(policy, PROFILE).plan
    source = export(plan, "python", reasons=rule_reasons(policy))
    assert '"opcode": IORING_OP_CONNECT' in source and "IORING_OP_CONNECT = 16\n" in source
    assert "(IORING_RESTRICTION_SQE_FLAGS_ALLOWED, IOSQE_IO_LINK | IOSQE_ASYNC)" in source
    assert re.search(r"# +0 +ld \[16\] +allow rule at web-client.toml:\d+:\d+: the local proxy; ", source)
    assert _run_module(source, tmp_path) == _expected(plan)


# -- C, as text ----------------------------------------------------------------------------------------------------


def test_c_follows_the_plan_in_order() -> None:
    policy = load(str(WEB_CLIENT))
    plan = compile_policy(dataclasses.replace(policy, target=TargetKind.RING), PROFILE).plan
    source = to_c(plan, reasons=rule_reasons(policy))
    steps = re.search(r"rf_web_client_classic_steps\[\] = \{\n(.*?)\};", source, re.S)
    assert steps is not None
    ops = [SqeOp(r.filter.opcode).name for r in plan.variants[0].registrations if r.filter]
    assert re.findall(r'"([^"]+)"', steps.group(1)) == ["restrictions", *(f"filter IORING_OP_{o}" for o in ops),
                                                        "enable"]
    calls = re.findall(r"\t(?:if \(\(ret = )?(ringfence_\w+)\(", source.split("rf_web_client_classic_apply(int")[1])
    assert calls == ["ringfence_register_ring_restrictions", *["ringfence_register_filter"] * len(ops),
                     "ringfence_register"]
    assert "/* Step 1: filter for IORING_OP_CONNECT, declaring a 24-byte payload." in source
    assert re.search(r"BPF_STMT\(BPF_LD \| BPF_W \| BPF_ABS, 16\), +/\* +0 +ld \[16\] +allow rule at \S+:\d+:\d+: "
                     r"the local proxy; ", source)


def test_c_comments_cannot_break_out() -> None:
    for text in ("a */ b", "/* nested", "trigraph ??/", "new\nline", "tab\there"):
        out = c_comment(text)
        assert "*/" not in out and "/*" not in out and "??" not in out and "\n" not in out
    data = {"policy": {"name": "x */ int evil; /*", "default": "allow"},
            "deny": [{"ops": ["SOCKET"], "socket": {"family": "AF_PACKET"}, "reason": "*/ int evil2; /*"}]}
    policy = from_data(data)
    source = to_c(compile_policy(policy, PROFILE).plan, reasons=rule_reasons(policy))
    assert "int evil;" in source and "int evil2;" in source
    without_comments = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    assert "int evil" not in without_comments


def test_identifiers() -> None:
    assert identifier("web-client") == "web_client"
    assert identifier("3 rings!") == "p_3_rings"
    assert identifier("---") == "policy"


# -- names ---------------------------------------------------------------------------------------------------------


def test_code_expressions_mean_their_code() -> None:
    """Every code the exporter spells with macros evaluates back to itself; every instruction form has a spelling."""
    spelled = 0
    for code in range(0x10000):
        expr = names.code_expression(code)
        if expr is None:
            continue
        spelled += 1
        value = 0
        for part in expr.split(" | "):
            value |= names.BPF_NAMES[part]
        assert value == code, (hex(code), expr)
    assert spelled > 50
    assert all(names.code_expression(code) is not None for code in FORMS)


def test_instruction_spelling() -> None:
    assert instruction(0x20, 0, 0, 16) == "BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 16)"
    assert instruction(0x15, 2, 0, 0x5000) == "BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x5000, 2, 0)"
    assert instruction(0x05, 0, 0, 3) == "BPF_STMT(BPF_JMP | BPF_JA, 3)"
    assert instruction(0x06, 1, 0, 0) == "{ BPF_RET | BPF_K, 1, 0, 0 }"  # unused fields kept
    assert instruction(0xFFFF, 0, 0, 0) == "{ 0xffff, 0, 0, 0 }"


def test_header_names() -> None:
    assert names.sqe_op(SqeOp.URING_CMD128) == names.Constant("IORING_OP_URING_CMD128", 64)
    assert names.sqe_op(200) is None
    assert names.register_op(RegisterOp.UNREGISTER_RING_FDS) == names.Constant("IORING_UNREGISTER_RING_FDS", 21)
    assert names.register_op(RegisterOp.BPF_FILTER) == names.Constant("IORING_REGISTER_BPF_FILTER", 37)
    assert [c.name for c in names.sqe_flags(0x14) or []] == ["IOSQE_IO_LINK", "IOSQE_ASYNC"]
    assert names.sqe_flags(0x80) is None
    assert [c.name for c in names.filter_flags(3) or []] == ["IO_URING_BPF_FILTER_DENY_REST",
                                                             "IO_URING_BPF_FILTER_SZ_STRICT"]


def test_numbers_without_names_stay_numbers() -> None:
    """A Plan from elsewhere may hold numbers ringfence has no name for: they are written as numbers."""
    plan = compile_policy(load(str(WEB_CLIENT)), PROFILE).plan
    regs = plan.variants[0].registrations
    odd = dataclasses.replace(regs[0], records=(*regs[0].records, Restriction(9, 0x80)))
    f = regs[1].filter
    assert f is not None
    flt = dataclasses.replace(regs[1], filter=FilterRegistration(99, f.program, 8, f.pdu_size))
    plan = dataclasses.replace(plan, variants=(dataclasses.replace(plan.variants[0], registrations=(odd, flt)),))
    source = to_c(plan)
    assert "{ .opcode = 9, .sqe_flags = 0x80 }," in source
    assert ".opcode = 99," in source and ".flags = 0x8," in source
    assert TaskRestrictionHeader(len(odd.records)).nr_res == len(odd.records)
