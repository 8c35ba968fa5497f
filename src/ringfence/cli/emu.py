"""``ringfence emu``: run a filter over one context, as the kernel would for one request (spec §5.6)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Final

from ringfence.abi.ctx import FIELDS_BY_NAME, ctx_from_fields, parse_constant
from ringfence.abi.profiles import DEFAULT_PROFILE, PROFILES, profile
from ringfence.bpf.check import check
from ringfence.bpf.formats import parse_hex, read_program
from ringfence.bpf.interp import RunResult, TraceStep
from ringfence.bpf.interp import run as run_program
from ringfence.cli.check import add_input_arguments
from ringfence.cli.main import EXIT_CODES_HELP, EXIT_NO, EXIT_OK, EXIT_USAGE
from ringfence.errors import DecodeError

NAME: Final = "emu"
SUMMARY: Final = "run a cBPF filter over one io_uring filter context"
_FIELDS_HELP: Final = textwrap.fill(
    "Context fields for --field NAME=VALUE (values: numbers, constant names such as AF_INET or O_CREAT|O_RDWR, "
    f"addresses for connect.v4_addr and connect.v6_addr): {', '.join(FIELDS_BY_NAME)}.", width=100)
EPILOG: Final = f"""{_FIELDS_HELP}
pdu_size is set from the opcode with the kernel profile's payload size (--profile, default {DEFAULT_PROFILE})
unless given as a field. The program is checked first; a refused program exits 3.

examples:
  ringfence emu allow_inet_only.asm --field opcode=SOCKET --field socket.family=AF_INET --expect allow
  ringfence emu connect_deny_port.asm --field opcode=CONNECT --field connect.family=AF_INET \\
      --field connect.port=22 --trace
  ringfence emu filter.bpf --ctx-hex 0000000000000000120000... --json

""" + EXIT_CODES_HELP


def _field(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name.strip(), value.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--field", action="append", type=_field, default=[], metavar="NAME=VALUE",
                        help="set one context field (repeatable); unset fields are 0")
    source.add_argument("--ctx-hex", metavar="HEX", help="the whole 40-byte context as hex")
    parser.add_argument("--profile", choices=tuple(PROFILES), default=DEFAULT_PROFILE,
                        help=f"kernel profile for pdu_size (default {DEFAULT_PROFILE})")
    parser.add_argument("--trace", action="store_true", help="print A, X and written scratch slots per step")
    parser.add_argument("--expect", choices=("allow", "deny"), help="exit 1 unless the verdict is this")
    parser.add_argument("--json", action="store_true", help='print {"schema": 1, "verdict": ..., ...}')


def build_ctx(args: argparse.Namespace) -> bytes:
    """The context bytes from --ctx-hex or --field; raises ValueError on bad input."""
    if args.ctx_hex is not None:
        data = parse_hex(args.ctx_hex)
        if len(data) != 40:
            raise ValueError(f"--ctx-hex must give 40 bytes, not {len(data)}")
        return data
    fields: dict[str, int | str] = dict(args.field)
    if "pdu_size" not in fields:
        fields["pdu_size"] = profile(args.profile).pdu_size(parse_constant(fields.get("opcode", 0)) & 0xFF)
    return ctx_from_fields(fields).pack()


def _step_json(step: TraceStep) -> dict[str, object]:
    return {"pc": step.pc, "text": step.text, "a": step.a, "x": step.x,
            "mem": {str(k): v for k, v in step.mem}, "result": step.result}


def result(res: RunResult, ctx: bytes, expect: str | None) -> dict[str, object]:
    verdict = "allow" if res.allowed else "deny"
    return {"schema": 1, "verdict": verdict, "allowed": res.allowed, "value": res.value, "steps": res.steps,
            "reads": list(res.reads), "ctx": ctx.hex(), "expect": expect,
            "matched": None if expect is None else expect == verdict,
            "trace": None if res.trace is None else [_step_json(s) for s in res.trace]}


def _human(res: RunResult) -> str:
    lines = []
    if res.trace is not None:
        lines.append(f"{'pc':>5}  {'instruction':<30}{'A':<12}{'X':<12}written")
        for s in res.trace:
            mem = " ".join(f"M[{k}]={v:#x}" for k, v in s.mem)
            lines.append(f"{s.pc:>5}  {s.text:<30}{s.a:#010x}  {s.x:#010x}  {mem}".rstrip())
    lines += [f"verdict: {'allow' if res.allowed else 'deny'}", f"return:  {res.value} ({res.value:#x})",
              f"steps:   {res.steps}", f"reads:   {' '.join(map(str, res.reads)) or '-'}"]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    try:
        ctx = build_ctx(args)
    except (ValueError, DecodeError, KeyError) as exc:
        print(f"ringfence emu: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        program = read_program(args.file, args.input)
    except OSError as exc:
        print(f"ringfence emu: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    res = run_program(check(program, dead_code_rewrite=args.dead_code_rewrite), ctx, trace=args.trace)
    verdict = "allow" if res.allowed else "deny"
    if args.json:
        sys.stdout.write(json.dumps(result(res, ctx, args.expect), indent=2) + "\n")
    else:
        sys.stdout.write(_human(res))
    if args.expect and args.expect != verdict:
        print(f"ringfence emu: expected {args.expect}, got {verdict}", file=sys.stderr)
        return EXIT_NO
    return EXIT_OK
