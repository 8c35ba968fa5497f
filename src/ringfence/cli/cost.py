"""``ringfence cost``: instructions a filter executes, exactly, per opcode: worst path, mean over the input
classes, and program length, for the straightforward and the optimized compile, next to a lower bound."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Final

from ringfence.abi.opcodes import op_name
from ringfence.abi.profiles import DEFAULT_PROFILE, PROFILES, profile
from ringfence.cli.common import EXIT_CODES_HELP, EXIT_OK, EXIT_USAGE, add_root, check_root, usage

NAME: Final = "cost"
SUMMARY: Final = "instructions a policy's filters (or one program) execute: worst, mean and length, exactly"
EPILOG: Final = f"""For a policy (.toml or .json): one row per opcode that gets a filter, with the straightforward
compile (--no-optimize), the optimized compile, and a lower bound no program over the policy's tests can beat.
For a program (assembler, raw bytes or hex, with --opcode): its own numbers.

worst is the most instructions any request executes; mean is the average over the input classes (requests the
tests cannot tell apart form one class; every class weighs the same unless --weight says otherwise); length is
the program's size. Nothing is sampled.

examples:
  ringfence cost examples/policies/web-client.toml
  ringfence cost examples/policies/web-client.toml --weight socket.family=AF_INET:10 --json
  ringfence cost tests/corpus/programs/liburing_connect_allow_port.asm --opcode CONNECT

kernels: {", ".join(PROFILES)} (default {DEFAULT_PROFILE})

""" + EXIT_CODES_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="POLICY|PROGRAM", help="a policy file, or a program (asm, raw, hex)")
    parser.add_argument("--opcode", help="for a program: the opcode it is attached to")
    parser.add_argument("--kernel", default=DEFAULT_PROFILE, choices=tuple(PROFILES),
                        help=f"kernel profile to compile for (default {DEFAULT_PROFILE})")
    parser.add_argument("--weight", action="append", default=[], metavar="FIELD=VALUE:WEIGHT",
                        help="a frequency weight for one value of a number or port field (repeatable), e.g. "
                             "socket.family=AF_INET:10; the optimizer favours it and the mean counts it")
    parser.add_argument("--no-bound", dest="bound", action="store_false", help="skip the lower-bound search")
    parser.add_argument("--json", action="store_true", help='print {"schema": 1, ...}')
    add_root(parser)


def _weights(specs: list[str]) -> dict[str, dict[int, float]]:
    from ringfence.abi.ctx import parse_constant
    from ringfence.policy.fields import FIELDS

    out: dict[str, dict[int, float]] = {}
    for spec in specs:
        name, _, rest = spec.partition("=")
        value, _, weight = rest.rpartition(":")
        if not name or not value or not weight:
            raise ValueError(f"--weight {spec!r}: write FIELD=VALUE:WEIGHT")
        f = FIELDS.get(name)
        if f is None:
            raise ValueError(f"--weight {spec!r}: no field {name!r}")
        number = f.names[value] if value in f.names else parse_constant(value)
        if not 0 <= number <= f.limit:
            raise ValueError(f"--weight {spec!r}: {value} is out of range for {name}")
        try:
            w = float(weight)
        except ValueError:
            raise ValueError(f"--weight {spec!r}: {weight!r} is not a number") from None
        if not 0 < w <= 1e9:  # also refuses nan and inf
            raise ValueError(f"--weight {spec!r}: a weight is a positive number up to 1e9")
        out.setdefault(name, {})[number] = w
    return out


def _row(c: object) -> dict[str, object]:
    from ringfence.policy.cost import Cost

    assert isinstance(c, Cost)
    return {"worst": c.worst, "mean": round(c.mean, 4), "length": c.length}


def run(args: argparse.Namespace) -> int:
    from ringfence.policy.cost import field_weights

    try:
        named = _weights(args.weight)
        field_weights(named)  # refuses fields a weight cannot name
    except ValueError as e:
        return usage("ringfence cost", str(e), as_json=args.json)
    if args.file.endswith((".toml", ".json")):
        if args.opcode:
            return usage("ringfence cost", "--opcode is for a program; a policy names its own opcodes",
                         as_json=args.json)
        return _policy(args, named)
    return _program(args, field_weights(named))


def _policy(args: argparse.Namespace, weights: dict[str, dict[int, float]]) -> int:
    from ringfence.policy.cost_table import policy_costs
    from ringfence.policy.load import load

    check_root(args.root)
    policy = load(args.file, root=args.root)
    table = policy_costs(policy, profile(args.kernel), weights=weights, bound=args.bound)
    if args.json:
        rows = [{"opcode": op_name(op), "classes": c.unoptimized.classes, "unoptimized": _row(c.unoptimized),
                 "optimized": _row(c.optimized),
                 "bound": None if c.bound is None else {"worst": c.bound.worst, "mean": round(c.bound.mean, 4)},
                 **({"no_bound": c.no_bound} if c.bound is None else {})}
                for op, c in table.items()]
        out = {"schema": 1, "policy": policy.name, "kernel": args.kernel, "opcodes": rows}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return EXIT_OK
    if not table:
        sys.stdout.write(f"{policy.name}: no filters (classic restrictions say all of it, at no cost per request)\n")
        return EXIT_OK
    head = f"{'opcode':<12}{'classes':>8}  {'unoptimized':>17}  {'optimized':>17}  {'bound':>12}"
    sub = f"{'':<12}{'':>8}  {'worst  mean  len':>17}  {'worst  mean  len':>17}  {'worst  mean':>12}"
    lines = [f"{policy.name} on kernel {args.kernel}: instructions executed per request", head, sub]
    notes = []
    for op, c in table.items():
        u, o = c.unoptimized, c.optimized
        bound = "   no bound" if c.bound is None else f"{c.bound.worst:>5} {c.bound.mean:>6.2f}"
        if c.bound is None:
            notes.append(f"  {op_name(op)}: no bound: {c.no_bound}")
        lines.append(f"{op_name(op):<12}{u.classes:>8}  {u.worst:>5} {u.mean:>6.2f} {u.length:>4}  "
                     f"{o.worst:>5} {o.mean:>6.2f} {o.length:>4}  {bound:>12}")
    sys.stdout.write("\n".join(lines + notes) + "\n")
    return EXIT_OK


def _program(args: argparse.Namespace, weights: dict[int, dict[int, float]]) -> int:
    from ringfence.abi.opcodes import sqe_op
    from ringfence.cli.check import read_input
    from ringfence.policy.cost import cost
    from ringfence.policy.lift import LiftError

    if not args.opcode:
        return usage("ringfence cost", "a program needs --opcode (the opcode it is attached to)", as_json=args.json)
    try:
        op = sqe_op(args.opcode)
    except ValueError as e:
        return usage("ringfence cost", str(e), as_json=args.json)
    program = read_input(NAME, args.file, None)
    if program is None:
        return EXIT_USAGE
    try:
        c = cost(program, None, weights)
    except LiftError as e:
        return usage("ringfence cost", f"the program is not a decision over context words ({e})",
                     as_json=args.json)
    if args.json:
        out = {"schema": 1, "opcode": op.name, "classes": c.classes, **_row(c)}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        sys.stdout.write(f"{op.name}: worst {c.worst}, mean {c.mean:.2f} over {c.classes} input classes, "
                         f"length {c.length}\n")
    return EXIT_OK


__all__ = ["NAME", "SUMMARY", "add_arguments", "run"]
