"""The classic-BPF toolchain for io_uring (and seccomp) filters: assemble, disassemble, check, run.

Layers, each importing only downward: ``insn`` (data) -> ``cfg`` (control flow), ``target`` (context,
names, extra rules, verdicts), ``semantics`` (what each operation computes) -> ``text`` (spelling) ->
``asm`` / ``disasm``; ``check`` (acceptance, the only constructor of :class:`CheckedProgram`) ->
``interp`` (reference), ``fast`` (compiled, behind :meth:`CheckedProgram.evaluate`) and ``symbolic``
(terms for a prover); ``builder`` writes programs with labels.
"""

from ringfence.bpf.asm import assemble
from ringfence.bpf.builder import Builder, BuildError, Built, Label
from ringfence.bpf.check import CheckedProgram, CheckRule, Diagnostic, check, diagnose
from ringfence.bpf.disasm import LISTING_FORMAT, disassemble, disassembly
from ringfence.bpf.insn import Instruction, Program
from ringfence.bpf.interp import Machine, MachineState, RunResult, TraceStep, run
from ringfence.bpf.target import IOURING, SECCOMP, TARGETS, Target, Verdict

__all__ = [
    "IOURING", "LISTING_FORMAT", "SECCOMP", "TARGETS", "BuildError", "Builder", "Built", "CheckRule",
    "CheckedProgram", "Diagnostic", "Instruction", "Label", "Machine", "MachineState", "Program", "RunResult",
    "Target", "TraceStep", "Verdict", "assemble", "check", "diagnose", "disassemble", "disassembly", "run",
]
