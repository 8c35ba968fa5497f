"""``ringfence check``: would the kernel accept this program as an io_uring filter? (spec §5.5)"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Final

from ringfence.bpf.check import Diagnostic, diagnose
from ringfence.bpf.formats import INPUT_FORMATS, read_program
from ringfence.cli.main import EXIT_CODES_HELP, EXIT_INVALID, EXIT_OK, EXIT_USAGE

NAME: Final = "check"
SUMMARY: Final = "check a cBPF filter against the kernel's rules"
EPILOG: Final = """The verdict and every reason (pc, stage, rule, message) are the output: standard output.
Stage 1 is the length check, stage 2 the generic classic-BPF checker, stage 3 io_uring's whitelist;
the first reason listed is the one the kernel stops at. Every refusal is EINVAL.

examples:
  ringfence check policy.asm
  ringfence check filter.bpf --json
  ringfence check policy.asm --dead-code-rewrite     model the unconfirmed April-2025 proposal

""" + EXIT_CODES_HELP


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """FILE and --input, shared with ``emu``."""
    parser.add_argument("file", metavar="FILE", help="program: assembler source, raw bytes or hex; - for stdin")
    parser.add_argument("--input", choices=INPUT_FORMATS, default=None,
                        help="input format (default: by extension .asm/.bpf/.hex, else detected)")
    parser.add_argument("--dead-code-rewrite", action="store_true",
                        help="assume the kernel rewrites unreachable instructions before the io_uring whitelist "
                             "(unconfirmed; spec §10.2 q4)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--json", action="store_true", help='print {"schema": 1, "accepted": ..., ...}')


def diagnostic_json(d: Diagnostic) -> dict[str, object]:
    return {"pc": d.pc, "stage": d.stage, "rule": d.rule.value, "errno": d.errno_name, "message": d.message}


def run(args: argparse.Namespace) -> int:
    try:
        program = read_program(args.file, args.input)
    except OSError as exc:
        print(f"ringfence check: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    found = diagnose(program, dead_code_rewrite=args.dead_code_rewrite)
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
