"""``ringfence probe``: what this kernel's io_uring sandboxing can do, measured."""

from __future__ import annotations

import argparse
import json

from ringfence.cli.common import EXIT_OK, EXIT_UNSUPPORTED
from ringfence.live.probe import probe, render

NAME = "probe"
SUMMARY = "measure this kernel's io_uring restriction and cBPF filter support"
EPILOG = """Everything irreversible (no_new_privs, task restrictions, task filters) is tried in forked children;
the calling process is never restricted. The report names the kernel profile this kernel matches and says
whether it matches exactly; every measured difference is listed as an adjustment (field, profile value,
measured value), e.g. "source_cow: profile False, measured True" for a backport of source-side copy-on-write.
A kernel newer than every profile is matched with the nearest older one, and the report says so.

examples:
  ringfence probe
  ringfence probe --json

exit codes:
  0  success
  5  io_uring is not available (disabled by sysctl, not built in, or not permitted)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help='print the report as JSON ("schema": 1; the profile match is under "match")')


def run(args: argparse.Namespace) -> int:
    report = probe()
    if args.json:
        print(json.dumps(report.to_json(), indent=1, sort_keys=True))
    else:
        print(render(report))
    return EXIT_OK if report.io_uring else EXIT_UNSUPPORTED
