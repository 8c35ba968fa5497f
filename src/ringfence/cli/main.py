"""Entry point: builds the subcommand table and the top-level help from each module's ``SUMMARY``.

A subcommand module exports ``NAME``, ``SUMMARY``, ``add_arguments(parser)`` and ``run(args) -> int``.
Exit codes are one table (:mod:`ringfence.cli.common`), shown in ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Final

from ringfence import __version__
from ringfence.cli.common import EXIT_CODES_HELP, EXIT_OK, EXIT_USAGE, report
from ringfence.errors import RingfenceError

#: Subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS: Final = (
    "asm", "disasm", "check", "emu", "compile", "cost", "verify", "audit", "explain", "diff", "learn", "watch",
    "import_seccomp", "run", "scenario", "probe", "vm",
)


def _columns() -> int:
    """The terminal width by shutil.get_terminal_size's rule (COLUMNS, then stdout's terminal, then 80)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter without its own import of shutil (and the compression modules shutil loads): every
    ``add_argument`` builds a formatter, and ``ringfence run``'s start-up time counts. Same width rule."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"ringfence.cli.{name}")


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first argument that is not an option), if it is one we have."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            module = arg.replace("-", "_")  # `import-seccomp` lives in import_seccomp.py
            return module if module in SUBCOMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand (its module is the only one imported: start-up time
    matters for ``ringfence run``)."""
    parser = argparse.ArgumentParser(
        prog="ringfence",
        description="seccomp for io_uring: assemble, check and run cBPF filters, model the kernel's io_uring "
                    "restrictions, and compare the model with real kernels.",
        epilog=EXIT_CODES_HELP,
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"ringfence {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (only,) if only else SUBCOMMANDS:
        module = _load(name)
        p = sub.add_parser(module.NAME, help=module.SUMMARY, description=module.SUMMARY,
                           epilog=getattr(module, "EPILOG", None) or EXIT_CODES_HELP,
                           formatter_class=Formatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _name=module.NAME)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_chosen(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args._run(args))
    except RingfenceError as exc:
        return report(f"ringfence {args._name}", exc, as_json=bool(getattr(args, "json", False)))
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP where a command turns them into this
        print(f"ringfence {args._name}: interrupted{f' ({exc})' if str(exc) else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
