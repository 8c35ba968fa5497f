"""Landlock and io_uring (docs/threat-model.md): io_uring's OPENAT and CONNECT pass the same LSM hooks as open(2)
and connect(2), so one Landlock ruleset answers both the same way. Checked on the running kernel: each access
is tried both ways under ``examples/pairing/landlock.py``, and once without it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LANDLOCK = REPO / "examples" / "pairing" / "landlock.py"
PROBE = Path(__file__).with_name("landlock_probe.py")


def _landlock_abi() -> int:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return int(libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint32(1)))


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    for name in ("allowed", "secret"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text(name)
    yield tmp_path


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def _probe(accesses: list[str], landlock: list[str] | None) -> list[dict[str, str]]:
    command = [sys.executable, str(PROBE), *accesses]
    if landlock is not None:
        command = [sys.executable, str(LANDLOCK), *landlock, "--", *command]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_landlock_answers_io_uring_as_it_answers_syscalls(tree: Path, listener: int) -> None:
    abi = _landlock_abi()
    if abi < 1:
        pytest.skip("environment: Landlock is not enabled on this kernel")
    unused = socket.socket()
    unused.bind(("127.0.0.1", 0))
    other_port = unused.getsockname()[1]
    unused.close()
    accesses = [f"open:{tree / 'allowed' / 'file'}", f"open:{tree / 'secret' / 'file'}",
                f"connect:{listener}", f"connect:{other_port}"]
    free = _probe(accesses, None)
    assert all(r["syscall"] == "ok" and r["io_uring"] == "ok" for r in free), free
    ruled = _probe(accesses, ["--read", "/usr", "--read", "/lib", "--read", "/lib64", "--read", "/etc",
                              "--read", str(REPO), "--read", str(tree / "allowed"), "--connect", str(listener)])
    for row in ruled:
        assert row["io_uring"] == row["syscall"], row   # one ruleset, one answer, whichever way it is asked
    answers = {r["access"]: r["syscall"] for r in ruled}
    assert answers[accesses[0]] == "ok" and answers[accesses[1]] == "EACCES"
    if abi >= 4:  # Landlock handles TCP connects from ABI 4
        assert answers[accesses[2]] == "ok" and answers[accesses[3]] == "EACCES"


def test_unreadable_proc_stops_the_sandbox_instead_of_guessing() -> None:
    """Under a ruleset that hides /proc, the inherited-ring check cannot be made: a typed error, not a traceback
    and not an empty answer (which would let an inherited ring escape the sandbox)."""
    if _landlock_abi() < 1:
        pytest.skip("environment: Landlock is not enabled on this kernel")
    code = ("from ringfence.errors import SandboxError\nfrom ringfence.sandbox.inherited import io_uring_fds\n"
            "try:\n    io_uring_fds()\nexcept SandboxError as e:\n    print(e.step, e.errno_name)\n")
    done = subprocess.run([sys.executable, str(LANDLOCK), "--read", "/usr", "--read", "/lib", "--read", "/lib64",
                           "--read", str(REPO), "--", sys.executable, "-c", code], check=False, capture_output=True,
                          text=True, timeout=60, cwd=REPO, env={"PYTHONPATH": str(REPO / "src")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["checks", "EACCES"]
