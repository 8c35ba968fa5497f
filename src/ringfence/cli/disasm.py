"""``ringfence disasm``: list a filter given as raw ``sock_filter`` bytes or hex text."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Final

from ringfence.bpf.disasm import LISTING_FORMAT, disassemble, disassembly
from ringfence.bpf.insn import Program
from ringfence.cli.check import INPUT_HELP, read_input
from ringfence.cli.common import EXIT_CODES_HELP, EXIT_OK

NAME: Final = "disasm"
SUMMARY: Final = "disassemble a cBPF filter into reassemblable text"
EPILOG: Final = f"""{INPUT_HELP}

examples:
  ringfence disasm filter.bpf                  raw bytes (by extension)
  ringfence asm f.asm | ringfence disasm -     hex text (detected)
  ringfence disasm filter.bin --format raw --no-annotate

""" + EXIT_CODES_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="program as raw bytes or hex text, or - for standard input")
    parser.add_argument("--format", choices=("raw", "hex"), default=None,
                        help="input format (default: by extension .bpf/.bin/.hex, else detected)")
    parser.add_argument("--no-annotate", dest="annotate", action="store_false",
                        help="no header and no comments: just the instructions")
    parser.add_argument("--json", action="store_true", help='print {"schema": 1, ...} with listing and lines')


def result(program: Program, *, annotate: bool = True) -> dict[str, object]:
    return {
        "schema": 1, "listing_format": LISTING_FORMAT, "length": len(program),
        "listing": disassemble(program, annotate=annotate),
        "lines": [{"pc": line.pc, "label": line.label, "code": line.insn.code, "jt": line.insn.jt,
                   "jf": line.insn.jf, "k": line.insn.k, "mnemonic": line.mnemonic, "operands": line.operands,
                   "note": line.note} for line in disassembly(program)],
    }


def run(args: argparse.Namespace) -> int:
    program = read_input(NAME, args.file, args.format, ("raw", "hex"))
    if args.json:
        sys.stdout.write(json.dumps(result(program, annotate=args.annotate), indent=2) + "\n")
    else:
        sys.stdout.write(disassemble(program, annotate=args.annotate))
    return EXIT_OK
