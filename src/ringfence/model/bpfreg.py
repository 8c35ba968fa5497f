"""``IORING_REGISTER_BPF_FILTER``: import checks with the pdu_size write-back, program acceptance (spec §5.2-5.5).

:func:`import_filter` walks the registration table row by row and never raises: it returns the refusal (or the
accepted program) together with the value written back into ``filter.pdu_size``, which transcripts report for
every call past the length check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ringfence.abi.layout import FilterRegistration
from ringfence.abi.opcodes import BPF_CMD_FILTER, FilterFlag
from ringfence.abi.profiles import KernelProfile
from ringfence.bpf import CheckedProgram, Program, check
from ringfence.bpf.insn import MAXINSNS
from ringfence.errors import CheckError
from ringfence.model.outcome import Refused
from ringfence.model.rules import Rule

_VALID_FLAGS: Final = int(FilterFlag.DENY_REST | FilterFlag.SZ_STRICT)


@dataclass(frozen=True, slots=True)
class Imported:
    """A filter that passed the registration checks, or the refusal; ``pdu_size_out`` is None before the size
    check (nothing written back)."""

    program: CheckedProgram | None
    refused: Refused | None
    pdu_size_out: int | None


def import_filter(profile: KernelProfile, reg: FilterRegistration | None) -> Imported:
    """The registration table in order (allocation failures, the kernel's only other rows, never happen here).

    ``reg`` None is a NULL registration pointer.
    """
    if not profile.bpf_filters:
        return Imported(None, Refused("EINVAL", Rule.FILTERS_UNSUPPORTED), None)

    def refuse(errno: str, rule: Rule, why: str = "", pdu: int | None = None) -> Imported:
        return Imported(None, Refused(errno, rule, why), pdu)

    if reg is None:
        return refuse("EFAULT", Rule.FILTER_STRUCT_FAULT)
    if reg.cmd_type != BPF_CMD_FILTER:
        return refuse("EINVAL", Rule.FILTER_CMD_TYPE, f"cmd_type {reg.cmd_type}")
    if reg.cmd_flags or reg.resv:
        return refuse("EINVAL", Rule.FILTER_CMD_FLAGS)
    if not 0 <= reg.opcode < profile.op_last:
        return refuse("EINVAL", Rule.FILTER_OPCODE, f"opcode {reg.opcode}; this kernel has {profile.op_last}")
    if reg.flags & ~_VALID_FLAGS:
        return refuse("EINVAL", Rule.FILTER_FLAGS, f"flags {reg.flags:#x}")
    if any(reg.filter_resv):
        return refuse("EINVAL", Rule.FILTER_RESV)
    if any(reg.resv2):
        return refuse("EINVAL", Rule.FILTER_RESV2)
    length = reg.length
    if not 1 <= length <= MAXINSNS:
        return refuse("EINVAL", Rule.FILTER_LENGTH, f"filter_len {length}")
    kernel_size = profile.pdu_size(reg.opcode)
    asked = reg.pdu_size & 0xFF
    if asked != kernel_size and (reg.flags & FilterFlag.SZ_STRICT or asked > kernel_size):
        why = "SZ_STRICT and the sizes differ" if reg.flags & FilterFlag.SZ_STRICT else "the filter expects more"
        return refuse("EMSGSIZE", Rule.FILTER_PDU_SIZE, f"{asked} asked, {kernel_size} here: {why}", kernel_size)
    if reg.null_program:
        return refuse("EINVAL", Rule.FILTER_NULL_PROGRAM, pdu=kernel_size)
    try:
        checked = check(Program.from_bytes(reg.copied_instructions()))
    except CheckError as exc:
        return refuse(exc.errno_name, Rule.FILTER_PROGRAM, str(exc), kernel_size)
    return Imported(checked, None, kernel_size)
