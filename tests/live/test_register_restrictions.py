"""liburing ``test/register-restrictions.c`` (spec §9.1) through the ring API, on the running kernel."""

from __future__ import annotations

import errno

import pytest

from ringfence.abi.layout import Restriction
from ringfence.abi.opcodes import RegisterOp, RestrictionOp, SetupFlag, SqeFlag, SqeOp
from ringfence.live import sqes
from ringfence.live.ring import Ring

pytestmark = pytest.mark.live

R = RestrictionOp


def _cqes(ring: Ring) -> dict[int, int]:
    return {c.user_data: c.res for c in ring.wait()}


def test_sqe_op(pipe: tuple[int, int]) -> None:
    rd, wr = pipe
    with Ring.setup(8, SetupFlag.R_DISABLED) as ring:
        assert ring.register_restrictions([Restriction(R.SQE_OP, SqeOp.WRITEV),
                                           Restriction(R.SQE_OP, SqeOp.WRITE)]) == 0
        assert ring.enable() == 0
        ring.queue(sqes.rwv(SqeOp.WRITEV, wr, 8, user_data=1))
        ring.queue(sqes.rwv(SqeOp.READV, rd, 8, user_data=2))
        assert ring.submit() == 2
        assert _cqes(ring) == {1: 8, 2: -errno.EACCES}


def test_register_op(pipe: tuple[int, int]) -> None:
    with Ring.setup(8, SetupFlag.R_DISABLED) as ring:
        assert ring.register_restrictions([Restriction(R.REGISTER_OP, RegisterOp.BUFFERS)]) == 0
        assert ring.enable() == 0
        assert ring.register_buffers() == 0
        assert ring.register_files(list(pipe)) == -errno.EACCES


def test_fixed_file(pipe: tuple[int, int]) -> None:
    rd, wr = pipe
    with Ring.setup(8, SetupFlag.R_DISABLED) as ring:
        assert ring.register_restrictions([
            Restriction(R.SQE_OP, SqeOp.WRITEV), Restriction(R.SQE_OP, SqeOp.READV),
            Restriction(R.SQE_FLAGS_REQUIRED, SqeFlag.FIXED_FILE),
            Restriction(R.REGISTER_OP, RegisterOp.FILES)]) == 0
        assert ring.enable() == 0
        assert ring.register_files([rd, wr]) == 0
        ring.queue(sqes.rwv(SqeOp.WRITEV, 1, 8, user_data=1, flags=SqeFlag.FIXED_FILE))
        ring.queue(sqes.rwv(SqeOp.READV, 0, 8, user_data=2, flags=SqeFlag.FIXED_FILE))
        ring.queue(sqes.rwv(SqeOp.WRITEV, wr, 8, user_data=3))
        assert ring.submit() == 3
        assert _cqes(ring) == {1: 8, 2: 8, 3: -errno.EACCES}


def test_flags(pipe: tuple[int, int]) -> None:
    _, wr = pipe
    fixed, drain = int(SqeFlag.FIXED_FILE), int(SqeFlag.IO_DRAIN)
    with Ring.setup(8, SetupFlag.R_DISABLED) as ring:
        assert ring.register_restrictions([
            Restriction(R.SQE_OP, SqeOp.WRITEV), Restriction(R.SQE_FLAGS_ALLOWED, SqeFlag.ASYNC | SqeFlag.IO_LINK),
            Restriction(R.SQE_FLAGS_REQUIRED, fixed)]) == 0
        assert ring.register_files([wr]) == 0  # register ops are unrestricted while disabled (§3.6)
        assert ring.enable() == 0
        for ud, flags in ((1, fixed), (2, fixed | SqeFlag.ASYNC), (3, fixed | SqeFlag.IO_LINK)):
            ring.queue(sqes.rwv(SqeOp.WRITEV, 0, 8, user_data=ud, flags=flags))
        assert ring.submit() == 3
        assert _cqes(ring) == {1: 8, 2: 8, 3: 8}
        for ud, flags in ((4, fixed | drain), (5, drain), (6, SqeFlag.ASYNC), (7, 0)):
            ring.queue(sqes.rwv(SqeOp.WRITEV, 0, 8, user_data=ud, flags=flags))
            assert ring.submit() == 1
            assert _cqes(ring) == {ud: -errno.EACCES}


def test_empty(pipe: tuple[int, int]) -> None:
    with Ring.setup(8, SetupFlag.R_DISABLED) as ring:
        assert ring.register_restrictions([]) == 0  # zero records, non-NULL pointer
        assert ring.enable() == 0
        assert ring.register_buffers() == -errno.EACCES
        assert ring.register_files(list(pipe)) == -errno.EACCES
        ring.queue(sqes.rwv(SqeOp.WRITEV, pipe[1], 8, user_data=1))
        assert ring.submit() == 1
        assert _cqes(ring) == {1: -errno.EACCES}


def test_rings_not_disabled() -> None:
    with Ring.setup(8) as ring:
        assert ring.register_restrictions([Restriction(R.SQE_OP, SqeOp.WRITEV)]) == -errno.EBADFD


def test_rings_disabled() -> None:
    with Ring.setup(8, SetupFlag.R_DISABLED) as ring:
        ring.queue(sqes.nop(1))
        assert ring.submit() == -errno.EBADFD


def test_null_records_and_double_registration() -> None:
    """§3.2/§3.3: NULL is EINVAL even with n == 0; a second registration is EBUSY."""
    with Ring.setup(8, SetupFlag.R_DISABLED) as ring:
        assert ring.register_restrictions([], null=True) == -errno.EINVAL
        assert ring.register_restrictions([Restriction(R.SQE_OP, SqeOp.NOP)]) == 0
        assert ring.register_restrictions([Restriction(R.SQE_OP, SqeOp.NOP)]) == -errno.EBUSY
