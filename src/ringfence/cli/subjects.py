"""What the analysis commands (audit, explain, diff) read: a policy file, or one program with its opcode.

One reader so the three commands agree on what a path means (``.toml``/``.json`` is a policy, anything else a
program in assembler, raw or hex form), and on the exit codes: a path that is not a readable file is a usage
error (2), bad content an input error with its position (3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ringfence.abi.opcodes import SqeOp, sqe_op
from ringfence.bpf.insn import Program
from ringfence.bpf.printable import printable
from ringfence.errors import UnreadableError
from ringfence.policy.ast import Policy


@dataclass(frozen=True, slots=True)
class Subject:
    """A policy, or a program and the opcode it is attached to; ``path`` as the user named it."""

    path: str
    policy: Policy | None = None
    program: Program | None = None
    opcode: SqeOp | None = None

    @property
    def label(self) -> str:
        return self.policy.name if self.policy is not None else self.path


def is_policy(path: str) -> bool:
    return path.endswith((".toml", ".json"))


def read_subject(command: str, path: str, opcode: str | None) -> Subject:
    """Read ``path`` (``-``: a program on standard input); a program needs ``opcode`` (raises ``ValueError``
    with a usage message if it is missing or unknown)."""
    p = Path(path)
    if path != "-" and not p.is_file():  # "-": a program on standard input (a policy is named by its file)
        raise UnreadableError("not a regular file" if p.exists() else "no such file", file=printable(path))
    if is_policy(path):
        from ringfence.policy.load import load

        return Subject(path, policy=load(path))
    if not opcode:
        raise ValueError(f"{path}: a program needs --opcode (the opcode it is attached to)")
    op = sqe_op(opcode)
    from ringfence.cli.check import read_input

    return Subject(path, program=read_input(command, path, None), opcode=op)


def usage_error(command: str, message: str, as_json: bool) -> int:
    """A usage error after parsing, as ``--json`` promises it (an error object with ``"schema"``) or one line."""
    from ringfence.cli.common import usage

    return usage(command, message, as_json=as_json)
