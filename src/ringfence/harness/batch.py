"""Batch mode for the VM: ``python -m ringfence.harness.batch IN.json OUT.json``.

Booting a kernel costs seconds, so the conformance suite sends everything at once: scenarios (as the
scenario-file dict structure, or file paths) and program jobs (:mod:`ringfence.harness.programs`). The output holds
the probe report, one record per scenario (transcript, skip reason, expectation mismatches) and per job, and
timings. Input::

    {"scenarios": [{...scenario dict...}, "path/to/file.toml"],
     "jobs": [{"kind": "register_outcomes", "programs": ["0600000001000000"], "opcode": "NOP"},
              {"kind": "verdicts", "program": "...hex...", "requests": [{"op": "NOP", "ud": 7}]}],
     "step_timeout": 20, "contain": true}

``contain`` (default true) runs every scenario's agents contained (``docs/threat-model.md``); false exists only
to compare a corpus run contained and uncontained (``docs/harness.md``).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Mapping
from typing import Any

from ringfence.abi.opcodes import sqe_op
from ringfence.errors import RingfenceError
from ringfence.harness.backend import STEP_TIMEOUT, LiveBackend
from ringfence.harness.programs import register_outcomes, verdicts
from ringfence.live.probe import probed_profile
from ringfence.scenario.load import load, parse
from ringfence.scenario.runner import run as run_scenario


def _scenario(item: Any, backend: LiveBackend) -> dict[str, Any]:
    started = time.monotonic()
    record: dict[str, Any] = {"name": None, "path": item if isinstance(item, str) else None}
    try:
        scenario = load(item) if isinstance(item, str) else parse(item, path="<batch>")
        record["name"] = scenario.name
        report = run_scenario(backend, scenario)
        record.update(skipped=report.skipped, passed=report.passed,
                      transcript=report.transcript.to_json() if report.transcript else None,
                      mismatches=[m.render() for m in report.mismatches])
    except (RingfenceError, OSError, ValueError) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    record["seconds"] = round(time.monotonic() - started, 3)
    return record


def _job(job: Mapping[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    record: dict[str, Any] = {"kind": job.get("kind")}
    try:
        opcode = job.get("opcode", "NOP")
        op = int(sqe_op(opcode)) if isinstance(opcode, str) else int(opcode)
        flags, pdu = int(job.get("flags", 0)), int(job.get("pdu_size", 0))
        if job.get("kind") == "register_outcomes":
            programs = [bytes.fromhex(p) for p in job["programs"]]
            record["outcomes"] = register_outcomes(programs, opcode=op, flags=flags, pdu_size=pdu,
                                                   per_ring=int(job.get("per_ring", 64)))
        elif job.get("kind") == "verdicts":
            record["outcomes"] = verdicts(bytes.fromhex(job["program"]), job["requests"], flags=flags,
                                          pdu_size=pdu)
        else:
            raise ValueError(f"unknown job kind {job.get('kind')!r}")
    except (RingfenceError, OSError, ValueError, KeyError) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    record["seconds"] = round(time.monotonic() - started, 3)
    return record


def run_batch(data: Mapping[str, Any]) -> dict[str, Any]:
    """Everything in ``data``, in order; never raises for one bad scenario or job."""
    started = time.monotonic()
    report, profile = probed_profile()
    probe_seconds = time.monotonic() - started
    contain = data.get("contain", True)
    if not isinstance(contain, bool):
        raise ValueError(f"contain must be true or false, not {contain!r}")
    backend = LiveBackend(step_timeout=float(data.get("step_timeout", STEP_TIMEOUT)), contain=contain)
    scenarios = [_scenario(item, backend) for item in data.get("scenarios", [])]
    jobs = [_job(job) for job in data.get("jobs", [])]
    return {"schema": 1, "kernel": os.uname().release, "profile": profile.name, "probe": report.to_json(),
            "features": sorted(backend.features()), "contained": contain, "scenarios": scenarios, "jobs": jobs,
            "timing": {"probe": round(probe_seconds, 3), "total": round(time.monotonic() - started, 3)}}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m ringfence.harness.batch IN.json OUT.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        data = json.load(f)
    try:
        out = run_batch(data)
    except Exception:  # the output file must say what went wrong, even for a bug here
        out = {"schema": 1, "kernel": os.uname().release, "error": traceback.format_exc()}
    tmp = argv[1] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    os.replace(tmp, argv[1])
    return 1 if "error" in out else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
