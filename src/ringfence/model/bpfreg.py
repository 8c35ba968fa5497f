"""``IORING_REGISTER_BPF_FILTER``: import checks with the pdu_size write-back, program acceptance (spec §5.2-5.5).

:func:`import_filter` walks §5.3 rows 1-14 and never raises: it returns the errno (or None) together with
the value written back into ``filter.pdu_size``, which the transcript reports for every call past row 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ringfence.abi.opcodes import BPF_CMD_FILTER, FilterFlag
from ringfence.abi.profiles import KernelProfile
from ringfence.bpf import CheckedProgram, Program, check
from ringfence.errors import CheckError
from ringfence.model.outcome import Refused
from ringfence.scenario.steps import Filter

BPF_MAXINSNS: Final = 4096
_VALID_FLAGS: Final = int(FilterFlag.DENY_REST | FilterFlag.SZ_STRICT)


@dataclass(frozen=True, slots=True)
class Imported:
    """A filter that passed §5.3 rows 1-14, or the refusal; ``pdu_size_out`` is None before row 9."""

    program: CheckedProgram | None
    refused: Refused | None
    pdu_size_out: int | None


def _instructions(step: Filter, count: int) -> bytes:
    """The ``filter_len * 8`` bytes the kernel copies: the program, truncated or zero-padded [assumption]."""
    want = count * 8
    return step.program[:want].ljust(want, b"\0")


def import_filter(profile: KernelProfile, step: Filter) -> Imported:
    """§5.3 rows 1-14 in order (row 1, 11 and 15-16 are faults and allocation failures the model never meets)."""
    if not profile.bpf_filters:
        return Imported(None, Refused("EINVAL", "§5.1", "kernel without CONFIG_IO_URING_BPF"), None)

    def refuse(errno: str, row: str, why: str, pdu: int | None = None) -> Imported:
        return Imported(None, Refused(errno, f"§5.3 row {row}", why), pdu)

    if step.cmd_type != BPF_CMD_FILTER:
        return refuse("EINVAL", "2", f"cmd_type {step.cmd_type} != 1")
    if step.cmd_flags or step.resv:
        return refuse("EINVAL", "3", "cmd_flags or resv not zero")
    if not 0 <= step.opcode < profile.op_last:
        return refuse("EINVAL", "4", f"opcode {step.opcode} >= IORING_OP_LAST ({profile.op_last})")
    if step.flags & ~_VALID_FLAGS:
        return refuse("EINVAL", "5", f"flags {step.flags:#x} outside DENY_REST|SZ_STRICT")
    if any(step.filter_resv):
        return refuse("EINVAL", "6", "filter.resv[] not zero")
    if any(step.resv2):
        return refuse("EINVAL", "7", "filter.resv2[] not zero")
    length = len(step.program) // 8 if step.filter_len is None else step.filter_len
    if not 1 <= length <= BPF_MAXINSNS:
        return refuse("EINVAL", "8", f"filter_len {length} outside 1..{BPF_MAXINSNS}")
    kernel_size = profile.pdu_size(step.opcode)
    asked = step.pdu_size & 0xFF
    if asked != kernel_size and (step.flags & FilterFlag.SZ_STRICT or asked > kernel_size):
        why = "SZ_STRICT and sizes differ" if step.flags & FilterFlag.SZ_STRICT else "caller expects more"
        return refuse("EMSGSIZE", "9 / §5.4", f"pdu_size {asked} vs kernel {kernel_size}: {why}", kernel_size)
    if step.null_program:
        return refuse("EINVAL", "10", "filter_ptr is 0", kernel_size)
    try:
        checked = check(Program.from_bytes(_instructions(step, length)))
    except CheckError as exc:
        return refuse(exc.errno_name, "13-14 / §5.5", str(exc), kernel_size)
    return Imported(checked, None, kernel_size)
