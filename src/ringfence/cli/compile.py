"""``ringfence compile``: a policy file to a Plan (classic restrictions plus cBPF filters) for one kernel."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

from ringfence.abi.opcodes import op_name
from ringfence.abi.profiles import DEFAULT_PROFILE, PROFILES, profile
from ringfence.cli.common import EXIT_CODES_HELP, EXIT_NO, EXIT_OK, EXIT_USAGE, add_root, check_root

NAME: Final = "compile"
SUMMARY: Final = "compile a policy to classic io_uring restrictions and cBPF filters (a Plan)"
FORMATS: Final = ("json", "c", "python", "asm", "raw")
EPILOG: Final = f"""The Plan lists every registration in the order `ringfence run` performs it. With --mechanism auto
(the default) it holds two variants: classic restrictions plus filters, and filters only (what a task that is
already sandboxed can still add), when the policy can be said with filters alone.

formats:
  json   the whole Plan (the input of `ringfence run --plan`)
  c      C for a liburing (or plain) program: every variant's records, filters and an apply function
  python a standard-library-only Python module with the same data as literals
  asm    each filter program as an assembly listing, with the rule each instruction belongs to
  raw    the program bytes of one opcode's filter (--opcode), for other tools

examples:
  ringfence compile examples/policies/web-client.toml --kernel 7.2 -o web-client.plan.json
  ringfence compile examples/policies/web-client.toml --format asm
  ringfence compile examples/policies/web-client.toml --format c -o web_client_sandbox.h
  ringfence compile policy.toml --mechanism filters --no-optimize
  ringfence compile policy.toml --prove -o policy.plan.json   (needs z3: pip install 'ringfence[prove]')
  ringfence compile corpus/policies/app.toml --root corpus    (`include` may reach anywhere in corpus/)

kernels: {", ".join(PROFILES)} (default {DEFAULT_PROFILE})

""" + EXIT_CODES_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("policy", metavar="POLICY", help="a policy file (.toml or .json)")
    parser.add_argument("--kernel", default=DEFAULT_PROFILE, choices=tuple(PROFILES),
                        help=f"kernel profile to compile for (default {DEFAULT_PROFILE})")
    parser.add_argument("--format", choices=FORMATS, default="json", help="output format (default json)")
    parser.add_argument("--target", choices=("task", "ring"), help="override the policy's target")
    parser.add_argument("--mechanism", choices=("auto", "classic", "filters"), default="auto",
                        help="which kernel mechanisms the Plan uses (default auto)")
    parser.add_argument("--no-optimize", dest="optimize", action="store_false",
                        help="emit the straightforward translation, for comparison")
    parser.add_argument("--strict-size", action="store_true",
                        help="register filters with SZ_STRICT: any payload-size difference refuses them")
    parser.add_argument("--prove", action="store_true",
                        help="prove the Plan means the policy and record the proof in it (needs z3); "
                             "exit 1 with a counterexample when it does not")
    parser.add_argument("--opcode", help="for --format raw: the opcode whose program to write")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    add_root(parser)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ringfence.bpf import disassemble
    from ringfence.policy.ast import TargetKind
    from ringfence.policy.compile import compile_policy
    from ringfence.policy.load import load

    check_root(args.root)
    policy = load(args.policy, root=args.root)
    if args.target:
        policy = dataclasses.replace(policy, target=TargetKind(args.target))
    compiled = compile_policy(policy, profile(args.kernel), mechanism=args.mechanism, optimized=args.optimize,
                              strict=args.strict_size)
    for finding in compiled.warnings:
        print(finding.render(), file=sys.stderr)
    if args.prove:
        from ringfence.policy import prove  # raises UnsupportedError (exit 5) without z3
        from ringfence.policy.evidence import NotProvenError

        try:
            compiled = prove.attach(compiled)
        except NotProvenError as exc:
            print(f"ringfence compile: {exc}", file=sys.stderr)
            return EXIT_NO
    if args.format in ("json", "c", "python"):
        from ringfence.policy.export import export, rule_reasons

        out: str | bytes = export(compiled.plan, args.format, reasons=rule_reasons(compiled.policy))
    elif args.format == "asm":
        parts = []
        for op, prog in sorted(compiled.programs.items()):
            parts.append(f"; {compiled.plan.policy}: {op_name(op)} filter ({', '.join(prog.rules)}), "
                         f"pdu_size {prog.pdu_size}\n" + disassemble(prog.built.program))
        out = "\n".join(parts) or "; no filters: classic restrictions say all of it\n"
    else:
        from ringfence.abi.opcodes import sqe_op

        if not args.opcode:
            print("ringfence compile: --format raw needs --opcode", file=sys.stderr)
            return EXIT_USAGE
        try:
            op = int(sqe_op(args.opcode))
        except ValueError as exc:
            print(f"ringfence compile: --opcode: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if op not in compiled.programs:
            print(f"ringfence compile: the Plan has no filter for {args.opcode}", file=sys.stderr)
            return EXIT_USAGE
        out = compiled.programs[op].built.program.to_bytes()
    if args.output:
        try:
            Path(args.output).write_bytes(out.encode() if isinstance(out, str) else out)
        except OSError as exc:
            print(f"ringfence compile: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
    elif isinstance(out, bytes):
        sys.stdout.buffer.write(out)
    else:
        sys.stdout.write(out)
    return EXIT_OK


__all__ = ["FORMATS", "NAME", "SUMMARY", "add_arguments", "run"]
