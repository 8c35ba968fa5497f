"""Every way out of the live harness that issue 8 lists, tried: refused when the scenario is loaded (exit 3), and,
with the loader's checks bypassed (the scenario built as data), contained by the kernel. Each check is made from
outside the harness: a host file's bytes, mode and mtime, a host Unix socket that must see no connection, the
runner's standard output, the host's temp directory, the host's process table (``docs/threat-model.md``)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ringfence.cli.main import main
from ringfence.harness.backend import LiveBackend
from ringfence.harness.contain import HOST_ID_BASE
from ringfence.scenario import parse
from ringfence.scenario import steps as s
from ringfence.scenario.transcript import Transcript

pytestmark = pytest.mark.live

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("environment: needs root (the harness runs scenarios as root)")


def _scenario(steps: list[dict[str, Any]], **head: Any) -> dict[str, Any]:
    return {"scenario": {"name": "escape", **head}, "step": steps}


def _refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any]) -> dict[str, Any]:
    """Run the scenario file through the command line: it must be refused before anything runs, with exit 3."""
    path = tmp_path / "escape.json"
    path.write_text(json.dumps(data))
    code = main(["scenario", "run", "--backend", "live", "--json", str(path)])
    out = json.loads(capsys.readouterr().out)
    assert code == 3, out
    error: dict[str, Any] = out["error"]
    assert error["exit"] == 3 and error["file"] == str(path)
    return error


def _open_steps(path: str, flags: str, mode: int = 0) -> list[dict[str, Any]]:
    return [{"do": "ring", "ring": "r"},
            {"do": "submit", "ring": "r", "sqes": [{"op": "OPENAT", "fd": "cwd", "path": path, "flags": flags,
                                                    "mode": mode, "ud": 1}]}]


def _with_open_path(path: str, flags: str, mode: int = 0) -> s.Scenario:
    """An OPENAT of ``path`` the loader would refuse: loaded with a harmless path, then the path swapped in."""
    scenario = parse(_scenario(_open_steps("{tmp}/x", flags, mode)), path="<escape>")
    submit = scenario.steps[1]
    assert isinstance(submit, s.Submit)
    item = submit.sqes[0]
    item = dataclasses.replace(item, sqe=dataclasses.replace(item.sqe, path=path))
    return dataclasses.replace(scenario, steps=(scenario.steps[0], dataclasses.replace(submit, sqes=(item,))))


def _cqe(transcript: Transcript) -> str:
    assert transcript.error is None, transcript.error
    result = transcript.steps[-1].result
    assert not isinstance(result, str)
    return result.cqes[0][1]


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[Path]:
    """A host file a scenario must not touch; its bytes, mode and mtime are compared afterwards."""
    path = tmp_path / "victim"
    path.write_bytes(b"host data\n")
    path.chmod(0o644)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    before = (path.read_bytes(), path.stat().st_mode, path.stat().st_mtime_ns)
    yield path
    assert (path.read_bytes(), path.stat().st_mode, path.stat().st_mtime_ns) == before


# --- host files -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/etc/passwd", "{tmp}/../victim", "{tmp}x/y", "/proc/1/root/etc/passwd"])
def test_paths_outside_tmp_are_refused_at_load(tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str) -> None:
    error = _refused(tmp_path, capsys, _scenario(_open_steps(path, "O_WRONLY|O_TRUNC")))
    assert "path" in error["message"] or "{tmp}" in error["message"]


@pytest.mark.parametrize("flags", ["O_WRONLY|O_TRUNC", "O_WRONLY|O_APPEND", "O_RDWR|O_CREAT"])
def test_host_file_is_out_of_reach(victim: Path, flags: str) -> None:
    transcript = LiveBackend().run(_with_open_path(str(victim), flags))
    assert _cqe(transcript) == "ENOENT"  # the private root has no such directory


def test_proc_root_of_pid_1_is_the_private_root(victim: Path) -> None:
    transcript = LiveBackend().run(_with_open_path(f"/proc/1/root{victim}", "O_WRONLY|O_TRUNC"))
    assert _cqe(transcript) == "ENOENT"


def test_setuid_file_created_next_to_the_host_dir_stays_inside(tmp_path: Path) -> None:
    target = tmp_path / "suid"
    transcript = LiveBackend().run(_with_open_path(str(target), "O_WRONLY|O_CREAT", 0o4755))
    assert _cqe(transcript) == "ENOENT"
    assert not target.exists()


def test_uncontained_the_same_request_reaches_the_host(victim: Path, tmp_path: Path) -> None:
    """The check above can fail: without containment the bypassed scenario does create the host file."""
    target = tmp_path / "created"
    transcript = LiveBackend(contain=False).run(_with_open_path(str(target), "O_WRONLY|O_CREAT", 0o644))
    assert _cqe(transcript) == "ok"
    assert target.exists()


# --- host Unix sockets ------------------------------------------------------------------------------------------

def _connect_to(addr: str) -> s.Scenario:
    scenario = parse(_scenario([{"do": "ring", "ring": "r"},
                                {"do": "submit", "ring": "r", "sqes": [{"op": "CONNECT", "family": "AF_UNIX",
                                                                        "addr": "{tmp}/sock", "ud": 1}]}]),
                     path="<escape>")
    submit = scenario.steps[1]
    assert isinstance(submit, s.Submit)
    item = submit.sqes[0]
    assert item.connect is not None
    item = dataclasses.replace(item, connect=dataclasses.replace(item.connect, addr=addr))
    return dataclasses.replace(scenario, steps=(scenario.steps[0], dataclasses.replace(submit, sqes=(item,))))


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp_path / "host.sock"))
    sock.listen(4)
    sock.setblocking(False)
    yield sock
    with pytest.raises(BlockingIOError):
        sock.accept()  # nobody connected
    sock.close()


def test_unix_socket_path_outside_tmp_is_refused_at_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _refused(tmp_path, capsys, _scenario([{"do": "ring", "ring": "r"},
                                          {"do": "submit", "ring": "r", "sqes": [
                                              {"op": "CONNECT", "family": "AF_UNIX", "addr": "/run/x.sock",
                                               "ud": 1}]}]))


def test_host_unix_socket_gets_no_connection(listener: socket.socket) -> None:
    transcript = LiveBackend().run(_connect_to(listener.getsockname()))
    assert _cqe(transcript) == "ENOENT"


def test_host_abstract_socket_gets_no_connection() -> None:
    name = f"\0ringfence-escape-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(name)
        sock.listen(4)
        sock.setblocking(False)
        transcript = LiveBackend().run(_connect_to(name))
        assert _cqe(transcript) == "ECONNREFUSED"  # another network namespace: no such name there
        with pytest.raises(BlockingIOError):
            sock.accept()


# --- the harness's own descriptors ------------------------------------------------------------------------------

def test_descriptor_numbers_are_refused_at_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    error = _refused(tmp_path, capsys, _scenario([{"do": "ring", "ring": "r"},
                                                  {"do": "submit", "ring": "r", "sqes": [
                                                      {"op": "WRITE", "fd": 1, "ud": 1}]}]))
    assert "descriptor number" in error["message"]


_STDOUT_RUNNER = textwrap.dedent("""
    import dataclasses, json, sys
    from ringfence.harness.backend import LiveBackend
    from ringfence.scenario import parse
    scenario = parse({"scenario": {"name": "w"}, "step": [
        {"do": "ring", "ring": "r"},
        {"do": "submit", "ring": "r", "sqes": [{"op": "WRITE", "fd": "null", "ud": 1}]}]}, path="-")
    submit = scenario.steps[1]
    items = tuple(dataclasses.replace(i, fd=int(sys.argv[1])) for i in submit.sqes)
    scenario = dataclasses.replace(scenario, steps=(scenario.steps[0], dataclasses.replace(submit, sqes=items)))
    print(json.dumps(LiveBackend().run(scenario).to_json()))
""")


@pytest.mark.parametrize("fd", [1, 3, 4, 5, 6])
def test_runner_descriptors_are_out_of_reach(fd: int) -> None:
    """Standard output (what ``--json`` prints) and the low descriptors that hold control channels."""
    out = subprocess.run([sys.executable, "-c", _STDOUT_RUNNER, str(fd)], capture_output=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, check=True).stdout
    transcript = json.loads(out)  # exactly one JSON document: nothing was written into it
    assert "refusing descriptor number" in transcript["error"]


# --- privileges -------------------------------------------------------------------------------------------------

def test_uid_minus_one_is_refused_at_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    error = _refused(tmp_path, capsys, _scenario([{"do": "drop_privileges", "uid": -1}]))
    assert "uid" in error["message"] or "-1" in error["message"]


def test_uid_minus_one_never_keeps_root() -> None:
    scenario = parse(_scenario([{"do": "drop_privileges"}]), path="<escape>")
    bad = dataclasses.replace(scenario, steps=(dataclasses.replace(scenario.steps[0], uid=-1),))
    transcript = LiveBackend().run(bad)
    assert transcript.error is not None and "uid -1" in transcript.error


def test_drop_privileges_leaves_no_capability() -> None:
    transcript = LiveBackend().run(parse(_scenario([{"do": "drop_privileges"}]), path="<escape>"))
    assert transcript.error is None
    assert transcript.steps[0].result == "ok" and transcript.steps[0].raw["caps"] == 0


# --- sizes, time, leftovers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    _scenario([{"do": "ring", "ring": "r", "entries": 1 << 20}]),
    _scenario([{"do": "ring", "ring": "r"},
               {"do": "submit", "ring": "r", "sqes": [{"op": "READ", "fd": "zero", "len": 1 << 30, "ud": 1}]}]),
    _scenario([{"do": "ring", "ring": "r"}], timeout=3600),
], ids=["entries", "len", "timeout"])
def test_sizes_and_timeout_have_caps(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any]) -> None:
    _refused(tmp_path, capsys, data)


_BLOCKS = [{"do": "ring", "ring": "r"},
           {"do": "submit", "ring": "r", "sqes": [{"op": "READ", "fd": "pipe.r", "ud": 1}]}]


def test_a_run_has_an_overall_time_limit() -> None:
    """Twenty steps that each wait half a second for a CQE that never comes: each is well within its own timeout,
    together they are not."""
    steps = _BLOCKS + [{"do": "submit", "ring": "r", "sqes": [{"op": "READ", "fd": "pipe.r", "ud": 2 + i}]}
                       for i in range(19)]
    started = time.monotonic()
    transcript = LiveBackend(step_timeout=60, run_timeout=2).run(parse(_scenario(steps), path="<escape>"))
    assert transcript.error is not None and "time limit" in transcript.error
    assert 1 <= len(transcript.steps) < 10
    assert time.monotonic() - started < 10


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def descendants(root: int) -> dict[int, dict[str, str]]:
    """The host's processes below ``root`` (by parent pid), with their ``/proc/<pid>/status``."""
    table: dict[int, dict[str, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                table[int(entry.name)] = _status(int(entry.name))
            except (OSError, KeyError):
                continue
    below: dict[int, dict[str, str]] = {}
    grew = True
    while grew:
        grew = False
        for pid, status in table.items():
            if pid not in below and (int(status.get("PPid", 0)) == root or int(status.get("PPid", 0)) in below):
                below[pid] = status
                grew = True
    return below


def contained_agents(root: int) -> set[int]:
    """Processes below ``root`` running with the contained agents' host uid."""
    return {pid for pid, status in descendants(root).items() if status["Uid"].split()[0] == str(HOST_ID_BASE)}


_KILLED_RUNNER = textwrap.dedent("""
    import sys
    from ringfence.harness.backend import LiveBackend
    from ringfence.scenario import parse
    steps = [{"do": "ring", "ring": "r"}, {"do": "fork", "child": "c"},
             {"do": "submit", "ring": "r", "sqes": [{"op": "READ", "fd": "pipe.r", "ud": 1}]}]
    print("running", flush=True)
    LiveBackend(step_timeout=120).run(parse({"scenario": {"name": "k"}, "step": steps}, path="-"))
""")


def test_killing_the_runner_leaves_nothing_behind(tmp_path: Path) -> None:
    """The runner is SIGKILLed mid-step: its agents die with it and no directory stays in the host's temp dir."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    runner = subprocess.Popen([sys.executable, "-c", _KILLED_RUNNER], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(SRC), "TMPDIR": str(tmpdir)})
    try:
        assert runner.stdout is not None and runner.stdout.readline() == b"running\n"
        deadline = time.monotonic() + 60
        agents: set[int] = set()
        while len(agents) < 3 and time.monotonic() < deadline:  # the namespaces' maker, the agent, its child
            agents = contained_agents(runner.pid)
            time.sleep(0.05)
        assert len(agents) == 3, agents
        assert not list(tmpdir.iterdir())  # {tmp} exists only inside the private root
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait()
    deadline = time.monotonic() + 30
    while _alive(agents) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(agents)
    assert not list(tmpdir.iterdir())


def _alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running under the agents' uid (a zombie has been killed already)."""
    alive = set()
    for pid in pids:
        try:
            status = _status(pid)
        except OSError:
            continue
        if status["Uid"].split()[0] == str(HOST_ID_BASE) and not status["State"].startswith("Z"):
            alive.add(pid)
    return alive
