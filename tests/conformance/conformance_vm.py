"""Booting each suite's newest 7.x kernel once and running the whole batch in it; or re-reading a recorded run.

Per kernel, one boot runs ``python -m ringfence.harness.batch`` over: the scenario corpus, seeded random
scenarios, the checker programs, the interpreter requests, and the harness's own VM scenarios and jobs; then
``pytest tests/guest`` (the suites that must run inside a 7.x kernel: sandboxes applied for real). Results land
in ``results/vm-<time>/<suite>/`` (``in.json``, ``out.json``, ``run.json``, ``findings.md``, ``guest.xml``,
``guest.txt``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance_data import (
    CORPUS,
    ROOT,
    VM_TIMEOUT,
    Sizes,
    programs,
    random_scenarios,
    verdict_programs,
    verdict_requests,
)
from harness_vm_data import harness_jobs, harness_scenarios

#: Step timeout in the guest: TCG is slow, and exec scenarios restart Python.
STEP_TIMEOUT = 60
#: How long the guest's rings wait for a CQE once only CQE_SKIP_SUCCESS requests are outstanding: a failed one
#: still posts, and under TCG on a shared machine that can take far longer than the host's 50 ms.
GUEST_SKIP_QUIET = "0.5"


@dataclass(frozen=True)
class KernelRun:
    """One kernel's batch: what was sent and what came back (``out["sent"]`` is the input), and its cost."""

    suite: str
    release: str
    directory: Path
    out: dict[str, Any]
    seconds: float | None   # boot + batch + shutdown, as seen from the host (None when re-read)
    boot_seconds: float | None
    boot_failures: tuple[str, ...] = ()  # a first boot that died (retried once, with kernel messages on)


def batch_input(suite: str, sizes: Sizes) -> dict[str, Any]:
    """Everything one boot runs. ``groups`` and each job's ``tag`` let the comparison slice the output."""
    jobs: list[dict[str, Any]] = [{"kind": "register_outcomes", "tag": "checker", "opcode": "NOP",
                                   "programs": [p.hex() for p in programs(sizes.programs)]}]
    for i, prog in enumerate(verdict_programs(sizes.programs, sizes.verdict_programs)):
        jobs.append({"kind": "verdicts", "tag": "verdict", "program": prog.hex(), "requests": verdict_requests(i)})
    jobs += [{**job, "tag": "harness"} for job in harness_jobs()]
    corpus: list[Any] = [str(p) for p in CORPUS]
    randoms = list(random_scenarios(sizes.seed, sizes.random, classic_only=False))
    harness = harness_scenarios()
    return {"scenarios": corpus + randoms + harness, "jobs": jobs, "step_timeout": STEP_TIMEOUT,
            "groups": {"corpus": len(corpus), "random": len(randoms), "harness": len(harness)},
            "suite": suite, "sizes": sizes.to_json()}


def boot_and_run(suite: str, kernel: Any, sizes: Sizes, results: Path) -> KernelRun:
    """Boot ``kernel`` (a :class:`ringfence.vm.KernelImage`) once and run the batch; raises if no output came.

    A guest that dies before the batch finishes (seen once under TCG on a loaded machine, not reproducible) is
    booted once more, with kernel messages on; the first failure is kept in ``run.json`` and the summary. A
    timeout or a second failure is final.
    """
    from ringfence.vm.errors import VmBootError, VmTimeoutError

    out_dir = results / suite
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "in.json").write_text(json.dumps(batch_input(suite, sizes), sort_keys=True))
    print(f"\nringfence conformance: booting {kernel.version} ({suite}) for {sizes.describe()}", file=sys.stderr,
          flush=True)
    failures: list[str] = []
    while True:
        try:
            result = _run_batch(kernel, out_dir, verbose=bool(failures))
            break
        except VmTimeoutError:
            raise
        except VmBootError as exc:
            failures.append(" ".join(str(exc).split())[:500])
            if len(failures) > 1:
                raise
            print(f"ringfence conformance: the {suite} guest died ({failures[0]}); booting it once more",
                  file=sys.stderr, flush=True)
    meta = {"suite": suite, "release": kernel.version, "debian_version": kernel.debian_version,
            "seconds": round(result.duration, 1), "boot_seconds": round(result.boot_seconds, 1),
            "exit_code": result.exit_code, "sizes": sizes.to_json(), "boot_failures": failures}
    (out_dir / "run.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    if not (out_dir / "out.json").exists():
        raise RuntimeError(f"the {suite} kernel {kernel.version} produced no results (exit {result.exit_code}):\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return _read(suite, out_dir, result.duration, result.boot_seconds, tuple(failures))


def _run_batch(kernel: Any, out_dir: Path, *, verbose: bool) -> Any:
    from ringfence.vm.boot import run_in_vm

    python = str(ROOT / ".venv" / "bin" / "python")
    if not Path(python).exists():
        python = sys.executable
    for stale in ("out.json", "guest.xml", "guest.txt"):
        (out_dir / stale).unlink(missing_ok=True)
    saved = os.environ.get("RINGFENCE_VM_VERBOSE")
    if verbose:
        os.environ["RINGFENCE_VM_VERBOSE"] = "1"  # kernel messages in the error, should it die again
    try:
        # The batch's exit code is the run's; the guest tests' results are read from guest.xml.
        script = (f'{python} -m ringfence.harness.batch "$1/in.json" "$1/out.json"; rc=$?; '
                  f'{python} -m pytest -q -p no:cacheprovider tests/guest '
                  f'--junitxml="$1/guest.xml" > "$1/guest.txt" 2>&1; exit $rc')
        return run_in_vm(["sh", "-c", script, "batch", str(out_dir)], kernel=kernel, timeout=VM_TIMEOUT,
                         rwdirs=[str(out_dir)], cwd=str(ROOT), env={"RINGFENCE_SKIP_QUIET": GUEST_SKIP_QUIET})
    finally:
        if verbose:
            if saved is None:
                os.environ.pop("RINGFENCE_VM_VERBOSE", None)
            else:
                os.environ["RINGFENCE_VM_VERBOSE"] = saved


def reread(directory: Path) -> dict[str, KernelRun]:
    """An earlier run's results: ``DIR/<suite>/`` per kernel, or a single-kernel ``DIR`` (older layout)."""
    if (directory / "out.json").exists():
        out = json.loads((directory / "out.json").read_text())
        suite = json.loads((directory / "in.json").read_text()).get("suite") or _suite_of(out.get("kernel", ""))
        return {suite: _read(suite, directory, None, None)}
    runs = {}
    for sub in sorted(p for p in directory.iterdir() if (p / "out.json").exists()):
        meta = json.loads((sub / "run.json").read_text()) if (sub / "run.json").exists() else {}
        runs[sub.name] = _read(sub.name, sub, meta.get("seconds"), meta.get("boot_seconds"),
                               tuple(meta.get("boot_failures", ())))
    return runs


def _suite_of(release: str) -> str:
    from ringfence.vm import known_kernels

    return next((c.suite for c in known_kernels() if c.release == release), "unknown")


def _read(suite: str, directory: Path, seconds: float | None, boot: float | None,
          failures: tuple[str, ...] = ()) -> KernelRun:
    out: dict[str, Any] = json.loads((directory / "out.json").read_text())
    sent: dict[str, Any] = json.loads((directory / "in.json").read_text())
    if "groups" not in sent:  # a run from before per-kernel batches: corpus paths, random dicts, checker, verdicts
        corpus = sum(isinstance(s, str) for s in sent["scenarios"])
        sent["groups"] = {"corpus": corpus, "random": len(sent["scenarios"]) - corpus, "harness": 0}
        for i, job in enumerate(sent["jobs"]):
            job["tag"] = "checker" if i == 0 else "verdict"
    out["sent"] = sent
    return KernelRun(suite, out.get("kernel", "?"), directory, out, seconds, boot, failures)


def new_results_dir() -> Path:
    path = ROOT / "results" / time.strftime("vm-%Y%m%d-%H%M%S")
    path.mkdir(parents=True, exist_ok=True)
    return path
