"""``ringfence audit``: what a policy, or one filter program, leaves open, with a severity per finding."""

from __future__ import annotations

import argparse
from typing import Final

from ringfence.abi.profiles import DEFAULT_PROFILE, PROFILES, profile
from ringfence.cli.common import EXIT_CODES_HELP, EXIT_NO, EXIT_OK, add_json, print_json, report
from ringfence.cli.subjects import usage_error
from ringfence.errors import PolicyError

NAME: Final = "audit"
SUMMARY: Final = "what a policy or filter program leaves open: findings with severities"
EPILOG: Final = f"""For a policy (.toml or .json): no default deny, URING_CMD allowed, an opcode restricted while an
equivalent one is not (OPENAT and OPENAT2, SEND and SENDMSG, READ and READV, ...; the table is
src/ringfence/abi/opinfo.py), CONNECT restricted while SOCKET or addressed sends are not, unrestricted SQE flags
and register opcodes, routes that widen the fixed file table (FILES_UPDATE, FIXED_FD_INSTALL, MSG_RING,
REGISTER_PERSONALITY, direct descriptors), and the compiler's own warnings (user_data predicates, fields the
minimum kernel does not fill, rules that never match or change nothing).
For a program (assembler, raw bytes or hex, with --opcode): what can be told from its bytes alone.

severities: high, medium, low, info. The exit code is 1 when a finding is at or above --fail-on (default high).

examples:
  ringfence audit examples/policies/web-client.toml
  ringfence audit examples/policies/web-client.toml --fail-on medium --json
  ringfence audit tests/corpus/programs/liburing_deny_openat_creat.asm --opcode OPENAT --kernel 7.2

kernels: {", ".join(PROFILES)} (default {DEFAULT_PROFILE})

""" + EXIT_CODES_HELP
_LEVELS: Final = ("high", "medium", "low", "info", "none")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="POLICY|PROGRAM", help="a policy file, or a program (asm, raw, hex)")
    parser.add_argument("--opcode", help="for a program: the opcode it is attached to")
    parser.add_argument("--kernel", default=DEFAULT_PROFILE, choices=tuple(PROFILES),
                        help=f"kernel profile (default {DEFAULT_PROFILE})")
    parser.add_argument("--fail-on", choices=_LEVELS, default="high",
                        help="exit 1 when a finding is at least this severe (default high; none: never)")
    add_json(parser, '"findings": [...], "counts": {...}')


def run(args: argparse.Namespace) -> int:
    from ringfence.cli.subjects import read_subject
    from ringfence.policy.audit import Severity, audit_policy, audit_program

    prof = profile(args.kernel)
    try:
        subject = read_subject(NAME, args.file, args.opcode)
    except ValueError as e:
        return usage_error("ringfence audit", str(e), args.json)
    if subject.policy is not None:
        if args.opcode:
            return usage_error("ringfence audit", "--opcode is for a program; a policy names its own opcodes",
                               args.json)
        if prof.version < subject.policy.kernel:  # as compile and verify refuse it
            return report("ringfence audit", PolicyError(f"the policy is written for kernels "
                                                         f"{subject.policy.kernel_spec}; {prof.name} is older"),
                          as_json=args.json)
        found = audit_policy(subject.policy, prof)
        about: dict[str, object] = {"policy": subject.policy.name}
    else:
        assert subject.program is not None and subject.opcode is not None
        found = audit_program(subject.program, int(subject.opcode), prof, args.file)
        about = {"program": args.file, "opcode": subject.opcode.name}
    counts = {s.label: sum(1 for f in found if f.severity is s) for s in reversed(Severity)}
    failed = args.fail_on != "none" and any(f.severity >= Severity[args.fail_on.upper()] for f in found)
    if args.json:
        print_json({**about, "kernel": prof.name, "findings": [f.to_json() for f in found], "counts": counts,
                    "fail_on": args.fail_on, "failed": failed})
    else:
        for f in found:
            print(f.render())
        summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no findings"
        print(f"{subject.label}: {summary}")
    return EXIT_NO if failed else EXIT_OK


__all__ = ["EPILOG", "NAME", "SUMMARY", "add_arguments", "run"]
