"""A Plan as a Python module of literals that needs nothing but the standard library (not even ringfence).

For programs that apply a sandbox themselves (with ctypes, say) or check one: each variant is a tuple of steps
in registration order, each step a dict; programs are there as ``bytes`` (what the kernel reads) and as
commented ``(code, jt, jf, k)`` tuples (what a reader reads). Small ``pack_*`` functions give the structures'
bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ringfence.abi.layout import Restriction
from ringfence.abi.opcodes import RestrictionOp
from ringfence.bpf.insn import Program
from ringfence.bpf.text import render_line
from ringfence.policy.export import names
from ringfence.policy.export.names import Constant
from ringfence.policy.export.text import identifier, one_line, rule_note
from ringfence.policy.plan import Plan, Registration, Variant

_HELPERS: Final = '''

def pack_records(records):
    """struct io_uring_restriction records (16 bytes each) for a ring's IORING_REGISTER_RESTRICTIONS."""
    return b"".join(struct.pack("=HBB3I", kind, value, 0, 0, 0, 0) for kind, value in records)


def pack_task_restrictions(records):
    """The task form: the 16-byte struct io_uring_task_restriction header (flags 0, nr_res), then the records."""
    return struct.pack("=HH3I", 0, len(records), 0, 0, 0) + pack_records(records)


def pack_bpf(step, program_address):
    """The 72-byte struct io_uring_bpf for a filter step, its filter_ptr set to where the program's bytes are."""
    head = struct.pack("=HHI", IO_URING_BPF_CMD_FILTER, 0, 0)
    return head + struct.pack("=IIIB3xQ40x", step["opcode"], step["flags"], len(step["program"]) // 8,
                              step["pdu_size"], program_address)
'''


def _bytes(data: bytes) -> str:
    return 'b"' + "".join(f"\\x{b:02x}" for b in data) + '"'


class _Writer:
    def __init__(self, plan: Plan, reasons: Mapping[str, str]) -> None:
        self.plan, self.reasons = plan, reasons
        self.used: dict[str, Constant] = {}

    def name(self, constant: Constant | None, value: int) -> str:
        if constant is None:
            return str(value)
        self.used[constant.name] = constant
        return constant.name

    def record(self, r: Restriction) -> str:
        kind = self.name(names.restriction_type(r.opcode), r.opcode)
        if r.opcode == RestrictionOp.REGISTER_OP:
            value = self.name(names.register_op(r.value), r.value)
        elif r.opcode == RestrictionOp.SQE_OP:
            value = self.name(names.sqe_op(r.value), r.value)
        else:
            flags = names.sqe_flags(r.value)
            value = " | ".join(self.name(c, c.value) for c in flags) if flags else f"{r.value:#x}"
        return f"({kind}, {value})"

    def step(self, reg: Registration) -> str:
        rules = "".join(f"{one_line(r)!r}, " for r in reg.rules)
        if reg.kind == "restrictions":
            records = "".join(f"            {self.record(r)},\n" for r in reg.records)
            return (f'    {{"kind": "restrictions", "rules": ({rules}),\n'
                    f'     "records": (\n{records}     )}},\n')
        if reg.kind == "enable":
            return '    {"kind": "enable"},\n'
        f = reg.filter
        assert f is not None
        program = Program.from_bytes(f.program)
        flag_names = names.filter_flags(f.flags)
        flags = " | ".join(self.name(c, c.value) for c in flag_names) if flag_names else str(f.flags)
        rows: list[str] = []
        for pc, ins in enumerate(program):
            note = rule_note(reg, reg.comments[pc] if pc < len(reg.comments) else "", self.reasons)
            text = f"{pc:3d}  {render_line(ins, pc, len(program)):<24}" + (f"  {one_line(note)}" if note else "")
            rows.append(f"            ({ins.code:#06x}, {ins.jt}, {ins.jf}, {ins.k:#x}),".ljust(48)
                        + f"# {text.rstrip()}\n")
        chunks = "".join(f"         {_bytes(f.program[i:i + 32])}\n" for i in range(0, len(f.program), 32))
        return (f'    {{"kind": "filter", "rules": ({rules}),\n'
                f'     "opcode": {self.name(names.sqe_op(f.opcode), f.opcode)}, "flags": {flags}, '
                f'"pdu_size": {f.pdu_size},\n'
                f'     "instructions": (\n{"".join(rows)}     ),\n'
                f'     "program": (\n{chunks}     )}},\n')

    def variant(self, v: Variant) -> str:
        const = identifier(v.mechanism).upper()
        return f"{const} = (\n" + "".join(self.step(r) for r in v.registrations) + ")\n"

    def render(self) -> str:
        p = self.plan
        self.name(names.CMD_FILTER, names.CMD_FILTER.value)
        variants = [self.variant(v) for v in p.variants]
        consts = "".join(f"{c.name} = {c.value}\n" for c in sorted(self.used.values(), key=lambda c: c.name))
        doc = (f'"""{one_line(p.policy)}: an io_uring sandbox for Linux {p.kernel} ({p.arch}), '
               f"generated by ringfence {p.compiler} — regenerate rather than edit.\n\n"
               "VARIANTS maps each variant to its steps, in registration order (try the variants in the order "
               "listed).\nA step is a dict: kind \"restrictions\" (records: (type, value) pairs), \"filter\" "
               "(opcode, flags, pdu_size,\nprogram: the sock_filter bytes, instructions: the same as "
               "(code, jt, jf, k)) or \"enable\" (a ring target's\nlast step). Standard library only.\n\"\"\"\n")
        meta = (f"POLICY = {p.policy!r}\nTARGET = {p.target!r}\nKERNEL = {p.kernel!r}\n"
                f"MINIMUM_KERNEL = {p.minimum_kernel!r}\nARCH = {p.arch!r}\nPLAN_HASH = {p.hash!r}\n")
        table = "VARIANTS = {\n" + "".join(f"    {v.mechanism!r}: {identifier(v.mechanism).upper()},\n"
                                         for v in p.variants) + "}\n"
        return (doc + "\nimport struct\n\n" + meta + "\n# Names as the kernel headers spell them.\n" + consts + "\n"
                + "\n".join(variants) + "\n" + table + _HELPERS)


def to_python(plan: Plan, *, reasons: Mapping[str, str] | None = None) -> str:
    """The module's source for ``plan``; ``reasons`` maps rule labels to the policy's reasons (comments)."""
    return _Writer(plan, reasons or {}).render()
