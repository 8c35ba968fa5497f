"""Inside the 7.x guest: a program under ``ringfence run`` (its code, in a forked child) tries to get around its
policy (tests/guest/escape_attempts.py). Every request it makes is held against the policy's prediction (the
model running the Plan's bytes, ``policy.predict``): a request the policy denies must fail with EACCES, whatever
route, context or flag it takes. Register calls and the kernel's documented limits are held against what the
kernel answered when this test was written (docs/escapes.md records the table), and ``run`` must name the
limits in a warning.

Two runs: web-client (classic restrictions and filters) and file-reader's filters-only variant. The workload
itself is a program `run` exec'd; a second exec from inside it (``ESCAPE_EXEC=1``) costs a Python start-up that
the guest budget cannot afford, so it is left to manual runs (docs/escapes.md has its answer).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
from pathlib import Path

import pytest

from ringfence.abi.sqe import Sqe
from ringfence.live.probe import probed_profile
from ringfence.live.ring import Ring
from ringfence.policy.compile import compile_policy
from ringfence.policy.load import load
from ringfence.policy.plan import Plan
from ringfence.policy.predict import Predictor
from ringfence.sandbox import run
from ringfence.sandbox.run import LIMIT_ALWAYS
from ringfence.vm import inside_guest

if not inside_guest():
    pytest.skip("runs inside the 7.x guest", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = Path(__file__).with_name("escape_attempts.py")
TAKEN = "a ring taken with pidfd_getfd from an unrestricted process"

#: Register calls and counts: the kernel's answer (7.2 and 7.3 alike), per run. "ok" is any result >= 0.
REGISTER = {
    "web-client": {
        "R_DISABLED ring: REGISTER_PERSONALITY before enabling": "EACCES",   # bound while disabled, too
        "R_DISABLED ring: REGISTER_FILES before enabling": "ok",             # FILES is allowed
        "R_DISABLED ring: REGISTER_RESTRICTIONS (no records)": "EACCES",     # not in the allow-list
        "R_DISABLED ring: ENABLE_RINGS": "ok",
        "R_DISABLED ring: REGISTER_PERSONALITY after enabling": "EACCES",
        "blind REGISTER_SEND_MSG_RING into another ring": "ok",               # kernel limit: never checked
        "blind REGISTER_SEND_MSG_RING: completions delivered": 1,
        "REGISTER_RING_FDS": "ok",
        "REGISTER_PERSONALITY through the registered ring index": "EACCES",
        "REGISTER_FILES (a socket, /dev/null, empty slots)": "ok",
    },
    "file-reader": {
        "R_DISABLED ring: REGISTER_PERSONALITY before enabling": "ok",       # no [register] section
        "R_DISABLED ring: REGISTER_FILES before enabling": "ok",
        "R_DISABLED ring: REGISTER_RESTRICTIONS (no records)": "ok",         # tightens its own ring: allowed
        "R_DISABLED ring: ENABLE_RINGS": "ok",
        "R_DISABLED ring: REGISTER_PERSONALITY after enabling": "EACCES",    # its own empty restrictions
        "blind REGISTER_SEND_MSG_RING into another ring": "ok",
        "blind REGISTER_SEND_MSG_RING: completions delivered": 1,
        "REGISTER_RING_FDS": "ok",
        "REGISTER_PERSONALITY through the registered ring index": "ok",      # no [register] section
        "REGISTER_FILES (a socket, /dev/null, empty slots)": "ok",
    },
}
RUNS = {"web-client": "auto", "file-reader": "filters"}
#: Requests the kernel can only answer with EACCES under both policies (nothing about them can fail earlier):
#: another error would mean the attempt itself broke, not that the sandbox held.
DENIED_OUTRIGHT = (
    "the denied request", "a second ring", "a ring made by a forked child", "a ring made by a new thread",
    "an SQPOLL ring (the poller thread submits)", "R_DISABLED ring, enabled: the denied request",
    "MSG_RING request into another ring", "the denied request, entered through the registered ring index",
    "SOCKET of a denied family as a direct descriptor", "OPENAT for writing into a direct descriptor",
)
#: Controls: allowed by both policies, so a sandbox that denied everything would fail the test.
ALLOWED = ("an allowed request", "OPENAT read-only into a direct descriptor", "route read: READ")


def _answer(res: int) -> str:
    return "ok" if res >= 0 else errno.errorcode.get(-res, str(res))


def _sandboxed(name: str, mechanism: str, tmp: Path) -> tuple[list[dict[str, object]], str, Predictor]:
    """Compile the policy for this kernel, run the workload under `ringfence run`, hand it an unrestricted ring."""
    _, kernel = probed_profile()
    policy = load(ROOT / "examples" / "policies" / f"{name}.toml")
    plan = compile_policy(policy, kernel).plan
    chosen = "classic" if mechanism == "auto" else mechanism
    predictor = Predictor(policy, plan, kernel, mechanism=chosen)
    with Ring.setup(8) as free:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with ours, theirs, pytest.raises(OSError) as refused:  # the kernel never sends a ring with SCM_RIGHTS
            socket.send_fds(ours, [b"ring"], [free.fd])
        assert refused.value.errno == errno.EINVAL
        ring = f"{os.getpid()}:{free.fd}:{bytes(free.params).hex()}"
        status, stdout, stderr = _run_in_child(plan, mechanism, {"PYTHONPATH": str(ROOT / "src"),
                                                                 "ESCAPE_RING": ring}, tmp)
    assert status == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return lines, stderr, predictor


def _run_in_child(plan: Plan, mechanism: str, env: dict[str, str], tmp: Path) -> tuple[int, str, str]:
    """``ringfence run``'s own code (:func:`ringfence.sandbox.run.run`) in a forked child: the Plan applied to
    the child, then the workload exec'd. The command line's path without its Python start-up, which the
    guest's time budget cannot afford twice per run. The child closes the rings it inherited from this process
    (``--close-inherited``), as a command started from here would never have them (they are close-on-exec)."""
    out, err = tmp / "stdout", tmp / "stderr"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs the workload or exits with run's status
        try:
            for fd, path, flags in ((0, Path("/dev/null"), os.O_RDONLY), (1, out, os.O_WRONLY | os.O_CREAT),
                                    (2, err, os.O_WRONLY | os.O_CREAT)):
                os.dup2(os.open(path, flags, 0o600), fd)
            sys.stderr = os.fdopen(2, "w", buffering=1)  # pytest replaced sys.stderr; run writes there
            os.environ.update(env)
            options = run.Options(mechanism=mechanism, close_inherited=True)
            os._exit(run.run(plan, [sys.executable, str(WORKLOAD)], options))
        finally:
            os._exit(125)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.read_text(), err.read_text()


@pytest.mark.parametrize("name", list(RUNS))
def test_every_escape_fails_or_is_a_named_limit(name: str, tmp_path: Path) -> None:
    lines, stderr, predictor = _sandboxed(name, RUNS[name], tmp_path)
    seen = {str(line["attempt"]): line for line in lines}
    assert TAKEN in seen, "the workload did not get to its last attempt:\n" + stderr
    problems, table = [], []
    for line in lines:
        attempt, res = str(line["attempt"]), int(line["res"])  # type: ignore[call-overload]
        if line["how"] != "sqe":
            continue
        predicted = predictor.request(Sqe.from_json(line["sqe"]))  # type: ignore[arg-type]
        if attempt == TAKEN:  # a kernel limit: task state never reaches a ring made elsewhere
            if res < 0:
                problems.append(f"{attempt}: {_answer(res)}; docs/escapes.md says the kernel runs it")
            continue
        if res >= 0 and not predicted.allowed:
            problems.append(f"BYPASS {attempt}: the kernel ran it ({res}); the policy denies it: {predicted.because}")
        if res == -errno.EACCES and predicted.allowed:
            problems.append(f"{attempt}: EACCES, but the policy allows it ({predicted.because})")
        table.append({"attempt": attempt, "kernel": _answer(res), "policy": predicted.because})
    record = os.environ.get("RINGFENCE_ESCAPES_RECORD")
    if record:  # the table for docs/escapes.md
        Path(record, f"{name}-{os.uname().release}.json").write_text(json.dumps({"sqe": table, "all": lines}))
    assert not problems, "\n".join(problems)
    assert {a: _answer(int(seen[a]["res"])) for a in DENIED_OUTRIGHT} == dict.fromkeys(DENIED_OUTRIGHT, "EACCES")  # type: ignore[call-overload]
    assert {a: _answer(int(seen[a]["res"])) for a in ALLOWED} == dict.fromkeys(ALLOWED, "ok")  # type: ignore[call-overload]
    register = {attempt: (seen[attempt]["res"] if seen[attempt]["how"] == "count"
                          else _answer(int(seen[attempt]["res"])))  # type: ignore[call-overload]
                for attempt in REGISTER[name]}
    assert register == REGISTER[name]
    assert f"warning: {LIMIT_ALWAYS}" in stderr  # the taken ring, blind SEND_MSG_RING

