"""The 7.x kernel in qemu against the model: corpus scenarios, random scenarios, checker and interpreter.

One VM boot runs everything (see conftest.vm_batch); each comparison is its own test so a failure names it.
"""

from __future__ import annotations

from typing import Any

import conformance_tally as tally
import pytest
from conformance_compare import check_against_model
from conformance_data import CORPUS, VM_RANDOM, programs

from ringfence.abi import BpfCtx, profile, sqe_op
from ringfence.abi import sqe as abisqe
from ringfence.bpf import Program, check, diagnose, run
from ringfence.model.outcome import Refused
from ringfence.model.prep import populate, prep
from ringfence.scenario import load, parse

pytestmark = pytest.mark.vm


def _profile(batch: dict[str, Any]) -> Any:
    return profile(batch["profile"])


def test_vm_runs_a_7x_kernel(vm_batch: dict[str, Any]) -> None:
    assert vm_batch["kernel"].startswith("7."), vm_batch["kernel"]
    assert vm_batch["probe"]["ring_filters"] == "ok", vm_batch["probe"]["ring_filters"]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_vm_corpus_scenario(vm_batch: dict[str, Any], path: Any) -> None:
    record = next((r for r in vm_batch["scenarios"] if r.get("path") == str(path)), None)
    assert record is not None, f"{path} was not in the batch sent to the VM"
    scenario = load(path)
    problem = check_against_model(scenario, record, _profile(vm_batch))
    tally.compared("vm corpus scenarios", agreed=problem is None, detail=f"{path.stem}: {problem}")
    assert problem is None, problem
    assert not record.get("mismatches"), "kernel differs from the scenario's expectations:\n" + "\n".join(
        record["mismatches"])


@pytest.mark.parametrize("index", range(VM_RANDOM))
def test_vm_random_scenario(vm_batch: dict[str, Any], index: int) -> None:
    sent = [s for s in vm_batch["sent"]["scenarios"] if not isinstance(s, str)]
    records = [r for r in vm_batch["scenarios"] if r.get("path") is None]
    assert len(sent) == len(records) >= VM_RANDOM, "the batch did not hold the random scenarios"
    scenario = parse(sent[index], path=f"<random {index}>")
    problem = check_against_model(scenario, records[index], _profile(vm_batch))
    tally.compared("vm random scenarios", agreed=problem is None, detail=f"#{index}: {problem}")
    assert problem is None, problem


def test_vm_checker_differential(vm_batch: dict[str, Any]) -> None:
    job = vm_batch["jobs"][0]
    assert "error" not in job, job.get("error")
    progs = [bytes.fromhex(p) for p in vm_batch["sent"]["jobs"][0]["programs"]]
    assert len(progs) >= 5000 or len(progs) == len(programs())
    bad = []
    for prog, kernel in zip(progs, job["outcomes"], strict=True):
        n = len(prog) // 8
        ours = "EINVAL" if n == 0 or n > 4096 or diagnose(Program.from_bytes(prog)) else "ok"
        agreed = ours == kernel
        tally.compared("vm checker programs", agreed=agreed, detail=f"{prog[:64].hex()}: ours={ours} kernel={kernel}")
        if not agreed:
            bad.append(f"{prog[:80].hex()} ours={ours} kernel={kernel}")
    assert not bad, f"{len(bad)} of {len(progs)} programs disagree:\n" + "\n".join(bad[:20])


def test_vm_interpreter_differential(vm_batch: dict[str, Any]) -> None:
    """Each request's kernel outcome is what the model's prep says (a prep failure hides the filter, §8.1), else
    ``EACCES`` exactly when the interpreter denies on the context the model's populate hook builds."""
    prof = _profile(vm_batch)
    bad = []
    for sent, job in zip(vm_batch["sent"]["jobs"][1:], vm_batch["jobs"][1:], strict=True):
        assert "error" not in job, job.get("error")
        prog = bytes.fromhex(sent["program"])
        checked = check(Program.from_bytes(prog))
        for req, kernel in zip(sent["requests"], job["outcomes"], strict=True):
            sqe = _model_sqe(req)
            try:
                flags = prep(sqe)
            except Refused as refused:
                agreed = kernel == refused.errno
                tally.compared("vm prep outcomes", agreed=agreed, detail=f"{req} model={refused.errno} kernel={kernel}")
                if not agreed:
                    bad.append(f"request {req}: model prep says {refused.errno}, kernel {kernel}")
                continue
            pdu, payload = populate(sqe, prof)
            ctx = BpfCtx(sqe.user_data, sqe.opcode, (sqe.flags | flags) & 0x7F, pdu, payload).pack()
            allowed = run(checked, ctx).allowed
            agreed = allowed == (kernel != "EACCES")
            tally.compared("vm interpreter verdicts", agreed=agreed, detail=f"{prog.hex()} {req} kernel={kernel}")
            if not agreed:
                bad.append(f"program {prog.hex()} request {req}: interpreter allowed={allowed}, kernel {kernel}")
    assert not bad, "\n".join(bad[:20])


def _model_sqe(req: dict[str, Any]) -> abisqe.Sqe:
    """The kernel's view of a differential request (the path matters to the model only for prep)."""
    op = sqe_op(req["op"])
    ud = req["ud"]
    if op.name == "CONNECT":
        return abisqe.connect(0, abisqe.sockaddr(req["family"], req["addr"], req["port"]), req.get("addr_len"),
                              user_data=ud)
    if op.name == "OPENAT":
        return abisqe.openat("/dev/null", req["flags"], req["mode"], user_data=ud)
    if op.name == "OPENAT2":
        return abisqe.openat2("/dev/null", abisqe.OpenHow(req["flags"], req["mode"], req.get("resolve", 0)),
                              user_data=ud)
    if op.name == "SOCKET":
        return abisqe.socket(req.get("family", 0), req.get("type", 0), req.get("protocol", 0), user_data=ud)
    return abisqe.Sqe(int(op), user_data=ud)
