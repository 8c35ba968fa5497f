"""``ringfence learn``: run a workload, watch what it submits through io_uring, write the policy that allows it."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from typing import Final

from ringfence.cli.common import EXIT_ENVIRONMENT, EXIT_NO, EXIT_OK, add_json, print_json, report, usage
from ringfence.errors import InputError, RingfenceError, UnsupportedError

NAME: Final = "learn"
SUMMARY: Final = "learn the policy a workload needs from what the kernel sees it submit"
EPILOG: Final = """The kernel is watched, not the program: the io_uring tracepoints give each request's opcode, flags
and result; on 7.x kernels with BTF argument access, probes on the kernel's filter-context builders give what a
filter would see (socket family/type/protocol, open flags/mode/resolve, connect family/address/port). Learning
installs allow-all observer filters on the workload first, since the kernel builds a context only for opcodes
that have a filter. Where the kernel offers only the tracepoints, opcodes and flags are learned and argument
predicates are left open: learn says so on standard error and in the policy. Needs root (tracefs).

The policy allows what was seen, generalised by rules the file lists in its comments (kernel-added flag bits
dropped, SOCK_CLOEXEC/O_CLOEXEC/O_LARGEFILE not pinned, an open allows a subset of the flags seen, user_data
never pinned, addresses widened only with --widen). Requests refused with EACCES while learning (under a
sandbox already in place) are listed as denials, never allowed.

examples:
  ringfence learn -o reader.toml -- .venv/bin/python examples/workloads/reader.py /etc/hostname
  ringfence learn --merge reader.toml -- .venv/bin/python examples/workloads/reader.py /etc/os-release
  ringfence learn --widen v4=/24 -o client.toml -- ./client 127.0.0.1 7000
  ringfence learn -o p.toml -- ringfence run --policy base.toml -- ./app     learn within a sandbox
  ringfence learn --from-trace run.trace -o p.toml       from a trace saved with --save-trace
  ringfence run --policy reader.toml -- .venv/bin/python examples/workloads/reader.py /etc/hostname

exit codes:
  0  the workload exited 0 and the policy was written
  1  the workload exited non-zero (the policy is still written: check that it did what it should)
  2  usage error, or a file that cannot be read or written
  3  --merge: the file is not a learned policy, or --from-trace: a trace line cannot be read
  5  this machine cannot observe io_uring (no tracefs, not root, no io_uring tracepoints)
  6  the trace lost events (its buffer overflowed): nothing is written; raise --buffer-kb
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write the policy here (default: standard output; "
                        "with --merge: the merged file)")
    parser.add_argument("--merge", metavar="POLICY", help="a policy written by an earlier `ringfence learn`: add "
                        "this run to what it learned")
    parser.add_argument("--widen", action="append", default=[], metavar="vN=/BITS",
                        help="widen CONNECT addresses to prefixes: v4=/24, v6=/64 (repeatable)")
    parser.add_argument("--name", help="the policy's name (default: learned-COMMAND)")
    parser.add_argument("--from-trace", metavar="FILE", help="learn from a trace saved by --save-trace instead "
                        "of running a command")
    parser.add_argument("--save-trace", metavar="FILE", help="also save the raw trace text (for --from-trace)")
    parser.add_argument("--buffer-kb", type=_buffer_kb, default=8192, metavar="KB",
                        help=f"trace buffer per CPU, {_BUFFER_KB[0]}..{_BUFFER_KB[1]} (default 8192)")
    add_json(parser, '"policy": TEXT, "mode": ..., "rules": [...], "denied": [...], "exit": N')
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                        help="the workload, after --")


_BUFFER_KB = (64, 1 << 20)


def _buffer_kb(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of KiB") from None
    if not _BUFFER_KB[0] <= value <= _BUFFER_KB[1]:
        raise argparse.ArgumentTypeError(f"{value} is outside {_BUFFER_KB[0]}..{_BUFFER_KB[1]} KiB")
    return value


def _read(name: str, what: str) -> str:
    """A trace or a learned policy, read like every other input: a regular file under a size cap, strict UTF-8
    (a FIFO, a device or a directory is refused, never waited on or read to the end)."""
    from ringfence.inputs.read import InputKind, read_input

    return read_input(name, InputKind(what, 256 << 20 if what == "trace" else 1 << 20)).text


def _unwritable(name: str | None) -> str | None:
    """Why ``name`` could not be written, found before the workload runs (so a run is not lost at the end)."""
    if not name:
        return None
    if os.path.isdir(name):
        return f"cannot write {name}: it is a directory"
    parent = os.path.dirname(name) or "."
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        return f"cannot write {name}: {parent} is not a writable directory"
    return None


def parse_widen(items: list[str]) -> dict[int, int]:
    out: dict[int, int] = {}
    for item in items:
        m = re.fullmatch(r"v([46])=/?(\d+)", item.strip())
        if m is None:
            raise ValueError(f"--widen {item!r}: write v4=/24 or v6=/64")
        version, bits = int(m[1]), int(m[2])
        if not 0 <= bits <= (32 if version == 4 else 128):
            raise ValueError(f"--widen {item!r}: an IPv{version} prefix is 0..{32 if version == 4 else 128} bits")
        out[version] = bits
    return out


def _observe(command: list[str], args: argparse.Namespace) -> tuple[str, str, int, list[str]]:
    """Run ``command`` observed; (trace text, mode, exit status, what could not be observed)."""
    from ringfence.learn import observe
    from ringfence.learn.tracefs import session

    if os.geteuid() != 0:
        raise UnsupportedError("learning needs root: tracefs and the kernel's probes are root-only")
    observers = observe.filters_supported()
    observe.stop_on_signals()
    with session(contexts=observers, buffer_kb=args.buffer_kb) as s:
        notes = [f"cannot probe the {kind} context builder: {why}" for kind, why in s.refused.items()]
        if not observers:
            notes.append("this kernel takes no io_uring filters, so it builds no filter contexts")
        if not observers or not {"socket", "open"} <= set(s.kinds):
            mode = "tracepoints"
        elif "connect" not in s.kinds:
            mode = "no-connect"
        else:
            mode = "full"
        status = observe.run(command, s, observers=observers)
        text = s.text()
        lost = s.lost()
    if lost:
        raise _LostError(lost)
    return text, mode, status, notes


class _LostError(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


_MODE_SAYS = {
    "full": "learned opcodes, flags and filter contexts (socket, open and connect arguments)",
    "no-connect": "learned opcodes, flags and socket/open arguments; this kernel builds no CONNECT context, so "
                  "CONNECT arguments are left open",
    "tracepoints": "this kernel offers only the io_uring tracepoints: learned opcodes and flags; argument "
                   "predicates (socket, open, connect) are left open",
}


def run(args: argparse.Namespace) -> int:
    from ringfence.learn.generalise import Options, generalise, read_previous, weaker
    from ringfence.learn.seen import shapes
    from ringfence.learn.trace import TraceError, parse

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if bool(command) == bool(args.from_trace):
        return usage(NAME, "give a command after -- or --from-trace FILE (one of them)", as_json=args.json)
    try:
        widen = parse_widen(args.widen)
    except ValueError as exc:
        return usage(NAME, str(exc), as_json=args.json)
    for target in (args.output or args.merge, args.save_trace):
        problem = _unwritable(target)
        if problem:
            return usage(NAME, problem, as_json=args.json)
    previous = None
    if args.merge:
        try:
            previous = read_previous(_read(args.merge, "learned policy"))
        except RingfenceError as exc:
            return report(NAME, exc, as_json=args.json)
        except ValueError as exc:
            return report(NAME, InputError(f"{args.merge}: {exc}"), as_json=args.json)
    notes: list[str] = []
    status = 0
    try:
        if args.from_trace:
            text = _read(args.from_trace, "trace")
            _check_trace(args.from_trace, text)
            mode = _mode_of_trace(text)
            command = _command_of_trace(text)
            what = " ".join(command) if command else f"(trace {os.path.basename(args.from_trace)})"
        else:
            text, mode, status, notes = _observe(command, args)
            what = " ".join(command)
        counts = shapes(parse(text.splitlines()))
    except TraceError as exc:
        return report(NAME, InputError(str(exc)), as_json=args.json)
    except _LostError as exc:
        print(f"{NAME}: the trace buffer overflowed ({exc.count} events lost): nothing written; raise --buffer-kb",
              file=sys.stderr)
        return EXIT_ENVIRONMENT
    except RingfenceError as exc:
        return report(NAME, exc, as_json=args.json)
    if args.save_trace:
        try:
            with open(args.save_trace, "w", encoding="utf-8") as f:
                f.write(f"{MODE_LINE}{mode}\n{COMMAND_LINE}{json.dumps(command)}\n{text}")
        except OSError as exc:
            return usage(NAME, f"cannot write {args.save_trace}: {exc.strerror}", as_json=args.json)
    runs = [what]
    if previous is not None:
        counts = previous.counts + counts if counts else Counter(previous.counts)
        mode = weaker(previous.mode, mode)
        runs = [*previous.runs, what]
        widen = widen or previous.widen
    base = _workload_name(command) if command else os.path.basename(args.from_trace).rsplit(".", 1)[0]
    name = args.name or f"learned-{re.sub(r'[^A-Za-z0-9_.-]+', '-', base) or 'workload'}"
    learned = generalise(counts, Options(name, widen, mode, tuple(runs)))
    output = args.output or args.merge
    if output:
        try:
            with open(output, "w", encoding="utf-8") as f:
                f.write(learned.text)
        except OSError as exc:
            return usage(NAME, f"cannot write {output}: {exc.strerror}", as_json=args.json)
    code = EXIT_OK if status == 0 else EXIT_NO
    if args.json:
        from ringfence.learn.generalise import describe

        print_json({"policy": learned.text, "mode": mode, "says": _MODE_SAYS[mode], "notes": notes,
                    "rules": list(learned.rules_used), "exit": status, "output": output,
                    "denied": [{"request": describe(s), "count": n} for s, n in learned.denied]})
        return code
    if not output:
        sys.stdout.write(learned.text)
    for note in notes:
        print(f"{NAME}: {note}", file=sys.stderr)
    print(f"{NAME}: {_MODE_SAYS[mode]}", file=sys.stderr)
    total = sum(counts.values())
    print(f"{NAME}: {total} request(s) seen, {len(learned.policy.rules)} rule(s)"
          + (f", {sum(n for _, n in learned.denied)} denied" if learned.denied else "")
          + (f"; written to {output}" if output else ""), file=sys.stderr)
    if status:
        print(f"{NAME}: the workload exited {status}", file=sys.stderr)
    return code


def _workload_name(command: list[str]) -> str:
    """The script a command runs (``reader`` for ``python3 reader.py``), else the program's name."""
    for arg in command:
        if arg.endswith((".py", ".sh")):
            return os.path.basename(arg).rsplit(".", 1)[0]
    return os.path.basename(command[0])


MODE_LINE: Final = "# ringfence learn: mode "
COMMAND_LINE: Final = "# ringfence learn: command "


def _command_of_trace(text: str) -> list[str]:
    for line in text.split("\n", 3)[:3]:
        if line.startswith(COMMAND_LINE):
            try:
                command = json.loads(line[len(COMMAND_LINE):])
            except ValueError:
                return []
            return [str(c) for c in command] if isinstance(command, list) else []
    return []


def _check_trace(name: str, text: str) -> None:
    """A trace is what --save-trace wrote (its mode line first) or raw tracefs text with io_uring events in it;
    anything else would silently learn an empty policy."""
    first = text.split("\n", 1)[0]
    if first.startswith(MODE_LINE):
        if first[len(MODE_LINE):].strip() not in _MODE_SAYS:
            raise InputError(f"{name}:1:1: unknown mode {first[len(MODE_LINE):].strip()!r}; one of "
                             f"{', '.join(_MODE_SAYS)}")
    elif "io_uring_" not in text and "rf_" not in text:
        raise InputError(f"{name}: no io_uring trace events in it (not a trace saved by --save-trace)")


def _mode_of_trace(text: str) -> str:
    """The mode --save-trace recorded; for a trace saved by other means, what its probe lines show."""
    first = text.split("\n", 1)[0]
    if first.startswith(MODE_LINE) and first[len(MODE_LINE):].strip() in _MODE_SAYS:
        return first[len(MODE_LINE):].strip()
    if "rf_socket:" in text or "rf_open:" in text or "rf_connect:" in text:
        return "full" if "rf_connect:" in text or " CONNECT," not in text else "no-connect"
    return "tracepoints"
