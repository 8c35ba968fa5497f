"""What the running kernel's io_uring sandboxing can do, measured rather than guessed from the version.

Everything reversible (rings, ring filters, QUERY) is tried in-process on throwaway rings; everything
irreversible (no_new_privs, task restrictions, task filters) only in forked children, so probing never leaves
the caller restricted. The report says which static :mod:`ringfence.abi.profiles` profile the kernel matches
and lists every measured difference as an adjustment (a backported source-side COW, say); it never renames or
rewrites a profile.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field, fields
from typing import Any

from ringfence.abi.layout import FilterRegistration, Restriction
from ringfence.abi.opcodes import RegisterOp, RestrictionOp, SetupFlag, SqeOp, op_name
from ringfence.abi.profiles import FeatureValue, KernelProfile, ProfileMatch
from ringfence.errors import KernelError, errno_name, outcome_of
from ringfence.live import _sys, sqes
from ringfence.live.child import ChildError, run_in_child
from ringfence.live.ring import (
    Ring,
    probe_ops,
    query_opcodes,
    register_bpf_filter,
    register_restrictions,
    register_task_restrictions,
)

ALLOW_ALL = bytes.fromhex("0600000001000000")  # ret #1
DENY_ALL = bytes.fromhex("0600000000000000")   # ret #0


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """Every measured fact. Outcomes are ``"ok"`` or errno names; ``None`` means "could not be measured"."""

    release: str
    machine: str
    io_uring_disabled: int | None
    io_uring_group: int | None
    io_uring: bool
    setup_error: str | None
    setup_features: int | None
    probe_last_op: int | None
    supported_ops: tuple[str, ...]
    query: dict[str, int] | None
    query_error: str | None
    ring_filters: str | None
    task_filters: str | None
    task_restrictions: str | None
    pdu_sizes: dict[str, int] | None
    classic_semantics: str | None
    classic_nop_outcome: str | None
    source_cow: bool | None
    source_cow_outcome: str | None
    no_new_privs: bool
    cap_sys_admin: bool
    uid: int
    match: ProfileMatch
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["supported_ops"] = list(self.supported_ops)
        data["notes"] = list(self.notes)
        data["match"] = self.match.to_json()
        data["profile"] = self.match.profile.name  # the matched static profile; adjustments are under "match"
        return {"schema": 1, **data}

    @property
    def profile(self) -> KernelProfile:
        """The profile that describes this kernel: the matched static one with the adjustments applied."""
        return self.match.adjusted()

    @property
    def op_last(self) -> int | None:
        """``IORING_OP_LAST`` as the kernel reports it (QUERY, else PROBE)."""
        if self.query:
            return self.query["nr_request_opcodes"]
        return None if self.probe_last_op is None else self.probe_last_op + 1


def _sysctl(name: str) -> int | None:
    try:
        with open(f"/proc/sys/kernel/{name}") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def probe_setup() -> tuple[str | None, int | None]:
    """``(errno name or None, setup features)`` of creating a plain ring."""
    try:
        with Ring.setup(1) as ring:
            return None, ring.features
    except KernelError as exc:
        return exc.name, None


def probe_opcodes() -> tuple[int | None, tuple[str, ...]]:
    """``IORING_REGISTER_PROBE``: the last opcode and the names of the supported ones."""
    with Ring.setup(1) as ring:
        result, probe = probe_ops(ring.fd)
    if result < 0:
        return None, ()
    ops = tuple(op_name(probe.ops[i].op) for i in range(probe.ops_len)
                if probe.ops[i].flags & _sys.IO_URING_OP_SUPPORTED)
    return probe.last_op, ops


def probe_query() -> tuple[dict[str, int] | None, str | None]:
    """Blind ``IORING_REGISTER_QUERY`` op 0."""
    result, hdr, data = query_opcodes()
    if result < 0:
        return None, errno_name(-result)
    if hdr.result < 0:
        return None, errno_name(-hdr.result)
    return {"nr_request_opcodes": data.nr_request_opcodes, "nr_register_opcodes": data.nr_register_opcodes,
            "feature_flags": data.feature_flags, "ring_setup_flags": data.ring_setup_flags,
            "enter_flags": data.enter_flags, "sqe_flags": data.sqe_flags, "size": hdr.size}, None


def probe_ring_filter() -> str:
    """Outcome of an allow-all NOP filter on a throwaway ring (needs no privilege)."""
    with Ring.setup(1) as ring:
        result, _ = register_bpf_filter(ring.fd, FilterRegistration(SqeOp.NOP, ALLOW_ALL))
    return outcome_of(result)


def probe_pdu_sizes(op_last: int) -> dict[str, int] | None:
    """The kernel's payload size per opcode, read from the write-back of a registration with ``pdu_size`` 255.

    255 exceeds every size, so each registration fails with ``-EMSGSIZE`` and nothing is installed (§5.4).
    ``None`` if the kernel has no filters.
    """
    sizes: dict[str, int] = {}
    with Ring.setup(1) as ring:
        for op in range(op_last):
            result, back = register_bpf_filter(ring.fd, FilterRegistration(op, ALLOW_ALL, pdu_size=255))
            if result == -errno.EINVAL and back == 255:
                return None
            sizes[op_name(op)] = back
    return sizes


def probe_classic_semantics() -> tuple[str | None, str | None]:
    """Pre-7.0 "joint" or 7.0 "split" (§3.7): does a ring with only a REGISTER_OP record still deny NOP?"""
    with Ring.setup(2, SetupFlag.R_DISABLED) as ring:
        if register_restrictions(ring.fd, [Restriction(RestrictionOp.REGISTER_OP, RegisterOp.PROBE)]) < 0:
            return None, None
        if ring.enable() < 0:
            return None, None
        ring.queue(sqes.nop(1))
        ring.submit()
        cqes = ring.wait()
    if len(cqes) != 1:
        return None, None
    outcome = outcome_of(cqes[0].res)
    return {"EACCES": "joint", "ok": "split"}.get(outcome), outcome


def _child_task_filter() -> str:
    _sys.set_no_new_privs()
    result, _ = register_bpf_filter(-1, FilterRegistration(SqeOp.NOP, ALLOW_ALL))
    return outcome_of(result)


def _child_task_restrictions() -> str:
    _sys.set_no_new_privs()
    return outcome_of(register_task_restrictions([Restriction(RestrictionOp.SQE_OP, SqeOp.NOP)]))


def _child_source_cow() -> str | None:
    """Spec §6.6: F1 allow NOP; ring A; F2 deny NOP; NOP on A. EACCES: shared table (7.0–7.2); ok: 7.3 COW."""
    _sys.set_no_new_privs()
    if register_bpf_filter(-1, FilterRegistration(SqeOp.NOP, ALLOW_ALL))[0] < 0:
        return None
    with Ring.setup(2) as ring:
        if register_bpf_filter(-1, FilterRegistration(SqeOp.NOP, DENY_ALL))[0] < 0:
            return None
        ring.queue(sqes.nop(1))
        ring.submit()
        cqes = ring.wait()
    return outcome_of(cqes[0].res) if len(cqes) == 1 else None


def _in_child(fn: Any, notes: list[str]) -> Any:
    try:
        return run_in_child(fn)
    except ChildError as exc:
        notes.append(f"{fn.__name__}: {str(exc).splitlines()[0]}")
        return None


def measured_features(*, op_last: int | None, register_last: int | None, classic_semantics: str | None,
                      ring_filters: str | None, source_cow: bool | None, pdu_sizes: dict[str, int] | None,
                      task_restrictions: str | None, task_filters: str | None,
                      blind_base: frozenset[RegisterOp]) -> dict[str, FeatureValue | None]:
    """Probe outcomes as profile field values (None: not measured, so no adjustment is derived from it).

    ``blind_base`` is the profile's blind set: the probe tests only RESTRICTIONS and BPF_FILTER blind.
    """
    blind: frozenset[RegisterOp] | None = None
    if task_restrictions is not None or task_filters is not None:
        ops = set(blind_base)
        for outcome, op in ((task_restrictions, RegisterOp.RESTRICTIONS), (task_filters, RegisterOp.BPF_FILTER)):
            if outcome == "ok":
                ops.add(op)
            elif outcome is not None:
                ops.discard(op)
        blind = frozenset(ops)
    pdu = None if pdu_sizes is None else {SqeOp[n]: v for n, v in pdu_sizes.items() if v and n in SqeOp.__members__}
    return {"op_last": op_last, "register_last": register_last,
            "split_restrictions": None if classic_semantics is None else classic_semantics == "split",
            "bpf_filters": None if ring_filters is None else ring_filters == "ok", "source_cow": source_cow,
            "pdu_sizes": pdu, "blind_ops": blind}


def match_report(release: str, report_fields: dict[str, Any]) -> ProfileMatch:
    """The profile match for a kernel, from the probe's measured fields."""
    base = ProfileMatch.compare(release, {}).profile
    q = report_fields.get("query") or {}
    last_op = report_fields.get("probe_last_op")
    op_last = q.get("nr_request_opcodes") if q else (None if last_op is None else last_op + 1)
    return ProfileMatch.compare(release, measured_features(
        op_last=op_last, register_last=q.get("nr_register_opcodes") if q else None,
        classic_semantics=report_fields.get("classic_semantics"), ring_filters=report_fields.get("ring_filters"),
        source_cow=report_fields.get("source_cow"), pdu_sizes=report_fields.get("pdu_sizes"),
        task_restrictions=report_fields.get("task_restrictions"), task_filters=report_fields.get("task_filters"),
        blind_base=base.blind_ops))


def probe() -> ProbeReport:
    """Measure everything; the calling process stays unrestricted."""
    uname = os.uname()
    notes: list[str] = []
    setup_error, features = probe_setup()
    common: dict[str, Any] = {
        "release": uname.release, "machine": uname.machine, "io_uring_disabled": _sysctl("io_uring_disabled"),
        "io_uring_group": _sysctl("io_uring_group"), "no_new_privs": _sys.no_new_privs(),
        "cap_sys_admin": _sys.has_cap_sys_admin(), "uid": os.getuid()}
    if setup_error is not None:
        return ProbeReport(**common, io_uring=False, setup_error=setup_error, setup_features=None,
                           probe_last_op=None, supported_ops=(), query=None, query_error=None, ring_filters=None,
                           task_filters=None, task_restrictions=None, pdu_sizes=None, classic_semantics=None,
                           classic_nop_outcome=None, source_cow=None, source_cow_outcome=None,
                           match=ProfileMatch.compare(uname.release, {}), notes=("io_uring_setup failed",))
    last_op, supported = probe_opcodes()
    query, query_error = probe_query()
    op_last = query["nr_request_opcodes"] if query else (None if last_op is None else last_op + 1)
    ring_filters = probe_ring_filter()
    pdu = probe_pdu_sizes(op_last) if ring_filters == "ok" and op_last else None
    semantics, nop_outcome = probe_classic_semantics()
    task_filters = _in_child(_child_task_filter, notes)
    task_restrictions = _in_child(_child_task_restrictions, notes)
    cow_outcome = _in_child(_child_source_cow, notes) if task_filters == "ok" else None
    cow = {"EACCES": False, "ok": True}.get(cow_outcome) if cow_outcome else None
    measured: dict[str, Any] = dict(
        setup_error=None, setup_features=features, probe_last_op=last_op, supported_ops=supported, query=query,
        query_error=query_error, ring_filters=ring_filters, task_filters=task_filters,
        task_restrictions=task_restrictions, pdu_sizes=pdu, classic_semantics=semantics,
        classic_nop_outcome=nop_outcome, source_cow=cow, source_cow_outcome=cow_outcome)
    return ProbeReport(**common, **measured, io_uring=True, match=match_report(uname.release, measured),
                       notes=tuple(notes))


_CACHE: dict[str, tuple[ProbeReport, KernelProfile]] = {}


def probed_profile() -> tuple[ProbeReport, KernelProfile]:
    """The probe report and the profile that describes this kernel (``report.match.adjusted()``), measured once
    per process and kernel. ``report.match`` says whether that is a static profile exactly."""
    release = os.uname().release
    if release not in _CACHE:
        report = probe()
        _CACHE[release] = (report, report.profile)
    return _CACHE[release]


def render(report: ProbeReport) -> str:
    """Aligned ``feature: value`` lines for humans."""
    def show(v: object) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        return str(v)

    q = report.query or {}
    pdu = ", ".join(f"{k} {v}" for k, v in (report.pdu_sizes or {}).items() if v) or (
        "none" if report.pdu_sizes is not None else "-")
    rows: list[tuple[str, str]] = [
        ("kernel", f"{report.release} ({report.machine})"),
        ("io_uring_disabled sysctl", show(report.io_uring_disabled)),
        ("io_uring_group sysctl", show(report.io_uring_group)),
        ("io_uring", "yes" if report.io_uring else f"no ({report.setup_error})"),
        ("setup features", "-" if report.setup_features is None else hex(report.setup_features)),
        ("IORING_OP_LAST", show(report.op_last)),
        ("supported SQE opcodes", f"{len(report.supported_ops)}"),
        ("IORING_REGISTER_LAST", show(q.get("nr_register_opcodes")) if q else f"- ({report.query_error})"),
        ("QUERY sqe_flags", hex(q["sqe_flags"]) if q else "-"),
        ("classic restrictions", f"{show(report.classic_semantics)} (REGISTER_OP-only ring: NOP "
                                 f"{show(report.classic_nop_outcome)})"),
        ("ring filters", show(report.ring_filters)),
        ("task filters", show(report.task_filters)),
        ("task restrictions", show(report.task_restrictions)),
        ("filter payload sizes", pdu),
        ("source-side COW", f"{show(report.source_cow)} (NOP after a later task deny: "
                            f"{show(report.source_cow_outcome)})"),
        ("no_new_privs", show(report.no_new_privs)),
        ("CAP_SYS_ADMIN", show(report.cap_sys_admin)),
        ("uid", str(report.uid)),
        ("profile", report.match.render()),
    ]
    rows += [("adjustment", a.render()) for a in report.match.adjustments]
    width = max(len(k) for k, _ in rows) + 1
    lines = [f"{k + ':':<{width}} {v}" for k, v in rows]
    lines += [f"{'note:':<{width}} {n}" for n in report.notes]
    return "\n".join(lines)
