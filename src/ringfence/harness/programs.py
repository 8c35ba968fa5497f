"""Differential helpers for the cBPF checker and interpreter: what does the real kernel say about a program?

:func:`register_outcomes` asks whether the kernel accepts each program (as a *ring* filter: no privilege, nothing
irreversible). :func:`verdicts` installs one program as a ring filter and submits requests through it, reporting
``"EACCES"`` where the program denied and the request's own outcome otherwise. Requests never leave the
machine: CONNECTs run in a forked child inside a private network namespace, created descriptors are closed, and
creating opens go to a private temp directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ringfence.abi.constants import O
from ringfence.abi.ctx import parse_constant
from ringfence.abi.layout import FilterRegistration
from ringfence.abi.opcodes import SqeFlag, SqeOp, sqe_flags, sqe_op
from ringfence.errors import KernelError, outcome_of
from ringfence.harness.netns import enter_private_netns
from ringfence.live import sqes
from ringfence.live.child import run_in_child
from ringfence.live.ring import Ring, register_bpf_filter

#: A request that completed without a CQE (only possible with ``CQE_SKIP_SUCCESS``... or a request still running).
NO_CQE = "none"
_CREATING = O["O_CREAT"] | O["__O_TMPFILE"]


def register_outcomes(programs: Sequence[bytes], *, opcode: int = SqeOp.NOP, flags: int = 0, pdu_size: int = 0,
                      per_ring: int = 64) -> list[str]:
    """``"ok"`` or the errno name of registering each program as a ring filter for ``opcode``.

    ``filter_len`` is ``len(program) // 8``. Accepted filters stack on the ring, so rings are replaced every
    ``per_ring`` programs to bound kernel memory.
    """
    out: list[str] = []
    ring: Ring | None = None
    try:
        for i, program in enumerate(programs):
            if ring is None or i % per_ring == 0:
                if ring is not None:
                    ring.close()
                ring = Ring.setup(1)
            result, _ = register_bpf_filter(ring.fd, FilterRegistration(opcode, program, flags, pdu_size))
            out.append(outcome_of(result))
    finally:
        if ring is not None:
            ring.close()
    return out


def _get(req: Mapping[str, Any], key: str, default: int | str = 0) -> int:
    return parse_constant(req.get(key, default))


def _prepare(req: Mapping[str, Any], tmp: str, keep: list[object]) -> sqes.Prepared:
    op = sqe_op(req["op"]) if isinstance(req["op"], str) else SqeOp(int(req["op"]))
    ud = int(req.get("user_data", req.get("ud", 0)))
    flags = sqe_flags(req.get("sqe_flags", 0))
    if op == SqeOp.NOP:
        return sqes.nop(ud, flags)
    if op == SqeOp.SOCKET:
        return sqes.socket_(_get(req, "family"), _get(req, "type"), _get(req, "protocol"), user_data=ud,
                            flags=flags)
    if op in (SqeOp.OPENAT, SqeOp.OPENAT2):
        open_flags = _get(req, "flags")
        path = "/dev/null"
        if open_flags & _CREATING:  # never create anything outside our own temp directory
            path = tmp if open_flags & O["__O_TMPFILE"] else os.path.join(tmp, "f")
        if op == SqeOp.OPENAT:
            return sqes.openat(-100, path, open_flags, _get(req, "mode"), user_data=ud, flags=flags)
        return sqes.openat2(-100, path, open_flags, _get(req, "mode"), _get(req, "resolve"), user_data=ud,
                            flags=flags)
    if op == SqeOp.CONNECT:
        family = _get(req, "family")
        sock_family = _get(req, "socket", family if family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)
                           else socket.AF_INET)
        sock = socket.socket(sock_family, _get(req, "type", "SOCK_STREAM"))
        keep.append(sock)
        addr = str(req.get("addr", ""))
        if family == socket.AF_UNIX:
            addr = os.path.join(tmp, addr or "sock")
        addr_len = req.get("addr_len")
        return sqes.connect(sock.fileno(), family, addr, int(req.get("port", 0)), user_data=ud, flags=flags,
                            addr_len=None if addr_len is None else int(addr_len))
    raise ValueError(f"verdicts: unsupported request opcode {op.name}")


def _one(ring: Ring, req: Mapping[str, Any], tmp: str) -> str:
    keep: list[object] = []
    prepared = _prepare(req, tmp, keep)
    op = prepared.sqe.opcode
    ring.queue(prepared)
    submitted = ring.submit()
    if submitted < 0:
        return outcome_of(submitted)
    cqes = ring.wait()
    for sock in keep:
        if isinstance(sock, socket.socket):
            sock.close()
    if not cqes:
        return "ok" if prepared.sqe.flags & SqeFlag.CQE_SKIP_SUCCESS else NO_CQE
    res = cqes[0].res
    if res >= 0 and op in (SqeOp.SOCKET, SqeOp.OPENAT, SqeOp.OPENAT2):
        os.close(res)
    return outcome_of(res)


@contextmanager
def _tempdir() -> Iterator[str]:
    tmp = tempfile.mkdtemp(prefix="ringfence-verdicts-")
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _verdicts_here(program: bytes, requests: Sequence[Mapping[str, Any]], flags: int, pdu_size: int) -> list[str]:
    rings: dict[int, Ring] = {}
    out: list[str] = []
    with _tempdir() as tmp:
        try:
            for req in requests:
                op = int(sqe_op(req["op"]) if isinstance(req["op"], str) else int(req["op"]))
                if op not in rings:
                    ring = Ring.setup(4)
                    rings[op] = ring
                    result, _ = register_bpf_filter(ring.fd, FilterRegistration(op, program, flags, pdu_size))
                    if result < 0:
                        raise KernelError(-result, f"installing the program as a ring filter for opcode {op}")
                out.append(_one(rings[op], req, tmp))
        finally:
            for ring in rings.values():
                ring.close()
    return out


def verdicts(program: bytes, requests: Sequence[Mapping[str, Any]], *, flags: int = 0,
             pdu_size: int = 0) -> list[str]:
    """Per request: ``"EACCES"`` if denied, else its own outcome (``"ok"``, ``"ECONNREFUSED"``…).

    Requests are dicts: ``op`` plus ``user_data``/``ud``, ``sqe_flags`` and the opcode's fields (SOCKET
    ``family``/``type``/``protocol``; OPENAT/OPENAT2 ``flags``/``mode``/``resolve`` on ``/dev/null``; CONNECT
    ``family``/``addr``/``port``/``addr_len``/``socket``/``type``). Raises :class:`KernelError` if the program
    cannot be installed.
    """
    if any(sqe_op(r["op"]) == SqeOp.CONNECT if isinstance(r["op"], str) else int(r["op"]) == SqeOp.CONNECT
           for r in requests):
        def in_netns() -> list[str]:
            enter_private_netns()
            return _verdicts_here(program, requests, flags, pdu_size)

        return list(run_in_child(in_netns, timeout=60 + 2 * len(requests)))
    return _verdicts_here(program, requests, flags, pdu_size)
