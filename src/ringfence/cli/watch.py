"""``ringfence watch``: report io_uring requests the kernel refused with EACCES, as they happen."""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
from typing import Final

from ringfence.cli.common import EXIT_OK, add_json, print_json, report, usage
from ringfence.errors import RingfenceError, UnsupportedError

NAME: Final = "watch"
SUMMARY: Final = "report io_uring requests refused with EACCES (complain, then enforce)"
EPILOG: Final = """Watches the io_uring:io_uring_req_failed tracepoint for requests that failed before issue with EACCES
(a classic restriction or a filter said no). Where the kernel builds a filter context for the request (a filter
ran) and its context builders can be probed, the arguments the filter saw are shown too. With a command, only
it and what it creates are watched, until it exits; without, the whole machine for --seconds. Needs root.

A complain-then-enforce workflow: learn a policy, run the workload under it while watching, add what the
denials show was legitimate (ringfence learn --merge, or by hand), then enforce.

examples:
  ringfence watch -- ringfence run --policy learned.toml -- ./server
  ringfence watch --seconds 60                        every denial on this machine for a minute
  ringfence watch --json -- ringfence run --policy p.toml -- ./app

exit codes:
  0  no request was refused
  1  at least one request was refused (each is reported)
  2  usage error
  126, 127  the command could not be executed, or was not found
  5  this machine cannot observe io_uring (no tracefs, not root, no io_uring tracepoints)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=0.0, metavar="S",
                        help="without a command: how long to watch (default: until interrupted)")
    add_json(parser, '"denied": [{"pid", "opcode", "flags", "request"}], "exit": N')
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                        help="the command to run and watch, after --")


def run(args: argparse.Namespace) -> int:
    from ringfence.learn.tracefs import session
    from ringfence.learn.watch import Watcher

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not 0 <= args.seconds <= 1e7:  # also refuses nan
        return usage(NAME, f"--seconds {args.seconds}: a duration from 0 (until interrupted) to 1e7",
                     as_json=args.json)
    if command and args.seconds:
        return usage(NAME, "--seconds is for watching the whole machine; a command is watched until it exits",
                     as_json=args.json)
    denied: list[dict[str, object]] = []
    watcher = Watcher()
    status = 0

    def feed(line: str) -> None:
        denial = watcher.feed(line)
        if denial is None:
            return
        denied.append(denial.to_json())
        if not args.json:
            print(f"denied: pid {denial.pid}: {denial.text} (EACCES)", flush=True)

    try:
        if os.geteuid() != 0:
            raise UnsupportedError("watching needs root: tracefs and the kernel's probes are root-only")
        from ringfence.learn import observe

        observe.stop_on_signals()
        with session(tracepoints=("io_uring_req_failed",), failed_filter="error == -13") as s, \
                open(s.pipe(), "rb") as pipe:
            fd = pipe.fileno()
            os.set_blocking(fd, False)
            buffer = ""

            def drain(wait: float) -> None:
                nonlocal buffer
                ready, _, _ = select.select([fd], [], [], wait)
                if not ready:
                    return
                try:
                    chunk = os.read(fd, 1 << 16).decode("utf-8", errors="replace")
                except BlockingIOError:
                    return
                buffer += chunk
                *lines, buffer = buffer.split("\n")
                for line in lines:
                    feed(line)

            if command:
                status = observe.run(command, s, observers=False, poll=drain, who="watch")
            else:
                s.start()
                end = time.monotonic() + args.seconds if args.seconds else float("inf")
                try:
                    while time.monotonic() < end:
                        drain(min(0.5, max(0.0, end - time.monotonic())))
                except KeyboardInterrupt:
                    pass
                s.stop()
            for _ in range(3):
                drain(0.1)
    except RingfenceError as exc:
        return report(NAME, exc, as_json=args.json)
    if args.json:
        print_json({"denied": denied, "exit": status})
    else:
        print(f"{NAME}: {len(denied)} request(s) refused with EACCES"
              + (f"; the command exited {status}" if command else ""), file=sys.stderr)
    if command and status in (126, 127):
        return status  # nothing was watched: a typo must not pass as "no request refused"
    return EXIT_OK if not denied else 1
