"""Read scenario files (TOML, or JSON with the same structure) into :mod:`ringfence.scenario.steps` data.

This is the one place scenario files are validated: every key is known (a typo gets the closest valid
name), every value has its type and range checked, file references stay inside their root, and the load-time
safety rules and caps hold (``docs/scenarios.md``; :mod:`ringfence.scenario.caps`,
:mod:`ringfence.scenario.safety`). Errors are :class:`ringfence.errors.ScenarioError` at ``file:line:col``
with the step's index, so backends only meet well-formed scenarios.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ringfence.abi.layout import FilterRegistration, Restriction, TaskRestrictionHeader
from ringfence.abi.opcodes import FilterFlag, RegisterOp, RestrictionOp, SetupFlag, SqeOp
from ringfence.bpf import Program, assemble
from ringfence.errors import AsmError, InputError, ScenarioError
from ringfence.inputs.document import Format, format_of, load_document, parse_document
from ringfence.inputs.nodes import Array, Node, Scalar, Table, from_plain, plain
from ringfence.inputs.position import Pos
from ringfence.inputs.read import PROGRAM_FILE, SCENARIO_FILE, Source
from ringfence.inputs.refs import References
from ringfence.inputs.schema import (
    U8,
    U16,
    U32,
    U64,
    Bits,
    Bool,
    Choice,
    Custom,
    Either,
    Fields,
    Int,
    ListOf,
    Schema,
    Str,
)
from ringfence.inputs.text import message as foreign_message
from ringfence.inputs.text import token
from ringfence.scenario import caps
from ringfence.scenario import steps as s
from ringfence.scenario.load_expect import OUTCOME, expectation
from ringfence.scenario.load_expect import SELECTOR_SCHEMA as SELECTOR
from ringfence.scenario.load_sqe import OPCODE as SQE_OPCODE
from ringfence.scenario.load_sqe import RESOURCE, SQE_FLAGS, read_sqe

SUFFIXES: Final = (".toml", ".json")
NAME: Final = Str(64, pattern=re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*"),
                  shape="a name (letters, digits, `_`, `.`, `-`; at most 64)")
_HEAD: Final = frozenset({"name", "description", "source", "spec", "kernels", "requires", "tags", "seed", "timeout",
                            "equivalent", "assumption"})
_COMMON: Final = frozenset({"do", "task", "expect"})
#: Keys each step kind understands besides ``do``, ``task`` and ``expect``.
STEP_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "nnp": frozenset(), "exec": frozenset(), "userns": frozenset(), "drop_privileges": frozenset({"uid"}),
    "fork": frozenset({"child"}), "thread": frozenset({"thread"}),
    "ring": frozenset({"ring", "flags", "entries"}), "close": frozenset({"ring"}),
    "pass_ring": frozenset({"ring", "to", "via"}),
    "enable": frozenset({"ring", "arg", "nr_args"}), "wait": frozenset({"ring", "min_complete", "timeout_ms"}),
    "restrict": frozenset({"ring", "records", "null", "nr_args", "nr_res", "header_flags", "header_resv"}),
    "filter": frozenset({"ring", "null", "opcode", "program", "program_file", "insns", "flags", "pdu_size",
                         "expect_pdu_size", "filter_len", "null_program", "nr_args", "cmd_type", "cmd_flags",
                         "resv", "filter_resv", "resv2"}),
    "register": frozenset({"ring", "opcode", "files", "result", "registered_ring_index"}),
    "submit": frozenset({"ring", "sqes"}),
    "policy": frozenset({"ring", "file", "policy", "mechanism"}),
}
assert set(STEP_KEYS) == set(s.STEPS), "every step kind needs its keys"

_KIND: Final = Choice({kind: kind for kind in s.STEPS}, what="step kind", fold=False)
_FEATURE: Final = Choice({f: f for f in s.FEATURES}, what="feature", fold=False)
_SETUP_FLAGS: Final = Bits({f.name: int(f) for f in SetupFlag if f.name}, U32, what="setup flag",
                           prefixes=("IORING_SETUP_",))
_FILTER_FLAGS: Final = Bits({f.name: int(f) for f in FilterFlag if f.name}, U32, what="filter flag")
_REGISTER_OPCODE: Final = Either((Choice({op.name: int(op) for op in RegisterOp}, what="register opcode",
                                         prefixes=("IORING_", "REGISTER_")), Int(0, 0x7FFF_FFFF)))
_RECORD_TYPE: Final = Either((Choice({op.name: int(op) for op in RestrictionOp}, what="restriction record type"),
                              Int(0, U16)))
_RECORD_OP: Final = Either((Choice({op.name: int(op) for op in SqeOp}, what="SQE opcode", prefixes=("IORING_OP_",)),
                            Int(0, U8)))
_RECORD_REGISTER: Final = Either((Choice({op.name: int(op) for op in RegisterOp}, what="register opcode",
                                         prefixes=("IORING_", "REGISTER_")), Int(0, U8)))


_INSN_FIELDS: Final = (Int(0, U16), Int(0, U8), Int(0, U8), Int(0, U32))


def _insn(node: Node, name: str) -> tuple[int, int, int, int]:
    if not isinstance(node, Array) or len(node) != 4:
        raise node.pos.error(f"{name}: an instruction is [code, jt, jf, k]")
    base = name.strip("`")
    code, jt, jf, k = (schema.read(item, f"`{base}[{i}]`") for i, (schema, item) in
                       enumerate(zip(_INSN_FIELDS, node.items, strict=True)))
    return code, jt, jf, k


_INSN: Final = Custom(_insn, "an instruction [code, jt, jf, k]")
_COUNT: Final = Int(0, caps.MAX_COUNT)


@dataclass
class _Context:
    """What building one scenario needs besides the step at hand: its file, references, and running totals."""

    file: str
    refs: References
    requires: tuple[str, ...] = ()
    sqes: int = 0
    insns: int = 0
    sites: list[dict[str, Pos]] = field(default_factory=list)

    def check_work(self, fields: Fields, key: str) -> None:
        """Filter instructions times SQEs stays within :data:`caps.MAX_WORK` (the model's interpreting)."""
        if self.insns * self.sqes > caps.MAX_WORK:
            raise fields.error(key, f"{self.insns} filter instructions and {self.sqes} SQEs in all: more than "
                                    f"{caps.MAX_WORK} instruction runs for the model (their product)")


# -- entry points ----------------------------------------------------------------------------------------------------

def load(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> s.Scenario:
    """Load one scenario file (``.toml`` or ``.json``; ``-`` reads TOML from standard input). ``root`` confines
    the files it names (default: the marked corpus root above it, else its directory)."""
    try:
        document = load_document(path, SCENARIO_FILE, limits=caps.DOCUMENT)
    except InputError as exc:
        raise ScenarioError.of(exc) from None
    source = document.source
    return _scenario(document.root, source.name, source.directory, root)


def load_source(source: Source, *, fmt: Format | None = None,
                root: str | os.PathLike[str] | None = None) -> s.Scenario:
    """A scenario from text already read (:func:`ringfence.inputs.read_input`); ``fmt`` defaults to the
    name's suffix."""
    try:
        node = parse_document(source.text, source.name, fmt or format_of(source.name), limits=caps.DOCUMENT)
    except InputError as exc:
        raise ScenarioError.of(exc) from None
    return _scenario(node, source.name, source.directory, root)


def scenario_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The ``*.toml`` / ``*.json`` files below a directory, sorted; an error if there are none."""
    base = Path(directory)
    files = sorted(f for f in base.rglob("*") if f.suffix in SUFFIXES and f.is_file())
    if not files:
        raise ScenarioError(f"no scenario files ({', '.join('*' + x for x in SUFFIXES)}) in this directory",
                            path=os.fspath(directory))
    return files


def load_dir(directory: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> list[s.Scenario]:
    """Every scenario file below a directory, sorted by path; an error if there are none."""
    return [load(f, root=root) for f in scenario_files(directory)]


def parse(data: Mapping[str, Any] | Node, *, path: str = "<scenario>", base: Path | None = None,
          root: str | os.PathLike[str] | None = None) -> s.Scenario:
    """A scenario from a document already in memory: positioned nodes, or plain dicts and lists as
    ``tomllib``/``json`` return them (errors then name the step and key, without line numbers). File names in
    it are relative to ``base`` (default: the working directory)."""
    if isinstance(data, Table | Array | Scalar):
        node: Node = data
    else:
        try:
            node = from_plain(data, path, limits=caps.DOCUMENT)
        except InputError as exc:
            raise ScenarioError.of(exc) from None
    return _scenario(node, path, base or Path.cwd(), root)


# -- the document ----------------------------------------------------------------------------------------------------

def _scenario(node: Node, file: str, directory: Path, root: str | os.PathLike[str] | None) -> s.Scenario:
    try:
        refs = References.for_document(directory, None if root is None else Path(root))
        top = Fields(node, allowed=("scenario", "step"), what="a scenario document")
        head = Fields(_need_table(top, "scenario"), allowed=_HEAD, path="scenario")
        name = head.need("name", Str(128, min_len=1))
        kernels = head.get("kernels", ListOf(SELECTOR, caps.MAX_SELECTORS, 1), ("*",))
        requires = head.get("requires", ListOf(_FEATURE, len(s.FEATURES)), ())
        tags = head.get("tags", ListOf(NAME, 32), ())
        meta = {key: str(value) for key, value in (
            ("spec", head.get("spec", Str(1024), None)),
            ("equivalent", head.get("equivalent", Str(1024), None)),
            ("assumption", head.get("assumption", NAME, None)),
            ("seed", head.get("seed", Either((Int(-(1 << 63), U64), Str(64))), None))) if value is not None}
        timeout = head.get("timeout", Int(1, caps.MAX_TIMEOUT), None)
        description = head.get("description", Str(4096, lines=True), "")
        origin = head.get("source", Str(1024), "")
        raw_steps = top.table.get("step")
        if raw_steps is None:
            raise top.table.pos.error("no [[step]] entries")
        if not isinstance(raw_steps, Array):
            raise top.error("step", "expected an array of step tables ([[step]])")
        if len(raw_steps) > caps.MAX_STEPS:
            raise top.error("step", f"{len(raw_steps)} steps, at most {caps.MAX_STEPS} allowed")
        if not raw_steps.items:
            raise top.error("step", "no [[step]] entries")
    except InputError as exc:
        raise ScenarioError.of(exc) from None
    context = _Context(file, refs, tuple(requires))
    built = []
    for index, raw in enumerate(raw_steps.items):
        try:
            built.append(_step(raw, index, context))
        except InputError as exc:
            raise ScenarioError.of(exc, step=index) from None
    steps = tuple(built)
    check_names(steps, file, context.sites)
    return s.Scenario(name=name, steps=steps, description=description, source=origin, kernels=tuple(kernels),
                      requires=tuple(dict.fromkeys(requires)), path=file, tags=tuple(tags), meta=meta,
                      timeout=timeout)


def _need_table(fields: Fields, key: str) -> Table:
    node = fields.node(key)
    if node is None:
        raise fields.table.pos.error(f"missing [{key}] table with a name")
    if not isinstance(node, Table):
        raise fields.error(key, "expected a table")
    return node


# -- steps -----------------------------------------------------------------------------------------------------------

_Builder = Callable[[Fields, dict[str, Any], _Context], s.Step]


def _step(node: Node, index: int, context: _Context) -> s.Step:
    if not isinstance(node, Table):
        raise node.pos.error("a step is a table ([[step]])")
    if "do" not in node:
        raise node.pos.error("a step needs `do`")
    member = node.members["do"]
    kind = _KIND.read(member.value, "`do`")
    fields = Fields(node, allowed=_COMMON | STEP_KEYS[kind], what=f"this `{kind}` step")
    common = {"task": fields.get("task", NAME, "main"), "line": index,
              "expect": expectation(fields, submit=kind == "submit")}
    context.sites.append({key: fields.key_pos(key) if key in fields.table else fields.table.pos
                          for key in ("task", "ring", "child", "thread", "to", "do")})
    return _BUILDERS[kind](fields, common, context)


def _ring_name(fields: Fields) -> str:
    name = fields.need("ring", NAME)
    if name == "task":
        raise fields.error("ring", "`task` is not a ring name: in restrict, filter and register steps it means "
                                   "the task itself (fd -1)")
    return name


def _opt_ring(fields: Fields) -> str | None:
    target = fields.get("ring", NAME, None)
    return None if target in (None, "task") else target


def _b_ring(f: Fields, c: dict[str, Any], _: _Context) -> s.Step:
    return s.CreateRing(**c, ring=_ring_name(f), setup_flags=f.get("flags", _SETUP_FLAGS, 0),
                        entries=f.get("entries", Int(0, caps.MAX_ENTRIES), 8))


def _b_restrict(f: Fields, c: dict[str, Any], _: _Context) -> s.Step:
    ring = _opt_ring(f)
    records = tuple(_record(node, i, f) for i, node in enumerate(_items(f, "records", caps.MAX_RECORDS)))
    header = None
    header_keys = [k for k in ("nr_res", "header_flags", "header_resv") if f.has(k)]
    if header_keys and ring is not None:
        raise f.error(header_keys[0], "the task-restriction header only exists for task restrictions (no `ring`)")
    if header_keys:
        resv = f.get("header_resv", ListOf(Int(0, U32), 3, 3), (0, 0, 0))
        header = TaskRestrictionHeader(f.get("nr_res", Int(0, U16), len(records)), f.get("header_flags",
                                       Int(0, U16), 0), (resv[0], resv[1], resv[2]))
    return s.Restrict(**c, ring=ring, records=records, null=f.get("null", Bool(), False),
                      nr_args=f.get("nr_args", _COUNT, None), header=header)


def _items(f: Fields, key: str, most: int) -> tuple[Node, ...]:
    node = f.node(key)
    if node is None:
        return ()
    if not isinstance(node, Array):
        raise f.error(key, "expected an array")
    if len(node) > most:
        raise f.error(key, f"{len(node)} values, at most {most} allowed")
    return node.items


def _record(node: Node, index: int, f: Fields) -> Restriction:
    name = f"`records[{index}]`"
    kind_node, value_node = _pair(node, name)
    kind = _RECORD_TYPE.read(kind_node, f"`records[{index}][0]`")
    value_name = f"`records[{index}][1]`"
    readers: dict[int, Schema[int]] = {RestrictionOp.REGISTER_OP: _RECORD_REGISTER, RestrictionOp.SQE_OP: _RECORD_OP,
                   RestrictionOp.SQE_FLAGS_ALLOWED: SQE_FLAGS, RestrictionOp.SQE_FLAGS_REQUIRED: SQE_FLAGS,
                                       }
    resv, resv2 = _reserved(node, index)
    return Restriction(kind, readers.get(kind, Int(0, U8)).read(value_node, value_name), resv, resv2)


def _pair(node: Node, name: str) -> tuple[Node, Node]:
    if not isinstance(node, Array) or not 2 <= len(node) <= 4:
        raise node.pos.error(f"{name}: a restriction record is [type, value], or [type, value, resv, [resv2 x 3]] "
                             "to set its reserved bytes")
    return node.items[0], node.items[1]


_RESV2: Final = ListOf(Int(0, U32), 3, 3)


def _reserved(node: Node, index: int) -> tuple[int, tuple[int, int, int]]:
    """The record's reserved byte and words (zero unless given): the kernel is not asked to check them."""
    assert isinstance(node, Array)
    resv = Int(0, U8).read(node.items[2], f"`records[{index}][2]`") if len(node) > 2 else 0
    words = _RESV2.read(node.items[3], f"`records[{index}][3]`") if len(node) > 3 else (0, 0, 0)
    return resv, (words[0], words[1], words[2])


def _program(f: Fields, context: _Context) -> tuple[bytes, str]:
    chosen = f.one_of("program", "program_file", "insns")
    if chosen is None:
        return b"", ""
    if chosen == "insns":
        rows = f.need("insns", ListOf(_INSN, caps.MAX_PROGRAM_INSNS))
        program = Program.of(*rows)
        text = ""
    elif chosen == "program":
        text = f.need("program", Str(PROGRAM_FILE.max_bytes, lines=True))
        program = _assemble(text, "the program", f.pos("program"))
    else:
        name = f.need("program_file", Str(4096))
        source = context.refs.read(name, f.pos("program_file"), PROGRAM_FILE)
        text = source.text
        program = _assemble(text, token(name), f.pos("program_file"))
    if len(program) > caps.MAX_PROGRAM_INSNS:
        raise f.error(chosen, f"{len(program)} instructions, at most {caps.MAX_PROGRAM_INSNS} allowed")
    context.insns += len(program)
    if context.insns > caps.MAX_INSNS:
        raise f.error(chosen, f"the scenario's programs have more than {caps.MAX_INSNS} instructions in all")
    context.check_work(f, chosen)
    return program.to_bytes(), text


def _assemble(text: str, what: str, pos: Pos) -> Program:
    """Assemble; an error names the line and column inside the program and quotes at most the assembler's
    message (never the source line: the program may be a file somebody else wrote)."""
    try:
        return assemble(text, filename=what)
    except AsmError as exc:
        where = f" line {exc.line}, column {exc.column}" if exc.line else ""
        raise pos.error(f"{what}{where}: {foreign_message(exc.message)}") from None
    except RecursionError:
        raise pos.error(f"{what}: nested too deeply to assemble") from None


def _b_filter(f: Fields, c: dict[str, Any], context: _Context) -> s.Step:
    if f.get("null", Bool(), False):
        others = sorted(k for k in f.table.members if k in STEP_KEYS["filter"] - {"ring", "null", "nr_args"})
        if others:
            raise f.error(others[0], "`null = true` passes a NULL registration: it has no fields")
        return s.Filter(**c, ring=_opt_ring(f), registration=None, nr_args=f.get("nr_args", _COUNT, None))
    opcode = f.need("opcode", Either((SQE_OPCODE.options[0], Int(0, U32))))
    program, source = _program(f, context)
    resv2 = f.get("resv2", ListOf(Int(0, U64, text=True), 5, 5), (0, 0, 0, 0, 0))
    registration = FilterRegistration(
        opcode, program, f.get("flags", _FILTER_FLAGS, 0), f.get("pdu_size", Int(0, U8), 0),
        f.get("filter_len", Int(0, U32), None), f.get("null_program", Bool(), False),
        f.get("cmd_type", Int(0, U16), 1), f.get("cmd_flags", Int(0, U16), 0), f.get("resv", Int(0, U32), 0),
        bytes(f.get("filter_resv", ListOf(Int(0, U8), 3, 3), (0, 0, 0))),
        (resv2[0], resv2[1], resv2[2], resv2[3], resv2[4]))
    return s.Filter(**c, ring=_opt_ring(f), registration=registration, nr_args=f.get("nr_args", _COUNT, None),
                    expect_pdu_size=f.get("expect_pdu_size", Int(0, U8), None), source=source)


def _b_register(f: Fields, c: dict[str, Any], context: _Context) -> s.Step:
    op = f.need("opcode", _REGISTER_OPCODE)
    if op in (RegisterOp.RESTRICTIONS, RegisterOp.BPF_FILTER):
        raise f.error("opcode", f"use a `{'restrict' if op == RegisterOp.RESTRICTIONS else 'filter'}` step for "
                                "this opcode")
    files = f.get("files", ListOf(RESOURCE, caps.MAX_FILES), ())
    if files and op != RegisterOp.FILES:
        raise f.error("files", "only a FILES registration takes `files`")
    if "listen" in files:
        _need_netns(f, "files", context)
    return s.Register(**c, ring=_opt_ring(f), opcode=op, files=files, result=f.get("result", OUTCOME, s.OK),
                      registered_ring_index=f.get("registered_ring_index", Int(-1, U16), None))


def _b_submit(f: Fields, c: dict[str, Any], context: _Context) -> s.Step:
    ring = _ring_name(f)
    nodes = _items(f, "sqes", caps.MAX_SQES_PER_SUBMIT)
    context.sqes += len(nodes)
    if context.sqes > caps.MAX_SQES:
        raise f.error("sqes", f"the scenario submits more than {caps.MAX_SQES} SQEs in all")
    context.check_work(f, "sqes")
    items = tuple(read_sqe(node, i) for i, node in enumerate(nodes))
    if any(item.fd == "listen" for item in items):
        _need_netns(f, "sqes", context)
    return s.Submit(**c, ring=ring, sqes=items)


def _need_netns(f: Fields, key: str, context: _Context) -> None:
    """The `listen` socket exists only in a private network namespace, which the scenario must ask for."""
    if "netns" not in context.requires:
        raise f.error(key, "the `listen` resource exists only in a private network namespace: add \"netns\" to "
                           "`requires` in [scenario]")


_VIA: Final = Choice({"scm_rights": "scm_rights", "pidfd_getfd": "pidfd_getfd"}, what="way to pass a ring",
                     fold=False)
_MECHANISM: Final = Choice({"classic": "classic", "filters": "filters"}, what="mechanism", fold=False)


def _b_policy(f: Fields, c: dict[str, Any], context: _Context) -> s.Step:
    """A policy compiled for the backend's kernel when the step runs; the file (or inline table) is checked
    now, so a broken policy is a load error at its own line."""
    from ringfence.policy.load import from_data
    from ringfence.policy.load import load as load_policy

    chosen = f.one_of("file", "policy")
    if chosen is None:
        raise f.table.pos.error("a policy step names a `file` or holds an inline `policy` table")
    mechanism = f.get("mechanism", _MECHANISM, "classic")
    try:
        if chosen == "file":
            name = f.need("file", Str(4096))
            policy = load_policy(context.refs.resolve(name, f.pos("file")), root=context.refs.root)
            source = name
        else:
            node = f.node("policy")
            if not isinstance(node, Table):
                raise f.error("policy", "expected a table")
            policy = from_data(plain(node), name="<inline policy>")
            source = "<inline policy>"
    except InputError as exc:  # a PolicyError, or the file cannot be read (a directory, a FIFO)
        raise f.error(chosen, exc.render()) from None
    return s.ApplyPolicy(**c, ring=_opt_ring(f), policy=policy, mechanism=mechanism, source=source)


_BUILDERS: Final[dict[str, _Builder]] = {
    "nnp": lambda f, c, _: s.SetNoNewPrivs(**c),
    "drop_privileges": lambda f, c, _: s.DropPrivileges(**c, uid=f.get("uid", Int(*caps.UID_RANGE), 65534)),
    "fork": lambda f, c, _: s.Fork(**c, child=f.need("child", NAME)),
    "thread": lambda f, c, _: s.SpawnThread(**c, thread=f.need("thread", NAME)),
    "exec": lambda f, c, _: s.Exec(**c),
    "userns": lambda f, c, _: s.UserNamespace(**c),
    "ring": _b_ring,
    "close": lambda f, c, _: s.CloseRing(**c, ring=_ring_name(f)),
    "pass_ring": lambda f, c, _: s.PassRing(**c, ring=_ring_name(f), to=f.need("to", NAME),
                                           via=f.get("via", _VIA, "scm_rights")),
    "enable": lambda f, c, _: s.EnableRing(**c, ring=_ring_name(f), arg=f.get("arg", Bool(), False),
                                           nr_args=f.get("nr_args", _COUNT, 0)),
    "wait": lambda f, c, _: s.Wait(**c, ring=_ring_name(f), min_complete=f.get("min_complete", _COUNT, 0),
                                   timeout_ms=f.get("timeout_ms", Int(1, caps.MAX_WAIT_MS), 10)),
    "restrict": _b_restrict,
    "filter": _b_filter,
    "register": _b_register,
    "submit": _b_submit,
    "policy": _b_policy,
}
assert set(_BUILDERS) == set(s.STEPS), "every step kind needs a builder"


# -- names -----------------------------------------------------------------------------------------------------------

def check_names(steps: tuple[s.Step, ...], path: str, sites: Sequence[Mapping[str, Pos]] | None = None) -> None:
    """Rules both backends rely on: task and ring names exist when used and are introduced once, and exec is
    performed only by a task that is its process's only thread. ``sites`` (per step, where its keys are) put
    errors at their line and column."""
    process_of = {"main": 0}
    processes = 1
    rings: set[str] = set()
    for index, step in enumerate(steps):
        site = sites[index] if sites is not None and index < len(sites) else {}

        def bad(message: str, key: str = "do", index: int = index, site: Mapping[str, Pos] = site) -> ScenarioError:
            pos = site.get(key) or site.get("do") or Pos(path)
            return ScenarioError(message, path=path, step=index, line=pos.line, column=pos.column)

        if step.task not in process_of:
            raise bad(f"no task named {step.task!r} exists at this point", "task")
        if isinstance(step, (s.Fork, s.SpawnThread)):
            name = step.child if isinstance(step, s.Fork) else step.thread
            if not name or name in process_of:
                raise bad(f"task name {name!r} is empty or already used", "child" if isinstance(step, s.Fork)
                          else "thread")
            if isinstance(step, s.Fork):
                process_of[name] = processes
                processes += 1
            else:
                process_of[name] = process_of[step.task]
        elif isinstance(step, (s.Exec, s.UserNamespace)):
            threads = [t for t, p in process_of.items() if p == process_of[step.task]]
            if len(threads) != 1:
                raise bad(f"{step.kind} by {step.task}: its process has {len(threads)} threads")
        elif isinstance(step, s.PassRing) and (step.to not in process_of
                                               or process_of[step.to] == process_of[step.task]):
            raise bad(f"pass_ring to {step.to!r}: no such task, or it is in the sending task's own process", "to")
        if isinstance(step, s.CreateRing):
            if not step.ring or step.ring in rings:
                raise bad(f"ring name {step.ring!r} is empty or already used", "ring")
            rings.add(step.ring)
        else:
            ring = getattr(step, "ring", None)
            if ring is not None and ring not in rings:
                raise bad(f"unknown ring {ring!r}", "ring")
