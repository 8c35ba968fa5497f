"""``ringfence check``: would the kernel accept this program as an io_uring (or seccomp) filter?"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Final

from ringfence.bpf.check import Diagnostic, diagnose
from ringfence.bpf.formats import INPUT_FORMATS, MAX_INPUT_BYTES, InputFormat, read_program
from ringfence.bpf.insn import Program
from ringfence.bpf.printable import printable
from ringfence.bpf.target import TARGETS
from ringfence.cli.common import EXIT_CODES_HELP, EXIT_INVALID, EXIT_OK
from ringfence.errors import UnreadableError

NAME: Final = "check"
SUMMARY: Final = "check a cBPF filter against the kernel's rules"
def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n % 2**20 == 0 else f"{n // 1024} KiB"


INPUT_HELP: Final = textwrap.fill(
    f"Input is read only from regular files or standard input, and at most {_size(MAX_INPUT_BYTES['raw'])} raw, "
    f"{_size(MAX_INPUT_BYTES['hex'])} hex or {_size(MAX_INPUT_BYTES['asm'])} of assembler text (room for 4096 "
    "instructions).", width=100)
EPILOG: Final = f"""The verdict and every reason (pc, stage, rule, message) are the output: standard output.
Stage 1 is the length check, stage 2 the generic classic-BPF checker, stage 3 the target's whitelist
(io_uring's, or seccomp's with --target seccomp); the first reason listed is the one the kernel stops
at. Every refusal is EINVAL.
{INPUT_HELP}

examples:
  ringfence check policy.asm
  ringfence check filter.bpf --json
  ringfence check policy.asm --dead-code-rewrite     model the unconfirmed April-2025 proposal
  ringfence check sandbox.asm --target seccomp       as a seccomp filter (64-byte seccomp_data)

""" + EXIT_CODES_HELP


def add_target_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=tuple(TARGETS), default="io_uring",
                        help="program type: its context, field names and rules (default io_uring)")


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """FILE, --input, --target and --dead-code-rewrite, shared with ``emu``."""
    parser.add_argument("file", metavar="FILE", help="program: assembler source, raw bytes or hex; - for stdin")
    parser.add_argument("--input", choices=INPUT_FORMATS, default=None,
                        help="input format (default: by extension .asm/.bpf/.hex, else detected)")
    add_target_argument(parser)
    parser.add_argument("--dead-code-rewrite", action="store_true",
                        help="assume the kernel rewrites unreachable instructions before the whitelist "
                             "(an unconfirmed proposal)")


def read_input(command: str, path: str, kind: InputFormat | None,
               allowed: tuple[InputFormat, ...] = INPUT_FORMATS, target: str = "io_uring") -> Program:
    """The program in ``path``; :class:`~ringfence.errors.UnreadableError` (a usage error, exit 2) if the file
    cannot be read at all.

    Invalid content raises (:class:`~ringfence.errors.DecodeError`, :class:`~ringfence.errors.AsmError`):
    the command line reports it with its position and exit code 3.
    """
    try:
        return read_program(path, kind, allowed, target=TARGETS[target])
    except OSError as exc:
        raise UnreadableError(f"cannot read: {printable(exc.strerror or str(exc))}", file=printable(path)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--json", action="store_true", help='print {"schema": 1, "accepted": ..., ...}')


def diagnostic_json(d: Diagnostic) -> dict[str, object]:
    return {"pc": d.pc, "stage": d.stage, "rule": d.rule.value, "errno": d.errno_name, "message": d.message}


def run(args: argparse.Namespace) -> int:
    program = read_input(NAME, args.file, args.input, target=args.target)
    found = diagnose(program, TARGETS[args.target], dead_code_rewrite=args.dead_code_rewrite)
    if args.json:
        out = {"schema": 1, "accepted": not found, "errno": found[0].errno_name if found else None,
               "length": len(program), "diagnostics": [diagnostic_json(d) for d in found]}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    elif not found:
        sys.stdout.write(f"accepted: {len(program)} instruction{'s' if len(program) != 1 else ''}\n")
    else:
        sys.stdout.write(f"rejected ({found[0].errno_name}): {len(found)} problem{'s' if len(found) != 1 else ''}\n")
        for d in found:
            where = "program" if d.pc < 0 else f"pc {d.pc}"
            sys.stdout.write(f"  {where}: stage {d.stage} {d.rule.value}: {d.message}\n")
    return EXIT_INVALID if found else EXIT_OK
