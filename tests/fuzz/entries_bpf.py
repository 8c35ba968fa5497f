"""Fuzzed entry points of the cBPF toolchain: assembler, decoders, disassembler, checker, executors, emu, CLI.

Every input is bytes (so that every crash can live in ``corpus/<entry>/`` as a file); each entry says
how it reads them.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

from exprs import ExprAlgebra, evaluate
from fuzz_harness import Entry, FuzzError, register
from hypothesis import strategies as st

from ringfence.abi import seccomp
from ringfence.abi.ctx import ctx_from_fields
from ringfence.bpf import IOURING, SECCOMP, Instruction, Program, assemble, check, diagnose, disassemble, run
from ringfence.bpf.fast import compile_program
from ringfence.bpf.formats import InputFormat, detect, load
from ringfence.bpf.gen import any_program, context, valid_program
from ringfence.bpf.symbolic import symbolic_result
from ringfence.bpf.target import Target
from ringfence.cli import main as cli_main
from ringfence.errors import AsmError, CheckError, DecodeError

REPO: Final = Path(__file__).resolve().parents[2]
_TARGETS: Final = (IOURING, SECCOMP)

# -- shared strategies ------------------------------------------------------------------------------------------

_INTERESTING_K: Final = (0, 1, 2, 4, 15, 16, 31, 32, 36, 40, 60, 64, 255, 256, 0x7FFFFFFF, 0xFFFFF000, 0xFFFFF038,
                         0xFFFFFFFF)
_near_instructions = st.builds(
    lambda code, jt, jf, k: Instruction(code, jt, jf, k).pack(),
    st.one_of(st.integers(0, 0xFF), st.sampled_from((0x00, 0x01, 0x02, 0x03, 0x05, 0x06, 0x15, 0x16, 0x20, 0x60,
                                                     0x61, 0x80, 0x81, 0x84, 0x87, 0x07, 0x34, 0x3C, 0x64)),
              st.integers(0, 0xFFFF)),
    st.integers(0, 4), st.integers(0, 4), st.one_of(st.sampled_from(_INTERESTING_K), st.integers(0, 2**32 - 1)))
_generated = st.builds(
    lambda seed, valid, target, mutation: _mutate(
        (valid_program(random.Random(seed), 30, target) if valid else any_program(random.Random(seed))).to_bytes(),
        mutation),
    st.integers(0, 2**32), st.booleans(), st.sampled_from(_TARGETS), st.integers(0, 2**32))

#: Raw program bytes: anything, near-programs, and generated programs with a byte flipped or not.
program_bytes: Final = st.one_of(st.binary(max_size=200), st.lists(_near_instructions, max_size=24).map(b"".join),
                                 _generated)


def _mutate(data: bytes, seed: int) -> bytes:
    """Sometimes flip, drop or duplicate a byte range: the neighbours of valid inputs."""
    rng = random.Random(seed)
    if not data or rng.random() < 0.5:
        return data
    i = rng.randrange(len(data))
    choice = rng.randrange(3)
    if choice == 0:
        return data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
    if choice == 1:
        return data[:i] + data[i + rng.randint(1, 8):]
    return data[:i] + data[i:i + 8] + data[i:]


def _sources() -> list[str]:
    """Assembler seeds: the corpus programs and their listings."""
    out = [p.read_text() for p in sorted((REPO / "tests" / "corpus" / "programs").glob("*.asm"))]
    return out + [disassemble(assemble(s)) for s in out[:5]]


_SOURCES: Final = _sources()
_TOKENS: Final = ("ld", "ldx", "st", "jeq", "jset", "ja", "ret", "add", "lsh", ".insn", "#", "[", "]", "M", "x", "a",
                  "len", ",", ":", "(", ")", "+", "|", "&", "<<", ">>", "4*(", "&0xf", "L1", "L2", "0x10", "99999",
                  "AF_INET", "htons(", "ip4(", "ip6(", '"1.2.3.4"', '"::1"', "socket.family", "args.0.hi", "nr",
                  "\n", " ", "\t", ";", "\x1b", "\u202e", "\x00", "é")


def _mutate_text(source: str, edits: list[tuple[int, int, str]]) -> str:
    for where, span, insert in edits:
        i = where % (len(source) + 1)
        source = source[:i] + insert + source[i + span:]
    return source


asm_text: Final = st.one_of(
    st.text(max_size=120),
    st.lists(st.sampled_from(_TOKENS), max_size=40).map("".join),
    st.builds(_mutate_text, st.sampled_from(_SOURCES),
              st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 8),
                                 st.one_of(st.sampled_from(_TOKENS), st.text(max_size=4))), min_size=1, max_size=6)),
).map(lambda s: s.encode("utf-8", "surrogatepass"))


# -- entry points ---------------------------------------------------------------------------------------------

def _assemble(data: bytes) -> None:
    """The assembler (via ``formats.load``, so UTF-8 decoding too), for both targets."""
    for target in _TARGETS:
        program = load(data, "asm", filename="fuzz.asm", target=target)
        if assemble(disassemble(program), target=target) != program:
            raise FuzzError("listing does not reassemble")


def _decode(kind: InputFormat) -> Callable[[bytes], None]:
    def decode(data: bytes) -> None:
        load(data, kind, filename=f"fuzz.{kind}")
    return decode


def _detected(data: bytes) -> None:
    load(data, detect(None, data), filename="fuzz")


def _round_trip(data: bytes) -> None:
    """Any bytes decode to some program whose listing reassembles to it exactly, for either target's notes."""
    program = Program.from_bytes(data[:len(data) // 8 * 8])
    for target in _TARGETS:
        for annotate in (True, False):
            text = disassemble(program, annotate=annotate, target=target)
            if assemble(text) != program:
                raise FuzzError(f"round trip differs for {program}")


# The kernel's acceptance rules (spec §5.5), written out here independently of ringfence.bpf.check.
_GENERIC: Final = frozenset({
    0x04, 0x0C, 0x14, 0x1C, 0x24, 0x2C, 0x34, 0x3C, 0x44, 0x4C, 0x54, 0x5C, 0x64, 0x6C, 0x74, 0x7C, 0x84, 0x94, 0x9C,
    0xA4, 0xAC, 0x00, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50, 0x60, 0x80, 0x01, 0x61, 0x81, 0xB1, 0x02, 0x03, 0x07, 0x87,
    0x06, 0x16, 0x05, 0x15, 0x1D, 0x25, 0x2D, 0x35, 0x3D, 0x45, 0x4D,
})
_WHITELIST: Final = frozenset({
    0x20, 0x80, 0x81, 0x00, 0x01, 0x60, 0x61, 0x02, 0x03, 0x04, 0x0C, 0x14, 0x1C, 0x24, 0x2C, 0x34, 0x3C, 0x44, 0x4C,
    0x54, 0x5C, 0x64, 0x6C, 0x74, 0x7C, 0xA4, 0xAC, 0x84, 0x07, 0x87, 0x05, 0x15, 0x1D, 0x25, 0x2D, 0x35, 0x3D, 0x45,
    0x4D, 0x06, 0x16,
})
_CONDITIONAL: Final = frozenset({0x15, 0x1D, 0x25, 0x2D, 0x35, 0x3D, 0x45, 0x4D})
_ANCILLARY: Final = frozenset(0xFFFFF000 + 4 * i for i in range(16))


def kernel_accepts(insns: list[tuple[int, int, int, int]], ctx_size: int) -> bool:
    """Stage 1, stage 2 (generic codes, k rules, jump ranges, final return, scratch flow), stage 3."""
    n = len(insns)
    if not 1 <= n <= 4096:
        return False
    for pc, (code, jt, jf, k) in enumerate(insns):
        if code not in _GENERIC:
            return False
        if (code in (0x34, 0x94) and k == 0) or (code in (0x64, 0x74) and k >= 32):
            return False
        if (code in (0x60, 0x61, 0x02, 0x03) and k >= 16) or (code == 0x05 and k >= n - pc - 1):
            return False
        if code in _CONDITIONAL and (pc + jt + 1 >= n or pc + jf + 1 >= n):
            return False
        if code in (0x20, 0x28, 0x30) and k >= 0xFFFFF000 and k not in _ANCILLARY:
            return False
    if insns[-1][0] not in (0x06, 0x16):
        return False
    masks, valid = [0xFFFF] * n, 0
    for pc, (code, jt, jf, k) in enumerate(insns):
        valid &= masks[pc]
        if code in (0x02, 0x03):
            valid |= 1 << k
        elif code in (0x60, 0x61) and not valid >> k & 1:
            return False
        elif code == 0x05 or code in _CONDITIONAL:
            for target in (pc + 1 + k,) if code == 0x05 else (pc + 1 + jt, pc + 1 + jf):
                masks[target] &= valid
            valid = 0xFFFF
    return all(code in _WHITELIST and (code != 0x20 or (k < ctx_size and k % 4 == 0)) for code, _, _, k in insns)


def _checker(data: bytes) -> None:
    program = Program.from_bytes(data[:len(data) // 8 * 8])
    rows = [(i.code, i.jt, i.jf, i.k) for i in program]
    for target in _TARGETS:
        accepted = not diagnose(program, target)
        if accepted != kernel_accepts(rows, target.ctx_size):
            raise FuzzError(f"checker says {accepted} on {target.name} for {rows}")
        try:
            check(program, target)
        except CheckError:
            if accepted:
                raise FuzzError("check() refused what diagnose() accepts") from None


def _target_of(data: bytes) -> tuple[Target, bytes, bytes]:
    target = _TARGETS[data[0] & 1] if data else IOURING
    ctx = data[1:1 + target.ctx_size].ljust(target.ctx_size, b"\0")
    return target, ctx, data[1 + target.ctx_size:]


def _executors(data: bytes) -> None:
    """Input: a target byte, a context, then the program. Interpreter, fast path and terms must agree."""
    target, ctx, code = _target_of(data)
    try:
        checked = check(Program.from_bytes(code[:len(code) // 8 * 8]), target)
    except CheckError:
        return
    value = run(checked, ctx).value
    words = dict(zip(range(0, target.ctx_size, 4), struct.unpack(f"<{target.ctx_size // 4}I", ctx), strict=True))
    others = (checked.evaluate(ctx), compile_program(checked.program, budget=0, target=target)(ctx),
              evaluate(symbolic_result(checked, ExprAlgebra()), words))
    if others != (value,) * 3:
        raise FuzzError(f"interpreter {value}, fast/blocks/symbolic {others}")


executor_inputs: Final = st.builds(
    lambda t, seed: bytes([t]) + context(random.Random(seed), _TARGETS[t]) +
    valid_program(random.Random(seed), 40, _TARGETS[t]).to_bytes(),
    st.integers(0, 1), st.integers(0, 2**32))


def _emu_fields(data: bytes) -> None:
    """Input: a target byte, then ``NAME=VALUE`` lines, as ``emu --field`` gets them."""
    target = _TARGETS[data[0] & 1] if data else IOURING
    fields: dict[str, int | str] = {}
    for line in data[1:].decode("utf-8", "replace").splitlines():
        name, _, value = line.partition("=")
        fields[name.strip()] = value.strip()
    packed = seccomp.data_from_fields(fields).pack() if target is SECCOMP else ctx_from_fields(fields).pack()
    if len(packed) != target.ctx_size:
        raise FuzzError(f"context of {len(packed)} bytes")


_FIELD_NAMES: Final = ("user_data", "opcode", "sqe_flags", "pdu_size", "socket.family", "socket.type",
                       "connect.port", "connect.v4_addr", "connect.v6_addr", "open.flags", "nr", "arch", "args.0",
                       "instruction_pointer", "nosuch", "")
_FIELD_VALUES: Final = ("0", "-1", "70000", "2**64", "18446744073709551616", "FROB", "AF_INET", "O_CREAT|O_RDWR",
                        "O_CREAT|", "|", "1.2.3.4", "::1", "300.1.1.1", "0x", "SOCKET", "IOSQE_ASYNC",
                        "AUDIT_ARCH_X86_64", "__NR_io_uring_setup", "4294967296", "\x1b[2J", "")
emu_inputs: Final = st.builds(
    lambda t, rows: bytes([t]) + "\n".join(f"{n}={v}" for n, v in rows).encode(),
    st.integers(0, 1), st.lists(st.tuples(st.sampled_from(_FIELD_NAMES),
                                          st.one_of(st.sampled_from(_FIELD_VALUES), st.text(max_size=12))),
                                max_size=5))


def _printable(text: str) -> bool:
    return all(c.isprintable() or c in "\n" for c in text)


def _cli(data: bytes) -> None:
    """Input: a suffix byte, then file contents; ``check`` and ``disasm`` must exit 0, 2 or 3 with printable text."""
    suffix = (".asm", ".bpf", ".hex", "", ".s")[data[0] % 5] if data else ""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "in\x1b" + suffix)
        with open(path, "wb") as f:
            f.write(data[1:])
        _run_cli(path, ("check", "disasm"))


def _run_cli(path: str, commands: tuple[str, ...], codes: tuple[int, ...] = (0, 2, 3)) -> None:
    for command in commands:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_main.main([command, path])
        if code not in codes or not _printable(err.getvalue()) or "Traceback" in err.getvalue():
            raise FuzzError(f"{command}: exit {code}, stderr {err.getvalue()[:300]!r}")


def _files(data: bytes) -> None:
    """Input: a recipe for a hostile file (``fifo``, ``dir``, ``dev:/dev/zero``, ``sparse:SIZE``, ``link:...``);
    every command must refuse it quickly with exit 2 (cannot read) or 3 (too large)."""
    recipe = data.decode("utf-8", "replace").strip()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f")
        kind, _, arg = recipe.partition(":")
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            os.mkdir(path)
        elif kind == "dev" and arg in ("/dev/zero", "/dev/null", "/dev/urandom"):
            path = arg
        elif kind == "sparse" and arg.isdigit() and int(arg) <= 2**32:
            with open(path, "wb") as f:
                f.truncate(int(arg))
        elif kind == "link":
            os.symlink(arg or "/dev/zero", path)
        else:
            return
        _run_cli(path, ("check", "disasm", "asm", "emu"), codes=(2, 3) if kind != "link" else (0, 2, 3))


file_recipes: Final = st.one_of(
    st.sampled_from(("fifo", "dir", "dev:/dev/zero", "dev:/dev/null", "dev:/dev/urandom", "link:/dev/zero",
                     "link:/nonexistent", "sparse:52428800", "sparse:32769", "sparse:4194305")),
    st.builds(lambda n: f"sparse:{n}", st.integers(32769, 2**27)),
).map(str.encode)


register(Entry("asm", _assemble, asm_text, (AsmError, DecodeError), examples=2000))
register(Entry("raw", _decode("raw"), program_bytes, (DecodeError,), examples=800))
register(Entry("hex", _decode("hex"), st.one_of(st.binary(max_size=80), st.text("0123456789abcdefxX ,\n\t").map(
    str.encode)), (DecodeError,), examples=1000))
register(Entry("detect", _detected, st.one_of(program_bytes, asm_text), (DecodeError, AsmError), examples=1000))
register(Entry("disasm", _round_trip, program_bytes, examples=1000))
register(Entry("check", _checker, program_bytes, examples=2000))
register(Entry("exec", _executors, executor_inputs, examples=1000))
register(Entry("emu", _emu_fields, emu_inputs, (ValueError,), examples=1500))
register(Entry("cli", _cli, st.one_of(program_bytes, asm_text).map(lambda d: bytes([len(d) % 5]) + d), examples=400))
register(Entry("files", _files, file_recipes, examples=30, seconds=5.0))
