"""Compile exported C with gcc and run it: the test program, the header sets, and ringfence.live's reference.

The test program includes the exported file (after ``<liburing.h>`` when liburing's headers are in use), declares
look-alikes of the io_uring structures and ``_Static_assert``s that they match the ones in effect, compares every
exported array and structure byte for byte with what the Plan says, then runs each variant's apply function in a
forked child and prints ``<variant> <ret> <step>``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from ringfence.abi.layout import TaskRestrictionHeader
from ringfence.abi.opcodes import SQE_VALID_FLAGS, RegisterOp, RestrictionOp, SetupFlag, SqeFlag, SqeOp
from ringfence.live import _sys
from ringfence.live.child import run_in_child
from ringfence.live.ring import Ring, register_bpf_filter, register_restrictions, register_task_restrictions
from ringfence.policy.export import cdecl, names
from ringfence.policy.plan import Plan, Variant

STRICT = ("-std=c11", "-Wall", "-Wextra", "-Werror")
CHECK_PREFIX = "rf_check_"
SID_PACKAGES = ("liburing-dev", "linux-libc-dev")


def required() -> bool:
    """In CI (or when the VM is required), a missing tool or package is a failure, not a skip."""
    return os.environ.get("RINGFENCE_REQUIRE_VM") == "1" or os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    if required():
        pytest.fail(f"{reason} (required in CI / with RINGFENCE_REQUIRE_VM=1)")
    pytest.skip(reason)


@dataclass(frozen=True)
class Headers:
    """A set of headers to compile against: ``isystem`` directories searched before the system's."""

    name: str
    isystem: tuple[Path, ...] = ()
    liburing: bool = False
    #: whether the io_uring headers in effect predate 7.0, so that the exported file declares the structures
    own_declarations: bool = False

    def flags(self) -> list[str]:
        # -isystem, not -I: sid's kernel headers and this host's older glibc headers both define a few RWF_*
        # macros, which gcc reports (and -Werror fails on) unless both are system headers.
        return [arg for d in self.isystem for arg in ("-isystem", str(d))]


def gcc() -> str:
    path = shutil.which("gcc")
    if path is None:
        unavailable("gcc is not installed")
        raise AssertionError  # unreachable: skip or fail raised
    return path


def compile_c(files: dict[str, str], main: str, out: Path, headers: Headers, *, link: bool = True,
              extra: Sequence[str] = ()) -> Path:
    """Write ``files`` into ``out``'s directory and compile ``main``; an error shows gcc's full output."""
    for name, text in files.items():
        (out.parent / name).write_text(text, encoding="utf-8")
    argv = [gcc(), *STRICT, *extra, *headers.flags(), "-o", str(out)]
    argv += ([str(out.parent / main)] if link else ["-x", "c", "-c", str(out.parent / main)])
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"gcc failed ({headers.name}):\n{' '.join(argv)}\n{proc.stderr}"
    return out


def _c_bytes(data: bytes) -> str:
    rows = [", ".join(f"0x{b:02x}" for b in data[i:i + 16]) for i in range(0, len(data), 16)]
    return "{\n\t" + ",\n\t".join(rows) + "\n}" if data else "{ 0 }"


@dataclass(frozen=True)
class _Item:
    """One exported array or structure and the bytes the Plan says it holds."""

    symbol: str
    want: bytes


def exported_items(plan: Plan, source: str) -> list[_Item]:
    """The file's data symbols, found by type in file order, paired with the Plan's registrations in order."""
    found = re.findall(r"static const struct (io_uring_restriction|io_uring_task_restriction|sock_filter|"
                       r"io_uring_bpf) (\w+)(?:\[\])? =", source)
    items: list[_Item] = []
    want: list[tuple[str, bytes]] = []
    for variant in plan.variants:
        for reg in variant.registrations:
            if reg.kind == "restrictions":
                if reg.records:
                    want.append(("io_uring_restriction", b"".join(r.pack() for r in reg.records)))
                if plan.target == "task":
                    want.append(("io_uring_task_restriction", TaskRestrictionHeader(len(reg.records)).pack()))
            elif reg.kind == "filter":
                assert reg.filter is not None
                want.append(("sock_filter", reg.filter.program))
                want.append(("io_uring_bpf", reg.filter.pack(0)))
    assert [kind for kind, _ in found] == [kind for kind, _ in want], (found, [k for k, _ in want])
    for (_, symbol), (_, data) in zip(found, want, strict=True):
        items.append(_Item(symbol, data))
    return items


def variant_prefixes(source: str) -> list[str]:
    return re.findall(r"static inline int (\w+)_apply\(", source)


def _name_asserts() -> str:
    """Every header name the exporter may use has the value ringfence gives it."""
    consts = [c for c in (*(names.sqe_op(op) for op in SqeOp), *(names.register_op(op) for op in RegisterOp),
                          *(names.restriction_type(t) for t in RestrictionOp if t != RestrictionOp.LAST))
              if c is not None]
    consts += names.sqe_flags(SQE_VALID_FLAGS) or []
    consts += names.filter_flags(3) or []
    consts += [names.CMD_FILTER, names.REGISTER_RESTRICTIONS, names.REGISTER_ENABLE_RINGS, names.REGISTER_BPF_FILTER]
    assert len(names.sqe_flags(SQE_VALID_FLAGS) or []) == len(SqeFlag)
    lines = [f'_Static_assert({c.name} == {c.value}, "{c.name}");' for c in consts]
    lines += [f'_Static_assert(({expr}) == {value}, "{expr}");' for expr, value in names.BPF_NAMES.items()]
    return "\n".join(lines) + "\n"


def check_program(plan: Plan, source: str, header: str, headers: Headers, *, all_names: bool) -> str:
    """The C test program for ``source`` (saved as ``header``)."""
    items = exported_items(plan, source)
    prefixes = variant_prefixes(source)
    assert len(prefixes) == len(plan.variants)
    own = "#ifndef" if headers.own_declarations else "#ifdef"
    out = ["#include <liburing.h>\n" if headers.liburing else "", f'#include "{header}"\n',
           "#include <stdio.h>\n#include <string.h>\n#include <sys/syscall.h>\n#include <sys/wait.h>\n"
           "#include <unistd.h>\n\n",
           f"{own} RINGFENCE_DECLARED_7_0\n#error \"{headers.name}: unexpected choice of declarations\"\n#endif\n\n",
           cdecl.declarations(cdecl.ALL, CHECK_PREFIX), "\n", cdecl.comparison_asserts(cdecl.ALL, CHECK_PREFIX),
           _name_asserts() if all_names else "", "\nstatic int failures;\n\n"]
    for i, item in enumerate(items):
        out.append(f"static const unsigned char want_{i}[] = {_c_bytes(item.want)};\n")
    out.append("""
static inline void same(const char *what, const void *got, size_t got_size, const unsigned char *want, size_t want_size)
{
	if (got_size != want_size || memcmp(got, want, want_size) != 0) {
		printf("MISMATCH %s\\n", what);
		failures++;
	}
}

static inline int disabled_ring(void)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_R_DISABLED;
	return (int)syscall(__NR_io_uring_setup, 8, &p);
}

""")
    for prefix, variant in zip(prefixes, plan.variants, strict=True):
        call = f"{prefix}_apply(&step)" if plan.target == "task" else f"{prefix}_apply(disabled_ring(), &step)"
        out.append(f"""static void run_{prefix}(void)
{{
	int status = 0, step = -2, ret;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {{
		ret = {call};
		printf("{variant.mechanism} %d %d %s\\n", ret, step, {prefix}_step_name(step));
		fflush(stdout);
		_exit(0);
	}}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {{
		printf("CHILD FAILED {variant.mechanism}\\n");
		failures++;
	}}
}}

""")
    out.append("int main(void)\n{\n")
    for i, item in enumerate(items):
        size = f"sizeof({item.symbol})"
        if item.symbol.endswith("_task_header"):
            size = "sizeof(struct io_uring_task_restriction)"
        out.append(f'\tsame("{item.symbol}", &{item.symbol}, {size}, want_{i}, sizeof(want_{i}));\n'
                   if item.want else f'\tsame("{item.symbol}", &{item.symbol}, {size}, want_{i}, 0);\n')
    out += [f"\trun_{prefix}();\n" for prefix in prefixes]
    out.append("\treturn failures ? 1 : 0;\n}\n")
    return "".join(out)


def run(binary: Path) -> list[tuple[str, int, int, str]]:
    """The test program's verdicts: ``(variant, ret, step, step name)`` per variant; fails on any mismatch."""
    proc = subprocess.run([str(binary)], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = []
    for line in proc.stdout.splitlines():
        mechanism, ret, step, name = line.split(" ", 3)
        rows.append((mechanism, int(ret), int(step), name))
    return rows


# -- the reference: the same calls through ringfence.live ----------------------------------------------------------


def _live_steps(target: str, variant: Variant) -> list[int]:
    """Apply ``variant`` the way the exported function does, through ringfence.live: ``[ret, failed step]``."""
    step = 0
    ring_fd = -1
    if target == "task":
        try:
            _sys.set_no_new_privs()
        except OSError as exc:
            return [-(exc.errno or 0), 0]
        step = 1
    else:
        ring_fd = Ring.setup(8, SetupFlag.R_DISABLED).fd  # the child exits soon: never closed
    for reg in variant.registrations:
        if reg.kind == "restrictions":
            ret = register_task_restrictions(reg.records) if target == "task" else \
                register_restrictions(ring_fd, reg.records)
        elif reg.kind == "filter":
            ret, _ = register_bpf_filter(-1 if target == "task" else ring_fd, reg.filter)
        else:
            ret = _sys.register_raw(ring_fd, RegisterOp.ENABLE_RINGS, 0, 0)
        if ret < 0:
            return [ret, step]
        step += 1
    return [0, -1]


def live_outcomes(plan: Plan) -> list[tuple[str, int, int]]:
    """What ringfence.live gets on this kernel for each variant, each applied in a fresh child."""
    out = []
    for variant in plan.variants:
        ret, step = run_in_child(lambda v=variant: _live_steps(plan.target, v))
        out.append((variant.mechanism, ret, step))
    return out
