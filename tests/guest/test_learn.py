"""`learn` then `run` on the 7.x kernel: three example workloads (a TCP echo server and client, a file reader, a
reader that tries one forbidden operation under a base policy) are learned from what the kernel reports, and each
runs to completion under its learned policy while a request it never made is refused with EACCES.

The workloads run in forks of this process (a Python start-up costs half a minute under TCG); the observation is
the kernel's alone (tracefs), the workloads' own request logs only cross-check it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ringfence.vm import inside_guest

if not inside_guest():
    pytest.skip("runs inside the 7.x guest", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "workloads"))

import echo  # noqa: E402
import nosy  # noqa: E402
import reader  # noqa: E402
from uring import Uring  # noqa: E402

from ringfence.abi import sqe as abisqe  # noqa: E402
from ringfence.abi.constants import AF, SOCK  # noqa: E402
from ringfence.abi.opcodes import SqeOp  # noqa: E402
from ringfence.abi.profiles import profile_for_release  # noqa: E402
from ringfence.learn import observe  # noqa: E402
from ringfence.learn.generalise import Learned, Options, generalise  # noqa: E402
from ringfence.learn.seen import shapes  # noqa: E402
from ringfence.learn.trace import parse  # noqa: E402
from ringfence.learn.tracefs import TRACEPOINTS, session  # noqa: E402
from ringfence.learn.watch import Watcher  # noqa: E402
from ringfence.policy.compile import compile_policy  # noqa: E402
from ringfence.policy.load import load, loads  # noqa: E402
from ringfence.policy.plan import Plan  # noqa: E402
from ringfence.sandbox.apply import restrict_self  # noqa: E402

PORT = 7301


def _quiet(fn: Callable[[], bool]) -> Callable[[], int]:
    def run() -> int:
        return 0 if fn() else 1
    return run


def _learn(workload: Callable[[], int], name: str, tmp: Path) -> tuple[Learned, int, str]:
    with session() as s:
        assert set(s.kinds) == {"socket", "open", "connect"}, s.refused
        status = observe.run(workload, s, observers=True)
        text = s.text()
        assert s.lost() == 0
    learned = generalise(shapes(parse(text.splitlines())), Options(name, runs=(name,)))
    (tmp / f"{name}.toml").write_text(learned.text)
    assert loads(learned.text) == learned.policy  # the file says what was learned
    return learned, status, text


def _plan(learned: Learned) -> Plan:
    return compile_policy(learned.policy, profile_for_release(os.uname().release)).plan


def _under(plan: Plan, fn: Callable[[], int]) -> int:
    """Run ``fn`` in a fork restricted by ``plan`` (classic where it can): its exit status."""
    pid = os.fork()
    if pid == 0:
        try:
            restrict_self(plan)
            os._exit(fn())
        except BaseException as exc:
            print(f"fork failed: {exc!r}", flush=True)
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _result(sqe: abisqe.Sqe, log: Path) -> Callable[[], int]:
    def run() -> int:
        os.environ["RINGFENCE_REQUEST_LOG"] = str(log)
        Uring().do(sqe, f"never made: {sqe.opcode}")
        return 0
    return run


def _logged(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _listening(port: int) -> bool:
    needle = f":{port:04X} 00000000:0000 0A"
    return needle in Path("/proc/net/tcp").read_text()


def _echo(port: int) -> Callable[[], int]:
    def run() -> int:
        server = os.fork()
        if server == 0:
            os._exit(0 if echo.server(port) else 1)
        deadline = time.monotonic() + 60
        while not _listening(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        ok = echo.client(port, "hello")
        _, status = os.waitpid(server, 0)
        return 0 if ok and os.waitstatus_to_exitcode(status) == 0 else 1
    return run


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("learn")
    (path / "data.txt").write_text("learned, not invented\n")
    yield path


def test_tracepoints_exist() -> None:
    root = Path("/sys/kernel/tracing")
    with session(contexts=False):
        assert all((root / "events" / "io_uring" / tp).is_dir() for tp in TRACEPOINTS)


def test_reader(tmp: Path) -> None:
    data, log = tmp / "data.txt", tmp / "reader.log"
    os.environ["RINGFENCE_REQUEST_LOG"] = str(log)
    learned, status, _ = _learn(_quiet(lambda: reader.read(str(data))), "reader", tmp)
    del os.environ["RINGFENCE_REQUEST_LOG"]
    assert status == 0
    made = {entry["sqe"]["opcode"] for entry in _logged(log)}  # type: ignore[index]
    allowed = {op for rule in learned.policy.rules for op in rule.ops}
    assert {int(str(op)) for op in made} == allowed
    plan = _plan(learned)
    assert _under(plan, _quiet(lambda: reader.read(str(data)))) == 0
    denied_log = tmp / "reader-denied.log"
    create = abisqe.openat(str(tmp / "new.txt"), os.O_CREAT | os.O_WRONLY, 0o600)
    assert _under(plan, _result(create, denied_log)) == 0
    assert [e["result"] for e in _logged(denied_log)] == [-13]
    assert not (tmp / "new.txt").exists()


def test_echo(tmp: Path) -> None:
    learned, status, _ = _learn(_echo(PORT), "echo", tmp)
    assert status == 0
    sockets = [r for r in learned.policy.rules if r.ops == (SqeOp.SOCKET,)]
    connects = [r for r in learned.policy.rules if r.ops == (SqeOp.CONNECT,)]
    assert len(sockets) == 1 and len(connects) == 1
    plan = _plan(learned)
    assert [p.field for p in connects[0].predicates] == ["connect.family", "connect.addr", "connect.port"]
    assert _under(plan, _echo(PORT)) == 0
    log = tmp / "echo-denied.log"
    assert _under(plan, _result(abisqe.socket(AF["AF_INET6"], SOCK["SOCK_STREAM"]), log)) == 0
    assert [e["result"] for e in _logged(log)] == [-13]


def test_forbidden_under_a_base_policy_then_watch(tmp: Path) -> None:
    base = compile_policy(load(ROOT / "examples" / "policies" / "file-reader.toml"),
                          profile_for_release(os.uname().release)).plan
    data = tmp / "data.txt"

    def workload() -> int:
        restrict_self(base)  # observers are on this task already: the filters-only variant
        return 0 if nosy.main(str(data)) else 1

    learned, status, _ = _learn(workload, "nosy", tmp)
    assert status == 0
    assert all(SqeOp.SOCKET not in r.ops for r in learned.policy.rules)
    assert [(s.opcode, n) for s, n in learned.denied] == [(SqeOp.SOCKET, 1)]
    plan = _plan(learned)
    log = tmp / "nosy.log"

    def enforced() -> int:
        os.environ["RINGFENCE_REQUEST_LOG"] = str(log)
        return 0 if nosy.main(str(data)) else 1

    watcher = Watcher()
    with session(tracepoints=("io_uring_req_failed",), failed_filter="error == -13") as s:
        status = observe.run(lambda: _under(plan, enforced), s, observers=False)
        denials = [d for d in map(watcher.feed, s.text().splitlines()) if d is not None]
    assert status == 0  # the workload finished
    assert [e["result"] for e in _logged(log) if "SOCKET" in str(e["what"])] == [-13]
    assert len(denials) == 1 and denials[0].shape.opcode == SqeOp.SOCKET
