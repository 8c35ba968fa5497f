"""Inside the 7.x guest: ``ringfence run`` with each of its io_uring_register calls made to fail in turn (the
seam of live/_sys.py; every other call reaches the kernel). Whichever call fails — a probe, a check on a
throwaway ring, or a registration after others already succeeded — the command (which would create a marker
file) is never executed, the exit status is 125 and the message names the step. One call past the last, the
command runs: the seam counted every call there was.

Each attempt is a forked child that runs ``run`` in-process (no Python start-up per attempt); the end-to-end path
through the environment variable is run once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ringfence.live import _sys
from ringfence.live.probe import probed_profile
from ringfence.policy.compile import compile_policy
from ringfence.policy.load import load
from ringfence.policy.plan import Plan
from ringfence.sandbox import run
from ringfence.vm import inside_guest

if not inside_guest():
    pytest.skip("runs inside the 7.x guest", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


def _plan(name: str) -> Plan:
    return compile_policy(load(ROOT / "examples" / "policies" / f"{name}.toml"), probed_profile()[1]).plan


def _calls(plan: Plan) -> list[str]:
    """The register calls `run` makes for a fresh task, in order, as the step its failure must name."""
    variant = plan.variants[0]
    regs = variant.registrations
    filters = [i for i, r in enumerate(regs) if r.kind == "filter"]
    restrictions = [i for i, r in enumerate(regs) if r.kind == "restrictions"]
    calls = ["probe", "probe"]                                          # the two per-task features exist
    calls += [f"registration {i + 1} " for i in filters]                 # validated on a throwaway ring
    calls += [f"registration {i + 1} " for i in restrictions]           # on a throwaway disabled ring
    if restrictions:
        calls.append("choose")                                           # classic possible on this task?
    calls += [f"registration {i + 1} " for i in range(len(regs))]       # the real ones, in the Plan's order
    return calls


def _attempt(plan: Plan, call: int, marker: Path, log: Path) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs the command or exits with run's status
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 2)
        sys.stderr = os.fdopen(2, "w", buffering=1)  # pytest replaced sys.stderr; run writes there
        _sys._FAULTS = _sys._Faults(f"register:{call}:ENOMEM")
        os._exit(run.run(plan, ["touch", str(marker)], run.Options()))
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("name", ["web-client", "file-reader"])
def test_every_failed_call_stops_run_before_exec(name: str, tmp_path: Path) -> None:
    plan = _plan(name)
    calls = _calls(plan)
    for n, step in enumerate(calls, start=1):
        marker, log = tmp_path / f"ran-{n}", tmp_path / f"log-{n}"
        status = _attempt(plan, n, marker, log)
        said = log.read_text()
        assert status == 125 and not marker.exists(), (n, step, status, said)
        assert f"{step}" in said and "ENOMEM" in said and "the command was not run" in said, (n, step, said)
        if n > len(calls) - len(plan.variants[0].registrations) + 1:  # some registrations already made
            assert "earlier registration(s) stay in place" in said, said
    marker = tmp_path / "ran-last"
    assert _attempt(plan, len(calls) + 1, marker, tmp_path / "log-last") == 0 and marker.exists()


def test_the_environment_variable_reaches_the_last_registration(tmp_path: Path) -> None:
    plan = _plan("web-client")
    (tmp_path / "plan.json").write_text(plan.dumps())
    marker = tmp_path / "ran"
    done = subprocess.run([sys.executable, "-m", "ringfence", "run", "--plan", str(tmp_path / "plan.json"), "--",
                           "touch", str(marker)], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src"),
                               "RINGFENCE_FAULT": f"register:{len(_calls(plan))}:E2BIG"})
    last = len(plan.variants[0].registrations)
    assert done.returncode == 125 and not marker.exists(), done.stderr
    assert f"registration {last} " in done.stderr and "E2BIG" in done.stderr, done.stderr
