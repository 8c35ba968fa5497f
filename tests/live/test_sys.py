"""The raw syscall layer: struct sizes, errno reporting in both styles, process-state readers."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from ringfence.abi.layout import FilterRegistration
from ringfence.abi.opcodes import RegisterOp, SqeOp
from ringfence.abi.profiles import KernelProfile
from ringfence.errors import KernelError
from ringfence.live import _sys
from ringfence.live.child import run_in_child
from ringfence.live.ring import register_bpf_filter

from .conftest import insns

pytestmark = pytest.mark.live


def test_struct_sizes_match_the_uapi() -> None:
    sizes = {_sys.Params: 120, _sys.Sqe: 64, _sys.Cqe: 16, _sys.ProbeOp: 8, _sys.SqringOffsets: 40,
             _sys.CqringOffsets: 40, _sys.OpenHow: 24, _sys.QueryHeader: 40, _sys.GeteventsArg: 24}
    for struct_type, size in sizes.items():
        assert ctypes.sizeof(struct_type) == size, struct_type.__name__


def test_setup_raw_returns_negative_errno_and_setup_raises_with_the_name() -> None:
    assert _sys.setup_raw(0, _sys.Params()) == -errno.EINVAL
    with pytest.raises(KernelError) as info:
        _sys.setup(0, _sys.Params())
    assert info.value.name == "EINVAL" and info.value.errno == errno.EINVAL
    assert "io_uring_setup" in str(info.value)


def test_setup_returns_a_descriptor() -> None:
    params = _sys.Params()
    fd = _sys.setup(4, params)
    try:
        assert fd >= 0 and params.sq_entries == 4 and params.cq_entries == 8
        assert params.features & _sys.IORING_FEAT_SINGLE_MMAP
    finally:
        os.close(fd)


def test_register_on_a_bad_fd_and_on_a_non_ring_fd() -> None:
    assert _sys.register_raw(987654, RegisterOp.PROBE, 0, 0) == -errno.EBADF
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        assert _sys.register_raw(fd, RegisterOp.PROBE, 0, 0) == -errno.EOPNOTSUPP
    finally:
        os.close(fd)


def test_blind_bpf_filter_errno(kernel: KernelProfile) -> None:
    """Spec §1.3: 37 >= REGISTER_LAST before 7.0 gives EINVAL; on 7.x a NULL struct faults (after the gate)."""
    result = _sys.register_raw(-1, RegisterOp.BPF_FILTER, 0, 1)
    if kernel.bpf_filters:
        assert result in (-errno.EFAULT, -errno.EACCES)
    else:
        assert result == -errno.EINVAL
        result, pdu = register_bpf_filter(-1, FilterRegistration(SqeOp.NOP, insns([[6, 0, 0, 1]]), pdu_size=7))
        assert (result, pdu) == (-errno.EINVAL, 7)  # no write-back without the feature


def test_no_new_privs_is_per_thread_state_set_in_a_child_only() -> None:
    assert _sys.no_new_privs() is False

    def child() -> list[bool]:
        before = _sys.no_new_privs()
        _sys.set_no_new_privs()
        return [before, _sys.no_new_privs()]

    assert run_in_child(child) == [False, True]
    assert _sys.no_new_privs() is False


def test_capabilities(root: None) -> None:
    assert _sys.has_cap_sys_admin()
    assert _sys.effective_caps() >> _sys.CAP_SYS_ADMIN & 1


def test_netns_inode_changes_after_unshare(root: None) -> None:
    outside = _sys.netns_inode()

    def child() -> int:
        _sys.unshare(_sys.CLONE_NEWNET)
        return _sys.netns_inode()

    assert run_in_child(child) != outside
    assert _sys.netns_inode() == outside
