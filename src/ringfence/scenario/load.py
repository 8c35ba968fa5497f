"""Read scenario files (TOML, or JSON with the same structure) into :mod:`ringfence.scenario.steps` data.

Everything is validated here, with the file and step named in the error, so backends only meet
well-formed scenarios. The format is documented in ``docs/scenarios.md``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ringfence.abi import sqe as abisqe
from ringfence.abi.ctx import parse_constant
from ringfence.abi.layout import FilterRegistration, Restriction, TaskRestrictionHeader
from ringfence.abi.opcodes import RegisterOp, RestrictionOp, SetupFlag, register_op, sqe_flags, sqe_op
from ringfence.abi.sqe import SOCKADDR_SIZE, OpenHow, Sqe
from ringfence.bpf import Program, assemble
from ringfence.errors import AsmError, PolicyError, ScenarioError
from ringfence.scenario import steps as s

_SELECTOR = re.compile(r"^(\*|all|(<=|>=|<|>)?\d+\.\d+\+?|\d+\.\d+-\d+\.\d+)$")
_OUTCOME = re.compile(r"^(ok|E[A-Z0-9]+)$")


def load(path: str | Path) -> s.Scenario:
    """Load one scenario file (``.toml`` or ``.json``)."""
    p = Path(path)
    try:
        text = p.read_text()
        data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise ScenarioError(str(exc), path=str(p)) from None
    return parse(data, path=str(p), base=p.parent)


def load_dir(directory: str | Path) -> list[s.Scenario]:
    """Every ``*.toml`` / ``*.json`` scenario below a directory, sorted by path."""
    files = sorted(f for f in Path(directory).rglob("*") if f.suffix in (".toml", ".json"))
    return [load(f) for f in files]


def parse(data: Mapping[str, Any], *, path: str = "<scenario>", base: Path | None = None) -> s.Scenario:
    head = data.get("scenario", {})
    if not isinstance(head, Mapping) or "name" not in head:
        raise ScenarioError("missing [scenario] table with a name", path=path)
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScenarioError("no [[step]] entries", path=path)
    built = tuple(_step(raw, i, path, base or Path(".")) for i, raw in enumerate(raw_steps))
    check_names(built, path)
    kernels = tuple(head.get("kernels", ["*"]))
    for k in kernels:
        if not _SELECTOR.match(k):
            raise ScenarioError(f"bad kernel selector {k!r}", path=path)
    return s.Scenario(
        name=str(head["name"]), steps=built, description=str(head.get("description", "")),
        source=str(head.get("source", "")), kernels=kernels, requires=tuple(head.get("requires", [])),
        path=path, tags=tuple(head.get("tags", [])),
        meta={k: str(v) for k, v in head.items() if k not in ("name", "description", "source", "kernels",
                                                                "requires", "tags")},
    )


def _step(raw: Mapping[str, Any], index: int, path: str, base: Path) -> s.Step:
    if not isinstance(raw, Mapping) or "do" not in raw:
        raise ScenarioError("a step needs `do`", path=path, step=index)
    kind = str(raw["do"])
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise ScenarioError(f"unknown step `do = {kind!r}`; known: {', '.join(sorted(_BUILDERS))}",
                            path=path, step=index)
    common = {"task": str(raw.get("task", "main")), "line": index,
              "expect": _expectation(raw.get("expect"), path, index)}
    try:
        return builder(raw, common, base)
    except (KeyError, ValueError, TypeError, AsmError) as exc:
        raise ScenarioError(f"{kind}: {exc}", path=path, step=index) from None


def _expectation(raw: Any, path: str, index: int) -> s.Expectation:
    if raw is None:
        return s.Expectation()
    if isinstance(raw, Mapping) and raw and all(_SELECTOR.match(str(k)) for k in raw):
        return s.Expectation(by_kernel=tuple((str(k), _expect_value(v, path, index)) for k, v in raw.items()))
    return s.Expectation(default=_expect_value(raw, path, index))


def _expect_value(raw: Any, path: str, index: int) -> s.Expect:
    if isinstance(raw, str):
        if not _OUTCOME.match(raw):
            raise ScenarioError(f"expected outcome must be 'ok' or an errno name, not {raw!r}", path=path, step=index)
        return raw
    if isinstance(raw, Mapping):
        cqes = raw.get("cqes")
        cq = None if cqes is None else tuple(sorted((int(k), str(v)) for k, v in cqes.items()))
        submitted = raw.get("submitted")
        return s.SubmitExpect(submitted=submitted, cqes=cq)
    raise ScenarioError(f"cannot read expectation {raw!r}", path=path, step=index)


def _flags(raw: Any, enum_type: type[SetupFlag]) -> int:
    if isinstance(raw, int):
        return raw
    names = raw.split("|") if isinstance(raw, str) else list(raw)
    out = 0
    for raw_name in names:
        name = raw_name.strip().upper().removeprefix("IORING_SETUP_")
        if name:
            out |= enum_type[name]
    return out


def _opt_ring(raw: Mapping[str, Any]) -> str | None:
    target = raw.get("ring")
    return None if target in (None, "task") else str(target)


def _program(raw: Mapping[str, Any], base: Path) -> tuple[bytes, str]:
    if "insns" in raw:
        rows = raw["insns"]
        if not isinstance(rows, list):
            raise ValueError("insns must be a list of [code, jt, jf, k] rows")
        return Program.of(*(_insn(row) for row in rows)).to_bytes(), ""
    if "program_file" in raw:
        text = (base / str(raw["program_file"])).read_text()
        name = str(raw["program_file"])
    elif "program" in raw:
        text, name = str(raw["program"]), "<program>"
    else:
        return b"", ""
    return assemble(text, filename=name).to_bytes(), text


def _insn(row: Any) -> tuple[int, int, int, int]:
    if not isinstance(row, list) or len(row) != 4 or not all(isinstance(v, int) for v in row):
        raise ValueError(f"an insns row is [code, jt, jf, k], not {row!r}")
    code, jt, jf, k = row
    return code, jt, jf, k & 0xFFFFFFFF


#: SQE keys each opcode family understands (besides op, ud, sqe_flags, fd, result).
_COMMON_SQE_KEYS = frozenset({"op", "ud", "sqe_flags", "fd", "result"})
_SQE_KEYS = {"SOCKET": {"family", "type", "protocol"}, "OPENAT": {"path", "flags", "mode"},
             "OPENAT2": {"path", "flags", "mode", "resolve"},
             "CONNECT": {"family", "socket", "type", "addr", "port", "addr_len"},
             "READ": {"len"}, "WRITE": {"len"}, "READV": {"len"}, "WRITEV": {"len"}}
#: Opcodes whose SQE ``fd`` is not a descriptor.
_NO_FD = frozenset({"NOP", "SOCKET"})


def _sqe(raw: Mapping[str, Any], index: int) -> s.SubmitItem:
    if not isinstance(raw, Mapping) or "op" not in raw:
        raise ValueError(f"SQE {index} needs `op`")
    opcode = sqe_op(raw["op"])
    name = opcode.name
    unknown = set(raw) - _COMMON_SQE_KEYS - _SQE_KEYS.get(name, set())
    if unknown:
        raise ValueError(f"SQE {index} ({name}): unknown field(s) {sorted(unknown)}")
    ud = int(raw.get("ud", index + 1))
    flags = sqe_flags(raw.get("sqe_flags", 0))
    result = str(raw.get("result", s.OK))
    if result != s.OK and not _OUTCOME.match(result):
        raise ValueError(f"bad result {result!r}")
    fd = None if name in _NO_FD else (raw["fd"] if isinstance(raw.get("fd"), int) else str(raw.get("fd", "null")))
    buffer = int(raw.get("len", 8))
    connect = None
    if name == "SOCKET":
        sqe = abisqe.socket(parse_constant(raw.get("family", 0)), parse_constant(raw.get("type", 0)),
                            parse_constant(raw.get("protocol", 0)), user_data=ud, flags=flags)
    elif name == "OPENAT":
        sqe = abisqe.openat(str(raw.get("path", "")), parse_constant(raw.get("flags", 0)),
                            parse_constant(raw.get("mode", 0)), user_data=ud, flags=flags)
    elif name == "OPENAT2":
        how = OpenHow(parse_constant(raw.get("flags", 0)), parse_constant(raw.get("mode", 0)),
                      parse_constant(raw.get("resolve", 0)))
        sqe = abisqe.openat2(str(raw.get("path", "")), how, user_data=ud, flags=flags)
    elif name == "CONNECT":
        family = parse_constant(raw.get("family", 0))
        connect = s.ConnectTo(parse_constant(raw.get("socket", raw.get("family", 0))),
                              parse_constant(raw.get("type", "SOCK_STREAM")), family, str(raw.get("addr", "")),
                              int(raw.get("port", 0)))
        try:
            address = abisqe.sockaddr(family, connect.addr, connect.port)
        except ValueError as exc:
            raise ValueError(f"SQE {index}: CONNECT address {connect.addr!r} for family {family}: {exc}") from None
        addr_len = raw.get("addr_len")
        sqe = abisqe.connect(0, address, SOCKADDR_SIZE.get(family, 16) if addr_len is None else int(addr_len),
                             user_data=ud, flags=flags)
    elif name in ("READ", "WRITE", "READV", "WRITEV"):
        sqe = abisqe.rw(opcode, 0, buffer, user_data=ud, flags=flags)
    else:
        sqe = Sqe(opcode, flags, ud, fd=-1 if name == "NOP" else 0)
    return s.SubmitItem(sqe, fd, result, buffer, connect)


def _records(raw: list[Any]) -> tuple[Restriction, ...]:
    out = []
    for item in raw:
        if not isinstance(item, list) or len(item) != 2:
            raise ValueError(f"a restriction record is [type, value], not {item!r}")
        kind_raw, value_raw = item
        kind = RestrictionOp[kind_raw.upper()] if isinstance(kind_raw, str) else int(kind_raw)
        if isinstance(value_raw, int):
            value = value_raw
        elif kind == RestrictionOp.REGISTER_OP:
            value = int(register_op(value_raw))
        elif kind == RestrictionOp.SQE_OP:
            value = int(sqe_op(value_raw))
        else:
            value = sqe_flags(value_raw)
        out.append(Restriction(int(kind), value))
    return tuple(out)


_Builder = Callable[[Mapping[str, Any], dict[str, Any], Path], s.Step]


def _b_restrict(r: Mapping[str, Any], c: dict[str, Any], _: Path) -> s.Step:
    records = _records(r.get("records", []))
    header = None
    if any(k in r for k in ("header_flags", "header_resv", "nr_res")):
        resv = tuple(int(v) for v in r.get("header_resv", (0, 0, 0)))
        if len(resv) != 3:
            raise ValueError("header_resv has three words")
        header = TaskRestrictionHeader(int(r.get("nr_res", len(records))), int(r.get("header_flags", 0)),
                                       (resv[0], resv[1], resv[2]))
    nr_args = r.get("nr_args")
    return s.Restrict(**c, ring=_opt_ring(r), records=records, null=bool(r.get("null", False)),
                      nr_args=None if nr_args is None else int(nr_args), header=header)


def _b_filter(r: Mapping[str, Any], c: dict[str, Any], base: Path) -> s.Step:
    program, source = _program(r, base)
    flags = r.get("flags", 0)
    if not isinstance(flags, int):
        names = flags.split("|") if isinstance(flags, str) else flags
        flags = sum({"DENY_REST": 1, "SZ_STRICT": 2}[n.strip().upper()] for n in names if n.strip())
    opcode = int(sqe_op(r["opcode"])) if isinstance(r["opcode"], str) else int(r["opcode"])
    resv2 = tuple(int(v) for v in r.get("resv2", (0, 0, 0, 0, 0)))
    if len(resv2) != 5:
        raise ValueError("resv2 has five words")
    filter_len = r.get("filter_len")
    registration = FilterRegistration(
        opcode, program, int(flags), int(r.get("pdu_size", 0)), None if filter_len is None else int(filter_len),
        bool(r.get("null_program", False)), int(r.get("cmd_type", 1)), int(r.get("cmd_flags", 0)),
        int(r.get("resv", 0)), bytes(r.get("filter_resv", [0, 0, 0])),
        (resv2[0], resv2[1], resv2[2], resv2[3], resv2[4]))
    nr_args = r.get("nr_args")
    expect_pdu = r.get("expect_pdu_size")
    return s.Filter(**c, ring=_opt_ring(r), registration=registration,
                    nr_args=None if nr_args is None else int(nr_args),
                    expect_pdu_size=None if expect_pdu is None else int(expect_pdu), source=source)


def _b_register(r: Mapping[str, Any], c: dict[str, Any], _: Path) -> s.Step:
    op = register_op(r["opcode"]) if isinstance(r["opcode"], str) else int(r["opcode"])
    if op in (RegisterOp.RESTRICTIONS, RegisterOp.BPF_FILTER):
        raise ValueError(f"use a `{'restrict' if op == RegisterOp.RESTRICTIONS else 'filter'}` step for this opcode")
    index = r.get("registered_ring_index")
    return s.Register(**c, ring=_opt_ring(r), opcode=int(op), files=tuple(str(f) for f in r.get("files", ())),
                      result=str(r.get("result", s.OK)), registered_ring_index=None if index is None else int(index))


def _b_policy(r: Mapping[str, Any], c: dict[str, Any], base: Path) -> s.Step:
    from ringfence.policy.load import from_data
    from ringfence.policy.load import load as load_policy

    if ("file" in r) == ("policy" in r):
        raise ValueError("a policy step names a `file` or holds an inline `policy` table (one of them)")
    mechanism = str(r.get("mechanism", "classic"))
    if mechanism not in ("classic", "filters"):
        raise ValueError(f"mechanism is \"classic\" or \"filters\", not {mechanism!r}")
    unknown = set(r) - {"do", "task", "expect", "file", "policy", "ring", "mechanism"}
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}")
    try:
        if "file" in r:
            policy = load_policy(base / str(r["file"]))
            source = str(r["file"])
        else:
            if not isinstance(r["policy"], Mapping):
                raise ValueError("`policy` is a table")
            policy = from_data(r["policy"], name="<inline policy>")
            source = "<inline policy>"
    except PolicyError as exc:
        raise ValueError(str(exc)) from None
    return s.ApplyPolicy(**c, ring=_opt_ring(r), policy=policy, mechanism=mechanism, source=source)


_BUILDERS: dict[str, _Builder] = {
    "nnp": lambda r, c, _: s.SetNoNewPrivs(**c),
    "drop_privileges": lambda r, c, _: s.DropPrivileges(**c, uid=int(r.get("uid", 65534))),
    "fork": lambda r, c, _: s.Fork(**c, child=str(r["child"])),
    "thread": lambda r, c, _: s.SpawnThread(**c, thread=str(r["thread"])),
    "exec": lambda r, c, _: s.Exec(**c),
    "ring": lambda r, c, _: s.CreateRing(**c, ring=str(r["ring"]), setup_flags=_flags(r.get("flags", 0), SetupFlag),
                                         entries=int(r.get("entries", 8))),
    "close": lambda r, c, _: s.CloseRing(**c, ring=str(r["ring"])),
    "enable": lambda r, c, _: s.EnableRing(**c, ring=str(r["ring"])),
    "restrict": _b_restrict,
    "filter": _b_filter,
    "register": _b_register,
    "submit": lambda r, c, _: s.Submit(**c, ring=str(r["ring"]),
                                       sqes=tuple(_sqe(q, i) for i, q in enumerate(r.get("sqes", [])))),
    "policy": _b_policy,
}
assert set(_BUILDERS) == set(s.STEPS), "every step kind needs a builder"


def check_names(steps: tuple[s.Step, ...], path: str) -> None:
    """Rules both backends rely on: task and ring names exist when used and are introduced once, and exec is
    performed only by a task that is its process's only thread."""
    process_of = {"main": 0}
    processes = 1
    rings: set[str] = set()
    for index, step in enumerate(steps):
        def bad(message: str) -> ScenarioError:
            return ScenarioError(message, path=path, step=index)  # noqa: B023 - used at once

        if step.task not in process_of:
            raise bad(f"no task named {step.task!r} exists at this point")
        if isinstance(step, (s.Fork, s.SpawnThread)):
            name = step.child if isinstance(step, s.Fork) else step.thread
            if not name or name in process_of:
                raise bad(f"task name {name!r} is empty or already used")
            if isinstance(step, s.Fork):
                process_of[name] = processes
                processes += 1
            else:
                process_of[name] = process_of[step.task]
        elif isinstance(step, s.Exec):
            threads = [t for t, p in process_of.items() if p == process_of[step.task]]
            if len(threads) != 1:
                raise bad(f"exec by {step.task}: its process has {len(threads)} threads")
        elif isinstance(step, s.CreateRing):
            if not step.ring or step.ring in rings:
                raise bad(f"ring name {step.ring!r} is empty or already used")
            rings.add(step.ring)
        else:
            ring = getattr(step, "ring", None)
            if ring is not None and ring not in rings:
                raise bad(f"unknown ring {ring!r}")
