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

from ringfence.abi.ctx import parse_constant
from ringfence.abi.layout import SockFilter, pack_program
from ringfence.abi.opcodes import RestrictionOp, SetupFlag, register_op, sqe_flags, sqe_op
from ringfence.errors import AsmError, ScenarioError
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
        insns = [SockFilter(int(c), int(jt), int(jf), int(k) & 0xFFFFFFFF) for c, jt, jf, k in raw["insns"]]
        return pack_program(insns), ""
    if "program_file" in raw:
        text = (base / str(raw["program_file"])).read_text()
        name = str(raw["program_file"])
    elif "program" in raw:
        text, name = str(raw["program"]), "<program>"
    else:
        return b"", ""
    from ringfence.bpf import assemble  # scenario sits above bpf; imported late to keep load fast

    return assemble(text, filename=name).to_bytes(), text


def _sqe(raw: Mapping[str, Any], index: int) -> s.Sqe:
    opcode = sqe_op(raw["op"])
    fields: dict[str, Any] = {"opcode": int(opcode), "user_data": int(raw.get("ud", index + 1)),
                              "flags": sqe_flags(raw.get("sqe_flags", 0)), "result": str(raw.get("result", s.OK))}
    if "fd" in raw:
        fields["fd"] = raw["fd"] if isinstance(raw["fd"], int) else str(raw["fd"])
    if opcode.name == "CONNECT":
        fields["addr_family"] = parse_constant(raw.get("family", 0))
        fields["family"] = parse_constant(raw.get("socket", raw.get("family", 0)))
        fields["type"] = parse_constant(raw.get("type", "SOCK_STREAM"))
        fields["addr"] = str(raw.get("addr", ""))
        fields["port"] = int(raw.get("port", 0))
        if "addr_len" in raw:
            fields["addr_len"] = int(raw["addr_len"])
    else:
        for key in ("family", "type", "protocol"):
            if key in raw:
                fields[key] = parse_constant(raw[key])
        if "flags" in raw:
            fields["open_flags"] = parse_constant(raw["flags"])
        for key in ("mode", "resolve"):
            if key in raw:
                fields[key] = parse_constant(raw[key])
    if "path" in raw:
        fields["path"] = str(raw["path"])
    if "len" in raw:
        fields["length"] = int(raw["len"])
    unknown = set(raw) - {"op", "ud", "sqe_flags", "result", "fd", "family", "socket", "type", "protocol", "addr",
                          "port", "addr_len", "flags", "mode", "resolve", "path", "len"}
    if unknown:
        raise ValueError(f"unknown SQE field(s) {sorted(unknown)}")
    if fields["result"] != s.OK and not _OUTCOME.match(fields["result"]):
        raise ValueError(f"bad result {fields['result']!r}")
    return s.Sqe(**fields)


def _records(raw: list[Any]) -> tuple[s.RestrictionRecord, ...]:
    out = []
    for item in raw:
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
        out.append(s.RestrictionRecord(int(kind), value))
    return tuple(out)


_Builder = Callable[[Mapping[str, Any], dict[str, Any], Path], s.Step]


def _b_restrict(r: Mapping[str, Any], c: dict[str, Any], _: Path) -> s.Step:
    return s.Restrict(**c, ring=_opt_ring(r), records=_records(r.get("records", [])), null=bool(r.get("null", False)),
                      nr_args=r.get("nr_args"), header_flags=int(r.get("header_flags", 0)),
                      header_resv=tuple(r.get("header_resv", (0, 0, 0))), nr_res=r.get("nr_res"))


def _b_filter(r: Mapping[str, Any], c: dict[str, Any], base: Path) -> s.Step:
    program, source = _program(r, base)
    flags = r.get("flags", 0)
    if not isinstance(flags, int):
        names = flags.split("|") if isinstance(flags, str) else flags
        flags = sum({"DENY_REST": 1, "SZ_STRICT": 2}[n.strip().upper()] for n in names if n.strip())
    return s.Filter(**c, ring=_opt_ring(r), opcode=int(sqe_op(r["opcode"])) if isinstance(r["opcode"], str)
                    else int(r["opcode"]), program=program, source=source, flags=int(flags),
                    pdu_size=int(r.get("pdu_size", 0)), expect_pdu_size=r.get("expect_pdu_size"),
                    filter_len=r.get("filter_len"), null_program=bool(r.get("null_program", False)),
                    nr_args=r.get("nr_args"), cmd_type=int(r.get("cmd_type", 1)),
                    cmd_flags=int(r.get("cmd_flags", 0)), resv=int(r.get("resv", 0)),
                    filter_resv=bytes(r.get("filter_resv", [0, 0, 0])),
                    resv2=tuple(r.get("resv2", (0, 0, 0, 0, 0))))


def _b_register(r: Mapping[str, Any], c: dict[str, Any], _: Path) -> s.Step:
    op = register_op(r["opcode"]) if isinstance(r["opcode"], str) else int(r["opcode"])
    return s.Register(**c, ring=_opt_ring(r), opcode=int(op), files=tuple(r.get("files", ())),
                      result=str(r.get("result", s.OK)), registered_ring_index=r.get("registered_ring_index"))


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
}

STEP_KINDS = tuple(sorted(_BUILDERS))
