"""Fixtures for model-vs-kernel conformance: the one VM run, and the end-of-run summary."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import conformance_tally as tally
from conformance_data import (
    CORPUS,
    ROOT,
    VM_RANDOM,
    VM_TIMEOUT,
    programs,
    random_scenarios,
    verdict_programs,
    verdict_requests,
)


def _require(env: str, reason: str) -> None:
    if os.environ.get(env) == "1":
        pytest.fail(f"{reason} (and {env}=1 requires it)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def vm_batch() -> dict[str, Any]:
    """Boot Debian's 7.x kernel once and run the whole batch inside; skip (or fail in CI) if that is impossible.

    Returns the kernel's output with the exact input it was given under ``"sent"``: tests compare against what
    was sent, never against a regeneration. ``RINGFENCE_VM_RESULTS=DIR`` re-reads an earlier run's ``DIR`` instead
    of booting (for iterating on the model without a 15-minute VM run).
    """
    reuse = os.environ.get("RINGFENCE_VM_RESULTS")
    if reuse:
        return _reuse(Path(reuse))
    try:
        from ringfence.vm.boot import run_in_vm
        from ringfence.vm.fetch import ensure_kernel

        kernel = ensure_kernel()
    except Exception as exc:  # any reason the VM cannot be had is reported, never hidden
        _require("RINGFENCE_REQUIRE_VM", f"no 7.x kernel VM: {exc}")
        raise
    out_dir = ROOT / "results" / time.strftime("vm-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    batch = _batch_input()
    (out_dir / "in.json").write_text(json.dumps(batch, sort_keys=True))
    python = str(ROOT / ".venv" / "bin" / "python")
    result = run_in_vm([python, "-m", "ringfence.harness.batch", str(out_dir / "in.json"), str(out_dir / "out.json")],
                       kernel=kernel, timeout=VM_TIMEOUT, rwdirs=[str(out_dir)], cwd=str(ROOT))
    out_file = out_dir / "out.json"
    if not out_file.exists():
        pytest.fail(f"the VM run produced no results (exit {result.exit_code}):\n{result.stdout[-3000:]}\n"
                    f"{result.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(out_file.read_text())
    if "error" in data:
        pytest.fail(f"batch failed in the VM: {data['error']}")
    data["sent"] = json.loads((out_dir / "in.json").read_text())
    tally.KERNELS["vm"] = f"{data['kernel']} (profile {data['profile']}, {result.duration:.0f} s incl. boot)"
    return data


def _batch_input() -> dict[str, Any]:
    jobs: list[dict[str, Any]] = [
        {"kind": "register_outcomes", "opcode": "NOP", "programs": [p.hex() for p in programs()]}]
    for i, prog in enumerate(verdict_programs()):
        jobs.append({"kind": "verdicts", "program": prog.hex(), "requests": verdict_requests(i)})
    scenarios: list[Any] = [str(p) for p in CORPUS]
    scenarios += random_scenarios(VM_RANDOM, classic_only=False)
    return {"scenarios": scenarios, "jobs": jobs}


def _reuse(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "out.json").read_text())
    data["sent"] = json.loads((directory / "in.json").read_text())
    tally.KERNELS["vm"] = f"{data['kernel']} (profile {data['profile']}, reused from {directory})"
    return data


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not tally.COUNTS and not tally.KERNELS:
        return
    tr = terminalreporter
    tr.section("ringfence conformance")
    for where, kernel in sorted(tally.KERNELS.items()):
        tr.write_line(f"{where} kernel: {kernel}")
    for key in sorted(tally.COUNTS):
        tr.write_line(f"{key}: {tally.COUNTS[key]}")
    for line in tally.DISAGREEMENTS[:50]:
        tr.write_line(f"  DISAGREEMENT {line}")
