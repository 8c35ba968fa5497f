"""The pair `ringfence import-seccomp` makes, on the 7.x kernel: the emitted seccomp profile installed as a runtime
installs it (libseccomp), the imported policy applied by `ringfence run`, and a workload that tries io_uring
requests and a plain system call. Under the profile as packaged, io_uring is unavailable.

Runs inside the guest only (two Python start-ups: about a minute under TCG).
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ringfence.vm import inside_guest

if not inside_guest():
    pytest.skip("runs inside the 7.x guest", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "policy"))
import libseccomp_oracle as oracle  # noqa: E402
from seccomp_sources import packaged_or_skip  # noqa: E402

from ringfence.live import _sys  # noqa: E402
from ringfence.policy.seccomp_import import emit_profile  # noqa: E402
from ringfence.policy.seccomp_profile import load, parse_caps, resolve  # noqa: E402

POLICY = ROOT / "tests" / "corpus" / "policies" / "seccomp" / "containers-common.toml"
WORKLOAD = r"""
import errno, json, socket
from ringfence.abi import sqe as s
from ringfence.abi.opcodes import SqeOp
from ringfence.live.ring import Ring
from ringfence.live.sqes import prepare
out = {}
try:
    socket.socket(16, socket.SOCK_RAW, 9).close()
    out["socket()"] = "ok"
except OSError as e:
    out["socket()"] = errno.errorcode[e.errno]
with Ring.setup(8) as ring:
    for name, sqe in (("inet", s.socket(2, 1, 0, user_data=1)), ("audit", s.socket(16, 3, 9, user_data=2)),
                      ("route", s.socket(16, 3, 0, user_data=3)), ("futex_waitv", s.Sqe(SqeOp.FUTEX_WAITV, 0, 4))):
        ring.queue(prepare(sqe))
        ring.submit()
        res = ring.wait()[0].res
        out[name] = "ok" if res >= 0 else errno.errorcode[-res]
print(json.dumps(out))
"""


def _confined(profile: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``argv`` run under the filter libseccomp builds from ``profile`` (installed in the child before exec)."""
    code = oracle.build(json.loads(profile), parse_caps("podman")).code

    def install() -> None:
        _sys.set_no_new_privs()
        _sys.seccomp_filter(code)

    return subprocess.run(argv, preexec_fn=install, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def test_the_emitted_profile_and_the_policy_together() -> None:
    packaged = packaged_or_skip("containers-common")
    emitted = emit_profile(resolve(load(str(packaged)), parse_caps("podman"), "amd64"))
    done = _confined(emitted, [sys.executable, "-m", "ringfence", "run", "--policy", str(POLICY), "--",
                               sys.executable, "-c", WORKLOAD])
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # the profile's own rule on the system call, and the policy's on the request
    assert seen == {"socket()": "EINVAL", "inet": "ok", "audit": "EACCES", "route": "ok",
                    "futex_waitv": "EACCES"}, seen


def test_under_the_packaged_profile_io_uring_is_unavailable() -> None:
    packaged = packaged_or_skip("containers-common")
    code = oracle.build(json.loads(packaged.read_text()), parse_caps("podman")).code
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports by exit status
        _sys.set_no_new_privs()
        _sys.seccomp_filter(code)
        libc = ctypes.CDLL(None, use_errno=True)
        params = ctypes.create_string_buffer(120)
        ret = libc.syscall(425, 8, params)  # io_uring_setup
        os._exit(0 if ret == -1 and ctypes.get_errno() == 38 else 1)  # ENOSYS: the profile's default action
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
