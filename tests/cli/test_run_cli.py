"""``ringfence run``'s own failures: the command is never executed, and the exit code cannot be mistaken for the
command's (125 for everything ringfence failed at, 2 for usage)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ringfence", "run", *args], capture_output=True, text=True,
                          check=False, timeout=120, cwd=cwd)


def test_no_command_is_usage(tmp_path: Path) -> None:
    done = _run("--plan", str(tmp_path / "p.json"))
    assert done.returncode == 2 and "no command given" in done.stderr


def test_unreadable_plan_is_usage(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = _run("--plan", str(tmp_path / "missing.json"), "--", "touch", str(marker))
    assert done.returncode == 2 and "cannot read" in done.stderr and not marker.exists()


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_plan_that_is_no_regular_file_is_refused_not_waited_on(tmp_path: Path, kind: str) -> None:
    import os

    marker = tmp_path / "ran"
    plan = tmp_path / "plan"
    if kind == "fifo":
        os.mkfifo(plan)  # nobody writes: reading it would block forever
    elif kind == "directory":
        plan.mkdir()
    else:
        plan = Path("/dev/zero")  # reading it would never end
    done = _run("--plan", str(plan), "--", "touch", str(marker))
    assert done.returncode == 2 and str(plan) in done.stderr and not marker.exists()


@pytest.mark.parametrize("text", ["{", "[]", '{"format": 99}'])
def test_broken_plan_is_125_and_nothing_runs(tmp_path: Path, text: str) -> None:
    plan, marker = tmp_path / "p.json", tmp_path / "ran"
    plan.write_text(text)
    done = _run("--plan", str(plan), "--", "touch", str(marker))
    assert done.returncode == 125, done.stderr
    assert not marker.exists()


@pytest.mark.parametrize("prove", [False, True])
def test_a_policy_this_kernel_cannot_apply_is_5_and_nothing_runs(tmp_path: Path, prove: bool) -> None:
    """As for a Plan: a kernel older than the policy's minimum (or without per-task sandboxing) is "unsupported
    here" (5), not a failure of ringfence (125); --fallback is the way to run anyway."""
    policy, marker = tmp_path / "p.toml", tmp_path / "ran"
    policy.write_text('[policy]\nname = "p"\nkernel = "99.0+"\n[[allow]]\nops = ["NOP"]\n')
    done = _run("--policy", str(policy), *(["--prove"] if prove else []), "--", "touch", str(marker))
    assert done.returncode == 5, done.stderr
    assert "cannot apply the policy" in done.stderr and not marker.exists()


def test_a_policy_this_kernel_cannot_apply_runs_under_the_fallback(tmp_path: Path) -> None:
    policy, marker = tmp_path / "p.toml", tmp_path / "ran"
    policy.write_text('[policy]\nname = "p"\nkernel = "99.0+"\n[[allow]]\nops = ["NOP"]\n')
    done = _run("--policy", str(policy), "--fallback", "deny-io-uring", "--", "touch", str(marker))
    assert done.returncode == 0, done.stderr
    assert "seccomp fallback" in done.stderr and marker.exists()


def test_an_invalid_policy_is_125_with_its_position(tmp_path: Path) -> None:
    policy, marker = tmp_path / "p.toml", tmp_path / "ran"
    policy.write_text('[policy]\nname = "p"\n[[allow]]\nops = ["NOP"]\nreasn = "typo"\n')
    done = _run("--policy", str(policy), "--", "touch", str(marker))
    assert done.returncode == 125, done.stderr
    assert "p.toml:5:" in done.stderr and "reason" in done.stderr and not marker.exists()
