"""What ``ringfence run --plan PLAN.json -- true`` costs over a bare ``true``: interleaved pairs, a fresh process
each, the median difference and ratio with a 95% interval; then, separately, the import time of the apply path
and the cost of the registration system calls themselves.

    .venv/bin/python benchmarks/run_overhead.py [--pairs N] [--seed S]

The Plan is classic-only (a small allow-list: no filters). On a kernel without per-task io_uring sandboxing (the
host, 6.18), ``run`` stops at its first probe (exit 5, nothing applied), so a second row runs the whole path to
``exec`` through ``--fallback deny-io-uring`` (a seccomp filter instead of the Plan). The registrations are timed
on a ring created disabled (the ring path exists on every kernel with io_uring restrictions). Goal: at most
30 ms over ``true``.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICY = """[policy]
name = "classic-only"
kernel = "7.0+"
default = "deny"

[[allow]]
ops = ["NOP", "READ", "WRITE", "CLOSE"]
reason = "a plain allow-list: classic restrictions only"
"""
APPLY_PATH = "import ringfence.cli.main, ringfence.cli.run, ringfence.sandbox.run, ringfence.sandbox.apply"


def median_interval(values: list[float]) -> tuple[float, float, float]:
    """The median and a distribution-free 95% interval (order statistics of the binomial(n, 1/2))."""
    xs, n = sorted(values), len(values)
    cdf, k = 0.0, 0
    while k < n:
        cdf += math.comb(n, k) / 2 ** n
        if cdf > 0.025:
            break
        k += 1
    k = max(k - 1, 0)
    return statistics.median(xs), xs[k], xs[n - 1 - k]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    status = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode
    return time.perf_counter() - start, status


def paired(name: str, base: list[str], cmd: list[str], *, pairs: int, rng: random.Random,
           env: dict[str, str]) -> str:
    diffs, ratios, statuses = [], [], set()
    for _ in range(pairs):
        order = [(base, 0), (cmd, 1)]
        rng.shuffle(order)  # interleaved, in random order within each pair
        got = {}
        for argv, which in order:
            got[which], status = timed(argv, env)
            if which:
                statuses.add(status)
        diffs.append((got[1] - got[0]) * 1000)
        ratios.append(got[1] / got[0])
    d, dlo, dhi = median_interval(diffs)
    r, rlo, rhi = median_interval(ratios)
    return (f"| {name} | {sorted(statuses)} | {d:.1f} ms [{dlo:.1f}, {dhi:.1f}] | "
            f"{r:.1f}x [{rlo:.1f}, {rhi:.1f}] |")


def registrations(plan_text: str, repeat: int) -> str:
    """The registration calls alone: the Plan's classic records on fresh disabled rings, in-process."""
    from ringfence.abi.opcodes import SetupFlag
    from ringfence.live.ring import Ring, register_restrictions
    from ringfence.policy.plan import Plan

    plan = Plan.loads(plan_text)
    records = [r for reg in plan.variants[0].registrations if reg.kind == "restrictions" for r in reg.records]
    times = []
    for _ in range(repeat):
        with Ring.setup(1, SetupFlag.R_DISABLED) as ring:
            start = time.perf_counter()
            result = register_restrictions(ring.fd, records)
            times.append((time.perf_counter() - start) * 1e6)
        if result < 0:
            return f"| registrations ({len(records)} records, ring path) | refused ({-result}) | | |"
    m, lo, hi = median_interval(times)
    return f"| registration ({len(records)} classic records, ring path) | 0 | {m:.0f} µs [{lo:.0f}, {hi:.0f}] | |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    py = [sys.executable, "-m", "ringfence"]
    true = ["/bin/true"]
    with tempfile.TemporaryDirectory() as tmp:
        policy, plan = Path(tmp, "p.toml"), Path(tmp, "p.plan.json")
        policy.write_text(POLICY)
        subprocess.run([*py, "compile", str(policy), "--kernel", "7.2", "--mechanism", "classic", "-o", str(plan)],
                       env=env, check=True, capture_output=True)
        print(f"kernel {os.uname().release}; {args.pairs} interleaved pairs, fresh processes; median [95% interval]")
        print("| measured | exit status | over the baseline | ratio |")
        print("|---|---|---|---|")
        print(paired("`ringfence run --plan P --mechanism classic -- true` vs `true`", true,
                     [*py, "run", "--plan", str(plan), "--mechanism", "classic", "--", *true], pairs=args.pairs,
                     rng=rng, env=env))
        print(paired("`ringfence run --plan P --fallback deny-io-uring -- true` vs `true`", true,
                     [*py, "run", "--plan", str(plan), "--fallback", "deny-io-uring", "--", *true], pairs=args.pairs,
                     rng=rng, env=env))
        print(paired("`python -c pass` vs `true` (the interpreter alone)", true, [sys.executable, "-c", "pass"],
                     pairs=args.pairs, rng=rng, env=env))
        print(paired("importing the apply path vs `python -c pass`", [sys.executable, "-c", "pass"],
                     [sys.executable, "-c", APPLY_PATH], pairs=args.pairs, rng=rng, env=env))
        print(registrations(plan.read_text(), 200))
    return 0


if __name__ == "__main__":
    sys.exit(main())
