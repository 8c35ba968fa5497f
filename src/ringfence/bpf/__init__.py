"""The classic-BPF toolchain for io_uring filters: assemble, disassemble, check (kernel-exact), run.

Layers, each importing only downward: ``insn`` (data) -> ``text`` (spelling) -> ``asm`` / ``disasm``;
``check`` (acceptance, the only constructor of :class:`CheckedProgram`) -> ``interp`` (reference) and
``fast`` (compiled, behind :meth:`CheckedProgram.evaluate`).
"""

from ringfence.bpf.asm import assemble
from ringfence.bpf.check import CheckedProgram, CheckRule, Diagnostic, check, diagnose
from ringfence.bpf.disasm import LISTING_FORMAT, disassemble, disassembly
from ringfence.bpf.insn import Instruction, Program
from ringfence.bpf.interp import Machine, MachineState, RunResult, TraceStep, run

__all__ = [
    "LISTING_FORMAT", "CheckRule", "CheckedProgram", "Diagnostic", "Instruction", "Machine", "MachineState",
    "Program", "RunResult", "TraceStep", "assemble", "check", "diagnose", "disassemble", "disassembly", "run",
]
