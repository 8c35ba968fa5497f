"""Seeded random scenarios, as the plain dicts of the scenario file format (``docs/scenarios.md``).

They go through the loader like hand-written files. No expectations are generated: random scenarios are
compared model against kernel, transcript to transcript. Declared SQE ``result``s are what the operation
returns on a real kernel *when it runs*, from :mod:`ringfence.scenario.oracle`; cases whose real result
cannot be known are never generated. Nothing generated blocks, and nothing touches files outside ``{tmp}``
except opening ``/dev/null`` read-only; connects go only to loopback (inside the harness's private netns).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Final

from ringfence.abi.constants import RESOLVE, O
from ringfence.abi.profiles import DEFAULT_PROFILE, PROFILES
from ringfence.bpf import Program, check
from ringfence.errors import CheckError
from ringfence.scenario import oracle

TMP_FILES: Final = "{tmp}/f"
SQ_BUDGET: Final = 32       # SQEs per ring over the whole scenario: never more than its SQ can hold
RING_ENTRIES: Final = 32
MAX_TASKS: Final = 5

#: Library programs: (natural opcode or "*", assembly). Labels: ok/no.
_TAIL: Final = "\nok: ret #1\nno: ret #0"
LIBRARY: Final[dict[str, tuple[str, str]]] = {
    "allow": ("*", "ret #1"),
    "deny": ("*", "ret #0"),
    "even_user_data": ("*", "ld [user_data]\n jset #1, no, ok" + _TAIL),
    "no_async": ("*", "ld [opcode]\n jset #0x1000, no, ok" + _TAIL),
    "no_link": ("*", "ld [opcode]\n jset #0x0c00, no, ok" + _TAIL),
    "no_drain": ("*", "ld [opcode]\n jset #0x0200, no, ok" + _TAIL),
    "payload_present": ("*", "ld [opcode]\n rsh #16\n and #0xff\n jeq #0, no, ok" + _TAIL),
    "ret_user_data": ("*", "ld [user_data]\n ret a"),
    "scratch": ("*", "ld [user_data.hi]\n st M[3]\n ldx M[3]\n txa\n and #0xff\n ret a"),
    "div_by_x": ("*", "ld [user_data]\n and #3\n tax\n ld #12\n div x\n ret a"),
    "len_is_40": ("*", "ld len\n jeq #40, ok, no" + _TAIL),
    "inet_only": ("SOCKET", "ld [socket.family]\n jeq #AF_INET, ok, no" + _TAIL),
    "tcp_only": ("SOCKET", "ld [socket.type]\n and #0xf\n jeq #SOCK_STREAM, ok, no" + _TAIL),
    "no_cloexec": ("SOCKET", "ld [socket.type]\n jset #SOCK_CLOEXEC, no, ok" + _TAIL),
    "no_creat": ("OPENAT", "ld [open.flags]\n jset #O_CREAT, no, ok" + _TAIL),
    "largefile_seen": ("OPENAT", "ld [open.flags]\n jset #O_LARGEFILE, ok, no" + _TAIL),
    "read_only": ("OPENAT", "ld [open.flags]\n and #O_ACCMODE\n jeq #O_RDONLY, ok, no" + _TAIL),
    "mode_zero": ("OPENAT2", "ld [open.mode]\n jeq #0, ok, no" + _TAIL),
    "no_resolve_in_root": ("OPENAT2", "ld [open.resolve]\n jset #RESOLVE_IN_ROOT, no, ok" + _TAIL),
    "v4_only": ("CONNECT", "ld [connect.family]\n jeq #AF_INET, ok, no" + _TAIL),
    "no_port_22": ("CONNECT", "ld [connect.port]\n jeq #htons(22), no, ok" + _TAIL),
    "localhost_v4": ("CONNECT", 'ld [connect.v4_addr]\n jeq #ip4("127.0.0.1"), ok, no' + _TAIL),
    "not_127_42": ("CONNECT", 'ld [connect.v4_addr]\n and #ip4("255.255.0.0")\n jeq #ip4("127.42.0.0"), no, ok'
                   + _TAIL),
    "v6_loopback": ("CONNECT", 'ld [connect.v6_addr.3]\n jeq #ip6("::1", 3), ok, no' + _TAIL),
}
#: Programs the kernel rejects (registration must fail with EINVAL).
BAD_PROGRAMS: Final = ("ld [3]\n ret #1", "ld [40]\n ret #1", "ld #1", "ldh [0]\n ret #1", "ld M[0]\n ret a")

SQE_OPS: Final = ("NOP", "READ", "WRITE", "READV", "WRITEV", "FSYNC", "SOCKET", "OPENAT", "OPENAT2", "CONNECT")
#: Payload sizes the filters declare most of the time: the newest profile's (others test the size negotiation).
_PDU: Final = {op.name: size for op, size in PROFILES[DEFAULT_PROFILE].pdu_sizes.items()}
_REG_OPS: Final = ("PROBE", "BUFFERS", "FILES", "RESTRICTIONS", "ENABLE_RINGS", "BPF_FILTER", "QUERY")
_FLAG_NAMES: Final = ("IO_LINK", "IO_HARDLINK", "ASYNC", "CQE_SKIP_SUCCESS", "IO_DRAIN", "FIXED_FILE",
                      "BUFFER_SELECT")
_FLAG_P: Final = (0.2, 0.06, 0.15, 0.1, 0.05, 0.06, 0.03)
_NO_BUFFER_SELECT: Final = frozenset({"NOP", "WRITE", "WRITEV", "FSYNC", "SOCKET", "OPENAT", "OPENAT2", "CONNECT"})


@dataclass
class _Proc:
    rings: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    privileged: bool = True


@dataclass
class _Ring:
    name: str
    budget: int = SQ_BUDGET
    files: bool = False      # a FILES registration step exists (it may have succeeded)
    fixed: bool = False      # a FIXED_FILE SQE was generated: never register files afterwards
    buffers: bool = False
    disabled: bool = False   # created R_DISABLED and no enable step yet
    #: The one process whose tasks submit to this ring. SQEs another process left in the shared SQ would
    #: carry pointers into that process's memory (iovecs, paths, sockaddrs): their results are unknowable.
    submitter: int | None = None


class _Gen:
    def __init__(self, seed: int, classic_only: bool, max_steps: int, exec_steps: bool = True) -> None:
        self.exec_steps = exec_steps
        self.r = random.Random(seed)
        self.seed = seed
        self.classic_only = classic_only
        self.max_steps = max_steps
        self.steps: list[dict[str, Any]] = []
        self.procs: dict[str, _Proc] = {"main": _Proc(tasks=["main"])}  # task -> its process
        self.nnp: set[str] = set()
        self.rings: dict[str, _Ring] = {}
        self.requires: set[str] = set()
        self.counter = 0
        self.uds: set[int] = set()

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def run(self) -> dict[str, Any]:
        while len(self.steps) < self.max_steps:
            task = self.r.choice(sorted(self.procs))
            self.action(task)
        if not self.classic_only:
            self.requires |= {"bpf_filter", "task_restrictions"}
        head = {"name": f"random-{self.seed}" + ("-classic" if self.classic_only else ""),
                "description": "generated by ringfence.scenario.generate", "source": "ringfence.scenario.generate",
                "kernels": ["*"] if self.classic_only else ["7.0+"], "requires": sorted(self.requires),
                "tags": ["generated"], "seed": self.seed}
        return {"scenario": head, "step": self.steps}

    def add(self, task: str, do: str, **fields: Any) -> None:
        self.steps.append({"do": do, "task": task, **fields})

    def action(self, task: str) -> None:
        proc = self.procs[task]
        usable = self.submittable(proc)
        disabled = any(self.rings[n].disabled for n in proc.rings)
        weights = {
            "ring": 6 if not proc.rings else 2, "submit": 10 if usable else 0,
            "enable": (6 if disabled else 1) if proc.rings else 0,
            "restrict": 3, "filter": 0 if self.classic_only else 5, "register": 2 if proc.rings else 1,
            "nnp": 2 if task not in self.nnp else 0, "fork": 2 if len(self.procs) < MAX_TASKS else 0,
            "thread": 1 if len(self.procs) < MAX_TASKS else 0,
            # exec runs a fresh interpreter: after a privilege drop it may not be executable (environment-specific)
            "exec": 0.3 if self.exec_steps and len(proc.tasks) == 1 and proc.privileged else 0,
            "drop_privileges": 0.3 if proc.privileged else 0, "close": 0.4 if proc.rings else 0,
        }
        kind = self.r.choices(list(weights), list(weights.values()))[0]
        getattr(self, "do_" + kind)(task, proc)

    # -- tasks ---------------------------------------------------------------------------------------------

    def do_nnp(self, task: str, proc: _Proc) -> None:
        self.nnp.add(task)
        self.add(task, "nnp")

    def do_drop_privileges(self, task: str, proc: _Proc) -> None:
        proc.privileged = False
        self.requires.add("unprivileged")
        self.add(task, "drop_privileges")

    def do_fork(self, task: str, proc: _Proc) -> None:
        child = self.fresh("t")
        self.procs[child] = _Proc(list(proc.rings), [child], proc.privileged)
        if task in self.nnp:
            self.nnp.add(child)
        self.add(task, "fork", child=child)

    def do_thread(self, task: str, proc: _Proc) -> None:
        thread = self.fresh("t")
        proc.tasks.append(thread)
        self.procs[thread] = proc
        if task in self.nnp:
            self.nnp.add(thread)
        self.add(task, "thread", thread=thread)

    def do_exec(self, task: str, proc: _Proc) -> None:
        proc.rings.clear()
        self.add(task, "exec")

    # -- rings and registrations ---------------------------------------------------------------------------

    def do_ring(self, task: str, proc: _Proc) -> None:
        name = self.fresh("r")
        flags = [f for f, p in (("R_DISABLED", 0.35), ("SUBMIT_ALL", 0.3), ("SINGLE_ISSUER", 0.2))
                 if self.r.random() < p]
        self.rings[name] = _Ring(name, disabled="R_DISABLED" in flags)
        proc.rings.append(name)
        self.add(task, "ring", ring=name, flags="|".join(flags), entries=RING_ENTRIES)

    def do_close(self, task: str, proc: _Proc) -> None:
        name = self.r.choice(proc.rings)
        proc.rings.remove(name)
        self.add(task, "close", ring=name)

    def do_enable(self, task: str, proc: _Proc) -> None:
        waiting = [n for n in proc.rings if self.rings[n].disabled]
        name = self.r.choice(waiting if waiting and self.r.random() < 0.8 else proc.rings)
        self.rings[name].disabled = False
        self.add(task, "enable", ring=name)

    def _target(self, proc: _Proc) -> str | None:
        if self.classic_only or (proc.rings and self.r.random() < 0.5):
            return self.r.choice(proc.rings) if proc.rings else None
        return None

    def do_restrict(self, task: str, proc: _Proc) -> None:
        ring = self._target(proc)
        if ring is None and self.classic_only:
            return self.do_ring(task, proc)
        fields: dict[str, Any] = {"records": self.records()}
        x = self.r.random()
        if x < 0.03:
            fields["null"] = True
        elif x < 0.06:
            fields["nr_args" if ring else "nr_res"] = 200
        elif x < 0.08 and ring is None:
            fields[self.r.choice(["header_flags", "nr_args"])] = self.r.choice([1, 2])
        elif x < 0.09 and ring is None:
            fields["header_resv"] = [0, 1, 0]
        if ring is None:
            self.add(task, "restrict", **fields)
        else:
            self.add(task, "restrict", ring=ring, **fields)

    def records(self) -> list[list[Any]]:
        r = self.r
        mode = r.choices(["empty", "sqe", "reg", "flags", "mixed", "invalid"], [1, 4, 2, 1, 4, 1])[0]
        out: list[list[Any]] = []
        if mode in ("sqe", "mixed", "invalid"):
            out += [["SQE_OP", r.choice(SQE_OPS)] for _ in range(r.randint(1, 5))]
        if mode in ("reg", "mixed"):
            out += [["REGISTER_OP", r.choice(_REG_OPS)] for _ in range(r.randint(1, 3))]
        if mode in ("flags", "mixed") or (mode == "sqe" and r.random() < 0.3):
            out.append(["SQE_FLAGS_ALLOWED", r.randrange(0x80) if r.random() < 0.9 else 0x80 | r.randrange(0x80)])
            if r.random() < 0.4:
                out.append(["SQE_FLAGS_REQUIRED", r.choice([0, 0x10, 0x04, 0x01, r.randrange(0x80)])])
        if mode == "invalid":
            bad: list[Any] = r.choice([["SQE_OP", 200], ["SQE_OP", 65], ["REGISTER_OP", 38], [r.randint(4, 9), 1]])
            out.insert(r.randrange(len(out) + 1), bad)
        r.shuffle(out)
        return out

    def do_filter(self, task: str, proc: _Proc) -> None:
        r = self.r
        ring = self._target(proc)
        fields: dict[str, Any] = {}
        x = r.random()
        if x < 0.75:
            natural, source = LIBRARY[r.choice(sorted(LIBRARY))]
            opcode = natural if natural != "*" and r.random() < 0.8 else r.choice(SQE_OPS)
            fields["program"] = source
        elif x < 0.95:
            opcode = r.choice(SQE_OPS)
            fields["insns"] = random_program(r)
        else:
            opcode = r.choice(SQE_OPS)
            fields["program"] = r.choice(BAD_PROGRAMS)
        size = _PDU.get(opcode, 0)
        flags = [f for f, p in (("DENY_REST", 0.15), ("SZ_STRICT", 0.15)) if r.random() < p]
        fields.update(opcode=opcode, flags="|".join(flags),
                      pdu_size=size if r.random() < 0.8 else r.choice([0, 8, 12, 24]))
        y = r.random()
        if y < 0.06:
            key, value = r.choice([("cmd_type", 2), ("cmd_flags", 1), ("resv", 1), ("filter_len", 0),
                                   ("filter_len", 5000), ("null_program", True), ("nr_args", 2),
                                   ("filter_resv", [0, 1, 0]), ("resv2", [0, 0, 1, 0, 0])])
            fields[key] = value
        if ring is None:
            self.add(task, "filter", **fields)
        else:
            self.add(task, "filter", ring=ring, **fields)

    def do_register(self, task: str, proc: _Proc) -> None:
        if not proc.rings or self.r.random() < 0.1:
            return self.add(task, "register", opcode="QUERY")
        name = self.r.choice(proc.rings)
        ring = self.rings[name]
        choices = ["PROBE"] + ([] if ring.files or ring.fixed else ["FILES"]) + ([] if ring.buffers else ["BUFFERS"])
        op = self.r.choice(choices)
        if op == "FILES":
            ring.files = True
            return self.add(task, "register", ring=name, opcode="FILES", files=["null", "zero"])
        ring.buffers = ring.buffers or op == "BUFFERS"
        self.add(task, "register", ring=name, opcode=op)

    # -- submissions ---------------------------------------------------------------------------------------

    def submittable(self, proc: _Proc) -> list[str]:
        return [n for n in proc.rings
                if self.rings[n].budget > 0 and self.rings[n].submitter in (None, id(proc))]

    def do_submit(self, task: str, proc: _Proc) -> None:
        ring = self.rings[self.r.choice(self.submittable(proc))]
        ring.submitter = id(proc)
        count = min(ring.budget, self.r.choice([1, 1, 2, 2, 3, 4]))
        ring.budget -= count
        sqes = [self.sqe(ring, proc) for _ in range(count)]
        self.add(task, "submit", ring=ring.name, sqes=sqes)

    def sqe(self, ring: _Ring, proc: _Proc) -> dict[str, Any]:
        r = self.r
        op = r.choice(SQE_OPS)
        flags = [n for n, p in zip(_FLAG_NAMES, _FLAG_P, strict=True) if r.random() < p]
        if "BUFFER_SELECT" in flags and op not in _NO_BUFFER_SELECT:
            flags.remove("BUFFER_SELECT")  # would need provided buffers: result unknowable
        if "FIXED_FILE" in flags and (ring.files or op == "CONNECT"):
            flags.remove("FIXED_FILE")     # the fixed index may or may not be valid
        ud = self.user_data()
        out: dict[str, Any] = {"op": op, "ud": ud, "sqe_flags": "|".join(flags)}
        fixed = "FIXED_FILE" in flags
        ring.fixed = ring.fixed or fixed
        out.update(getattr(self, "sqe_" + op.lower())(fixed, proc))
        return out

    def user_data(self) -> int:
        """Unique per scenario (CQEs are matched by user_data); small values too, now and then."""
        while True:
            ud = self.r.getrandbits(64) if self.r.random() < 0.7 else self.r.randrange(64)
            if ud not in self.uds:
                self.uds.add(ud)
                return ud

    def sqe_nop(self, fixed: bool, proc: _Proc) -> dict[str, Any]:
        return {"result": oracle.RW_OK}

    def _rw(self, fd: str, fixed: bool) -> dict[str, Any]:
        return {"fd": 0, "result": oracle.MISSING_FIXED_FILE} if fixed else {"fd": fd, "result": oracle.RW_OK}

    def sqe_read(self, fixed: bool, proc: _Proc) -> dict[str, Any]:
        return self._rw("zero", fixed)

    sqe_readv = sqe_read

    def sqe_write(self, fixed: bool, proc: _Proc) -> dict[str, Any]:
        return self._rw("null", fixed)

    sqe_writev = sqe_write

    def sqe_fsync(self, fixed: bool, proc: _Proc) -> dict[str, Any]:
        if fixed:
            return {"fd": 0, "result": oracle.MISSING_FIXED_FILE}
        return {"fd": "null", "result": oracle.FSYNC_DEVNULL}

    def sqe_socket(self, fixed: bool, proc: _Proc) -> dict[str, Any]:
        r = self.r
        family = r.choice(["AF_INET", "AF_INET6", "AF_UNIX"])
        kind = r.choice(["SOCK_STREAM", "SOCK_DGRAM"])
        extra = [f for f in ("SOCK_CLOEXEC", "SOCK_NONBLOCK") if r.random() < 0.3]
        type_: str | int = "|".join([kind, *extra])
        if r.random() < 0.04:
            type_ = 1 | 0x100  # a flag bit the SOCKET prep rejects (EINVAL)
        return {"family": family, "type": type_, "protocol": 0, "result": oracle.SOCKET_OK}

    def sqe_openat(self, fixed: bool, proc: _Proc) -> dict[str, Any]:
        return self._open(proc, openat2=False)

    def sqe_openat2(self, fixed: bool, proc: _Proc) -> dict[str, Any]:
        return self._open(proc, openat2=True)

    def _open(self, proc: _Proc, *, openat2: bool) -> dict[str, Any]:
        r = self.r
        for _attempt in range(50):
            kind = "devnull" if not proc.privileged else r.choice(["fresh", "fresh", "dir", "devnull"])
            flags, mode, resolve = self._open_args(kind, openat2)
            result = oracle.open_result(kind, flags, mode, resolve, openat2=openat2)
            if result is not None:
                path = {"fresh": TMP_FILES + str(self.counter + 1), "dir": "{tmp}", "devnull": "/dev/null"}[kind]
                self.counter += 1
                out: dict[str, Any] = {"fd": "cwd", "path": path, "flags": flags, "mode": mode, "result": result}
                if openat2:
                    out["resolve"] = resolve
                return out
        return {"fd": "cwd", "path": "/dev/null", "flags": 0, "mode": 0, "result": "ok"}

    def _open_args(self, kind: str, openat2: bool) -> tuple[int, int, int]:
        r = self.r
        if kind == "devnull":
            pool = ["O_NONBLOCK", "O_CLOEXEC", "O_NOFOLLOW", "O_DIRECTORY", "O_PATH", "O_LARGEFILE", "O_SYNC"]
            flags = 0
        else:
            pool = ["O_CREAT", "O_EXCL", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_CLOEXEC", "O_NOFOLLOW",
                    "O_DIRECTORY", "O_PATH", "O_TMPFILE", "O_DSYNC", "O_LARGEFILE"]
            flags = r.choice([O["O_RDONLY"], O["O_WRONLY"], O["O_RDWR"]])
        for name in pool:
            if r.random() < 0.18:
                flags |= O[name]
        creates = flags & (O["O_CREAT"] | O["__O_TMPFILE"])
        mode = r.choice([0o600, 0o644, 0o755, 0o4755]) if creates or (not openat2 and r.random() < 0.2) else 0
        if openat2 and r.random() < 0.03:
            mode = 0o10000 if creates else 0o600  # EINVAL either way
        resolve = 0
        if openat2:
            resolve = r.choice([0, 0, RESOLVE["RESOLVE_NO_MAGICLINKS"], RESOLVE["RESOLVE_NO_SYMLINKS"]])
            if r.random() < 0.05:
                resolve = r.choice([0x40, RESOLVE["RESOLVE_BENEATH"] | RESOLVE["RESOLVE_IN_ROOT"]])
            if r.random() < 0.03:
                flags |= 0x4000_0000  # not a valid open flag: openat2 says EINVAL, openat masks it
        return flags, mode, resolve

    def sqe_connect(self, fixed: bool, proc: _Proc) -> dict[str, Any]:
        r = self.r
        self.requires.add("netns")
        family = r.choice(["AF_INET", "AF_INET", "AF_INET6", "AF_UNIX"])
        kind = r.choice(["SOCK_STREAM", "SOCK_DGRAM"])
        out: dict[str, Any] = {"family": family, "type": kind}
        if family == "AF_UNIX":
            out["addr"] = f"{{tmp}}/no-such-{r.randrange(1000)}.sock"  # inside {tmp}: the loader refuses others
            length = r.choice([110, 110, 0, 1, 120])
            out["result"] = oracle.connect_result(family, kind, length, full=110, minimum=2)
            out["addr_len"] = length
            return out
        v4 = family == "AF_INET"
        out["addr"] = f"127.{r.choice([0, 0, 42, r.randrange(256)])}.{r.randrange(256)}.{r.randint(1, 254)}" \
            if v4 else "::1"
        out["port"] = r.choice([22, 80, 443, r.randint(1, 65535)])
        full, minimum = (16, 16) if v4 else (28, 24)  # tcp_v6_connect takes the 24-byte RFC 2133 form
        length = r.choice([full, full, full, 0, 1, r.randint(2, full - 1), r.randint(full, 128), 129, 200])
        out["addr_len"] = length
        out["result"] = oracle.connect_result(family, kind, length, full=full, minimum=minimum)
        return out


def random_program(r: random.Random, *, tries: int = 50) -> list[list[int]]:
    """A random program the kernel accepts (checked with :func:`ringfence.bpf.check`), as ``insns`` rows."""
    for _ in range(tries):
        n = r.randint(2, 10)
        insns: list[list[int]] = []
        for pc in range(n - 1):
            room = n - pc - 2
            kind = r.choice(["ld", "ld", "imm", "alu", "alux", "misc", "jmp", "jmp", "ret", "st"])
            if kind == "ld":
                insns.append([0x20, 0, 0, r.randrange(10) * 4])
            elif kind == "imm":
                insns.append([r.choice([0x00, 0x01]), 0, 0, r.getrandbits(32) if r.random() < 0.3 else r.randrange(64)])
            elif kind == "alu":
                code = r.choice([0x04, 0x14, 0x24, 0x34, 0x44, 0x54, 0x64, 0x74, 0xA4, 0x84])
                k = r.randint(1, 31) if code in (0x34, 0x64, 0x74) else r.getrandbits(32) & r.choice([0xFF, 0xFFFF])
                insns.append([code, 0, 0, k])
            elif kind == "alux":
                insns.append([r.choice([0x0C, 0x1C, 0x2C, 0x3C, 0x4C, 0x5C, 0xAC]), 0, 0, 0])
            elif kind == "misc":
                insns.append([r.choice([0x07, 0x87]), 0, 0, 0])
            elif kind == "st":
                insns.append([r.choice([0x02, 0x03]), 0, 0, r.randrange(16)])
            elif kind == "jmp" and room > 0:
                code = r.choice([0x15, 0x25, 0x35, 0x45, 0x1D, 0x2D, 0x3D, 0x4D])
                insns.append([code, r.randint(0, room), r.randint(0, room), r.choice([0, 1, 2, 10, 0x1000, 45])])
            else:
                insns.append([0x06, 0, 0, r.choice([0, 1, 1, 0xFFFFFFFF])])
        insns.append(r.choice([[0x06, 0, 0, r.choice([0, 1])], [0x16, 0, 0, 0]]))
        try:
            check(Program.from_bytes(b"".join(bytes(_pack(i)) for i in insns)))
        except CheckError:
            continue
        return insns
    return [[0x06, 0, 0, 1]]


def _pack(insn: list[int]) -> bytes:
    code, jt, jf, k = insn
    return code.to_bytes(2, "little") + bytes([jt, jf]) + (k & 0xFFFFFFFF).to_bytes(4, "little")


def generate(seed: int, *, classic_only: bool = False, max_steps: int = 25,
             exec_steps: bool = True) -> dict[str, Any]:
    """One random scenario in the file structure (``{"scenario": {...}, "step": [...]}``); same seed, same dict.

    ``exec_steps=False`` leaves out ``exec``, which costs tens of seconds under an emulated kernel.
    """
    return _Gen(seed, classic_only, max(1, max_steps), exec_steps).run()


def generate_many(seed: int, n: int, **kw: Any) -> list[dict[str, Any]]:
    """``n`` scenarios from consecutive derived seeds."""
    return [generate(seed * 1_000_003 + i, **kw) for i in range(n)]
