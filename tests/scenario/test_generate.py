"""The random scenario generator: deterministic, loadable, safe, and declaring results a real kernel gives."""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import pytest

from ringfence.abi.constants import O
from ringfence.abi.opcodes import SqeFlag, SqeOp
from ringfence.bpf import Program, assemble, check
from ringfence.errors import CheckError
from ringfence.scenario import parse
from ringfence.scenario import steps as s
from ringfence.scenario.generate import (
    BAD_PROGRAMS,
    LIBRARY,
    SQE_OPS,
    generate,
    generate_many,
    random_program,
)
from ringfence.scenario.oracle import open_result

DOCS = generate_many(99, 120) + generate_many(98, 40, classic_only=True)
SCENARIOS = [parse(d) for d in DOCS]


def test_deterministic_per_seed() -> None:
    assert generate(5) == generate(5)
    assert generate(5) != generate(6)
    assert generate_many(5, 3) == generate_many(5, 3)


def test_shape_and_max_steps() -> None:
    doc = generate(11, max_steps=7)
    assert set(doc) == {"scenario", "step"} and len(doc["step"]) == 7
    assert doc["scenario"]["seed"] == 11 and "generated" in doc["scenario"]["tags"]
    assert all("do" in step and "task" in step for step in doc["step"])


def test_classic_only_has_no_filters_or_task_registration() -> None:
    for doc in generate_many(3, 40, classic_only=True):
        assert doc["scenario"]["kernels"] == ["*"]
        assert not {"bpf_filter", "task_restrictions"} & set(doc["scenario"]["requires"])
        for step in doc["step"]:
            assert step["do"] != "filter"
            assert step["do"] != "restrict" or "ring" in step


def _sqes(scenario: s.Scenario) -> list[tuple[s.Submit, s.SubmitItem]]:
    return [(st, q) for st in scenario.steps if isinstance(st, s.Submit) for q in st.sqes]


def test_requires_match_content() -> None:
    for doc, sc in zip(DOCS, SCENARIOS, strict=True):
        connects = any(q.sqe.opcode == 16 for _, q in _sqes(sc))
        drops = any(isinstance(st, s.DropPrivileges) for st in sc.steps)
        assert ("netns" in doc["scenario"]["requires"]) is connects
        assert ("unprivileged" in doc["scenario"]["requires"]) is drops


def test_only_safe_operations() -> None:
    allowed_ops = {int(SqeOp[n]) for n in SQE_OPS}
    forbidden_on_null = O["O_CREAT"] | O["O_TRUNC"] | O["O_APPEND"] | O["__O_TMPFILE"] | O["O_ACCMODE"]
    for sc in SCENARIOS:
        for _, q in _sqes(sc):
            op = q.sqe.opcode
            assert op in allowed_ops
            if op in (18, 28):
                assert q.sqe.path == "/dev/null" or q.sqe.path.startswith("{tmp}")
                if q.sqe.path == "/dev/null":
                    flags = q.sqe.op_flags if op == 18 else (q.sqe.how.flags if q.sqe.how else 0)
                    assert not flags & forbidden_on_null
            if op == 16:
                assert q.connect is not None
                if q.connect.family == 1:
                    assert q.connect.addr.startswith("{tmp}/no-such-")
                else:
                    assert ipaddress.ip_address(q.connect.addr).is_loopback and 1 <= q.connect.port <= 65535
            if op in (22, 1) and not q.sqe.flags & SqeFlag.FIXED_FILE:
                assert q.fd == "zero"                      # never a read that could block


def test_sq_budget_and_fixed_file_discipline() -> None:
    for sc in SCENARIOS:
        used: dict[str, int] = {}
        fixed: set[str] = set()
        files: set[str] = set()
        for st in sc.steps:
            if isinstance(st, s.Submit):
                used[st.ring] = used.get(st.ring, 0) + len(st.sqes)
                for q in st.sqes:
                    if q.sqe.flags & SqeFlag.FIXED_FILE:
                        assert st.ring not in files
                        fixed.add(st.ring)
            if isinstance(st, s.Register) and st.opcode == 2:
                assert st.ring not in fixed
                files.add(str(st.ring))
        assert all(n <= 32 for n in used.values())


def test_declared_results() -> None:
    seen: dict[str, set[str]] = {}
    for sc in SCENARIOS:
        for _, q in _sqes(sc):
            op, fixed = q.sqe.opcode, bool(q.sqe.flags & SqeFlag.FIXED_FILE)
            if op in (1, 2, 22, 23):
                assert q.result == ("EBADF" if fixed else "ok")
            if op == 3:
                assert q.result == ("EBADF" if fixed else "EINVAL")
            if op == 16 and q.connect is not None and q.connect.family == 2 and q.sqe.off == 16:
                assert q.result == ("ECONNREFUSED" if q.connect.socket_type == 1 else "ok")
            seen.setdefault(str(op), set()).add(q.result)
    assert {"ok", "ENOENT", "EISDIR"} <= seen["18"]


@pytest.mark.parametrize(("kind", "flags", "mode", "resolve", "openat2", "want"), [
    ("fresh", O["O_CREAT"] | O["O_RDWR"], 0o600, 0, False, "ok"),
    ("fresh", O["O_RDONLY"], 0, 0, False, "ENOENT"),
    ("fresh", O["O_CREAT"] | O["O_DIRECTORY"], 0o600, 0, False, "EINVAL"),
    ("dir", O["O_RDONLY"] | O["O_DIRECTORY"], 0, 0, False, "ok"),
    ("dir", O["O_WRONLY"], 0, 0, False, "EISDIR"),
    ("dir", O["O_CREAT"] | O["O_EXCL"], 0o600, 0, False, "EEXIST"),
    ("dir", O["O_CREAT"], 0o600, 0, False, "EISDIR"),
    ("dir", O["O_TMPFILE"] | O["O_RDWR"], 0o600, 0, False, "ok"),
    ("dir", O["O_TMPFILE"], 0o600, 0, False, "EINVAL"),              # O_TMPFILE needs write access
    ("dir", O["O_PATH"] | O["O_WRONLY"], 0, 0, False, "ok"),          # OPENAT reduces to the O_PATH subset
    ("dir", O["O_PATH"] | O["O_WRONLY"], 0, 0, True, "EINVAL"),       # OPENAT2 does not
    ("devnull", O["O_RDONLY"], 0o600, 0, True, "EINVAL"),             # a mode without O_CREAT
    ("devnull", O["O_DIRECTORY"], 0, 0, False, "ENOTDIR"),
    ("devnull", O["O_RDONLY"], 0, 0x18, True, "EINVAL"),              # BENEATH with IN_ROOT
    ("devnull", O["O_WRONLY"], 0, 0, False, None),                    # never generated
])
def test_open_oracle(kind: str, flags: int, mode: int, resolve: int, openat2: bool,  # noqa: PLR0917
                     want: str | None) -> None:
    assert open_result(kind, flags, mode, resolve, openat2=openat2) == want


def test_random_programs_are_accepted() -> None:
    r = random.Random(4)
    for _ in range(200):
        insns = random_program(r)
        data = b"".join(c.to_bytes(2, "little") + bytes([jt, jf]) + k.to_bytes(4, "little") for c, jt, jf, k in insns)
        check(Program.from_bytes(data))


def test_library_and_bad_programs_load() -> None:
    for _, source in LIBRARY.values():
        check(assemble(source))
    for source in BAD_PROGRAMS:
        with pytest.raises(CheckError):
            check(assemble(source))


def _kinds(doc: dict[str, Any]) -> set[str]:
    return {step["do"] for step in doc["step"]}


def test_coverage_of_step_kinds() -> None:
    kinds = set().union(*(_kinds(d) for d in DOCS))
    assert kinds == {"nnp", "drop_privileges", "fork", "thread", "exec", "ring", "close", "enable", "restrict",
                     "filter", "register", "submit"}


def test_user_data_unique_and_no_exec_after_dropping_privileges() -> None:
    for doc in DOCS:
        uds = [q["ud"] for step in doc["step"] if step["do"] == "submit" for q in step["sqes"]]
        assert len(uds) == len(set(uds))
        dropped: set[str] = set()
        for step in doc["step"]:
            if step["do"] == "drop_privileges":
                dropped.add(step["task"])
            assert step["do"] != "exec" or step["task"] not in dropped
