"""Benchmark: run N seeded random scenarios on the kernel model (goal: 10,000 in under a minute, one core).

    .venv/bin/python benchmarks/model.py [--count 10000] [--seed 1] [--kernel 7.2] [--no-detail]

Reports generation, loading and model time separately; "model" is the number the goal is about, "total"
includes generating and loading the scenarios through the real loader.
"""

from __future__ import annotations

import argparse
import time

from ringfence.abi.profiles import DEFAULT_PROFILE, profile
from ringfence.scenario import parse
from ringfence.scenario.generate import generate_many
from ringfence.scenario.model_backend import ModelBackend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kernel", default=DEFAULT_PROFILE)
    parser.add_argument("--classic-only", action="store_true")
    parser.add_argument("--no-detail", action="store_true", help="skip per-filter instruction counts")
    args = parser.parse_args()

    t0 = time.perf_counter()
    docs = generate_many(args.seed, args.count, classic_only=args.classic_only)
    t1 = time.perf_counter()
    scenarios = [parse(doc) for doc in docs]
    t2 = time.perf_counter()
    backend = ModelBackend(profile(args.kernel), detail=not args.no_detail)
    steps = sqes = 0
    for scenario in scenarios:
        transcript = backend.run(scenario)
        steps += len(transcript.steps)
        sqes += sum(len(getattr(s, "sqes", ())) for s in scenario.steps)
    t3 = time.perf_counter()

    model = t3 - t2
    print(f"kernel {args.kernel}, {args.count} scenarios, {steps} steps, {sqes} SQEs, detail={not args.no_detail}")
    print(f"generate {t1 - t0:7.2f} s")
    print(f"load     {t2 - t1:7.2f} s")
    print(f"model    {model:7.2f} s   {args.count / model:8.0f} scenarios/s   {steps / model:9.0f} steps/s")
    print(f"total    {t3 - t0:7.2f} s   {args.count / (t3 - t0):8.0f} scenarios/s")


if __name__ == "__main__":
    main()
