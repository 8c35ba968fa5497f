"""One kernel's batch output against the model: every comparison, counted, and every difference as a finding.

Pure: it reads what the batch sent and what the kernel answered (``out.json`` plus ``"sent"``) and needs no VM,
so recorded output can be re-checked (``RINGFENCE_VM_RESULTS``) or fed in by a test. The model runs with the static
profile of the probe's :class:`ProfileMatch` (recomputed here from the measured fields, never from a name): the
kernel's own profile, or the nearest one when its version has none ("drift"). Each adjustment the probe measured
is a finding of its own. For a kernel with a profile, a finding is a failure; for one without, the findings
report is the result.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance_compare import check_against_model

from ringfence.abi import BpfCtx, sqe_op
from ringfence.abi import sqe as abisqe
from ringfence.abi.profiles import KernelProfile, ProfileMatch, has_profile
from ringfence.bpf import Program, check, diagnose, run
from ringfence.live.probe import match_report
from ringfence.model.outcome import Refused
from ringfence.model.prep import populate, prep
from ringfence.scenario import load, parse


@dataclass(frozen=True)
class Finding:
    """One difference between the model and the kernel: what kind, which item, and exactly how."""

    kind: str    # "probe", "corpus", "expectations", "random", "checker", "verdict", "prep", "harness", "batch"
    item: str    # scenario path or index, program, request
    detail: str  # step-by-step model-vs-kernel text


@dataclass
class KernelComparison:
    """Everything compared for one booted kernel."""

    suite: str
    release: str
    match: ProfileMatch
    seconds: float | None = None
    notes: tuple[str, ...] = ()
    counts: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    by_item: dict[tuple[str, str], list[Finding]] = field(default_factory=dict)

    @property
    def profiled(self) -> bool:
        """A profile was written for this kernel's version (else the model ran with the nearest: drift)."""
        return has_profile(self.release)

    @property
    def model_profile(self) -> KernelProfile:
        """The static profile the model runs with (adjustments are reported, not applied)."""
        return self.match.profile

    @property
    def failing(self) -> bool:
        """Differences fail only a kernel that has a profile; for the others they are the findings report."""
        return self.profiled and bool(self.findings)

    def compared(self, kind: str, item: str, problem: str | None) -> None:
        self.counts[f"{kind} compared"] += 1
        if problem is not None:
            self.counts[f"{kind} disagreements"] += 1
            finding = Finding(kind, item, problem)
            self.findings.append(finding)
            self.by_item.setdefault((kind, item), []).append(finding)

    def problems(self, kind: str, item: str) -> list[Finding]:
        return self.by_item.get((kind, item), [])

    def headline(self) -> str:
        where = f"profile {self.model_profile.label}" if self.profiled else (
            f"NO PROFILE for this version: model ran with the nearest, {self.model_profile.label}")
        took = "" if self.seconds is None else f", {self.seconds:.0f} s incl. boot"
        return f"{self.suite}: {self.release} ({where}{took})"

    def summary_lines(self) -> list[str]:
        kinds = sorted({k.rsplit(" ", 1)[0] for k in self.counts})
        lines = [self.headline()] + [f"  note: {n}" for n in self.notes]
        for kind in kinds:
            total, bad = self.counts[f"{kind} compared"], self.counts[f"{kind} disagreements"]
            lines.append(f"  {kind}: {total - bad} of {total} agree" + (f", {bad} differ" if bad else "")
                         + (f" ({self.skipped[kind]} skipped by both)" if self.skipped[kind] else ""))
        return lines


def _probe_finding(cmp: KernelComparison) -> None:
    problem = None
    if not cmp.match.matches_exactly:
        problem = "the kernel differs from profile " + cmp.match.profile.name + ": " + "; ".join(
            a.render() for a in cmp.match.adjustments)
    cmp.compared("probe", "profile match", problem)


def _scenarios(cmp: KernelComparison, sent: dict[str, Any], out: dict[str, Any]) -> None:
    groups = sent.get("groups", {})
    n_corpus, n_random = groups.get("corpus", 0), groups.get("random", 0)
    items, records = sent["scenarios"], out["scenarios"]
    if len(items) != len(records):
        cmp.compared("batch", "scenario records", f"sent {len(items)} scenarios, got {len(records)} records")
        return
    prof = cmp.model_profile
    for i, (item, record) in enumerate(zip(items, records, strict=True)):
        if i < n_corpus:
            scenario, kind, name = load(item), "corpus", _corpus_id(item)
        elif i < n_corpus + n_random:
            scenario, kind, name = parse(item, path=f"<random {i - n_corpus}>"), "random", f"#{i - n_corpus}"
        else:  # the harness's own scenarios: checked against their expectations, not the model
            name = record.get("name") or f"#{i}"
            if record.get("error") or (not record.get("skipped") and not record.get("passed")):
                error = (record.get("transcript") or {}).get("error")
                cmp.compared("harness", name, record.get("error") or error or "\n".join(record.get("mismatches", [])))
            elif not record.get("skipped"):
                cmp.compared("harness", name, None)
            continue
        problem = check_against_model(scenario, record, prof)
        if record.get("skipped") and problem is None:
            cmp.skipped[kind] += 1  # both sides skip it (a feature the guest lacks): nothing to compare
            continue
        cmp.compared(kind, name, problem)
        if kind == "corpus" and record.get("mismatches") and problem is None:
            # the model agreed with the kernel, but both differ from the file's expectation
            cmp.compared("expectations", name, "kernel differs from the scenario's expectations:\n"
                         + "\n".join(record["mismatches"]))


def _corpus_id(path: str) -> str:
    p = Path(path)
    return f"{p.parent.name}/{p.stem}"


def _checker(cmp: KernelComparison, sent_job: dict[str, Any], job: dict[str, Any]) -> None:
    if "error" in job:
        cmp.compared("checker", "job", f"batch job error: {job['error']}")
        return
    progs = [bytes.fromhex(p) for p in sent_job["programs"]]
    for prog, kernel in zip(progs, job["outcomes"], strict=True):
        n = len(prog) // 8
        ours = "EINVAL" if n == 0 or n > 4096 or diagnose(Program.from_bytes(prog)) else "ok"
        cmp.compared("checker", prog[:80].hex(), None if ours == kernel else f"model={ours} kernel={kernel}")


def _verdicts(cmp: KernelComparison, sent_job: dict[str, Any], job: dict[str, Any]) -> None:
    """Each request's kernel outcome is what the model's prep says (a prep failure hides the filter, §8.1), else
    ``EACCES`` exactly when the interpreter denies on the context the model's populate hook builds."""
    prog = bytes.fromhex(sent_job["program"])
    if "error" in job:
        cmp.compared("verdict", prog.hex(), f"batch job error: {job['error']}")
        return
    checked = check(Program.from_bytes(prog))
    for req, kernel in zip(sent_job["requests"], job["outcomes"], strict=True):
        sqe = model_sqe(req)
        try:
            flags = prep(sqe)
        except Refused as refused:
            cmp.compared("prep", f"{req}", None if kernel == refused.errno else
                         f"model prep={refused.errno} kernel={kernel}")
            continue
        pdu, payload = populate(sqe, cmp.model_profile)
        ctx = BpfCtx(sqe.user_data, sqe.opcode, (sqe.flags | flags) & 0x7F, pdu, payload).pack()
        allowed = run(checked, ctx).allowed
        cmp.compared("verdict", f"program {prog.hex()} request {req}", None if allowed == (kernel != "EACCES") else
                     f"interpreter allowed={allowed}, kernel {kernel}")


def model_sqe(req: dict[str, Any]) -> abisqe.Sqe:
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


def compare_kernel(suite: str, out: dict[str, Any], *, seconds: float | None = None,
                   notes: tuple[str, ...] = ()) -> KernelComparison:
    """Compare one kernel's batch output (with the input it was sent under ``"sent"``) against the model."""
    sent = out["sent"]
    release = out["kernel"]
    cmp = KernelComparison(suite, release, match_report(release, out["probe"]), seconds, notes)
    _probe_finding(cmp)
    _scenarios(cmp, sent, out)
    for sent_job, job in zip(sent["jobs"], out["jobs"], strict=True):
        tag = sent_job.get("tag")
        if tag == "checker":
            _checker(cmp, sent_job, job)
        elif tag == "verdict":
            _verdicts(cmp, sent_job, job)
        elif tag == "harness":
            got = job.get("outcomes", job.get("error"))
            cmp.compared("harness", f"{sent_job['kind']} job", None if got == sent_job["expect"] else
                         f"expected {sent_job['expect']}, kernel {got}")
    return cmp


def findings_report(cmp: KernelComparison) -> str:
    """The readable report: the kernel, the profile the model used, the counts, and every difference in full."""
    lines = [f"# Model vs kernel: {cmp.release} ({cmp.suite})", ""]
    if cmp.profiled:
        lines.append(f"Profile {cmp.match.profile.name} was written for this kernel's version: every difference "
                     "below is a conformance failure.")
    else:
        lines.append(f"No profile was written for this kernel's version. The model ran with the nearest profile, "
                     f"{cmp.match.profile.name}; the differences below (the probe's adjustments first) are findings "
                     "(kernel drift), not failures.")
    lines += ["", f"Profile used by the model: {cmp.model_profile.label}", "", "## Counts", ""]
    lines += [f"- {line.strip()}" for line in cmp.summary_lines()[1:]]
    lines += ["", f"## Differences ({len(cmp.findings)})", ""]
    if not cmp.findings:
        lines.append("None: the model and the kernel agreed on everything compared.")
    for f in cmp.findings:
        lines += [f"### {f.kind}: {f.item}", "", "```", f.detail, "```", ""]
    return "\n".join(lines).rstrip() + "\n"
