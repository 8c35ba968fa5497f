"""Exact cost and the lower bound, each held against something that does not share its code.

* the cells of a word against brute force over every value the tests can see;
* worst and mean against the reference interpreter run on a context of every class;
* the bound against the costs of programs that exist (it must never be above them) and hand-worked values.
"""

from __future__ import annotations

import io
import itertools
import json
import random
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from policygen import policy_data

from ringfence.abi.profiles import profile
from ringfence.bpf import Program, assemble, check, run
from ringfence.bpf.insn import JEQ, JGE, JGT, JSET
from ringfence.cli.main import main
from ringfence.policy.bound import MAX_ATOMS, NoBoundError, lower_bound
from ringfence.policy.compile import compile_policy
from ringfence.policy.cost import cost, field_weights, formula_tests
from ringfence.policy.cost_table import policy_costs
from ringfence.policy.ir import Operand
from ringfence.policy.lift import lift
from ringfence.policy.load import from_data, loads
from ringfence.policy.partition import Partition, Test, View, with_splits, word_cells

PROFILE = profile("7.2")
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "programs"
_MAX_CLASSES = 3000


def _random_view(r: random.Random) -> View:
    kind = r.random()
    if kind < 0.5:
        return View.word(16, r.randrange(1, 256))
    if kind < 0.8:
        return View.word(16, 0xFF)
    return View.of_operand(Operand(16, 0xFFFF, swap16=True)).masked(r.choice([0xFFFF, 0xFF00, 0x0FF0]))


@pytest.mark.parametrize("seed", range(60))
def test_cells_match_brute_force(seed: int) -> None:
    r = random.Random(seed)
    tests = [Test(_random_view(r), r.choice([JEQ, JGT, JGE, JSET]), r.randrange(0, 300))
             for _ in range(r.randint(1, 5))]
    reps = word_cells(tests)
    want = {tuple(t.holds(w) for t in tests) for w in range(1 << 16)}  # the views read bits 0-15 only
    got = [tuple(t.holds(w) for t in tests) for w in reps]
    assert len(got) == len(set(got)), "two representatives of one cell"
    assert set(got) == want


def _classes(program: Program, tests: tuple[Test, ...]) -> tuple[list[int], list[float]]:
    """Steps the interpreter takes on every class of the joint partition, and each class's weight by the
    definition: classes of ``tests`` weigh the same, split evenly among the program's finer cells."""
    base = with_splits(tests)
    joint = Partition.of(with_splits((*base, *lift(program).tests())))
    share: dict[int, list[float]] = {}
    for off, reps in joint.cells.items():
        ts = [t for t in base if t.offset == off]
        sigs = [tuple(t.holds(w) for t in ts) for w in reps]
        share[off] = [1.0 / len(set(sigs)) / sigs.count(s) for s in sigs]
    checked = check(program)
    steps, weights = [], []
    offsets = list(joint.cells)
    for choice in itertools.product(*(range(len(joint.cells[o])) for o in offsets)):
        ctx = joint.context(dict(zip(offsets, choice, strict=True)))
        steps.append(run(checked, ctx).steps)
        w = 1.0
        for off, c in zip(offsets, choice, strict=True):
            w *= share[off][c]
        weights.append(w)
    return steps, weights


@pytest.mark.parametrize("seed", range(50))
@pytest.mark.parametrize("optimized", [False, True])
def test_cost_matches_the_interpreter_on_every_class(seed: int, optimized: bool) -> None:
    policy = from_data(policy_data(seed))
    for prog in compile_policy(policy, PROFILE, optimized=optimized).programs.values():
        program, tests = prog.built.program, formula_tests(prog.formula)
        if Partition.of(with_splits((*tests, *lift(program).tests()))).size > _MAX_CLASSES:
            continue
        for over in (tests, None):
            c = cost(program, over)
            steps, weights = _classes(program, lift(program).tests() if over is None else over)
            assert c.worst == max(steps)
            assert c.mean == pytest.approx(sum(s * w for s, w in zip(steps, weights, strict=True)))
            assert c.length == len(program)


_LIBURING = [  # program, worst, mean, length, classes: on the program's own tests
    ("liburing_allow_inet_only", 3, 3.0, 4, 3),
    ("liburing_connect_allow_port", 5, 11 / 3, 6, 9),
    ("liburing_deny_openat_creat", 4, 4.0, 5, 2),
    ("liburing_allow_all", 1, 1.0, 1, 1),
]


@pytest.mark.parametrize(("name", "worst", "mean", "length", "classes"), _LIBURING)
def test_liburing_costs(name: str, worst: int, mean: float, length: int, classes: int) -> None:
    c = cost(assemble((CORPUS / f"{name}.asm").read_text()))
    assert (c.worst, c.length, c.classes) == (worst, length, classes)
    assert c.mean == pytest.approx(mean)


def test_weights_move_the_mean() -> None:
    program = assemble((CORPUS / "liburing_connect_allow_port.asm").read_text())
    inet = cost(program, None, field_weights({"connect.family": {2: 98.0}}))
    assert inet.mean == pytest.approx((98 * 5 + 1 * 3 + 1 * 3) / 100)
    with pytest.raises(ValueError, match="single-word"):
        field_weights({"open.flags": {1: 2.0}})


# -- the bound -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(120))
def test_the_bound_is_never_above_a_real_program(seed: int) -> None:
    policy = from_data(policy_data(seed))
    plain = compile_policy(policy, PROFILE, optimized=False)
    better = compile_policy(policy, PROFILE, optimized=True)
    for op, prog in plain.programs.items():
        try:
            b = lower_bound(prog.formula, max_states=3000)
        except NoBoundError:
            continue
        tests = formula_tests(prog.formula)
        for program in (prog.built.program, better.programs[op].built.program):
            c = cost(program, tests)
            assert b.worst <= c.worst and b.mean <= c.mean + 1e-9, (seed, op, b, c)


def test_bound_hand_worked() -> None:
    policy = loads('[policy]\nname = "b"\n[[allow]]\nop = "SOCKET"\nsocket.family = "AF_INET"\n')
    f = compile_policy(policy, PROFILE).programs[45].formula
    b = lower_bound(f)
    assert (b.worst, b.mean, b.atoms, b.classes) == (3, 3.0, 1, 3)  # ld, jeq, ret on every class
    # two families: AF_INET's class and the three gaps return after one jeq, one more for AF_INET6 ...
    policy = loads('[policy]\nname = "b"\n[[allow]]\nop = "SOCKET"\nsocket.family = ["AF_INET", "AF_INET6"]\n')
    b = lower_bound(compile_policy(policy, PROFILE).programs[45].formula)
    # cells: <2, 2, 3..9, 10, >10; best tree: jeq 2 (3 on {2}), then jeq 10 or a jgt split: 4 elsewhere
    assert b.worst == 4 and b.mean == pytest.approx((3 + 4 * 4) / 5)


def test_no_bound_past_the_cap() -> None:
    families = list(range(1, MAX_ATOMS + 2))
    policy = loads(f'[policy]\nname = "b"\n[[allow]]\nop = "SOCKET"\nsocket.family = {families}\n')
    with pytest.raises(NoBoundError, match="atoms"):
        lower_bound(compile_policy(policy, PROFILE).programs[45].formula)


def test_policy_costs_table() -> None:
    policy = loads('[policy]\nname = "t"\nkernel = "7.2+"\n[[allow]]\nop = "CONNECT"\nconnect.family = "AF_INET"\n')
    (op, row), = policy_costs(policy, PROFILE).items()
    assert op == 16
    assert (row.unoptimized.worst, row.unoptimized.length) == (5, 6)   # family-0 guard, then AF_INET
    assert (row.optimized.worst, row.optimized.length) == (3, 4)       # AF_INET implies the guard
    assert row.bound is not None and row.bound.worst == 3


# -- the command ---------------------------------------------------------------------------------------------

def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["cost", *argv])
    return code, out.getvalue()


def test_cli_policy_json() -> None:
    code, out = _cli(str(Path(__file__).resolve().parents[2] / "examples/policies/web-client.toml"), "--json",
                     "--no-bound")
    data = json.loads(out)
    assert code == 0 and data["schema"] == 1
    rows = {r["opcode"]: r for r in data["opcodes"]}
    assert set(rows) == {"SOCKET", "OPENAT", "OPENAT2", "CONNECT"}
    for r in rows.values():
        assert r["optimized"]["worst"] <= r["unoptimized"]["worst"]
        assert r["bound"] is None and r["no_bound"]


def test_cli_program() -> None:
    code, out = _cli(str(CORPUS / "liburing_connect_allow_port.asm"), "--opcode", "CONNECT", "--json")
    assert code == 0 and json.loads(out) == {"schema": 1, "opcode": "CONNECT", "classes": 9, "worst": 5,
                                             "mean": 3.6667, "length": 6}
    code, _ = _cli(str(CORPUS / "liburing_connect_allow_port.asm"))
    assert code == 2


def test_cli_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["cost", "--help"])
    assert "examples:" in capsys.readouterr().out


def test_cost_columns_for_a_table() -> None:
    from ringfence.policy.cost import COST_COLUMNS

    program = assemble((CORPUS / "liburing_connect_allow_port.asm").read_text())
    assert {h: fn(program) for h, fn in COST_COLUMNS} == {"worst": "5", "mean": "3.67", "classes": "9"}
    jumps_on_x = assemble("ldx #2\nld [16]\njeq x, ok, no\nok: ret #1\nno: ret #0")
    assert {h: fn(jumps_on_x) for h, fn in COST_COLUMNS} == {"worst": "-", "mean": "-", "classes": "-"}
