"""``ringfence emu``: run a filter over one context, as the kernel would for one request."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from typing import Final

from ringfence.abi import seccomp
from ringfence.abi.ctx import FIELDS_BY_NAME, ctx_from_fields
from ringfence.abi.profiles import DEFAULT_PROFILE, PROFILES, profile
from ringfence.bpf.check import check
from ringfence.bpf.formats import parse_hex
from ringfence.bpf.interp import RunResult, TraceStep
from ringfence.bpf.interp import run as run_program
from ringfence.bpf.printable import printable
from ringfence.bpf.target import SECCOMP, TARGETS
from ringfence.cli.check import INPUT_HELP, add_input_arguments, read_input
from ringfence.cli.common import EXIT_CODES_HELP, EXIT_NO, EXIT_OK, EXIT_USAGE
from ringfence.errors import DecodeError

NAME: Final = "emu"
SUMMARY: Final = "run a cBPF filter over one io_uring filter context"
_FIELDS_HELP: Final = textwrap.fill(
    "Context fields for --field NAME=VALUE (values: numbers, constant names such as AF_INET or O_CREAT|O_RDWR, "
    f"addresses for connect.v4_addr and connect.v6_addr): {', '.join(FIELDS_BY_NAME)}. With --target seccomp: "
    f"{', '.join(seccomp.FIELDS_BY_NAME)} (arch defaults to AUDIT_ARCH_X86_64). Every value must fit its field; "
    "negative values are refused.", width=100)
EPILOG: Final = f"""{_FIELDS_HELP}
pdu_size is set from the opcode with the kernel's payload size (--kernel, default {DEFAULT_PROFILE})
unless given as a field. The program is checked first; a refused program exits 3.
{INPUT_HELP}

examples:
  ringfence emu allow_inet_only.asm --field opcode=SOCKET --field socket.family=AF_INET --expect allow
  ringfence emu connect_deny_port.asm --field opcode=CONNECT --field connect.family=AF_INET \\
      --field connect.port=22 --trace
  ringfence emu filter.bpf --ctx-hex 0000000000000000120000... --json
  ringfence emu sandbox.asm --target seccomp --field nr=__NR_io_uring_setup

""" + EXIT_CODES_HELP


def _field(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {printable(text)!r}")
    return name.strip(), value.strip()


class _DeprecatedProfile(argparse.Action):
    """``--profile``: the earlier name of ``--kernel``; still accepted, with a warning."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[object] | None, option_string: str | None = None) -> None:
        print("ringfence emu: --profile is deprecated; use --kernel", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--field", action="append", type=_field, default=[], metavar="NAME=VALUE",
                        help="set one context field (repeatable); unset fields are 0")
    source.add_argument("--ctx-hex", metavar="HEX", help="the whole context as hex (40 bytes; 64 for seccomp)")
    parser.add_argument("--kernel", choices=tuple(PROFILES), default=DEFAULT_PROFILE,
                        help=f"kernel whose payload sizes set pdu_size (default {DEFAULT_PROFILE})")
    parser.add_argument("--profile", choices=tuple(PROFILES), dest="kernel", action=_DeprecatedProfile,
                        help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help="print A, X and written scratch slots per step")
    parser.add_argument("--expect", choices=("allow", "deny"), help="exit 1 unless the verdict is this")
    parser.add_argument("--json", action="store_true", help='print {"schema": 1, "verdict": ..., ...}')


def build_ctx(args: argparse.Namespace) -> bytes:
    """The context bytes from --ctx-hex or --field; raises ValueError (naming the field) on bad input."""
    target = TARGETS[args.target]
    if args.ctx_hex is not None:
        data = parse_hex(args.ctx_hex, filename="--ctx-hex")
        if len(data) != target.ctx_size:
            raise ValueError(f"--ctx-hex must give {target.ctx_size} bytes, not {len(data)}")
        return data
    fields: dict[str, int | str] = dict(args.field)
    if target is SECCOMP:
        return seccomp.data_from_fields(fields).pack()
    if "pdu_size" not in fields and "opcode" in fields:
        opcode = ctx_from_fields({"opcode": fields["opcode"]}).opcode  # validated before use
        fields["pdu_size"] = profile(args.kernel).pdu_size(opcode)
    return ctx_from_fields(fields).pack()


def _step_json(step: TraceStep) -> dict[str, object]:
    return {"pc": step.pc, "text": step.text, "a": step.a, "x": step.x,
            "mem": {str(k): v for k, v in step.mem}, "result": step.result}


def result(res: RunResult, ctx: bytes, expect: str | None) -> dict[str, object]:
    verdict = "allow" if res.allowed else "deny"
    return {"schema": 1, "verdict": verdict, "allowed": res.allowed, "value": res.value,
            "meaning": None if res.verdict is None else res.verdict.text, "steps": res.steps,
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
    meaning = "" if res.verdict is None or res.verdict.text in ("allow", "deny") else f" ({res.verdict.text})"
    lines += [f"verdict: {'allow' if res.allowed else 'deny'}{meaning}", f"return:  {res.value} ({res.value:#x})",
              f"steps:   {res.steps}", f"reads:   {' '.join(map(str, res.reads)) or '-'}"]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    try:
        ctx = build_ctx(args)
    except (ValueError, DecodeError) as exc:
        print(f"ringfence emu: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    program = read_input(NAME, args.file, args.input, target=args.target)
    checked = check(program, TARGETS[args.target], dead_code_rewrite=args.dead_code_rewrite)
    res = run_program(checked, ctx, trace=args.trace)
    verdict = "allow" if res.allowed else "deny"
    if args.json:
        sys.stdout.write(json.dumps(result(res, ctx, args.expect), indent=2) + "\n")
    else:
        sys.stdout.write(_human(res))
    if args.expect and args.expect != verdict:
        print(f"ringfence emu: expected {args.expect}, got {verdict}", file=sys.stderr)
        return EXIT_NO
    return EXIT_OK
