"""Containment of a scenario's agents by the kernel's own tools (``docs/threat-model.md``, "The scenario harness").

The first agent of a contained run is made in two forks. The first child unshares a user, mount, PID, network,
IPC and UTS namespace (:func:`unshare_all`) and waits while the coordinator, outside, writes its uid and gid maps
(:func:`write_id_maps`). It then forks the agent, which is PID 1 of the new PID namespace, builds a private root
(:func:`enter_private_root`), opens its resources and seals itself (:func:`seal`): standard descriptors on
``/dev/null``, every other inherited descriptor closed, resource limits, capabilities cut to :data:`KEEP_CAPS`,
and the seccomp filter of :mod:`ringfence.harness.agent_filter`. Both processes die with their parent.
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import signal
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from ringfence.errors import RingfenceError
from ringfence.harness import agent_filter
from ringfence.harness.netns import loopback_up
from ringfence.live import _sys


class ContainmentError(RingfenceError):
    """The agents' namespaces, root, limits or filter could not be set up: the scenario does not run."""


NAMESPACES: Final = (_sys.CLONE_NEWUSER | _sys.CLONE_NEWNS | _sys.CLONE_NEWPID | _sys.CLONE_NEWNET
                     | _sys.CLONE_NEWIPC | _sys.CLONE_NEWUTS)
#: Inside ids 0..65535 (root, and every uid ``drop_privileges`` accepts) are this host range when run as root.
HOST_ID_BASE: Final = 0x70000000
ID_COUNT: Final = 65536
#: Capabilities the corpus's steps need, by number: CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID (root's
#: rights on files in ``{tmp}``), SETGID, SETUID (``drop_privileges``), NET_RAW (raw sockets), IPC_LOCK (io_uring
#: memory accounting), SYS_ADMIN (the gate of task restrictions and filters).
KEEP_CAPS: Final = (0, 1, 2, 3, 4, 6, 7, 13, 14, 21)
#: The private root's size, and the resource limits of every agent.
ROOT_SIZE: Final = "64m"
LIMITS: Final = {resource.RLIMIT_AS: 2 << 30, resource.RLIMIT_NPROC: 256, resource.RLIMIT_NOFILE: 1024,
                 resource.RLIMIT_FSIZE: 64 << 20, resource.RLIMIT_CORE: 0}
#: Where the private root is assembled before pivot_root (a tmpfs mounted over it, in the private mount ns only).
STAGING: Final = "/tmp"
_ST_TO_MS: Final = ((os.ST_NOSUID, _sys.MS_NOSUID), (os.ST_NODEV, _sys.MS_NODEV), (os.ST_NOEXEC, _sys.MS_NOEXEC),
                    (os.ST_NOATIME, _sys.MS_NOATIME), (os.ST_NODIRATIME, _sys.MS_NODIRATIME),
                    (os.ST_RELATIME, _sys.MS_RELATIME))
_MS_STRICTATIME: Final = 1 << 24
_PACKAGE_ROOT: Final = str(Path(__file__).resolve().parents[2])


def scenario_dir() -> str:
    """A fresh name for ``{tmp}`` inside the private root, shaped like ``tempfile.mkdtemp``'s (same length)."""
    return os.path.join(tempfile.gettempdir(), "ringfence-live-" + secrets.token_hex(4))


def die_with_parent() -> None:
    """SIGKILL this process when the process that forked it ends (a killed runner leaves no agent behind)."""
    _sys.prctl(_sys.PR_SET_PDEATHSIG, signal.SIGKILL)


def unshare_all() -> None:
    try:
        _sys.unshare(NAMESPACES)
    except OSError as exc:
        raise ContainmentError(f"cannot create the agents' namespaces: {exc}") from None


def write_id_maps(pid: int) -> None:
    """From outside: root maps inside 0..65535 to an unused host range; anyone else maps only their own ids, and
    then the agents keep no capability (:func:`keep_mask`), as uncontained."""
    proc = f"/proc/{pid}"
    try:
        if os.geteuid() == 0:
            for name in ("uid_map", "gid_map"):
                Path(proc, name).write_text(f"0 {HOST_ID_BASE} {ID_COUNT}\n")
        else:
            Path(proc, "setgroups").write_text("deny")
            Path(proc, "uid_map").write_text(f"{os.geteuid()} {os.geteuid()} 1\n")
            Path(proc, "gid_map").write_text(f"{os.getegid()} {os.getegid()} 1\n")
    except OSError as exc:
        raise ContainmentError(f"cannot map the agents' user ids: {exc}") from None


def become_inside_root(host_euid: int) -> None:
    """After the maps: a root run takes the inside root's ids (files it creates need an owner the namespace maps).
    Anyone else already has their own, mapped ids."""
    if host_euid == 0:
        try:
            os.setgroups([])
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            # Changing ids made the process non-dumpable, and then no sibling agent could take a descriptor from
            # it (pidfd_getfd, the pass_ring step) without CAP_SYS_PTRACE over the host. The agents' PID
            # namespace and uid are their own and the filter denies ptrace itself, so dumpable is safe here.
            _sys.prctl(_sys.PR_SET_DUMPABLE, 1)
        except OSError as exc:
            raise ContainmentError(f"cannot become root of the agents' user namespace: {exc}") from None


def keep_mask(host_euid: int) -> int:
    """The capabilities agents keep: :data:`KEEP_CAPS` for a root run, none otherwise (as without containment)."""
    return sum(1 << cap for cap in KEEP_CAPS) if host_euid == 0 else 0


def interpreter_paths() -> list[str]:
    """What ``exec`` of the agent needs, read-only: the interpreter, its libraries, the venv, this package."""
    paths = ["/usr", "/lib", "/lib64", "/etc/ld.so.cache", sys.prefix, sys.base_prefix, sys.exec_prefix,
             sys.base_exec_prefix, os.path.dirname(os.path.realpath(sys.executable)), _PACKAGE_ROOT]
    out: list[str] = []
    for p in sorted({os.path.normpath(p) for p in paths}, key=len):
        if os.path.lexists(p) and not any(p == q or p.startswith(q + "/") for q in out):
            out.append(p)
    return out


def _bind_read_only(fd: int, source: str, target: str) -> None:
    _sys.mount(f"/proc/self/fd/{fd}", target, None, _sys.MS_BIND | _sys.MS_REC)
    flags = os.statvfs(target).f_flag
    keep = sum(ms for st, ms in _ST_TO_MS if flags & st)
    if not flags & (os.ST_NOATIME | os.ST_RELATIME):
        keep |= _MS_STRICTATIME
    _sys.mount(None, target, None, _sys.MS_BIND | _sys.MS_REMOUNT | _sys.MS_RDONLY | _sys.MS_NOSUID
               | _sys.MS_NODEV | keep)


def open_sources(read_only: Iterable[str]) -> dict[str, int]:
    """``O_PATH`` descriptors of what the private root binds, opened while the process still has the host's ids
    (``/root`` may hold the interpreter, and is 0700) and before :data:`STAGING` is covered."""
    sources: dict[str, int] = {}
    try:
        for path in [*read_only, "/dev/null", "/dev/zero"]:
            if not os.path.islink(path):
                sources[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        raise ContainmentError(f"cannot open what the agents' root needs: {exc}") from None
    return sources


def enter_private_root(tmp: str, read_only: Iterable[str], sources: dict[str, int]) -> None:
    """Make a tmpfs the root: ``/dev/null``, ``/dev/zero``, ``tmp`` (mode 0777), a fresh ``/proc``, and
    ``read_only`` bound read-only at their own paths (from ``sources``); the host's root is detached. Runs as
    PID 1 of the new PID namespace (``/proc`` shows that namespace)."""
    try:
        _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
        _sys.mount("tmpfs", STAGING, "tmpfs", _sys.MS_NOSUID | _sys.MS_NODEV, f"size={ROOT_SIZE},mode=0755")
        root = STAGING
        for path in read_only:
            target = root + path
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            if path not in sources:  # a symbolic link (``/lib -> usr/lib``): the same link
                os.symlink(os.readlink(path), target)
                continue
            if stat.S_ISDIR(os.fstat(sources[path]).st_mode):
                os.makedirs(target, mode=0o755, exist_ok=True)
            else:
                Path(target).touch(0o444)
            _bind_read_only(sources[path], path, target)
        os.makedirs(root + "/dev", mode=0o755)
        for name in ("null", "zero"):
            Path(root, "dev", name).touch(0o666)
            _sys.mount(f"/proc/self/fd/{sources['/dev/' + name]}", f"{root}/dev/{name}", None, _sys.MS_BIND)
        for fd in sources.values():
            os.close(fd)
        os.makedirs(root + "/proc", mode=0o555)
        _sys.mount("proc", root + "/proc", "proc", _sys.MS_NOSUID | _sys.MS_NODEV | _sys.MS_NOEXEC)
        os.makedirs(root + tmp, mode=0o755)
        os.chmod(root + tmp, 0o777)  # agents that dropped to 65534 create files here too; nobody else sees it
        os.chdir(root)
        _sys.pivot_root(".", ".")
        _sys.umount2(".", _sys.MNT_DETACH)
        os.chdir("/")
        loopback_up()
    except OSError as exc:
        raise ContainmentError(f"cannot build the agents' private root: {exc}") from None


def seal(keep_fds: Iterable[int], caps: int) -> None:
    """Standard descriptors on ``/dev/null``, every other descriptor but ``keep_fds`` closed, limits, capabilities,
    seccomp. Irreversible, inherited by every later agent (threads, forks, exec)."""
    keep = set(keep_fds)
    try:
        null = os.open("/dev/null", os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(null, std)
        keep |= {0, 1, 2}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd not in keep:
                with contextlib.suppress(OSError):  # the listing's own descriptor
                    os.close(fd)
        for what, limit in LIMITS.items():
            _soft, hard = resource.getrlimit(what)
            value = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
            resource.setrlimit(what, (value, value))
        _sys.limit_caps(caps)
        _sys.seccomp_filter(agent_filter.code())
    except OSError as exc:
        raise ContainmentError(f"cannot seal the agent: {exc}") from None
