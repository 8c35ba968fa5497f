"""A Plan as C that drops into a liburing (or plain) program: data, in registration order, and apply functions.

For each variant: the restriction records (and, for a task, the task-restriction header), each filter's
``struct sock_filter`` program with the rule behind each instruction, its ``struct io_uring_bpf``, the names of
the steps, and an apply function making the registrations with raw ``io_uring_register`` calls. Everything the
file needs from Linux 7.0's headers is declared behind guards, so it compiles against any io_uring headers:
the headers' own declarations when they have them, the file's otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ringfence.abi.layout import FilterRegistration, Restriction
from ringfence.abi.opcodes import BPF_CMD_FILTER, RestrictionOp
from ringfence.bpf.insn import JA, JMP, Program
from ringfence.bpf.text import render_line
from ringfence.policy.export import cdecl, names
from ringfence.policy.export.names import Constant
from ringfence.policy.export.text import c_comment, identifier, rule_note, rules_with_reasons
from ringfence.policy.plan import Plan, Registration, Variant

#: Fallback numbers for names older headers lack, by the header generation that brought them.
OLD_HEADERS: Final = "RINGFENCE_DECLARED_5_10"  # set when the headers predate restriction records
PRE_7_0_HEADERS: Final = "RINGFENCE_DECLARED_7_0"  # set when the headers predate task restrictions and filters
_OLD_NAMES: Final = {"IORING_REGISTER_RESTRICTIONS", "IORING_REGISTER_ENABLE_RINGS"}
_MAX_TASK_RECORDS: Final = 128
_NR_IO_URING_REGISTER: Final = 427  # the same number on every architecture but alpha
_PR_SET_NO_NEW_PRIVS: Final = 38
_CODE_COLUMN: Final = 56


@dataclass
class _Names:
    """The header names the file uses, for its fallback section."""

    used: dict[str, Constant] = field(default_factory=dict)

    def name(self, constant: Constant | None, value: int) -> str:
        if constant is None:
            return str(value)
        self.used[constant.name] = constant
        return constant.name

    def mask(self, constants: list[Constant] | None, value: int) -> str:
        if constants is None:
            return f"{value:#x}"
        if not constants:
            return "0"
        return " | ".join(self.name(c, c.value) for c in constants)


def _number(k: int) -> str:
    return str(k) if k < 256 else f"{k:#x}"


def instruction(code: int, jt: int, jf: int, k: int) -> str:
    """One ``struct sock_filter`` initializer, with the headers' macros where they can say it."""
    expr = names.code_expression(code)
    if expr is None:
        return f"{{ {code:#06x}, {jt}, {jf}, {_number(k)} }}"
    if code & 0x07 == JMP and code & 0xF0 != JA:
        return f"BPF_JUMP({expr}, {_number(k)}, {jt}, {jf})"
    if jt == jf == 0:
        return f"BPF_STMT({expr}, {_number(k)})"
    return f"{{ {expr}, {jt}, {jf}, {_number(k)} }}"


class _Writer:
    """Renders one Plan; collects the names it uses on the way."""

    def __init__(self, plan: Plan, reasons: Mapping[str, str], prefix: str) -> None:
        self.plan, self.reasons, self.prefix = plan, reasons, prefix
        self.task = plan.target == "task"
        self.names = _Names()
        for c in (names.REGISTER_RESTRICTIONS, names.REGISTER_BPF_FILTER):  # the helpers use them
            self.names.name(c, c.value)

    # -- one variant ---------------------------------------------------------------------------------------------

    def records(self, var: str, records: tuple[Restriction, ...]) -> list[str]:
        member: dict[int, str] = {RestrictionOp.REGISTER_OP: "register_op", RestrictionOp.SQE_OP: "sqe_op"}
        rows = []
        for r in records:
            kind = self.names.name(names.restriction_type(r.opcode), r.opcode)
            if r.opcode == RestrictionOp.REGISTER_OP:
                value = self.names.name(names.register_op(r.value), r.value)
            elif r.opcode == RestrictionOp.SQE_OP:
                value = self.names.name(names.sqe_op(r.value), r.value)
            else:
                value = self.names.mask(names.sqe_flags(r.value), r.value)
            extra = (f", .resv = {r.resv}" if r.resv else "") + \
                    (f", .resv2 = {{ {', '.join(map(str, r.resv2))} }}" if any(r.resv2) else "")
            rows.append(f"\t{{ .opcode = {kind}, .{member.get(r.opcode, 'sqe_flags')} = {value}{extra} }},\n")
        return rows

    def restriction_step(self, var: str, step: int, reg: Registration) -> tuple[str, str]:
        """The data and the apply-function call of a restrictions step."""
        base = f"{self.prefix}_{var}"
        why = "; ".join(c_comment(r) for r in reg.rules) or "restriction records"
        out = f"/* Step {step}: classic restrictions ({why}): {len(reg.records)} records. */\n"
        if reg.records:
            out += (f"static const struct io_uring_restriction {base}_records[] = {{\n"
                    + "".join(self.records(var, reg.records)) + "};\n")
            records, count = f"{base}_records", str(len(reg.records))
        else:
            records, count = "NULL", "0"
        if self.task:
            out += f"static const struct io_uring_task_restriction {base}_task_header = {{ .nr_res = {count} }};\n"
            call = f"ringfence_register_task_restrictions(&{base}_task_header, {records}, {count})"
        else:
            call = f"ringfence_register_ring_restrictions(ring_fd, {records}, {count})"
        return out, call

    def program_rows(self, reg: Registration, program: Program) -> list[str]:
        rows = []
        n = len(program)
        for pc, ins in enumerate(program):
            code = f"\t{instruction(ins.code, ins.jt, ins.jf, ins.k)},"
            note = rule_note(reg, reg.comments[pc] if pc < len(reg.comments) else "", self.reasons)
            text = f"{pc:3d}  {render_line(ins, pc, n):<24}" + (f"  {note}" if note else "")
            rows.append(f"{code.ljust(_CODE_COLUMN)}/* {c_comment(text).rstrip()} */\n")
        return rows

    def filter_step(self, var: str, step: int, reg: Registration, used: set[str]) -> tuple[str, str]:
        f = reg.filter
        assert f is not None
        op = names.sqe_op(f.opcode)
        stem = op.name.removeprefix("IORING_OP_").lower() if op else f"op{f.opcode}"
        if stem in used:
            stem = f"{stem}_{step}"
        used.add(stem)
        base = f"{self.prefix}_{var}_{stem}"
        program = Program.from_bytes(f.program)
        opname = self.names.name(op, f.opcode)
        head = f"Step {step}: filter for {opname if op else f'opcode {f.opcode}'}, " \
               f"declaring a {f.pdu_size}-byte payload"
        lines = [head + "."] + [f"  {c_comment(r)}" for r in rules_with_reasons(reg, self.reasons)]
        out = "/* " + "\n * ".join(lines) + " */\n"
        out += f"static const struct sock_filter {base}_program[] = {{\n" + "".join(self.program_rows(reg, program))
        out += "};\n"
        out += f"static const struct io_uring_bpf {base} = {{\n"
        cmd = self.names.name(names.CMD_FILTER, BPF_CMD_FILTER) if f.cmd_type == BPF_CMD_FILTER else f.cmd_type
        out += f"\t.cmd_type = {cmd},\n"
        out += "".join(f"\t.{k} = {v},\n" for k, v in (("cmd_flags", f.cmd_flags), ("resv", f.resv)) if v)
        out += "\t.filter = {\n"
        out += f"\t\t.opcode = {opname},\n"
        out += f"\t\t.flags = {self.names.mask(names.filter_flags(f.flags), f.flags)},\n"
        out += f"\t\t.filter_len = {f.length},\n"
        out += f"\t\t.pdu_size = {f.pdu_size},\n"
        out += _reserved(f)
        out += "\t},\n};\n"
        fd = "-1" if self.task else "ring_fd"
        return out, f"ringfence_register_filter({fd}, &{base}, {'NULL' if f.null_program else f'{base}_program'})"

    def variant(self, var_index: int, variant: Variant) -> str:
        var = identifier(variant.mechanism)
        base = f"{self.prefix}_{var}"
        parts: list[str] = []
        calls: list[tuple[str, str]] = []  # (step name, call)
        if self.task:
            calls.append(("no_new_privs", "ringfence_no_new_privs()"))
        used: set[str] = set()
        for reg in variant.registrations:
            step = len(calls)
            if reg.kind == "restrictions":
                data, call = self.restriction_step(var, step, reg)
                parts.append(data)
                calls.append(("restrictions", call))
            elif reg.kind == "filter":
                data, call = self.filter_step(var, step, reg, used)
                parts.append(data)
                assert reg.filter is not None
                op = names.sqe_op(reg.filter.opcode)
                calls.append((f"filter {op.name if op else reg.filter.opcode}", call))
            else:
                enable = self.names.name(names.REGISTER_ENABLE_RINGS, names.REGISTER_ENABLE_RINGS.value)
                calls.append(("enable", f"ringfence_register(ring_fd, {enable}, NULL, 0)"))
        out = _banner(f'variant "{variant.mechanism}"' + (" (the one to try first)" if var_index == 0 else ""))
        out += "\n".join(parts) + ("\n" if parts else "")
        out += f"/* The steps of {base}_apply(), in order: *failed_step indexes this list. */\n"
        out += f"static const char *const {base}_steps[] = {{\n"
        out += "".join(f'\t"{name}",\n' for name, _ in calls) + "};\n\n"
        out += f"static inline const char *{base}_step_name(int step)\n{{\n"
        out += f'\treturn step >= 0 && step < {len(calls)} ? {base}_steps[step] : "none";\n}}\n\n'
        out += self.apply_comment(variant)
        args = "int *failed_step" if self.task else "int ring_fd, int *failed_step"
        out += f"static inline int {base}_apply({args})\n{{\n\tint ret;\n\n"
        for i, (_, call) in enumerate(calls):
            name, _, args = call.partition("(")
            spelled = f"{name}(\n\t\t\t{args}" if len(call) > 90 else call  # long arguments get their own line
            out += f"\tif ((ret = {spelled}) < 0)\n\t\treturn ringfence_failed(failed_step, {i}, ret);\n"
        out += "\treturn ringfence_failed(failed_step, -1, 0);\n}\n"
        return out

    def apply_comment(self, variant: Variant) -> str:
        base = f"{self.prefix}_{identifier(variant.mechanism)}"
        if self.task:
            what = ("Sets no_new_privs, then registers each step for the calling thread (io_uring_register with "
                    "fd -1): it binds the thread and everything it creates from then on, irreversibly.")
        else:
            what = ("Registers each step on ring_fd, which must have been created with IORING_SETUP_R_DISABLED "
                    "(liburing: io_uring_queue_init with that flag; pass ring.ring_fd), then enables the ring.")
        text = (f"{what} Returns 0, or the negative errno of the first step that failed; *failed_step (if not NULL) "
                f"gets that step's index in {base}_steps (-1 on success). Steps before it stay in force.")
        return "/*\n" + "".join(f" * {line}\n" for line in _wrap(text, 110)) + " */\n"

    # -- the whole file -----------------------------------------------------------------------------------------

    def render(self) -> str:
        variants = [self.variant(i, v) for i, v in enumerate(self.plan.variants)]
        guard = f"{self.prefix.upper()}_RINGFENCE_H"
        return "".join([
            self.header_comment(), f"#ifndef {guard}\n#define {guard}\n\n", INCLUDES, DECLARATIONS,
            self.fallbacks(), HELPERS, *("\n" + v for v in variants), f"\n#endif /* {guard} */\n",
        ])

    def header_comment(self) -> str:
        p = self.plan
        first = [f"{c_comment(p.policy)}: an io_uring sandbox for Linux {p.kernel} ({p.arch}), written for kernels "
                 f"{p.minimum_kernel}.",
                 f"Generated by ringfence {p.compiler} from the Plan with hash {p.hash}; regenerate rather than edit."]
        target = ("Target: this task and everything it creates after the apply function returns."
                  if self.task else "Target: one ring, created disabled, restricted, then enabled.")
        lines = [*first, "", target, "Variants, in the order to try them:"]
        for v in p.variants:
            counts = _summary(v)
            lines.append(f"  {self.prefix}_{identifier(v.mechanism)}_apply(): {counts}")
        if len(p.variants) > 1 and self.task:
            lines.append("A task that already carries restriction state (inherited, or its own) cannot take classic "
                         "restrictions (EPERM): use the filters variant there.")
        elif len(p.variants) > 1:
            lines.append("A ring created by a task with classic restrictions already has them and cannot take "
                         "others (EBUSY): use the filters variant there.")
        lines += ["", "If the program uses liburing, include this file after <liburing.h>. Structures and names that "
                      "older headers lack are declared here, behind guards."]
        if p.warnings:
            lines += ["", "The compiler warned:"] + [f"  {c_comment(w)}" for w in p.warnings]
        body = []
        for line in lines:
            body += _wrap(c_comment(line), 110) if line else [""]
        return "/*\n" + "".join(f" * {b}".rstrip() + "\n" for b in body) + " */\n"

    def fallbacks(self) -> str:
        """``#define`` fallbacks, each behind its own guard, for the names the file used."""
        used = sorted(self.names.used.values(), key=lambda c: (c.name.rstrip("0123456789"), c.value))
        old = [c for c in used if not c.macro and (c.name.startswith("IORING_RESTRICTION_") or c.name in _OLD_NAMES)]
        new = [c for c in used if not c.macro and c not in old]
        macros = [c for c in used if c.macro]

        def block(items: list[Constant]) -> str:
            return "".join(f"#ifndef {c.name}\n#define {c.name} {c.value}\n#endif\n" for c in items)

        out = ("/* Names for the numbers below. The headers declare most of them as enumerators, which the "
               "preprocessor\n   cannot see; where the headers are too old to declare them, they are defined "
               "here. */\n")
        if old:
            out += f"#if defined({OLD_HEADERS})\n{block(old)}#endif\n"
        if new:
            out += f"#if defined({PRE_7_0_HEADERS})\n{block(new)}#endif\n"
        return out + block(macros) + "\n"


def _reserved(f: FilterRegistration) -> str:
    out = ""
    if any(f.filter_resv):
        out += f"\t\t.resv = {{ {', '.join(str(b) for b in f.filter_resv)} }},\n"
    if any(f.resv2):
        out += f"\t\t.resv2 = {{ {', '.join(str(v) for v in f.resv2)} }},\n"
    return out


def _summary(v: Variant) -> str:
    kinds = [r.kind for r in v.registrations]
    parts = []
    if "restrictions" in kinds:
        parts.append("restriction records")
    if n := kinds.count("filter"):
        parts.append(f"{n} filter{'s' if n > 1 else ''}")
    if "enable" in kinds:
        parts.append("enable")
    return f'"{v.mechanism}": ' + (", then ".join(parts) if parts else "nothing to register")


def _banner(title: str) -> str:
    return f"/* ---- {title} {'-' * max(4, 100 - len(title))} */\n\n"


def _wrap(text: str, width: int) -> list[str]:
    """Words to lines of at most ``width`` (a longer word gets a line of its own); continuation lines keep the
    first line's indentation plus two spaces."""
    indent = text[:len(text) - len(text.lstrip())]
    lines: list[str] = []
    line = indent
    for word in text.split():
        if line.strip() and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = f"{indent}  {word}" if indent else word
        else:
            line = f"{line} {word}" if line.strip() else f"{line}{word}"
    return [*lines, line] if line.strip() else lines


INCLUDES: Final = """#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/filter.h>
#include <linux/types.h>
#ifndef LIB_URING_H /* liburing brings its own copies of the io_uring headers */
#include <linux/io_uring.h>
#if defined(__has_include)
#if __has_include(<linux/io_uring/bpf_filter.h>)
#include <linux/io_uring/bpf_filter.h>
#endif
#endif
#endif

"""

DECLARATIONS: Final = f"""/* Restriction records arrived with Linux 5.10 (as did IORING_SETUP_R_DISABLED), task
   restrictions and filters with 7.0 (in the header that sets LINUX_IO_URING_BPF_FILTER_H).
   Declare what the headers in effect lack. */
#if !defined(IORING_SETUP_R_DISABLED) && !defined({OLD_HEADERS})
#define {OLD_HEADERS} 1
{cdecl.declarations(cdecl.OLD)}#endif
#if !defined(LINUX_IO_URING_BPF_FILTER_H) && !defined({PRE_7_0_HEADERS})
#define {PRE_7_0_HEADERS} 1
{cdecl.declarations(cdecl.NEW)}#endif
#ifndef RINGFENCE_LAYOUT_CHECKED
#define RINGFENCE_LAYOUT_CHECKED 1
/* Whichever declarations are in effect, they must have the kernel's layout. */
_Static_assert(sizeof(struct sock_filter) == 8, "struct sock_filter is 8 bytes");
{cdecl.layout_asserts()}#endif

"""

HELPERS: Final = f"""#ifndef __NR_io_uring_register
#define __NR_io_uring_register {_NR_IO_URING_REGISTER}
#endif
#ifndef PR_SET_NO_NEW_PRIVS
#define PR_SET_NO_NEW_PRIVS {_PR_SET_NO_NEW_PRIVS}
#endif

#ifndef RINGFENCE_HELPERS
#define RINGFENCE_HELPERS 1
/* Declared here too: strict ISO C modes hide it in <unistd.h>. */
extern long syscall(long number, ...);

/* io_uring_register(2) without liburing: the result, or -errno. */
static inline int ringfence_register(int fd, unsigned int opcode, const void *arg, unsigned int nr_args)
{{
\tlong ret = syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);

\treturn ret < 0 ? -errno : (int)ret;
}}

/* Task registrations need no_new_privs (or CAP_SYS_ADMIN); set it first. */
static inline int ringfence_no_new_privs(void)
{{
\treturn prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) == 0 ? 0 : -errno;
}}

/* The kernel writes its payload size back into the structure: register a copy, keep the original as generated. */
static inline int ringfence_register_filter(int fd, const struct io_uring_bpf *reg, const struct sock_filter *prog)
{{
\tstruct io_uring_bpf arg = *reg;

\targ.filter.filter_ptr = (__u64)(uintptr_t)prog;
\treturn ringfence_register(fd, IORING_REGISTER_BPF_FILTER, &arg, 1);
}}

/* Task restrictions take one buffer: the 16-byte header, then the records. */
static inline int ringfence_register_task_restrictions(const struct io_uring_task_restriction *head,
\t\t\t\t\t\t       const struct io_uring_restriction *records, unsigned int nr)
{{
\tstruct io_uring_restriction arg[1 + {_MAX_TASK_RECORDS}];

\t_Static_assert(sizeof(struct io_uring_task_restriction) == sizeof(arg[0]), "the header fills one slot");
\tif (nr > {_MAX_TASK_RECORDS})
\t\treturn -E2BIG;
\tmemcpy(&arg[0], head, sizeof(*head));
\tif (nr)
\t\tmemcpy(&arg[1], records, nr * sizeof(*records));
\treturn ringfence_register(-1, IORING_REGISTER_RESTRICTIONS, arg, 1);
}}

/* Ring restrictions: the records alone. The kernel wants a pointer even for none (which denies everything). */
static inline int ringfence_register_ring_restrictions(int fd, const struct io_uring_restriction *records,
\t\t\t\t\t\t       unsigned int nr)
{{
\tstatic const struct io_uring_restriction none[1];

\treturn ringfence_register(fd, IORING_REGISTER_RESTRICTIONS, nr ? records : none, nr);
}}

static inline int ringfence_failed(int *failed_step, int step, int ret)
{{
\tif (failed_step)
\t\t*failed_step = step;
\treturn ret;
}}
#endif
"""


def to_c(plan: Plan, *, reasons: Mapping[str, str] | None = None, prefix: str | None = None) -> str:
    """The C file for ``plan``; ``reasons`` maps rule labels to the policy's reasons, ``prefix`` starts every
    name the file defines for this policy (default ``rf_`` and the policy's name)."""
    return _Writer(plan, reasons or {}, prefix or f"rf_{identifier(plan.policy)}").render()
