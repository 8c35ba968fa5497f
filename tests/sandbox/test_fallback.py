"""The seccomp fallback: its program passes our seccomp checker and the host kernel's, denies exactly the io_uring
system calls under every x86 calling convention, and, installed, makes io_uring_setup fail with the chosen errno
while the command still runs."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from ringfence.abi import seccomp
from ringfence.abi.seccomp import AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, SeccompData
from ringfence.bpf import SECCOMP, check, run
from ringfence.sandbox.fallback import program

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def verdict(arch: int, nr: int, code: int = errno.ENOSYS) -> tuple[int | None, int]:
    ret = seccomp.SeccompReturn.of(run(check(program(code).program, target=SECCOMP),
                                       SeccompData(nr, arch).pack()).value)
    return (None if ret.action is None else int(ret.action)), ret.data


@pytest.mark.parametrize(("arch", "nr", "denied"), [
    (AUDIT_ARCH_X86_64, 425, True), (AUDIT_ARCH_X86_64, 426, True), (AUDIT_ARCH_X86_64, 427, True),
    (AUDIT_ARCH_X86_64, 424, False), (AUDIT_ARCH_X86_64, 428, False), (AUDIT_ARCH_X86_64, 0, False),
    (AUDIT_ARCH_X86_64, 425 | X32_SYSCALL_BIT, True), (AUDIT_ARCH_X86_64, 1 | X32_SYSCALL_BIT, False),
    (AUDIT_ARCH_I386, 425, True), (AUDIT_ARCH_I386, 427, True), (AUDIT_ARCH_I386, 4, False),
    (0xC00000B7, 425, True), (0xC00000B7, 1, True),   # aarch64: not this filter's business: every call fails
])
def test_program_denies_exactly_io_uring(arch: int, nr: int, denied: bool) -> None:
    action, data = verdict(arch, nr, errno.EPERM)
    if denied:
        assert (action, data) == (int(seccomp.SeccompAction.ERRNO), errno.EPERM)
    else:
        assert action == int(seccomp.SeccompAction.ALLOW)


def test_errno_range_is_checked() -> None:
    with pytest.raises(ValueError, match="outside"):
        program(0)
    with pytest.raises(ValueError, match="outside"):
        program(5000)


PROBE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
r = libc.syscall(425, 1, params)
print(r, ctypes.get_errno(), os.getpid() > 0)
"""


@pytest.mark.live
@pytest.mark.parametrize("name", ["ENOSYS", "EPERM"])
def test_installed_on_this_kernel(name: str) -> None:
    """`ringfence run --fallback` on the host kernel: the kernel accepts the program, io_uring_setup fails with
    the chosen errno, every other call works."""
    out = subprocess.run([sys.executable, "-m", "ringfence.cli.main", "run", "--plan", _plan(),
                          "--fallback", "deny-io-uring", "--fallback-errno", name, "--", sys.executable, "-c", PROBE],
                         capture_output=True, text=True, timeout=60, check=False)
    if "the command was not run" in out.stderr and "fallback" not in out.stderr:
        pytest.skip(f"this kernel can apply Plans; the fallback is not used: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    result, err, ok = out.stdout.split()
    assert (int(result), int(err), ok) == (-1, getattr(errno, name), "True")


def _plan() -> str:
    path = os.path.join(ROOT, "results", "fallback-test.plan.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    subprocess.run([sys.executable, "-m", "ringfence.cli.main", "compile",
                    os.path.join(ROOT, "examples", "policies", "web-client.toml"), "-o", path], check=True,
                   capture_output=True)
    return path
