"""The agents' containment, seen from outside: the seccomp filter's decisions (interpreted, then on this kernel),
and a running contained agent's namespaces, capabilities, ids, filter and root read from the host's ``/proc``."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest

from ringfence.abi import seccomp
from ringfence.abi.seccomp import AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, SeccompData
from ringfence.bpf import SECCOMP, check, run
from ringfence.harness import agent_filter, contain
from ringfence.harness.backend import LiveBackend
from ringfence.live import _sys
from ringfence.live.child import run_in_child
from ringfence.scenario import parse
from ringfence.scenario.transcript import Transcript

from .test_escapes_contained import contained_agents

ERRNO = int(seccomp.SeccompAction.ERRNO)
ALLOW = int(seccomp.SeccompAction.ALLOW)


def verdict(arch: int, nr: int, machine: str = "x86_64") -> tuple[int | None, int]:
    prog = check(agent_filter.program(machine).program, target=SECCOMP)
    ret = seccomp.SeccompReturn.of(run(prog, SeccompData(nr, arch).pack()).value)
    return (None if ret.action is None else int(ret.action)), ret.data


@pytest.mark.parametrize(("name", "numbers"), sorted(agent_filter.DENIED.items()))
def test_each_denied_call_fails_with_eperm(name: str, numbers: tuple[int, int]) -> None:
    assert verdict(AUDIT_ARCH_X86_64, numbers[0]) == (ERRNO, errno.EPERM)
    assert verdict(agent_filter.AUDIT_ARCH_AARCH64, numbers[1], "aarch64") == (ERRNO, errno.EPERM)


@pytest.mark.parametrize("nr", [0, 1, 2, 3, 9, 56, 57, 59, 231, 425, 426, 427, 435])
def test_the_calls_agents_make_pass(nr: int) -> None:
    """read, write, open, close, mmap, clone, fork, execve, exit_group, the io_uring calls, clone3."""
    assert verdict(AUDIT_ARCH_X86_64, nr)[0] == ALLOW


@pytest.mark.parametrize(("arch", "nr"), [(AUDIT_ARCH_X86_64, 1 | X32_SYSCALL_BIT), (AUDIT_ARCH_I386, 4),
                                          (agent_filter.AUDIT_ARCH_AARCH64, 63)])
def test_other_calling_conventions_fail(arch: int, nr: int) -> None:
    assert verdict(arch, nr) == (ERRNO, errno.ENOSYS)


def _filtered_child() -> tuple[int, int, int]:
    _sys.seccomp_filter(agent_filter.program().program.to_bytes())
    try:
        _sys.unshare(_sys.CLONE_NEWUTS)
        unshared = 0
    except OSError as exc:
        unshared = exc.errno or 0
    try:
        _sys.mount("none", "/", None, _sys.MS_REMOUNT)
        mounted = 0
    except OSError as exc:
        mounted = exc.errno or 0
    return unshared, mounted, os.getpid()


def test_the_kernel_applies_the_filter() -> None:
    if not _sys.has_cap_sys_admin():
        _sys.set_no_new_privs()  # pragma: no cover - a seccomp filter needs one or the other
    unshared, mounted, pid = run_in_child(_filtered_child, timeout=20)
    assert (unshared, mounted) == (errno.EPERM, errno.EPERM)
    assert pid > 0


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_a_running_agent_is_contained() -> None:
    """While an agent waits in a step, the host reads its ``/proc`` entry: other namespaces than the runner's,
    the agents' host uid, the capability masks, seccomp in filter mode, no_new_privs untouched, its own root."""
    if os.geteuid() != 0:
        pytest.skip("environment: needs root (the harness runs scenarios as root)")
    steps = [{"do": "ring", "ring": "r"}] + [
        {"do": "submit", "ring": "r", "sqes": [{"op": "READ", "fd": "pipe.r", "ud": i}]} for i in range(6)]
    scenario = parse({"scenario": {"name": "watched"}, "step": steps}, path="<contain>")
    found: list[Transcript] = []
    runner = threading.Thread(target=lambda: found.append(LiveBackend().run(scenario)))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        agents: set[int] = set()
        while len(agents) < 2 and time.monotonic() < deadline:
            agents = contained_agents(os.getpid())
            time.sleep(0.05)
        assert len(agents) == 2, "the agent and the process that made its namespaces"
        pid = next(a for a in agents if _status(a)["NSpid"].split()[1:] == ["1"])  # not the waiting parent
        status = _status(pid)
        assert status["Uid"].split() == [str(contain.HOST_ID_BASE)] * 4
        keep = contain.keep_mask(0)
        assert int(status["CapEff"], 16) == keep and int(status["CapBnd"], 16) == keep
        assert int(status["CapInh"], 16) == 0 and int(status["CapAmb"], 16) == 0
        assert status["Seccomp"] == "2" and status["NoNewPrivs"] == "0"
        for ns in ("user", "mnt", "pid", "net", "ipc", "uts"):
            assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
        for fd in (0, 1, 2):
            assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
        assert sorted(os.listdir(f"/proc/{pid}/root")) == sorted(_root_entries())
        limits = Path(f"/proc/{pid}/limits").read_text()
        for label, value in (("Max address space", 2 << 30), ("Max processes", 256), ("Max open files", 1024),
                             ("Max file size", 64 << 20), ("Max core file size", 0)):
            line = next(x for x in limits.splitlines() if x.startswith(label))
            assert line.split()[len(label.split()):][:2] == [str(value)] * 2, line
    finally:
        runner.join(60)
    assert found and found[0].error is None


def _root_entries() -> set[str]:
    """The top level of the private root: ``dev``, ``proc``, the first component of ``{tmp}`` and of each path the
    interpreter needs."""
    tops = {"dev", "proc", contain.scenario_dir().split("/")[1]}
    return tops | {p.split("/")[1] for p in contain.interpreter_paths()}


@pytest.mark.parametrize(("flags", "allowed"), [
    (_sys.CLONE_NEWUSER, True),                                  # the userns step
    (_sys.CLONE_NEWUSER | _sys.CLONE_NEWNS, False), (_sys.CLONE_NEWNS, False), (0, False),
    (_sys.CLONE_NEWUSER | (1 << 32), False),                     # a high half is never ignored
])
def test_unshare_passes_only_for_a_new_user_namespace(flags: int, allowed: bool) -> None:
    prog = check(agent_filter.program("x86_64").program, target=SECCOMP)
    data = SeccompData(agent_filter.UNSHARE[0], AUDIT_ARCH_X86_64, 0, (flags, 0, 0, 0, 0, 0)).pack()
    ret = seccomp.SeccompReturn.of(run(prog, data).value)
    assert (int(ret.action) if ret.action is not None else None, ret.data) == \
        ((ALLOW, 0) if allowed else (ERRNO, errno.EPERM))
