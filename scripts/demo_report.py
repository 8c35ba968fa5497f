"""For the demo: each request a workload made under `ringfence run`, what the kernel answered, and what the
model predicted from the Plan with the policy rule that decided it.

    python scripts/demo_report.py POLICY PLAN LOG.jsonl...

The kernel answers a denied request with EACCES and nothing more; "by what" is the model's prediction for that
request (ringfence.policy.predict), labelled as such, and checked against the kernel's answer here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ringfence.abi.profiles import profile
from ringfence.abi.sqe import Sqe
from ringfence.errors import errno_name
from ringfence.policy.load import load
from ringfence.policy.plan import Plan
from ringfence.policy.predict import Predictor

MECHANISMS = {"accepted": "", "classic": "classic restrictions", "filter": "cBPF filter"}


def main(argv: list[str]) -> int:
    policy = load(argv[0])
    plan = Plan.loads(Path(argv[1]).read_text())
    predictor = Predictor(policy, plan, profile(plan.kernel))
    mismatches = 0
    for log in argv[2:]:
        print(f"\n{Path(log).stem}:")
        print(f"  {'kernel':<13} {'model':<7} request")
        for line in Path(log).read_text().splitlines():
            entry = json.loads(line)
            result = int(entry["result"])
            kernel = "ok" if result >= 0 else errno_name(-result)
            p = predictor.request(Sqe.from_json(entry["sqe"]))
            model = "allow" if p.allowed else p.errno or "deny"
            # an allowed request may still fail on its own (a refused connection); only EACCES is the sandbox
            same = (result == -13) == (not p.allowed)
            mismatches += not same
            how = MECHANISMS.get(p.mechanism, p.mechanism)
            print(f"  {kernel:<13} {model:<7} {entry['what']}{'' if same else '   <- DIFFERENT'}")
            print(f"  {'':<13} {'':<7} {p.because}{f' [{how}]' if how else ''}")
    print("\nkernel and model agree on every request" if not mismatches else
          f"\n{mismatches} request(s) where the kernel and the model differ: a finding, please report it")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
