"""``ringfence run``: put a command in an io_uring sandbox (a Plan, or a policy compiled on the spot), then exec it.

Kept light: the apply path imports only the standard library and the Plan format, lazily.
"""

from __future__ import annotations

import argparse
import errno
import sys
from typing import Final

from ringfence.cli.common import EXIT_USAGE, add_root

NAME: Final = "run"
SUMMARY: Final = "run a command under an io_uring sandbox (fail-closed)"
EPILOG: Final = """Order: checks (Plan vs this machine, io_uring available, no io_uring descriptors already open),
every registration tried on throwaway rings, no_new_privs, the registrations in the Plan's order, then exec.
If any step fails the command is never run. A task that is already sandboxed cannot take classic
restrictions again; with --mechanism auto (the default) the Plan's filters-only variant is used there.

examples:
  ringfence compile policy.toml -o policy.plan.json && ringfence run --plan policy.plan.json -- ./server
  ringfence run --policy examples/policies/web-client.toml -- curl http://127.0.0.1/
  ringfence run --policy corpus/policies/app.toml --root corpus -- ./app   (`include` may reach all of corpus/)
  ringfence run --plan p.json --dry-run -- true           show what would be applied
  ringfence run --plan p.json --fallback deny-io-uring -- ./app
                                                        on kernels before 7.0: io_uring fails with ENOSYS

exit codes:
  the command's own   when it ran
  2                   usage error, or the Plan or policy file cannot be read (missing, a directory, a FIFO)
  5                   this kernel cannot apply the sandbox (no per-task restrictions or filters), or io_uring
                      is unavailable here; the command was not run
  125                 ringfence failed before running the command (the message says which step and why; an
                      invalid policy is reported at its file:line:col)
  126                 the command could not be executed
  127                 the command was not found
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--plan", metavar="PLAN", help="a Plan made by `ringfence compile` (JSON)")
    source.add_argument("--policy", metavar="POLICY", help="a policy file, compiled on the spot for this kernel")
    parser.add_argument("--prove", action="store_true", help="with --policy: prove the compiled Plan first "
                        "(needs z3); without it the result is unproven")
    parser.add_argument("--mechanism", choices=("auto", "classic", "filters"), default="auto",
                        help="which variant of the Plan to apply (default auto: classic unless this task is "
                             "already sandboxed)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be applied, apply nothing")
    parser.add_argument("--close-inherited", action="store_true",
                        help="close io_uring descriptors this process inherited instead of refusing")
    parser.add_argument("--fallback", choices=("deny-io-uring",),
                        help="on kernels without io_uring sandboxing: make io_uring unavailable with seccomp")
    parser.add_argument("--fallback-errno", default="ENOSYS", metavar="NAME",
                        help="errno of the io_uring system calls under --fallback (default ENOSYS)")
    add_root(parser)
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                        help="the command to run, after --")


def _plan(args: argparse.Namespace) -> object:
    from ringfence.policy.plan import Plan, PlanError

    if args.plan:
        from ringfence.errors import InputError, UnreadableError
        from ringfence.inputs.read import PLAN_FILE, read_input

        try:  # a FIFO, a device or a huge file is refused, never waited on or read to the end
            text = read_input(args.plan, PLAN_FILE).text
        except UnreadableError as exc:
            raise SystemExit(_fail(str(exc), EXIT_USAGE)) from None
        except InputError as exc:
            raise SystemExit(_fail(str(exc), 125)) from None
        try:
            return Plan.loads(text)
        except PlanError as exc:
            raise SystemExit(_fail(f"{args.plan}: {exc}", 125)) from None
    import os

    from ringfence.abi.profiles import profile_for_release
    from ringfence.errors import RingfenceError, UnreadableError
    from ringfence.policy.compile import compile_policy
    from ringfence.policy.load import load

    if args.root is not None and not os.path.isdir(args.root):
        raise SystemExit(_fail(f"--root {args.root}: not a directory", EXIT_USAGE))
    try:
        policy = load(args.policy, root=args.root)
    except UnreadableError as exc:
        raise SystemExit(_fail(str(exc), EXIT_USAGE)) from None
    except RingfenceError as exc:
        raise SystemExit(_fail(str(exc), 125)) from None
    here = profile_for_release(os.uname().release)
    if here.version < policy.kernel or not here.task_restrictions:
        # This kernel cannot apply the policy at all: the same answer as for a Plan (exit 5, or the fallback).
        raise SystemExit(_unsupported(args, f"this kernel ({os.uname().release}) cannot apply the policy: "
                                            + ("it has no per-task io_uring restrictions (Linux 7.0 and later)"
                                               if not here.task_restrictions else
                                               f"the policy is written for kernels {policy.kernel_spec}")))
    try:
        compiled = compile_policy(policy, here)
        if args.prove:
            from ringfence.policy.prove import attach

            compiled = attach(compiled)
    except RingfenceError as exc:
        # The command's own exit codes pass through, so every failure of ringfence itself is 125.
        raise SystemExit(_fail(str(exc), 125)) from None
    if not args.prove:
        print("ringfence run: the policy was compiled on the spot and not proven (--prove proves it)",
              file=sys.stderr)
    return compiled.plan


def _unsupported(args: argparse.Namespace, why: str) -> int:
    """Exit 5, or with --fallback deny-io-uring the seccomp fallback (which execs the command)."""
    from ringfence.sandbox.run import Options, fallback_or_refuse

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return fallback_or_refuse(Options(args.mechanism, args.fallback, _errno(args) or 0, args.close_inherited,
                                      args.dry_run), why, command)


def _errno(args: argparse.Namespace) -> int | None:
    number = getattr(errno, args.fallback_errno, None) if not args.fallback_errno.isdigit() else \
        int(args.fallback_errno)
    return number if isinstance(number, int) and 1 <= number <= 4095 else None


def _fail(message: str, code: int) -> int:
    print(f"ringfence run: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    from ringfence.policy.plan import Plan
    from ringfence.sandbox.run import Options
    from ringfence.sandbox.run import run as run_sandboxed

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        return _fail("no command given (put it after --)", EXIT_USAGE)
    number = _errno(args)
    if number is None:
        return _fail(f"--fallback-errno {args.fallback_errno!r} is not an errno name or number", EXIT_USAGE)
    plan = _plan(args)
    assert isinstance(plan, Plan)
    options = Options(args.mechanism, args.fallback, number, args.close_inherited, args.dry_run)
    return run_sandboxed(plan, command, options)
