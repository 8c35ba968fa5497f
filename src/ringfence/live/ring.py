"""A minimal io_uring instance over raw syscalls: set up, queue SQEs, submit, reap CQEs, register things.

Not a general I/O library: it exists to put exactly the SQEs and register calls a scenario describes in front of
the kernel and to report what came back. Queue and completion indices are always read from the shared ring
memory rather than cached, so a process forked later (which shares the mapping) can keep using the ring.

Register helpers follow liburing's convention: they return the kernel's result or the **negative** errno, because
the callers record outcomes rather than handle errors. Only :meth:`Ring.setup` raises.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import struct
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ringfence.abi.layout import (
    BPF_PDU_SIZE_OFFSET,
    SOCK_FILTER_SIZE,
    FilterRegistration,
    Restriction,
    TaskRestrictionHeader,
    pack_task_restrictions,
)
from ringfence.abi.opcodes import RegisterOp, SetupFlag, SqeFlag
from ringfence.errors import KernelError, RingfenceError
from ringfence.live import _sys

if TYPE_CHECKING:  # not imported at run time: the apply path never builds requests
    from ringfence.live.sqes import Prepared

_U32 = struct.Struct("=I")
_CQE = struct.Struct("=QiI")

#: Seconds without a new CQE after which a wait gives up (some requests legitimately never complete).
QUIET_TIMEOUT = 0.5
#: Shorter quiet time once only CQE_SKIP_SUCCESS requests are still outstanding (successes post nothing).
#: ``RINGFENCE_SKIP_QUIET`` (seconds) overrides it where completions are slow, as in an emulated VM.
SKIP_QUIET_TIMEOUT = float(os.environ.get("RINGFENCE_SKIP_QUIET", "0.05"))
#: Upper bound for one wait, whatever happens.
WAIT_LIMIT = 5.0


class RingFullError(RingfenceError):
    """The submission queue has no free entry."""


@dataclass(frozen=True, slots=True)
class Completion:
    """One CQE."""

    user_data: int
    res: int
    flags: int


class Ring:
    """One io_uring instance: its fd, its three mappings, and the memory its in-flight requests reference."""

    def __init__(self, fd: int, params: _sys.Params) -> None:
        self.fd = fd
        self.params = params
        self.setup_flags = params.flags
        self.features = params.features
        sq, cq = params.sq_off, params.cq_off
        self.sq_entries, self.cq_entries = params.sq_entries, params.cq_entries
        self.sqe_size = 128 if params.flags & SetupFlag.SQE128 else 64
        self.cqe_size = 32 if params.flags & SetupFlag.CQE32 else 16
        sq_size = sq.array + params.sq_entries * 4
        cq_size = cq.cqes + params.cq_entries * self.cqe_size
        self._maps: list[mmap.mmap] = []
        try:
            if params.features & _sys.IORING_FEAT_SINGLE_MMAP:
                self.sq_map = self.cq_map = self._map(max(sq_size, cq_size), _sys.IORING_OFF_SQ_RING)
            else:
                self.sq_map = self._map(sq_size, _sys.IORING_OFF_SQ_RING)
                self.cq_map = self._map(cq_size, _sys.IORING_OFF_CQ_RING)
            self.sqe_map = self._map(params.sq_entries * self.sqe_size, _sys.IORING_OFF_SQES)
        except OSError:
            self._unmap()
            raise
        self._sq, self._cq = sq, cq
        self._sq_mask = _U32.unpack_from(self.sq_map, sq.ring_mask)[0]
        self._cq_mask = _U32.unpack_from(self.cq_map, cq.ring_mask)[0]
        self._pending: deque[tuple[int, list[object]]] = deque()   # queued, not yet consumed: (flags, keep)
        self._inflight = 0                                        # consumed, CQE not yet seen
        self._inflight_skip = 0                                   # ... of which carry CQE_SKIP_SUCCESS
        self._keep: list[object] = []                             # memory of consumed requests
        self.closed = False

    # -- setup and teardown ------------------------------------------------------------------------------------

    @classmethod
    def setup(cls, entries: int = 8, flags: int = 0, *, sq_thread_idle: int = 0) -> Ring:
        """``io_uring_setup`` plus the mappings; raises :class:`KernelError` with the errno name."""
        params = _sys.Params()
        params.flags = flags
        params.sq_thread_idle = sq_thread_idle
        fd = _sys.setup(entries, params)
        try:
            return cls(fd, params)
        except OSError as exc:
            os.close(fd)
            raise KernelError(exc.errno or 0, "mmap of the io_uring rings") from None

    def _map(self, size: int, offset: int) -> mmap.mmap:
        m = mmap.mmap(self.fd, size, mmap.MAP_SHARED | mmap.MAP_POPULATE, mmap.PROT_READ | mmap.PROT_WRITE,
                      offset=offset)
        self._maps.append(m)
        return m

    def _unmap(self) -> None:
        for m in self._maps:
            m.close()
        self._maps.clear()

    def close(self) -> None:
        """Unmap and close the descriptor. In-flight requests are cancelled by the kernel."""
        if self.closed:
            return
        self.closed = True
        self._unmap()
        os.close(self.fd)
        self._keep.clear()
        self._pending.clear()

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- submission ---------------------------------------------------------------------------------------------

    def _u32(self, m: mmap.mmap, offset: int) -> int:
        return int(_U32.unpack_from(m, offset)[0])

    @property
    def sq_head(self) -> int:
        """The kernel's SQ head: entries before it have been consumed."""
        return self._u32(self.sq_map, self._sq.head)

    @property
    def sq_tail(self) -> int:
        return self._u32(self.sq_map, self._sq.tail)

    @property
    def pending(self) -> int:
        """SQEs queued but not yet consumed by the kernel (an earlier submit may have stopped early)."""
        return (self.sq_tail - self.sq_head) & 0xFFFFFFFF

    def queue(self, prepared: Prepared) -> None:
        """Write one SQE at the tail and publish it; its memory is kept alive until completion."""
        tail = self.sq_tail
        if (tail - self.sq_head) & 0xFFFFFFFF >= self.sq_entries:
            raise RingFullError(f"submission queue full ({self.sq_entries} entries)")
        index = tail & self._sq_mask
        raw = bytes(prepared.sqe).ljust(self.sqe_size, b"\0")
        self.sqe_map[index * self.sqe_size:(index + 1) * self.sqe_size] = raw
        if not self.setup_flags & SetupFlag.NO_SQARRAY:
            _U32.pack_into(self.sq_map, self._sq.array + 4 * index, index)
        _U32.pack_into(self.sq_map, self._sq.tail, (tail + 1) & 0xFFFFFFFF)
        self._pending.append((prepared.sqe.flags, prepared.keep))

    def submit(self) -> int:
        """``io_uring_enter`` for everything pending: SQEs consumed, or ``-errno``."""
        to_submit = self.pending
        flags = 0
        if self.setup_flags & SetupFlag.SQPOLL:
            flags |= _sys.IORING_ENTER_SQ_WAKEUP
        before = self.sq_head
        result = _sys.enter_raw(self.fd, to_submit, 0, flags)
        if result < 0:
            return result
        consumed = result
        if self.setup_flags & SetupFlag.SQPOLL:  # the poller consumes asynchronously; count what it will take
            consumed = to_submit
        elif (self.sq_head - before) & 0xFFFFFFFF != consumed:  # pragma: no cover - kernel invariant
            consumed = (self.sq_head - before) & 0xFFFFFFFF
        for _ in range(min(consumed, len(self._pending))):
            sqe_flags, keep = self._pending.popleft()
            self._inflight += 1
            self._inflight_skip += bool(sqe_flags & SqeFlag.CQE_SKIP_SUCCESS)
            self._keep.extend(keep)
        return result

    # -- completion ---------------------------------------------------------------------------------------------

    def reap(self) -> list[Completion]:
        """Every CQE currently in the completion queue, consumed."""
        head = self._u32(self.cq_map, self._cq.head)
        tail = self._u32(self.cq_map, self._cq.tail)
        out = []
        while head != tail:
            offset = self._cq.cqes + (head & self._cq_mask) * self.cqe_size
            out.append(Completion(*_CQE.unpack_from(self.cq_map, offset)))
            head = (head + 1) & 0xFFFFFFFF
        _U32.pack_into(self.cq_map, self._cq.head, head)
        self._inflight = max(0, self._inflight - len(out))
        if self._inflight == 0:
            self._inflight_skip = 0
            self._keep.clear()  # nothing in flight references these any more
        return out

    def _wait_one(self, timeout: float) -> int:
        """Block until at least one CQE or ``timeout`` seconds; the enter result (``-ETIME`` on timeout)."""
        if self.features & _sys.IORING_FEAT_EXT_ARG:
            ts = _sys.KernelTimespec(int(timeout), int((timeout % 1) * 1e9))
            arg = _sys.GeteventsArg(0, 0, 0, ctypes.addressof(ts))
            return _sys.enter_raw(self.fd, 0, 1, _sys.IORING_ENTER_GETEVENTS | _sys.IORING_ENTER_EXT_ARG,
                                  arg=ctypes.addressof(arg), argsz=ctypes.sizeof(arg))
        deadline = time.monotonic() + timeout  # pragma: no cover - every kernel ringfence targets has EXT_ARG
        while time.monotonic() < deadline:  # pragma: no cover
            _sys.enter_raw(self.fd, 0, 0, _sys.IORING_ENTER_GETEVENTS)
            if self._u32(self.cq_map, self._cq.head) != self._u32(self.cq_map, self._cq.tail):
                return 0
            time.sleep(0.005)
        return -errno.ETIME  # pragma: no cover

    def wait(self, *, quiet: float = QUIET_TIMEOUT, skip_quiet: float = SKIP_QUIET_TIMEOUT,
             limit: float = WAIT_LIMIT) -> list[Completion]:
        """Collect CQEs until every consumed SQE has one, or nothing arrives for a quiet period; never hangs.

        Requests with ``CQE_SKIP_SUCCESS`` post nothing when they succeed, so once only those can be missing the
        quiet period shrinks to ``skip_quiet``.
        """
        out = self.reap()
        deadline = time.monotonic() + limit
        while self._inflight > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            only_skips = self._inflight <= self._inflight_skip
            period = min(skip_quiet if only_skips else quiet, left)
            result = self._wait_one(period)
            got = self.reap()
            out.extend(got)
            if not got and result < 0 and result != -errno.EINTR:  # ETIME (quiet) or an error: stop
                break
        return out

    # -- registration -------------------------------------------------------------------------------------------

    def register(self, opcode: int, arg: int = 0, nr_args: int = 0) -> int:
        """Raw ``io_uring_register`` on this ring: result or ``-errno``."""
        return _sys.register_raw(self.fd, opcode, arg, nr_args)

    def enable(self) -> int:
        return self.register(RegisterOp.ENABLE_RINGS)

    def register_restrictions(self, records: Sequence[Restriction], *,
                              nr_args: int | None = None, null: bool = False) -> int:
        return register_restrictions(self.fd, records, nr_args=nr_args, null=null)

    def register_bpf_filter(self, reg: FilterRegistration, *, nr_args: int = 1) -> tuple[int, int]:
        return register_bpf_filter(self.fd, reg, nr_args=nr_args)

    def register_buffers(self, size: int = 4096) -> int:
        """``REGISTER_BUFFERS`` with one iovec of ``size`` bytes (kept alive with the ring)."""
        buf = mmap.mmap(-1, size)
        iov = (_sys.Iovec * 1)()
        iov[0].iov_base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        iov[0].iov_len = size
        self._maps.append(buf)
        return self.register(RegisterOp.BUFFERS, ctypes.addressof(iov), 1)

    def register_files(self, fds: Sequence[int]) -> int:
        arr = (ctypes.c_int32 * max(len(fds), 1))(*fds)
        return self.register(RegisterOp.FILES, ctypes.addressof(arr), len(fds))

    def register_eventfd(self, efd: int) -> int:
        value = ctypes.c_int32(efd)
        return self.register(RegisterOp.EVENTFD, ctypes.addressof(value), 1)

    def register_personality(self) -> int:
        """``REGISTER_PERSONALITY``: the new personality id, or ``-errno``."""
        return self.register(RegisterOp.PERSONALITY)

    def probe(self) -> tuple[int, _sys.Probe]:
        return probe_ops(self.fd)

    def query(self) -> tuple[int, _sys.QueryHeader, _sys.QueryOpcodes]:
        return query_opcodes(self.fd)


def register_restrictions(fd: int, records: Sequence[Restriction], *,
                          nr_args: int | None = None, null: bool = False) -> int:
    """``REGISTER_RESTRICTIONS`` on a ring fd with a plain record array: result or ``-errno``."""
    data = b"".join(r.pack() for r in records)
    buf = ctypes.create_string_buffer(data, max(len(data), 16))
    arg = 0 if null else ctypes.addressof(buf)
    return _sys.register_raw(fd, RegisterOp.RESTRICTIONS, arg, len(records) if nr_args is None else nr_args)


def register_task_restrictions(records: Sequence[Restriction], *, header: TaskRestrictionHeader | None = None,
                               nr_args: int = 1, null: bool = False) -> int:
    """Blind ``REGISTER_RESTRICTIONS`` (fd -1, header + records): result or ``-errno``. Irreversible on success."""
    data = pack_task_restrictions(records, header)
    buf = ctypes.create_string_buffer(data, len(data))
    arg = 0 if null else ctypes.addressof(buf)
    return _sys.register_raw(-1, RegisterOp.RESTRICTIONS, arg, nr_args)


def _packed(reg: FilterRegistration) -> tuple[bytes, ctypes.Array[ctypes.c_char]]:
    """The registration struct pointing at a private copy of the program, and that copy (keep it alive).

    The copy has room for ``filter_len`` instructions: a count beyond the program reads zeros, as documented.
    """
    room = reg.length * SOCK_FILTER_SIZE if 0 < reg.length <= 4096 else 0
    prog = ctypes.create_string_buffer(reg.program, max(len(reg.program), room, 8))
    return reg.pack(ctypes.addressof(prog)), prog


def register_bpf_filter(fd: int, reg: FilterRegistration | None, *, nr_args: int = 1) -> tuple[int, int]:
    """``REGISTER_BPF_FILTER`` (``fd == -1`` for the task): ``(result or -errno, pdu_size byte afterwards)``.

    ``reg`` None passes a NULL pointer (the byte reported is then 0). Every field is sent exactly as ``reg``
    holds it; ``filter_ptr`` points at a private copy of ``reg.program`` unless ``reg.null_program``.
    """
    if reg is None:
        return _sys.register_raw(fd, RegisterOp.BPF_FILTER, 0, nr_args), 0
    packed, _prog = _packed(reg)
    arg = ctypes.create_string_buffer(packed, len(packed))
    result = _sys.register_raw(fd, RegisterOp.BPF_FILTER, ctypes.addressof(arg), nr_args)
    return result, arg.raw[BPF_PDU_SIZE_OFFSET]


def wrote_back(fd: int, reg: FilterRegistration | None, nr_args: int, result: int) -> bool:
    """Whether a ``REGISTER_BPF_FILTER`` call that returned ``result`` reached the ``pdu_size`` write-back.

    Success and ``EMSGSIZE`` always pass it (§5.3 row 9). For any other failure the same call is repeated with
    the struct on a read-only page: a failure changes nothing (§5.3), and the repeat fails with ``EFAULT`` at
    the write-back exactly when the first call got that far. The caller can then tell "written back the same
    value" from "never written".
    """
    if result >= 0 or result == -errno.EMSGSIZE:
        return True
    if result == -errno.EFAULT or reg is None:
        return False  # faulted before or at the write-back: nothing was written either way
    packed, _prog = _packed(reg)
    page = _sys.ReadOnlyPage(packed)
    try:
        again = _sys.register_raw(fd, RegisterOp.BPF_FILTER, page.address, nr_args)
    finally:
        page.close()
    if again >= 0:  # pragma: no cover - cannot succeed without the write-back
        raise AssertionError("a filter registration from a read-only page succeeded")
    return again == -errno.EFAULT


def probe_ops(fd: int) -> tuple[int, _sys.Probe]:
    """``REGISTER_PROBE``: ``(result or -errno, the probe struct)``."""
    probe = _sys.Probe()
    return _sys.register_raw(fd, RegisterOp.PROBE, ctypes.addressof(probe), _sys.PROBE_OPS), probe


def query_opcodes(fd: int = -1) -> tuple[int, _sys.QueryHeader, _sys.QueryOpcodes]:
    """``REGISTER_QUERY`` op 0 (blind by default): ``(syscall result, header with .result, data)``."""
    data = _sys.QueryOpcodes()
    hdr = _sys.QueryHeader()
    hdr.query_op, hdr.query_data, hdr.size = 0, ctypes.addressof(data), ctypes.sizeof(data)
    result = _sys.register_raw(fd, RegisterOp.QUERY, ctypes.addressof(hdr), 0)
    return result, hdr, data
