"""The failure seam at the syscall layer (``RINGFENCE_FAULT=register:N[:ERRNO]``, live/_sys.py) and what
``ringfence run`` does when a call fails: it never executes the command. The kernel is never mocked otherwise:
every call but the Nth reaches it.

On the host (no per-task io_uring sandboxing) ``run`` gets as far as its probes; tests/guest/
test_fault_injection.py makes each registration of a real apply fail in turn on the 7.x kernel.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ringfence.live import _sys

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
QUERIES = """
from ringfence.live.ring import query_opcodes
print([query_opcodes()[0] for _ in range(4)])
"""


def test_the_nth_call_fails_and_the_others_reach_the_kernel(kernel: object) -> None:
    plain = subprocess.run([sys.executable, "-c", QUERIES], capture_output=True, text=True, check=True,
                           env=ENV, timeout=60)
    faulted = subprocess.run([sys.executable, "-c", QUERIES], capture_output=True, text=True, check=True,
                             env={**ENV, "RINGFENCE_FAULT": "register:3:ENOSPC"}, timeout=60)
    answers, injected = eval(plain.stdout), eval(faulted.stdout)
    assert injected[2] == -28 and injected[:2] + injected[3:] == answers[:2] + answers[3:]
    assert answers[2] != -28  # the kernel's own answer differs: the seam, not the kernel, failed the call


@pytest.mark.parametrize("spec", ["register", "register:x", "register:0", "enter:1", "register:1:ENOTANERRNO"])
def test_a_malformed_seam_is_an_error_not_ignored(spec: str) -> None:
    with pytest.raises(ValueError, match="RINGFENCE_FAULT"):
        _sys._Faults(spec)


def test_run_stops_at_a_failed_probe_and_runs_nothing(tmp_path: Path) -> None:
    """The probe that tells whether this kernel has per-task sandboxing is the first io_uring_register call: an
    answer it cannot mean stops ``run`` (125) on any kernel, before it decides whether a fallback applies."""
    plan, marker = tmp_path / "plan.json", tmp_path / "ran"
    subprocess.run([sys.executable, "-m", "ringfence", "compile", str(ROOT / "examples/policies/file-reader.toml"),
                    "--kernel", "7.2", "-o", str(plan)], check=True, env=ENV, timeout=120, capture_output=True)
    done = subprocess.run([sys.executable, "-m", "ringfence", "run", "--plan", str(plan), "--", "touch",
                           str(marker)], capture_output=True, text=True, timeout=120, check=False,
                          env={**ENV, "RINGFENCE_FAULT": "register:1:EIO"})
    assert done.returncode == 125, done.stderr
    assert "probe: the kernel answers EIO" in done.stderr and "the command was not run" in done.stderr
    assert not marker.exists()
