"""Agents: one per scenario task, each a real OS thread in a forked process, driven over a control channel.

An agent waits for one step at a time, performs it and replies. ``fork`` makes the agent fork (the child
becomes the agent of the new task, with a channel created before the fork and handed to the coordinator through
``SCM_RIGHTS``), ``thread`` starts a ``threading.Thread`` agent in the same process, and ``exec`` re-executes
``python -m ringfence.harness.agent`` with the channel kept open, so the agent goes on in the new program image.
Agent code never returns into the code that forked it: every process leaves through ``os._exit``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from ringfence.errors import KernelError
from ringfence.harness import agent_filter, contain, wire
from ringfence.harness.netns import enter_private_netns
from ringfence.harness.perform import PERFORMERS, AgentProcess, Reply
from ringfence.harness.resources import Resources
from ringfence.live import _sys
from ringfence.scenario import steps as s


def serve(proc: AgentProcess, chan: socket.socket, task: str) -> None:
    """Answer step messages until told to exit or the coordinator goes away."""
    while True:
        try:
            msg, fds = wire.recv(chan)
        except (wire.ChannelClosedError, OSError):
            return
        proc.inbox, proc.request = list(fds), msg  # a step may take descriptors that came with it (pass_ring)
        if msg.get("op") == "exit":
            wire.send(chan, {"ok": True})
            return
        out_fds: list[socket.socket] = []
        try:
            step = wire.decode_step(msg["step"])
            if isinstance(step, s.Fork):
                reply = _fork(proc, chan, step, out_fds)
            elif isinstance(step, s.SpawnThread):
                reply = _thread(proc, step, out_fds)
            elif isinstance(step, s.Exec):
                reply = _exec(proc, chan, task)
            else:
                reply = PERFORMERS[type(step)](proc, step)
        except Exception as exc:  # the scenario cannot be performed: report, keep serving
            reply = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        for fd in proc.inbox:  # descriptors nothing took
            os.close(fd)
        proc.inbox = []
        send_fds = [int(fd) for fd in reply.pop("fds", [])]  # descriptors a step hands on (its own, kept open)
        try:
            wire.send(chan, reply, [f.fileno() for f in out_fds] + send_fds)
        except OSError as exc:  # the kernel refused to pass a step's descriptor (SCM_RIGHTS): that is its answer
            if not send_fds:
                raise
            wire.send(chan, {"result": KernelError(exc.errno or 0, "sendmsg").name,
                             "raw": {"sendmsg": -(exc.errno or 0)}}, [f.fileno() for f in out_fds])
        for f in out_fds:
            f.close()


def _fork(proc: AgentProcess, chan: socket.socket, step: s.Fork, out: list[socket.socket]) -> Reply:
    coord_end, agent_end = wire.channel_pair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its own channel
        code = 0
        try:
            coord_end.close()
            for other in list(proc.channels.values()):
                other.close()
            proc.channels = {agent_end.fileno(): agent_end}
            serve(proc, agent_end, step.child)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    agent_end.close()
    out.append(coord_end)
    return {"result": "ok", "raw": {"pid": pid}}


def _thread(proc: AgentProcess, step: s.SpawnThread, out: list[socket.socket]) -> Reply:
    coord_end, agent_end = wire.channel_pair()
    proc.channels[agent_end.fileno()] = agent_end
    t = threading.Thread(target=serve, args=(proc, agent_end, step.thread), name=f"agent-{step.thread}",
                         daemon=True)
    t.start()
    out.append(coord_end)
    return {"result": "ok", "raw": {"tid": t.native_id}}


def _exec(proc: AgentProcess, chan: socket.socket, task: str) -> Reply:
    """Replace the program image; on success the new image sends this step's reply."""
    state = {"task": task, "channel": chan.fileno(), "tmp": proc.resources.tmp, "fds": proc.resources.fds,
             "outside_netns": proc.outside_netns}
    os.set_inheritable(chan.fileno(), True)
    proc.resources.make_inheritable()
    # -S skips site (seconds under TCG); the package is found through PYTHONPATH instead, stdlib is enough
    env = {**os.environ, "PYTHONPATH": _PACKAGE_ROOT}
    try:
        os.execve(sys.executable, [sys.executable, "-S", "-m", "ringfence.harness.agent", json.dumps(state)], env)
    except OSError as exc:
        os.set_inheritable(chan.fileno(), False)
        return {"result": KernelError(exc.errno or 1, "execve").name, "raw": {}}
    raise AssertionError("execv returned")  # pragma: no cover


_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def _quiet_signals() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children of agents are reaped automatically
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def spawn_root_agent(tmp: str, *, netns: bool) -> tuple[int, socket.socket]:
    """Fork the first agent (task ``main``); returns its pid and the coordinator's end of its channel.

    Its first message is ``{"ready": true, ...}`` or ``{"error": ...}`` (e.g. no private network namespace).
    """
    coord_end, agent_end = wire.channel_pair()
    outside = _sys.netns_inode()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the agent
        code = 0
        try:
            coord_end.close()
            _quiet_signals()
            try:
                inode = enter_private_netns() if netns else outside
                os.chdir(tmp)
                proc = AgentProcess(Resources.open(tmp, private_net=netns), outside,
                                    channels={agent_end.fileno(): agent_end})
            except Exception as exc:
                wire.send(agent_end, {"error": f"agent setup failed: {type(exc).__name__}: {exc}"})
                raise
            wire.send(agent_end, {"ready": True, "pid": os.getpid(), "netns": inode, "private_netns": netns})
            serve(proc, agent_end, "main")
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    agent_end.close()
    return pid, coord_end


def spawn_contained_agent(tmp: str, *, timeout: float) -> tuple[int, socket.socket, int | None]:
    """Fork the first agent inside its own namespaces and private root (:mod:`ringfence.harness.contain`).

    Returns the pid of the forked child (the coordinator waits for it), the coordinator's end of the channel and
    the host pid of the agent (PID 1 of the agents' PID namespace: killing it ends every agent), or None if the
    child failed before forking it (its error then arrives on the channel, or the channel closes).
    """
    coord_end, agent_end = wire.channel_pair()
    outside = _sys.netns_inode()
    host_euid = os.geteuid()
    caps = contain.keep_mask(host_euid)
    read_only = contain.interpreter_paths()
    agent_filter.code()  # built here once, not in every agent
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            coord_end.close()
            os.close(to_child_w)
            os.close(from_child_r)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            contain.die_with_parent()
            try:
                contain.unshare_all()
            except Exception as exc:
                wire.send(agent_end, {"error": f"agent setup failed: {exc}"})
                raise
            os.write(from_child_w, b"u")
            if os.read(to_child_r, 1) != b"m":
                wire.send(agent_end, {"error": "agent setup failed: no user id maps"})
                raise ChildProcessError
            try:
                sources = contain.open_sources(read_only)
                contain.become_inside_root(host_euid)
            except Exception as exc:
                wire.send(agent_end, {"error": f"agent setup failed: {exc}"})
                raise
            child = os.fork()
            if child == 0:
                os.close(from_child_w)
                os.close(to_child_r)
                _contained_agent(tmp, agent_end, outside=outside, caps=caps, read_only=read_only, sources=sources)
            agent_end.close()
            for fd in sources.values():
                os.close(fd)
            _sys.limit_caps(0)  # this process only waits for the agent
            os.write(from_child_w, str(child).encode())
            os.close(from_child_w)
            _, status = os.waitpid(child, 0)
            code = 0 if status == 0 else 1
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    agent_end.close()
    os.close(to_child_r)
    os.close(from_child_w)
    init: int | None = None
    try:
        if _read_pipe(from_child_r, timeout) == b"u":
            contain.write_id_maps(pid)
            os.write(to_child_w, b"m")
            text = _read_pipe(from_child_r, timeout)
            init = int(text) if text else None
    finally:
        os.close(to_child_w)
        os.close(from_child_r)
    return pid, coord_end, init


def _read_pipe(fd: int, timeout: float) -> bytes:
    if not select.select([fd], [], [], timeout)[0]:
        return b""
    return os.read(fd, 32)


def _contained_agent(tmp: str, chan: socket.socket, *, outside: int, caps: int, read_only: list[str],
                     sources: dict[str, int]) -> None:  # pragma: no cover - runs in the agent
    code = 0
    try:
        _quiet_signals()
        try:
            contain.die_with_parent()
            contain.enter_private_root(tmp, read_only, sources)
            os.chdir(tmp)
            resources = Resources.open(tmp, private_net=True)  # contained agents always have their own netns
            contain.seal([chan.fileno(), *resources.fds.values()], caps)
            proc = AgentProcess(resources, outside, channels={chan.fileno(): chan})
        except Exception as exc:
            wire.send(chan, {"error": f"agent setup failed: {type(exc).__name__}: {exc}"})
            raise
        wire.send(chan, {"ready": True, "pid": os.getpid(), "netns": _sys.netns_inode(), "private_netns": True,
                         "contained": True})
        serve(proc, chan, "main")
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def main(argv: list[str]) -> int:
    """Entry point after ``exec``: rebuild the process state, answer the exec step, serve on."""
    state: dict[str, Any] = json.loads(argv[0])
    _quiet_signals()
    chan = socket.socket(fileno=int(state["channel"]))
    os.set_inheritable(chan.fileno(), False)
    fds = {str(k): int(v) for k, v in state["fds"].items()}
    for fd in fds.values():
        os.set_inheritable(fd, False)
    proc = AgentProcess(Resources(str(state["tmp"]), fds), int(state["outside_netns"]),
                        channels={chan.fileno(): chan})
    wire.send(chan, {"result": "ok", "raw": {"pid": os.getpid(), "no_new_privs": _sys.no_new_privs()}})
    serve(proc, chan, str(state["task"]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    os._exit(main(sys.argv[1:]))
