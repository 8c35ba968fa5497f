"""`watch` on this machine's own kernel: a ring restricted to NOP (classic ring restrictions, on every kernel since
5.10) refuses a READ with EACCES, and the watcher reports exactly that request from io_uring_req_failed."""

from __future__ import annotations

import os

import pytest

from ringfence.abi import sqe as abisqe
from ringfence.abi.layout import Restriction
from ringfence.abi.opcodes import RestrictionOp, SetupFlag, SqeOp
from ringfence.errors import UnsupportedError
from ringfence.learn import observe
from ringfence.learn.tracefs import find_root, session
from ringfence.learn.watch import Watcher
from ringfence.live import sqes
from ringfence.live.ring import Ring

pytestmark = pytest.mark.live


def _restricted_read() -> int:
    with Ring.setup(4, SetupFlag.R_DISABLED) as ring:
        if ring.register_restrictions([Restriction(RestrictionOp.SQE_OP, SqeOp.NOP)]) < 0 or ring.enable() < 0:
            return 2
        for sqe in (abisqe.Sqe(SqeOp.NOP), abisqe.Sqe(SqeOp.READ, fd=0, len=1, user_data=77)):
            ring.queue(sqes.prepare(sqe, buffer=1))
        ring.submit()
        results = sorted(c.res for c in ring.wait(quiet=2.0, limit=5.0))
    return 0 if results == [-13, 0] else 3


def test_watch_reports_a_classic_denial() -> None:
    if os.geteuid() != 0:
        pytest.skip("environment: watching needs root")
    try:
        find_root()
    except UnsupportedError as exc:
        pytest.skip(f"environment: {exc}")
    watcher = Watcher()
    with session(tracepoints=("io_uring_req_failed",), failed_filter="error == -13") as s:
        status = observe.run(_restricted_read, s, observers=False)
        denials = [d for d in map(watcher.feed, s.text().splitlines()) if d is not None]
    assert status == 0  # the workload saw NOP succeed and READ refused
    assert [(d.shape.opcode, d.shape.ctx, d.text) for d in denials] == [(SqeOp.READ, (), "READ")]
