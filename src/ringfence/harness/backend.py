"""``LiveBackend``: scenarios on the real kernel, every one in fresh processes, driven step by step.

The calling process is only the coordinator: it never restricts itself (task restrictions are permanent). It
forks one agent for task ``main`` and then sends each step, in scenario order, to the agent of the step's task,
waiting for the reply before the next step. Agents that hang are killed and the run ends with an error in the
transcript rather than a hang. Scenarios that may connect (``requires`` has ``netns``, or any CONNECT) run in a
private network namespace with only loopback up; if that cannot be created they do not run at all.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from ringfence.abi.opcodes import SqeOp
from ringfence.abi.profiles import KernelProfile
from ringfence.harness import wire
from ringfence.harness.agent import spawn_contained_agent, spawn_root_agent
from ringfence.harness.contain import scenario_dir
from ringfence.live import _sys
from ringfence.live.child import ChildError, run_in_child
from ringfence.live.probe import probed_profile
from ringfence.scenario import caps
from ringfence.scenario import steps as s
from ringfence.scenario.transcript import StepResult, SubmitResult, Transcript

STEP_TIMEOUT = 20.0
EXEC_TIMEOUT = 60.0
EXIT_GRACE = 2.0
#: A whole run's limit when the scenario sets no ``timeout`` (the cap of ``[scenario] timeout``).
RUN_TIMEOUT = float(caps.MAX_TIMEOUT)


def needs_netns(scenario: s.Scenario) -> bool:
    """Whether a scenario must run in a private network namespace: it says so, it contains a CONNECT, or it
    uses the ``listen`` socket."""
    return "netns" in scenario.requires or any(
        (isinstance(step, s.Submit) and any(q.sqe.opcode == SqeOp.CONNECT or q.fd == "listen" for q in step.sqes))
        or (isinstance(step, s.Register) and "listen" in step.files) for step in scenario.steps)


def _netns_works() -> bool:
    def attempt() -> bool:
        _sys.unshare(_sys.CLONE_NEWNET)
        return True

    try:
        return bool(run_in_child(attempt, timeout=10))
    except ChildError:
        return False


@dataclass(slots=True)
class _Agent:
    task: str
    chan: socket.socket
    pid: int


class _Session:
    """The agents of one scenario run, their processes, and the scenario's temp directory."""

    def __init__(self, scenario: s.Scenario, *, step_timeout: float, exec_timeout: float, contain: bool,
                 deadline: float) -> None:
        self.scenario = scenario
        self.step_timeout = step_timeout
        self.exec_timeout = exec_timeout
        self.contain = contain
        self.deadline = deadline
        if contain:  # {tmp} exists only inside the agents' private root: nothing on the host to leave behind
            self.tmp = scenario_dir()
        else:
            self.tmp = tempfile.mkdtemp(prefix="ringfence-live-")
            os.chmod(self.tmp, 0o777)  # an agent may drop to an unprivileged uid and still create files here
        self.agents: dict[str, _Agent] = {}
        self.order: list[str] = []
        self.pidfds: dict[int, int] = {}
        self.root_pid: int | None = None

    def start(self) -> str | None:
        """Fork the first agent; an error string if it could not be set up."""
        private = self.contain or needs_netns(self.scenario)
        if self.contain:
            pid, chan, init = spawn_contained_agent(self.tmp, timeout=self.step_timeout)
            if init is not None:
                self._track(init)  # PID 1 of the agents' PID namespace: its end is every agent's end
        else:
            pid, chan = spawn_root_agent(self.tmp, netns=private)
        self.root_pid = pid
        self._track(pid)
        self._add("main", chan, pid)
        try:
            hello, _ = wire.recv(chan, self.step_timeout)
        except (TimeoutError, wire.ChannelClosedError) as exc:
            return f"first agent did not start: {exc}"
        if "error" in hello:
            return str(hello["error"])
        if self.contain and not hello.get("contained"):
            return "first agent is not contained"
        if private and hello.get("netns") == _sys.netns_inode():  # belt and braces: never connect from here
            return "first agent is still in the coordinator's network namespace"
        return None

    def _track(self, pid: int) -> None:
        """Keep a pidfd of a process the coordinator may have to kill. Pids that contained agents report are in
        their own PID namespace and mean nothing here: those agents end with their namespace's PID 1."""
        if pid not in self.pidfds:
            with contextlib.suppress(ProcessLookupError):
                self.pidfds[pid] = os.pidfd_open(pid)

    def _add(self, task: str, chan: socket.socket, pid: int) -> None:
        self.agents[task] = _Agent(task, chan, pid)
        self.order.append(task)

    def step(self, index: int, step: s.Step) -> tuple[StepResult | None, str | None]:
        """Perform one step: its result, or an error that ends the run. Names were checked when the scenario
        was loaded, so every task named here has an agent."""
        if isinstance(step, s.PassRing):
            return self._pass_ring(index, step)
        agent = self.agents[step.task]
        timeout = self.exec_timeout if isinstance(step, s.Exec) else self.step_timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            return None, f"step {index} ({type(step).__name__}, task {step.task}): the scenario's time limit " \
                         "ran out; killed"
        by_deadline = left < timeout
        timeout = min(timeout, left)
        try:
            wire.send(agent.chan, {"op": "step", "index": index, "step": wire.encode_step(step)})
            reply, fds = wire.recv(agent.chan, timeout)
        except TimeoutError:
            if by_deadline:
                return None, f"step {index} ({type(step).__name__}, task {step.task}): the scenario's time limit " \
                             "ran out; killed"
            return None, f"step {index} ({type(step).__name__}, task {step.task}): agent did not answer within " \
                         f"{timeout:g} s; killed"
        except (wire.ChannelClosedError, OSError) as exc:
            return None, f"step {index} ({type(step).__name__}, task {step.task}): agent died ({exc})"
        if "error" in reply:
            for fd in fds:
                os.close(fd)
            return None, f"step {index} ({type(step).__name__}, task {step.task}): {reply['error']}"
        raw: dict[str, Any] = dict(reply.get("raw", {}))
        if isinstance(step, (s.Fork, s.SpawnThread)):
            name = step.child if isinstance(step, s.Fork) else step.thread
            if len(fds) != 1:
                return None, f"step {index}: agent sent {len(fds)} channels for the new task"
            pid = int(raw.get("pid", agent.pid))
            if not self.contain:
                self._track(pid)
            self._add(name, socket.socket(fileno=fds[0]), pid)
        elif isinstance(step, s.Exec):
            agent.pid = int(raw.get("pid", agent.pid))
        res = reply["result"]
        result = SubmitResult(res["submitted"], tuple((int(u), str(o)) for u, o in res["cqes"])) \
            if isinstance(res, dict) else str(res)
        return StepResult(index, step.kind, step.task, result, reply.get("pdu_size_out"), raw), None

    def _ask(self, index: int, step: s.Step, task: str, extra: dict[str, Any],
             fds: list[int]) -> tuple[dict[str, Any], list[int], str | None]:
        """One message to ``task``'s agent about ``step`` and its reply (with descriptors), or an error."""
        agent = self.agents[task]
        try:
            wire.send(agent.chan, {"op": "step", "index": index, "step": wire.encode_step(step), **extra}, fds)
            reply, got = wire.recv(agent.chan, self.step_timeout)
        except TimeoutError:
            return {}, [], f"step {index} (pass_ring, task {task}): agent did not answer within " \
                           f"{self.step_timeout:g} s; killed"
        except (wire.ChannelClosedError, OSError) as exc:
            return {}, [], f"step {index} (pass_ring, task {task}): agent died ({exc})"
        if "error" in reply:
            for fd in got:
                os.close(fd)
            return {}, [], f"step {index} (pass_ring, task {task}): {reply['error']}"
        return reply, got, None

    def _pass_ring(self, index: int, step: s.PassRing) -> tuple[StepResult | None, str | None]:
        """The sender answers first (and sends the descriptor, for SCM_RIGHTS); then the receiver takes it."""
        give, fds, error = self._ask(index, step, step.task, {"role": "give"}, [])
        if error is not None:
            return None, error
        raw: dict[str, Any] = {"give": give.get("raw", {})}
        result = str(give["result"])
        if result == "ok":
            try:
                take, _, error = self._ask(index, step, step.to, {"role": "take", "give": raw["give"]}, fds)
            finally:
                for fd in fds:
                    os.close(fd)
            if error is not None:
                return None, error
            raw["take"], result = take.get("raw", {}), str(take["result"])
        return StepResult(index, step.kind, step.task, result, None, raw), None

    def close(self) -> None:
        """Ask every agent to exit, then kill whatever is left, reap, and remove the temp directory."""
        for task in reversed(self.order):
            agent = self.agents[task]
            try:
                wire.send(agent.chan, {"op": "exit"})
                wire.recv(agent.chan, 0.5)
            except (TimeoutError, wire.ChannelClosedError, OSError):
                pass
            agent.chan.close()
        deadline = time.monotonic() + EXIT_GRACE
        for pidfd in self.pidfds.values():
            left = max(deadline - time.monotonic(), 0)
            if not select.select([pidfd], [], [], left)[0]:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        if self.root_pid is not None:
            os.waitpid(self.root_pid, 0)
        for pidfd in self.pidfds.values():
            os.close(pidfd)
        self.pidfds.clear()
        if not self.contain:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def kill_all(self) -> None:
        for pidfd in self.pidfds.values():
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)


class LiveBackend:
    """The host kernel (or the VM's) as a :class:`ringfence.scenario.backend.Backend`."""

    name = "live"

    def __init__(self, *, step_timeout: float = STEP_TIMEOUT, exec_timeout: float = EXEC_TIMEOUT,
                 run_timeout: float = RUN_TIMEOUT, contain: bool = True) -> None:
        self.step_timeout = step_timeout
        self.exec_timeout = exec_timeout
        self.run_timeout = run_timeout
        self.contain = contain
        self._features: frozenset[str] | None = None

    @property
    def profile(self) -> KernelProfile:
        """The probed profile of the running kernel (probed once per process)."""
        return probed_profile()[1]

    def features(self) -> frozenset[str]:
        if self._features is None:
            out = set()
            if _netns_works():
                out.add("netns")
            if os.geteuid() == 0:
                out.add("unprivileged")  # root can drop to an unprivileged uid
            self._features = frozenset(out)
        return self._features

    def run(self, scenario: s.Scenario) -> Transcript:
        """Run every step in order in fresh agents; the first failure to perform a step ends the run."""
        kernel = os.uname().release
        limit = self.run_timeout if scenario.timeout is None else float(scenario.timeout)
        session = _Session(scenario, step_timeout=self.step_timeout, exec_timeout=self.exec_timeout,
                           contain=self.contain, deadline=time.monotonic() + limit)
        results: list[StepResult] = []
        error: str | None = None
        try:
            error = session.start()
            if error is None:
                for index, step in enumerate(scenario.steps):
                    result, error = session.step(index, step)
                    if error is not None:
                        session.kill_all()
                        break
                    if result is not None:
                        results.append(result)
        finally:
            session.close()
        return Transcript(scenario.name, self.name, kernel, tuple(results), error)
