"""The classic-BPF toolchain for io_uring (and seccomp) filters: assemble, disassemble, check, run.

Layers, each importing only downward: ``insn`` (data) -> ``cfg`` (control flow), ``target`` (context,
names, extra rules, verdicts), ``semantics`` (what each operation computes) -> ``text`` (spelling) ->
``asm`` / ``disasm``; ``check`` (acceptance, the only constructor of :class:`CheckedProgram`) ->
``interp`` (reference), ``fast`` (compiled, behind :meth:`CheckedProgram.evaluate`) and ``symbolic``
(terms for a prover); ``builder`` writes programs with labels.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ringfence.bpf.asm.assemble import assemble
    from ringfence.bpf.builder import Builder, BuildError, Built, Label
    from ringfence.bpf.check import CheckedProgram, CheckRule, Diagnostic, check, diagnose
    from ringfence.bpf.disasm import LISTING_FORMAT, disassemble, disassembly
    from ringfence.bpf.insn import Instruction, Program
    from ringfence.bpf.interp import Machine, MachineState, RunResult, TraceStep, run
    from ringfence.bpf.target import IOURING, SECCOMP, TARGETS, Target, Verdict

# ``check`` names both a submodule and its main function: importing the submodule would set the package
# attribute to the module, so the function is bound here once and for all.
from ringfence.bpf.check import check

#: Where each public name lives: imported on first use, so importing one submodule stays cheap.
_WHERE: dict[str, str] = {
    "assemble": "ringfence.bpf.asm",
    "Builder": "ringfence.bpf.builder",
    "BuildError": "ringfence.bpf.builder",
    "Built": "ringfence.bpf.builder",
    "Label": "ringfence.bpf.builder",
    "CheckedProgram": "ringfence.bpf.check",
    "CheckRule": "ringfence.bpf.check",
    "Diagnostic": "ringfence.bpf.check",
    "diagnose": "ringfence.bpf.check",
    "LISTING_FORMAT": "ringfence.bpf.disasm",
    "disassemble": "ringfence.bpf.disasm",
    "disassembly": "ringfence.bpf.disasm",
    "Instruction": "ringfence.bpf.insn",
    "Program": "ringfence.bpf.insn",
    "Machine": "ringfence.bpf.interp",
    "MachineState": "ringfence.bpf.interp",
    "RunResult": "ringfence.bpf.interp",
    "TraceStep": "ringfence.bpf.interp",
    "run": "ringfence.bpf.interp",
    "IOURING": "ringfence.bpf.target",
    "SECCOMP": "ringfence.bpf.target",
    "TARGETS": "ringfence.bpf.target",
    "Target": "ringfence.bpf.target",
    "Verdict": "ringfence.bpf.target",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "IOURING", "LISTING_FORMAT", "SECCOMP", "TARGETS", "BuildError", "Builder", "Built", "CheckRule",
    "CheckedProgram", "Diagnostic", "Instruction", "Label", "Machine", "MachineState", "Program", "RunResult",
    "Target", "TraceStep", "Verdict", "assemble", "check", "diagnose", "disassemble", "disassembly", "run",
]
