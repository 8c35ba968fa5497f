"""What every subcommand shares: the exit-code table, the common options, and how errors are reported.

One table so that a script calling any ``ringfence`` command can rely on the same numbers; one error path so
that ``--json`` always prints an object with ``"schema"``, an error included.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Final

from ringfence.abi.profiles import DEFAULT_PROFILE, PROFILES
from ringfence.errors import (
    AsmError,
    CheckError,
    InputError,
    KernelError,
    RingfenceError,
    UnreadableError,
    UnsupportedError,
)

EXIT_OK: Final = 0
EXIT_NO: Final = 1           # the answer is "no": a denied request where allow was expected, a mismatch, a widening
EXIT_USAGE: Final = 2        # bad options, or a named input that cannot be read at all
EXIT_INVALID: Final = 3      # invalid input, reported with its position
EXIT_KERNEL: Final = 4       # the kernel refused (errno name printed)
EXIT_UNSUPPORTED: Final = 5  # not available on this kernel or machine
EXIT_ENVIRONMENT: Final = 6  # the machinery failed: the VM did not boot, a run timed out

EXIT_CODES_HELP: Final = """exit codes:
  0  success
  1  the answer is no (a denied request where allow was expected, a scenario that did not match)
  2  usage error, or an input that cannot be read at all (missing, a directory, a FIFO)
  3  invalid input (assembly, program check, scenario, policy), with its position
  4  the kernel refused (errno name printed)
  5  feature not supported by this kernel or machine
  6  the environment failed (the VM did not boot, a command timed out)
"""

#: The JSON documents every command prints carry this version; it changes when a field changes meaning.
SCHEMA: Final = 1


def add_kernel(parser: argparse.ArgumentParser, *, default: str | None = DEFAULT_PROFILE, what: str = "") -> None:
    """``--kernel``: the kernel profile a command reasons about (the model's, the compiler's target)."""
    shown = f"; default {default}" if default else ""
    parser.add_argument("--kernel", metavar="VER", default=default, choices=tuple(PROFILES),
                        help=(what or "kernel profile") + f" ({', '.join(PROFILES)}{shown})")


def add_json(parser: argparse.ArgumentParser, shape: str = "") -> None:
    """``--json``: one JSON object on standard output (errors too, as ``{"schema": 1, "error": {...}}``)."""
    parser.add_argument("--json", action="store_true",
                        help=f'print {{"schema": {SCHEMA}, {shape or "..."}}} instead of text')


def add_root(parser: argparse.ArgumentParser) -> None:
    """``--root``: the directory a policy's ``include`` files (and a scenario's referenced files) must lie in."""
    parser.add_argument("--root", metavar="DIR", default=None,
                        help="the directory files named by `include` must lie in (default: the nearest directory "
                             "above the policy holding a .ringfence-root file, else the policy's own directory)")


def check_root(root: str | None) -> None:
    """Refuse a ``--root`` that is not a directory (a usage error, exit 2), before anything is read."""
    import os

    if root is not None and not os.path.isdir(root):
        raise UnreadableError("--root must name a directory", file=root)


def print_json(document: dict[str, object]) -> None:
    """A JSON answer, schema first."""
    print(json.dumps({"schema": SCHEMA, **document}, indent=1, sort_keys=True))


def exit_code(error: BaseException) -> int:
    """The exit code a ringfence error stands for."""
    if isinstance(error, UnreadableError):
        return EXIT_USAGE
    if isinstance(error, InputError | AsmError | CheckError):
        return EXIT_INVALID
    if isinstance(error, KernelError):
        return EXIT_KERNEL
    if isinstance(error, UnsupportedError):
        return EXIT_UNSUPPORTED
    return EXIT_INVALID


def error_json(error: RingfenceError, code: int) -> dict[str, object]:
    """The ``"error"`` object: type, message, position when known, the errno name when the kernel said no."""
    if isinstance(error, InputError):
        body = error.to_json()
    else:
        body = {"type": type(error).__name__, "message": str(error)}
        if isinstance(error, AsmError):
            body.update(message=error.message, file=error.filename, line=error.line or None,
                        column=error.column or None)
    errno_name = error.name if isinstance(error, KernelError) else getattr(error, "errno_name", None)
    if errno_name:
        body["errno"] = errno_name
    return {**body, "exit": code}


def report(command: str, error: RingfenceError, *, as_json: bool, code: int | None = None) -> int:
    """Report ``error`` as ``command`` failing: one line on standard error, or the error object with ``--json``;
    returns the exit code."""
    code = exit_code(error) if code is None else code
    if as_json:
        print_json({"error": error_json(error, code)})
        return code
    if isinstance(error, InputError | AsmError | CheckError):
        print(error, file=sys.stderr)  # file:line:col first, as compilers print it, for editors to follow
        return code
    if isinstance(error, KernelError):
        text = f"kernel refused: {error}"
    elif isinstance(error, UnsupportedError):
        text = f"unsupported: {error}"
    else:
        text = str(error)
    print(f"{command}: {text}", file=sys.stderr)
    return code


def usage(command: str, message: str, *, as_json: bool = False) -> int:
    """A usage error found after parsing (argparse's own exit 2 covers the rest): one line, or with ``--json``
    the error object every command prints."""
    if as_json:
        print_json({"error": {"type": "UsageError", "message": message, "exit": EXIT_USAGE}})
    else:
        print(f"{command}: {message}", file=sys.stderr)
    return EXIT_USAGE
