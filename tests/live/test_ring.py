"""The minimal ring: setup, SQE builders, submission accounting, bounded waits, fork sharing."""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from pathlib import Path

import pytest

from ringfence.abi.opcodes import SetupFlag, SqeFlag, SqeOp
from ringfence.harness.netns import enter_private_netns
from ringfence.live import sqes
from ringfence.live.child import run_in_child
from ringfence.live.ring import Ring, RingFullError, probe_ops, query_opcodes

pytestmark = pytest.mark.live


def _one(ring: Ring, prepared: sqes.Prepared) -> tuple[int, list[tuple[int, int]]]:
    ring.queue(prepared)
    submitted = ring.submit()
    return submitted, [(c.user_data, c.res) for c in ring.wait()]


def test_nop_completes_with_its_user_data() -> None:
    with Ring.setup(4) as ring:
        assert _one(ring, sqes.nop(0xDEADBEEF12345678)) == (1, [(0xDEADBEEF12345678, 0)])


def test_write_then_read_through_a_pipe(pipe: tuple[int, int]) -> None:
    rd, wr = pipe
    with Ring.setup(4) as ring:
        ring.queue(sqes.rw(SqeOp.WRITE, wr, 8, user_data=1, data=b"ringfenc"))
        ring.queue(sqes.rw(SqeOp.READ, rd, 8, user_data=2))
        assert ring.submit() == 2
        assert sorted((c.user_data, c.res) for c in ring.wait()) == [(1, 8), (2, 8)]


def test_readv_and_writev_keep_their_iovecs(pipe: tuple[int, int]) -> None:
    rd, wr = pipe
    with Ring.setup(4) as ring:
        assert _one(ring, sqes.rwv(SqeOp.WRITEV, wr, 8, user_data=1, data=b"abcdefgh")) == (1, [(1, 8)])
        assert os.read(rd, 8) == b"abcdefgh"
        assert _one(ring, sqes.rwv(SqeOp.READV, rd, 8, user_data=2)) == (1, [])  # empty pipe: no CQE, no hang


def test_fsync_openat_openat2_socket(tmp_path: Path) -> None:
    with Ring.setup(4) as ring:
        path = str(tmp_path / "f")
        submitted, cqes = _one(ring, sqes.openat(-100, path, os.O_CREAT | os.O_RDWR, 0o600, user_data=1))
        assert submitted == 1 and cqes[0][1] >= 0
        fd = cqes[0][1]
        assert _one(ring, sqes.fsync(fd, user_data=2)) == (1, [(2, 0)])
        os.close(fd)
        _, cqes = _one(ring, sqes.openat2(-100, ".", os.O_DIRECTORY, 0, 0x10, user_data=3))
        assert cqes[0][1] >= 0
        os.close(cqes[0][1])
        _, cqes = _one(ring, sqes.openat2(-100, path, os.O_RDONLY, 0o7777, 0, user_data=4))
        assert cqes == [(4, -errno.EINVAL)]  # mode without O_CREAT is rejected by openat2
        _, cqes = _one(ring, sqes.socket_(socket.AF_INET, socket.SOCK_DGRAM, 0, user_data=5))
        assert cqes[0][1] >= 0
        os.close(cqes[0][1])


def test_cqe_skip_success_does_not_wait_for_the_quiet_timeout() -> None:
    with Ring.setup(4) as ring:
        started = time.monotonic()
        assert _one(ring, sqes.nop(1, SqeFlag.CQE_SKIP_SUCCESS)) == (1, [])
        assert time.monotonic() - started < 0.4


def test_a_request_that_never_completes_ends_the_wait_after_the_quiet_period(pipe: tuple[int, int]) -> None:
    rd, _ = pipe
    with Ring.setup(4) as ring:
        ring.queue(sqes.rw(SqeOp.READ, rd, 8, user_data=1))
        assert ring.submit() == 1
        started = time.monotonic()
        assert ring.wait(quiet=0.2) == []
        assert 0.15 < time.monotonic() - started < 2


def test_failed_sqe_is_consumed_and_stops_submission() -> None:
    """Spec §8.2: an invalid flag bit fails init; it counts as submitted, the next SQE stays queued."""
    with Ring.setup(4) as ring:
        ring.queue(sqes.nop(1, 0x80))
        ring.queue(sqes.nop(2))
        assert ring.submit() == 1
        assert [(c.user_data, c.res) for c in ring.wait()] == [(1, -errno.EINVAL)]
        assert ring.pending == 1
        assert ring.submit() == 1
        assert [(c.user_data, c.res) for c in ring.wait()] == [(2, 0)]


def test_disabled_ring_cannot_submit_and_keeps_the_sqe_queued() -> None:
    with Ring.setup(2, SetupFlag.R_DISABLED) as ring:
        ring.queue(sqes.nop(1))
        assert ring.submit() == -errno.EBADFD
        assert ring.pending == 1
        assert ring.enable() == 0
        assert ring.submit() == 1
        assert [c.user_data for c in ring.wait()] == [1]


def test_queue_full_is_an_error() -> None:
    with Ring.setup(1) as ring:
        ring.queue(sqes.nop(1))
        with pytest.raises(RingFullError):
            ring.queue(sqes.nop(2))


def test_sqpoll_ring_completes_nops(root: None) -> None:
    with Ring.setup(4, SetupFlag.SQPOLL, sq_thread_idle=10) as ring:
        submitted, cqes = _one(ring, sqes.nop(9))
        assert submitted == 1 and cqes == [(9, 0)]


def test_a_forked_child_uses_the_parents_ring() -> None:
    with Ring.setup(4) as ring:
        assert _one(ring, sqes.nop(1)) == (1, [(1, 0)])

        def child() -> list[list[int]]:
            ring.queue(sqes.nop(2))
            ring.submit()
            return [[c.user_data, c.res] for c in ring.wait()]

        assert run_in_child(child) == [[2, 0]]
        assert _one(ring, sqes.nop(3)) == (1, [(3, 0)])  # indices are read from shared memory


def test_probe_and_query(kernel: object) -> None:
    with Ring.setup(1) as ring:
        result, probe = probe_ops(ring.fd)
        assert ring.register_personality() > 0
        ring_query = ring.query()
        assert ring_query[0] == 0 and ring_query[2].nr_register_opcodes == query_opcodes()[2].nr_register_opcodes
        efd = os.eventfd(0)
        assert ring.register_eventfd(efd) == 0
        os.close(efd)
    assert result == 0 and probe.ops_len == probe.last_op + 1
    result, hdr, data = query_opcodes()
    assert (result, hdr.result) == (0, 0)
    assert data.nr_request_opcodes == probe.last_op + 1
    assert data.sqe_flags == 0x7F


def test_sockaddr_layouts() -> None:
    v4 = sqes.sockaddr(socket.AF_INET, "127.0.0.1", 80)
    assert v4 == struct.pack("=H", 2) + b"\x00\x50" + bytes([127, 0, 0, 1]) + bytes(8)
    v6 = sqes.sockaddr(socket.AF_INET6, "::1", 22)
    assert len(v6) == 28 and v6[2:4] == b"\x00\x16" and v6[8:24] == bytes(15) + b"\x01"
    un = sqes.sockaddr(socket.AF_UNIX, "/x", 0)
    assert len(un) == 110 and un[2:4] == b"/x"
    assert sqes.connect(3, socket.AF_INET, "127.0.0.1", 1, user_data=1, addr_len=1).sqe.off == 1


def test_connect_in_a_private_netns(root: None) -> None:
    def child() -> list[int]:
        enter_private_netns()
        out = []
        for addr in ("127.0.0.1", "192.0.2.1"):
            with socket.socket() as s, Ring.setup(2) as ring:
                ring.queue(sqes.connect(s.fileno(), socket.AF_INET, addr, 1, user_data=1))
                ring.submit()
                out += [c.res for c in ring.wait()]
        return out

    assert run_in_child(child) == [-errno.ECONNREFUSED, -errno.ENETUNREACH]
