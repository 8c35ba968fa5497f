"""``ringfence vm``: fetch Debian's 7.x kernels (by suite, series or release) and run commands inside them."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Final

from ringfence.abi.profiles import has_profile, profile_for_release
from ringfence.cli.common import EXIT_OK, EXIT_USAGE
from ringfence.vm import SUITES, KernelImage, VmError, cached_kernels, ensure_kernel, run_in_vm

NAME = "vm"
SUMMARY = "fetch Debian's 7.x kernels (sid, experimental) and run a command inside one under qemu"
EPILOG = f"""kernel selection (fetch and run):
  (nothing)                 the newest 7.x kernel of {SUITES[0]}
  --suite SUITE             the newest 7.x kernel of SUITE ({', '.join(SUITES)})
  --kernel 7.3              the newest 7.3.x release in any suite (with --suite: in that suite)
  --kernel 7.2.13+deb14-amd64
                            exactly that release (the -amd64 may be left off)

examples:
  ringfence vm fetch                      # download + install sid's newest 7.x kernel (cached afterwards)
  ringfence vm fetch --suite experimental
  ringfence vm list
  ringfence vm run --kernel 7.3 -- .venv/bin/python -c 'import os; print(os.uname().release)'
  ringfence vm run --timeout 600 --rwdir out -- sh -c 'uname -r > out/release'

The guest runs the command as root with the host's filesystem visible read-only (throw-away overlays on
/etc, /usr, /var, /tmp, ...); --rwdir directories are writable and shared with the host.
Environment: RINGFENCE_VM_KERNEL and RINGFENCE_VM_SUITE are defaults for --kernel and --suite,
RINGFENCE_CACHE moves the cache, RINGFENCE_VM_KVM=1 tries KVM.

exit codes:
  0  success (for `run`: otherwise the command's own exit code)
  2  usage error
  5  no kernel available, or a host tool is missing (run scripts/setup-vm.sh)
  6  the VM failed to boot or run the command (boot failure, timeout, crash)
"""
_SELECTION: Final = "kernel selection: --suite SUITE, --kernel SERIES (7.3) or --kernel RELEASE"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="vm_command", metavar="ACTION")
    fetch = sub.add_parser("fetch", help="download and install a kernel (no-op when cached)",
                           description="Find a generic 7.x kernel in Debian sid or experimental via the machine's own "
                                       "mirror, download (with a progress line on a terminal), check, extract and "
                                       "install it; print its release, suite, Debian version and paths.",
                           epilog=f"""examples:
  ringfence vm fetch                      sid's newest 7.x kernel
  ringfence vm fetch --suite experimental
  ringfence vm fetch --kernel 7.3 --json

{_SELECTION}""", formatter_class=argparse.RawDescriptionHelpFormatter)
    _selector_arguments(fetch)
    fetch.add_argument("--refresh", action="store_true", help="refresh the package lists even if recent")
    fetch.add_argument("--json", action="store_true", help="print a JSON object instead of text")

    run = sub.add_parser("run", help="run CMD inside the VM; exits with CMD's exit code",
                         description="Boot the kernel under qemu (TCG) and run CMD as root inside it. CMD's "
                                     "stdout/stderr are streamed; diagnostics go to stderr.",
                         epilog=f"""examples:
  ringfence vm run -- uname -r
  ringfence vm run --timeout 300 --kernel 7.3 -- .venv/bin/python -m pytest -q tests/guest
  ringfence vm run --rwdir out --env RINGFENCE_SEED=7 -- sh -c 'uname -r > out/release'

{_SELECTION}""", formatter_class=argparse.RawDescriptionHelpFormatter)
    _selector_arguments(run)
    run.add_argument("--timeout", type=float, default=1800.0, metavar="S", help="kill the VM after S seconds")
    run.add_argument("--memory", default="2G", metavar="M", help="guest memory (qemu -m syntax), default 2G")
    run.add_argument("--cpus", type=int, default=2, metavar="N", help="guest CPUs, default 2")
    run.add_argument("--rwdir", action="append", default=[], metavar="DIR",
                     help="host directory the guest may write to (repeatable)")
    run.add_argument("--cwd", metavar="DIR", help="working directory in the guest (default: the current one)")
    run.add_argument("--env", action="append", default=[], metavar="KEY=VAL", help="set a variable (repeatable)")
    run.add_argument("-q", "--quiet", action="store_true", help="no summary line on stderr")
    run.add_argument("cmd", nargs="+", metavar="CMD", help="the command and its arguments, after --")

    lst = sub.add_parser("list", help="list kernels already fetched and installed",
                         description="Installed kernels: release, the suite it came from, its Debian version, and the "
                                     "ringfence kernel profile it maps to (\"nearest\" when no profile was written "
                                     "for its version).",
                         epilog="examples:\n  ringfence vm list\n  ringfence vm list --json",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    lst.add_argument("--json", action="store_true", help="print a JSON array instead of text")


def _selector_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kernel", metavar="SEL",
                        help="a series (7.3: its newest release) or an exact release (7.2.13+deb14-amd64)")
    parser.add_argument("--suite", choices=SUITES, help=f"the Debian suite to take it from (default {SUITES[0]})")


def _describe(image: KernelImage) -> dict[str, str | bool | None]:
    prof = profile_for_release(image.version)
    return {"release": image.version, "suite": image.suite, "debian_version": image.debian_version,
            "profile": prof.name, "profile_exact": has_profile(image.version), "vmlinuz": str(image.vmlinuz),
            "modules_dir": str(image.modules_dir)}


def _table(rows: list[dict[str, str | bool | None]]) -> str:
    head = ("release", "suite", "debian version", "profile")
    body = [(str(r["release"]), str(r["suite"] or "?"), str(r["debian_version"] or "?"),
             str(r["profile"]) + ("" if r["profile_exact"] else " (nearest)")) for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in (head, *body))


def _run_command(args: argparse.Namespace) -> int:
    env: dict[str, str] = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"ringfence vm run: --env wants KEY=VALUE, got {item!r}", file=sys.stderr)
            return EXIT_USAGE
        env[key] = value
    kernel = ensure_kernel(args.kernel, suite=args.suite)
    try:
        result = run_in_vm(args.cmd, kernel=kernel, timeout=args.timeout, memory=args.memory, cpus=args.cpus,
                           rwdirs=args.rwdir, cwd=args.cwd, env=env, stream=True)
    except ValueError as exc:
        print(f"ringfence vm run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.quiet:
        print(f"ringfence vm: kernel {result.kernel_version}: exit {result.exit_code} "
              f"(booted in {result.boot_seconds:.1f} s, {result.duration:.1f} s in all)", file=sys.stderr)
    return result.exit_code


def run(args: argparse.Namespace) -> int:
    try:
        if args.vm_command == "fetch":
            info = _describe(ensure_kernel(args.kernel, suite=args.suite, refresh=args.refresh))
            if args.json:
                print(json.dumps(info))
            else:
                print(_table([info]))
                print(f"  vmlinuz:     {info['vmlinuz']}\n  modules_dir: {info['modules_dir']}")
            return EXIT_OK
        if args.vm_command == "list":
            images = [_describe(i) for i in cached_kernels()]
            if args.json:
                print(json.dumps(images))
            elif images:
                print(_table(images))
            else:
                print("no kernel installed yet: ringfence vm fetch [--suite SUITE | --kernel SEL]")
            return EXIT_OK
        if args.vm_command == "run":
            return _run_command(args)
    except VmError as exc:
        print(f"ringfence vm: {exc}", file=sys.stderr)
        return exc.exit_code
    print("ringfence vm: choose an action: fetch, run or list (see ringfence vm --help)", file=sys.stderr)
    return EXIT_USAGE
