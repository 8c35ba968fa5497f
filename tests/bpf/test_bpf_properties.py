"""Properties over generated programs and contexts (hypothesis, bounded by the suite's profile).

Random programs come from :mod:`ringfence.bpf.gen`, seeded by hypothesis, so the same generators
(and seeds) can feed a real kernel in another test.
"""

from __future__ import annotations

import contextlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ringfence.bpf import Instruction, Program, assemble, check, diagnose, disassemble, run
from ringfence.bpf.fast import compile_program
from ringfence.bpf.gen import any_program, context, valid_program
from ringfence.errors import AsmError

rngs = st.integers(0, 2**64 - 1).map(random.Random)
instructions = st.builds(Instruction, st.integers(0, 0xFFFF), st.integers(0, 255), st.integers(0, 255),
                         st.integers(0, 0xFFFFFFFF))
small_instructions = st.builds(Instruction, st.integers(0, 0xFF), st.integers(0, 3), st.integers(0, 3),
                               st.sampled_from([0, 1, 4, 16, 32, 40, 0xFFFFF000, 0xFFFFFFFF]))


@given(st.lists(st.one_of(instructions, small_instructions), max_size=30), st.booleans())
def test_listing_round_trips_for_any_program(insns: list[Instruction], annotate: bool) -> None:
    program = Program(tuple(insns))
    assert assemble(disassemble(program, annotate=annotate)) == program


@given(rngs)
def test_generated_any_programs_round_trip_and_diagnose(rng: random.Random) -> None:
    program = any_program(rng)
    assert assemble(disassemble(program)) == program
    found = diagnose(program)
    assert list(found) == sorted(found, key=lambda d: d.stage)
    if not found:
        checked = check(program)
        run(checked, context(rng))


@given(rngs)
def test_checker_accepts_valid_programs(rng: random.Random) -> None:
    program = valid_program(rng)
    assert diagnose(program) == ()
    assert diagnose(program, dead_code_rewrite=True) == ()


@settings(max_examples=300)
@given(rngs)
def test_fast_path_equals_interpreter(rng: random.Random) -> None:
    checked = check(valid_program(rng, max_len=40))
    blocks = compile_program(checked.program, budget=0)
    for _ in range(8):
        ctx = context(rng)
        result = run(checked, ctx)  # never raises on an accepted program
        assert 0 <= result.value <= 0xFFFFFFFF and result.steps >= 1
        assert checked.evaluate(ctx) == result.value == blocks(ctx)
        assert all(k in range(0, 40, 4) for k in result.reads)


@given(rngs)
def test_trace_replays_the_run(rng: random.Random) -> None:
    checked = check(valid_program(rng))
    ctx = context(rng)
    traced = run(checked, ctx, trace=True)
    assert traced.trace is not None and len(traced.trace) == traced.steps
    assert traced.trace[-1].result == traced.value and traced.trace[0].pc == 0
    assert run(checked, ctx).value == traced.value


@given(st.text(max_size=60))
def test_assembler_fails_only_with_asm_errors(source: str) -> None:
    try:
        assemble(source)
    except AsmError as exc:
        assert exc.line >= 1 and exc.column >= 1


@given(st.lists(st.sampled_from(["ld", "ldx", "ret", "jeq", "add", "#", "[", "]", "M", "x", "a", "len", ",", ":",
                                 "L", "0x10", "AF_INET", "htons(", ")", '"1.2.3.4"', "|", "<<", "\n", " ", "4*(",
                                 "&0xf", ".insn", "socket.family"]), max_size=20))
def test_assembler_fails_only_with_asm_errors_on_near_programs(parts: list[str]) -> None:
    with contextlib.suppress(AsmError):
        assemble("".join(parts))
