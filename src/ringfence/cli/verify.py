"""``ringfence verify``: compile a policy and prove that the Plan allows exactly what the policy allows."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, Final

from ringfence.abi.profiles import DEFAULT_PROFILE, PROFILES, profile
from ringfence.bpf.insn import Program
from ringfence.cli.common import EXIT_NO, EXIT_OK, add_root, check_root
from ringfence.policy import cost

NAME: Final = "verify"
SUMMARY: Final = "compile a policy and prove the Plan means it (needs z3: pip install 'ringfence[prove]')"
EPILOG: Final = f"""Every filter program is decoded from the Plan's bytes and compared, with the z3 solver, against the
policy's rules for its opcode, over every context the kernel can build (the named assumptions listed in the
output say what "can build" means; each is checked on real kernels by the test suite). Each variant is then
proven as a whole: classic restrictions on the flags as submitted, filter chains on the context, DENY_REST, and
the register allow-list. A disagreement prints a counterexample with a `ringfence emu` command that replays it.

examples:
  ringfence verify examples/policies/web-client.toml
  ringfence verify policy.toml --kernel 7.0 --mechanism filters
  ringfence verify policy.toml --json | jq .result

kernels: {", ".join(PROFILES)} (default {DEFAULT_PROFILE})

exit codes:
  0  proven: the Plan allows exactly what the policy allows
  1  not proven: a counterexample (or the solver gave up) is printed
  2  usage error, or a policy file that cannot be read (missing, a directory, a FIFO)
  3  invalid policy (or a policy this kernel cannot express), with its position
  5  the z3 solver is not installed
"""

#: The cost table's columns: a header and a function of one filter program (length, then the exact worst-case
#: and mean instructions executed and the number of input classes, from ``policy/cost.py``).
CostColumn = tuple[str, Callable[[Program], str]]
COST_COLUMNS: Final[tuple[CostColumn, ...]] = (("instructions", lambda p: str(len(p))), *cost.COST_COLUMNS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("policy", metavar="POLICY", help="a policy file (.toml or .json)")
    parser.add_argument("--kernel", default=DEFAULT_PROFILE, choices=tuple(PROFILES),
                        help=f"kernel profile to compile for (default {DEFAULT_PROFILE})")
    parser.add_argument("--mechanism", choices=("auto", "classic", "filters"), default="auto",
                        help="which kernel mechanisms the Plan uses (default auto)")
    parser.add_argument("--no-optimize", dest="optimize", action="store_false",
                        help="prove the straightforward translation instead of the optimized one")
    parser.add_argument("--json", action="store_true", help='print {"schema": 1, "result": ..., ...}')
    add_root(parser)


def _cost(plan: Any) -> list[dict[str, str]]:
    from ringfence.policy.evidence import op_name

    rows = []
    for variant in plan.variants:
        for reg in variant.registrations:
            if reg.filter is not None:
                program = Program.from_bytes(reg.filter.program)
                rows.append({"variant": variant.mechanism, "opcode": op_name(reg.filter.opcode),
                             "pdu_size": str(reg.filter.pdu_size),
                             **{header: fn(program) for header, fn in COST_COLUMNS}})
    return rows


def _table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return ""
    headers = list(rows[0])
    widths = [max(len(h), *(len(r[h]) for r in rows)) for h in headers]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(r[h].ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from ringfence.policy.compile import compile_policy
    from ringfence.policy.load import load

    check_root(args.root)
    policy = load(args.policy, root=args.root)
    kernel = profile(args.kernel)
    compiled = compile_policy(policy, kernel, mechanism=args.mechanism, optimized=args.optimize)
    from ringfence.policy import prove  # raises UnsupportedError (exit 5) without z3
    from ringfence.policy.assumptions import BY_ID

    report = prove.prove(compiled)
    cost = _cost(compiled.plan)
    if args.json:
        out = {"schema": 1, "policy": compiled.plan.policy, "kernel": kernel.name, **report.to_json(),
               "assumptions": [{"id": a, "sentence": BY_ID[a].sentence} for a in report.assumptions],
               "cost": cost, "warnings": [f.render() for f in compiled.warnings]}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return EXIT_OK if report.result == "proven" else EXIT_NO
    for finding in compiled.warnings:
        print(finding.render(), file=sys.stderr)
    lines = [f"{compiled.plan.policy} on kernel {kernel.name}: {report.result} "
             f"({len(report.obligations)} obligations, {report.seconds:.2f} s, {report.solver})", ""]
    rows = [{"obligation": o.name, "result": o.status, "assumptions": ", ".join(o.assumptions) or "-"}
            for o in report.obligations]
    lines.append(_table(rows))
    if report.assumptions:
        lines.append("assumptions used:")
        lines += [f"  {a}: {BY_ID[a].sentence}" for a in report.assumptions]
        lines.append("")
    if cost:
        lines.append("filter programs:")
        lines.append(_table(cost))
    for o in report.failures():
        extra = o.detail.split(":", 1)[1].strip() if o.kind.value == "plan" and ":" in o.detail else \
            "" if o.kind.value == "plan" else o.detail
        lines.append(f"{o.name}: {o.status}" + (f": {extra}" if extra else ""))
        if o.counterexample is not None:
            lines.append(o.counterexample.render())
        lines.append("")
    sys.stdout.write("\n".join(lines).rstrip("\n") + "\n")
    return EXIT_OK if report.result == "proven" else EXIT_NO


__all__ = ["COST_COLUMNS", "NAME", "SUMMARY", "add_arguments", "run"]
