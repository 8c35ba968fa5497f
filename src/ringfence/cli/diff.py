"""``ringfence diff``: the requests whose verdict differs between two policies or programs, with witnesses."""

from __future__ import annotations

import argparse
from typing import Final

from ringfence.abi.profiles import DEFAULT_PROFILE, PROFILES, profile
from ringfence.cli.common import EXIT_CODES_HELP, EXIT_NO, EXIT_OK, add_json, print_json
from ringfence.cli.subjects import usage_error

NAME: Final = "diff"
SUMMARY: Final = "requests two policies or programs decide differently, each with a witness request (SMT)"
EPILOG: Final = f"""Each side is a policy (.toml or .json), compiled for --kernel and applied to the kernel model as
`ringfence run` would apply it, or a filter program (assembler, raw or hex; give --opcode, and the comparison is
about that opcode only). For every opcode on which the two differ, the solver finds a request the kernel can
build (submitted SQE flags and filter context) that one side allows and the other denies; the witness is
replayed on both sides with the interpreter before it is shown. Register opcodes are compared too.

--narrower-only asks one question: does B ever allow what A denies? Use it for nested sandboxes (B inside A)
and policy reviews in CI: exit 1 when B widens A, 0 when B is at most as wide.

examples:
  ringfence diff examples/policies/web-client.toml examples/policies/tcp-server.toml
  ringfence diff old.toml new.toml --narrower-only --json
  ringfence diff tests/corpus/programs/liburing_connect_allow_port.asm \\
      tests/corpus/programs/liburing_connect_deny_port.asm --opcode CONNECT

exit codes for diff: 0 the two agree on every request (with --narrower-only: B never allows what A denies),
1 they differ (B widens A).

kernels: {", ".join(PROFILES)} (default {DEFAULT_PROFILE})

""" + EXIT_CODES_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A", help="a policy file, or a program (asm, raw, hex)")
    parser.add_argument("b", metavar="B", help="a policy file, or a program (asm, raw, hex)")
    parser.add_argument("--opcode", help="for programs: the opcode they are attached to (compares only that opcode)")
    parser.add_argument("--kernel", default=DEFAULT_PROFILE, choices=tuple(PROFILES),
                        help=f"kernel profile to compile for and reason about (default {DEFAULT_PROFILE})")
    parser.add_argument("--narrower-only", action="store_true",
                        help="only report requests B allows and A denies; exit 1 if there is one")
    add_json(parser, '"differences": [...], "widens": ...')


def _side(path: str, opcode: str | None, kernel: str) -> object:
    from ringfence.bpf.check import check
    from ringfence.cli.subjects import read_subject
    from ringfence.policy.compile import compile_policy
    from ringfence.policy.prove import Side
    from ringfence.policy.replay import apply_variant

    subject = read_subject(NAME, path, opcode)
    prof = profile(kernel)
    if subject.policy is not None:
        compiled = compile_policy(subject.policy, prof)
        variant = compiled.plan.variants[0]
        return Side(path, apply_variant(variant, compiled.plan.target, prof, inherited=False))
    assert subject.program is not None and subject.opcode is not None
    return Side(path, program=check(subject.program), opcode=int(subject.opcode))


def run(args: argparse.Namespace) -> int:
    from ringfence.abi.opcodes import RegisterOp, op_name
    from ringfence.policy.prove import Side, differences

    try:
        a, b = _side(args.a, args.opcode, args.kernel), _side(args.b, args.opcode, args.kernel)
    except ValueError as e:
        return usage_error("ringfence diff", str(e), args.json)
    assert isinstance(a, Side) and isinstance(b, Side)
    for side in (a, b):
        if side.applied is not None and side.applied.error:
            return usage_error("ringfence diff", f"{side.label}: the kernel model refuses its Plan: "
                               f"{side.applied.error}", args.json)
    prof = profile(args.kernel)
    found = differences(a, b, prof, widening_only=args.narrower_only)
    widens = any(d.b_allows and not d.a_allows for d in found)
    rows = []
    for d in found:
        name = (RegisterOp(d.opcode).name if d.opcode < len(RegisterOp) else str(d.opcode)) if d.register \
            else op_name(d.opcode)
        row: dict[str, object] = {"kind": "register" if d.register else "sqe", "opcode": name,
                                  "a": "allow" if d.a_allows else "deny", "b": "allow" if d.b_allows else "deny"}
        if d.witness is not None:
            w = d.witness
            row.update(raw_flags=w.raw_flags, context=w.ctx.hex() if w.has_context else None, fields=w.fields())
        rows.append(row)
    failed = widens if args.narrower_only else bool(found)
    if args.json:
        print_json({"a": args.a, "b": args.b, "kernel": prof.name, "narrower_only": args.narrower_only,
                    "differences": rows, "widens": widens})
        return EXIT_NO if failed else EXIT_OK
    for d, row in zip(found, rows, strict=True):
        what = "register opcode " if d.register else ""
        verbs = {"allow": "allows", "deny": "denies"}
        print(f"{what}{row['opcode']}: A {verbs[str(row['a'])]}, B {verbs[str(row['b'])]}")
        if d.witness is not None:
            fields = d.witness.fields()
            for key, value in fields.items():
                if key not in ("opcode",):
                    print(f"  {key:<16} {value}")
            if d.witness.has_context:
                print(f"  context hex      {d.witness.ctx.hex()}")
    if args.narrower_only:
        print("B widens A" if widens else "B is at most as wide as A: it allows nothing A denies")
    elif not found:
        print("A and B decide every request the same way")
    else:
        print(f"{len(found)} difference{'s' if len(found) != 1 else ''}")
    return EXIT_NO if failed else EXIT_OK


__all__ = ["EPILOG", "NAME", "SUMMARY", "add_arguments", "run"]
