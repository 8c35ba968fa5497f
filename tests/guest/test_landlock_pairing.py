"""The worked example of docs/threat-model.md on the 7.x kernel: Landlock (examples/pairing/landlock.py) and an
io_uring policy (examples/policies/file-reader.toml under ``ringfence run``) stacked on one workload. Each layer
alone and both together answer the same three io_uring opens; together they deny what either denies.

Runs inside the guest only (three workload runs: about a minute under TCG).
"""

from __future__ import annotations

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
LANDLOCK = ROOT / "examples" / "pairing" / "landlock.py"
POLICY = ROOT / "examples" / "policies" / "file-reader.toml"
WORKLOAD = r"""
import json, os, sys
from ringfence.abi import sqe as s
from ringfence.errors import errno_name
from ringfence.live.ring import Ring
from ringfence.live.sqes import prepare
base = sys.argv[1]
tries = {"read the data file": (f"{base}/data/file", os.O_RDONLY),
         "read the secret": (f"{base}/secret/file", os.O_RDONLY),
         "create in the data directory": (f"{base}/data/new", os.O_CREAT | os.O_WRONLY)}
out = {}
with Ring.setup(8) as ring:
    for what, (path, flags) in tries.items():
        ring.queue(prepare(s.openat(path, flags, 0o600)))
        ring.submit()
        res = ring.wait()[0].res
        out[what] = "ok" if res >= 0 else errno_name(-res)
print(json.dumps(out))
"""


def _run(base: Path, *, landlock: bool, policy: bool) -> dict[str, str]:
    argv = [sys.executable, "-c", WORKLOAD, str(base)]
    if policy:
        argv = [sys.executable, "-m", "ringfence", "run", "--policy", str(POLICY), "--", *argv]
    if landlock:
        argv = [sys.executable, str(LANDLOCK), "--read", "/usr", "--read", "/lib", "--read", "/lib64",
                "--read", "/etc", "--read", "/proc", "--read", str(ROOT), "--read", str(base / "data"),
                "--write", str(base / "data"), "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_landlock_and_the_io_uring_policy_stack(tmp_path: Path) -> None:
    for name in ("data", "secret"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text(name)
    landlock = _run(tmp_path, landlock=True, policy=False)
    (tmp_path / "data" / "new").unlink(missing_ok=True)
    policy = _run(tmp_path, landlock=False, policy=True)
    both = _run(tmp_path, landlock=True, policy=True)
    print(json.dumps({"landlock": landlock, "policy": policy, "both": both}, indent=1))
    # each layer denies something the other allows: Landlock the secret's path, the policy the O_CREAT
    assert landlock["read the secret"] == "EACCES" and policy["read the secret"] == "ok"
    assert policy["create in the data directory"] == "EACCES" and landlock["create in the data directory"] == "ok"
    # together: allowed only where both allow
    for what, answer in both.items():
        allowed = landlock[what] == "ok" and policy[what] == "ok"
        assert (answer == "ok") == allowed, (what, landlock, policy, both)
    assert both["read the data file"] == "ok"
