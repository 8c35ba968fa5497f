"""The live backend inside Debian's 7.x kernel under qemu: probe, every scenario, and program jobs in one boot.

Skipped when no VM can be booted here, unless ``RINGFENCE_REQUIRE_VM=1``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest

from ._scenarios import ALL, INET_ONLY, RET1
from .conftest import insns

pytestmark = [pytest.mark.live, pytest.mark.vm, pytest.mark.slow]


def _unavailable(reason: str) -> None:
    if os.environ.get("RINGFENCE_REQUIRE_VM") == "1":
        pytest.fail(f"RINGFENCE_REQUIRE_VM=1 but no VM: {reason}")
    pytest.skip(f"no VM here: {reason}")


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One boot: ``python -m ringfence.harness.batch`` over this suite's scenarios (the corpus is the conformance
    suite's business: its expectations are checked there)."""
    vm = pytest.importorskip("ringfence.vm")
    try:
        kernel = vm.ensure_kernel()
    except vm.VmError as exc:
        _unavailable(str(exc))
    out_dir = tmp_path_factory.mktemp("vm-live")
    os.chmod(out_dir, 0o777)
    data = {"scenarios": ALL, "step_timeout": 60, "jobs": [
        {"kind": "register_outcomes",
         "programs": [insns(RET1).hex(), "", insns([[0x94, 0, 0, 3], [6, 0, 0, 1]]).hex()]},
        {"kind": "verdicts", "program": insns(INET_ONLY).hex(), "requests": [
            {"op": "SOCKET", "family": 2, "type": 1}, {"op": "SOCKET", "family": 10, "type": 1},
            {"op": "CONNECT", "family": 2, "addr": "127.0.0.1", "port": 1},
            {"op": "CONNECT", "family": 10, "addr": "::1", "port": 1}]}]}
    (out_dir / "in.json").write_text(json.dumps(data))
    try:
        result = vm.run_in_vm([sys.executable, "-m", "ringfence.harness.batch", str(out_dir / "in.json"),
                               str(out_dir / "out.json")], kernel=kernel, timeout=1500, rwdirs=[str(out_dir)])
    except vm.VmError as exc:
        _unavailable(str(exc))
    assert result.exit_code == 0, result.stderr[-4000:]
    out: dict[str, Any] = json.loads((out_dir / "out.json").read_text())
    return out


def test_probe_on_the_guest_kernel(guest: dict[str, Any]) -> None:
    probe = guest["probe"]
    assert guest["kernel"].startswith("7.") and probe["io_uring"]
    assert probe["ring_filters"] == probe["task_filters"] == probe["task_restrictions"] == "ok"
    assert probe["classic_semantics"] == "split"
    assert probe["query"]["nr_request_opcodes"] == 65 and probe["query"]["nr_register_opcodes"] == 38
    assert {k: v for k, v in probe["pdu_sizes"].items() if v} == {"SOCKET": 12, "OPENAT": 24, "OPENAT2": 24,
                                                                 "CONNECT": 24}
    assert probe["source_cow"] in (True, False)
    assert guest["profile"] == probe["profile"]


def test_every_scenario_passes_or_is_skipped(guest: dict[str, Any]) -> None:
    failed = {s["name"] or s["path"]: s.get("error") or s.get("mismatches") or s["transcript"]["error"]
              for s in guest["scenarios"] if not s.get("skipped") and not s.get("passed")}
    assert not failed, json.dumps(failed, indent=1)


def test_program_jobs(guest: dict[str, Any]) -> None:
    outcomes, verdicts = (j.get("outcomes") for j in guest["jobs"])
    assert outcomes == ["ok", "EINVAL", "EINVAL"]
    assert verdicts == ["ok", "EACCES", "ECONNREFUSED", "EACCES"]
