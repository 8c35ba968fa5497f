"""Compile and prove a generated 50-rule policy: how long the prover adds to a compilation.

    .venv/bin/python benchmarks/prove.py [--rules N] [--seed SEED] [--repeat R] [--no-optimize] [--profile]

The policy comes from the test suite's generator (``tests/policy/policygen.py``): rules with field tests from
consecutive seeds are pooled until there are N of them (allow and deny rules over SOCKET, OPENAT, OPENAT2 and
CONNECT with every kind of field test), default deny, no ``[flags]``: so every rule reaches a filter program
and the Plan has both variants, the classic one and the filters-only one (a filter for every opcode).
Prints the best and median of R runs for compiling alone, proving alone (excluding the one-time import of z3)
and both, single-threaded, as wall time and as CPU time (what one core spends, however busy the machine is),
with the Plan's program sizes. The goal is compile+prove under 200 ms on one core.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "policy"))

from policygen import policy_data

from ringfence.abi.profiles import profile
from ringfence.policy.compile import compile_policy
from ringfence.policy.load import from_data


def policy_with(rules: int, seed: int) -> dict[str, Any]:
    """A generated policy with exactly ``rules`` rules that test fields, pooled from seeds ``seed``, ``seed + 1``,
    ..."""
    pool: list[tuple[str, dict[str, Any]]] = []
    s = 1000 * seed
    while len(pool) < rules:
        data = policy_data(s, max_rules=8)
        pool += [(a, r) for a in ("allow", "deny") for r in data.get(a, []) if set(r) - {"ops", "reason"}]
        s += 1
    out: dict[str, Any] = {"policy": {"name": f"bench-{rules}", "default": "deny", "kernel": "7.2+"}}
    for action, rule in pool[:rules]:
        out.setdefault(action, []).append(rule)
    return out


def _time(fn: Any, repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each run (CPU time is what one core spends, whatever else the machine runs)."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-optimize", dest="optimize", action="store_false")
    parser.add_argument("--kernel", default="7.2")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one compile+prove")
    args = parser.parse_args()

    start = time.perf_counter()
    from ringfence.policy import prove
    imported = time.perf_counter() - start

    kernel = profile(args.kernel)
    policy = from_data(policy_with(args.rules, args.seed))
    compiled = compile_policy(policy, kernel, optimized=args.optimize)
    report = prove.prove(compiled)
    if report.result != "proven":
        print(f"not proven: {report.result}", file=sys.stderr)
        return 1
    sizes = {op: len(p.built.program) for op, p in compiled.programs.items()}
    print(f"policy: {len(policy.rules)} rules, {len(compiled.programs)} filter programs "
          f"({sum(sizes.values())} instructions), {len(compiled.plan.variants)} variants, "
          f"{len(report.obligations)} obligations, assumptions used: {', '.join(report.assumptions) or 'none'}")
    print(f"z3 import (once): {imported * 1000:.0f} ms ({prove.SOLVER})")

    def both() -> None:
        prove.prove(compile_policy(policy, kernel, optimized=args.optimize))

    rows = [("compile", _time(lambda: compile_policy(policy, kernel, optimized=args.optimize), args.repeat)),
            ("prove", _time(lambda: prove.prove(compiled), args.repeat)),
            ("compile+prove", _time(both, args.repeat))]
    for name, (wall, cpu) in rows:
        print(f"{name:<14} wall best {min(wall) * 1000:7.1f} ms, median {statistics.median(wall) * 1000:7.1f} ms   "
              f"cpu best {min(cpu) * 1000:7.1f} ms, median {statistics.median(cpu) * 1000:7.1f} ms")
    if args.profile:
        with tempfile.TemporaryDirectory() as tmp:
            out = str(Path(tmp) / "prove.prof")
            cProfile.runctx("both()", globals(), {"both": both}, out)
            pstats.Stats(out).sort_stats("cumulative").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
