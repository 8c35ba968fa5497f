"""``ringfence asm``: assemble a filter into raw bytes, hex, a C array or a Python list."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Final

from ringfence.bpf.formats import to_c, to_hex, to_python
from ringfence.bpf.insn import Program
from ringfence.bpf.printable import printable
from ringfence.cli.check import INPUT_HELP, add_target_argument, read_input
from ringfence.cli.common import EXIT_CODES_HELP, EXIT_OK, EXIT_USAGE

NAME: Final = "asm"
SUMMARY: Final = "assemble a cBPF filter (syntax: docs/asm.md)"
EPILOG: Final = f"""{INPUT_HELP}

examples:
  ringfence asm deny_nop.asm                   hex, one instruction per line
  ringfence asm policy.asm -o policy.bpf       raw sock_filter bytes
  ringfence asm policy.asm --format c          a C array for liburing
  ringfence asm sandbox.asm --target seccomp   seccomp_data field names ([nr], [arch], [args.0])
  echo 'ret #0' | ringfence asm - --json

""" + EXIT_CODES_HELP

FORMATS: Final = ("raw", "hex", "c", "python")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="assembler source, or - for standard input")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="output format (default: raw with -o, hex on standard output)")
    parser.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of standard output")
    parser.add_argument("--json", action="store_true", help='print {"schema": 1, ...} with the instructions')
    add_target_argument(parser)


def result(program: Program) -> dict[str, object]:
    return {"schema": 1, "length": len(program), "hex": program.to_bytes().hex(),
            "instructions": [[i.code, i.jt, i.jf, i.k] for i in program]}


def run(args: argparse.Namespace) -> int:
    program = read_input(NAME, args.file, "asm", target=args.target)
    fmt = "json" if args.json else args.format or ("raw" if args.output else "hex")
    if fmt == "raw":
        data: bytes | str = program.to_bytes()
    elif fmt == "json":
        data = json.dumps(result(program), indent=2) + "\n"
    else:
        data = {"hex": to_hex, "c": to_c, "python": to_python}[fmt](program)
    if args.output:
        try:
            with open(args.output, "wb") as f:
                f.write(data if isinstance(data, bytes) else data.encode())
        except OSError as exc:
            print(f"ringfence asm: cannot write {printable(args.output)}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    elif isinstance(data, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(data)
    return EXIT_OK
