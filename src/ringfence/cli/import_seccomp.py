"""``ringfence import-seccomp``: a container's seccomp profile to the io_uring policy that keeps its intent."""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
from pathlib import Path
from typing import Final

from ringfence.cli.common import EXIT_OK, add_json, print_json, usage

NAME: Final = "import-seccomp"
SUMMARY: Final = "write the io_uring policy that keeps a Docker/OCI seccomp profile's intent"
EPILOG: Final = """A seccomp profile does not see io_uring requests: they do what system calls do without making them.
The policy allows an opcode only where the profile lets every system call it stands for through (SOCKET:
socket; OPENAT: openat; SEND: sendto; ...), with the profile's rules on socket's and openat's arguments carried
over as tests on the filter context. The profile is first resolved for one container: its `includes` and
`excludes` by capability (--caps) and architecture (--arch). Overlapping rules resolve to the most restrictive
action. What cannot be carried over (errno values: a denied request always fails with EACCES; rules on
arguments a filter cannot see; ...) is listed in the policy file's header and printed. --emit-profile writes
the profile with the io_uring system calls allowed: that profile for the container, and this policy applied by
`ringfence run` as its entrypoint, let it use io_uring without losing a guarantee the profile gave.
The method is in docs/import-seccomp.md.

examples:
  ringfence import-seccomp seccomp.json -o io_uring.toml      (Debian: golang-github-containers-common's profile)
  ringfence import-seccomp seccomp.json -o io_uring.toml --emit-profile seccomp-io_uring.json
  ringfence import-seccomp default.json --caps docker --arch amd64 --name web -o web.toml
  ringfence import-seccomp profile.json --caps podman,CAP_NET_RAW --json | jq .notes
  ringfence import-seccomp profile.json > policy.toml && ringfence verify policy.toml

capabilities (--caps): CAP_* names (the prefix is optional) and presets, joined with commas:
  podman  the capabilities Podman grants by default (Docker grants these and AUDIT_WRITE, MKNOD, NET_RAW)
  docker  the capabilities Docker grants by default
  none, all

exit codes:
  0  the policy was written
  2  usage error, or the profile cannot be read (missing, a directory, a FIFO), or an output cannot be written
  3  the profile is not a valid seccomp profile (file:line:col)
"""


def _default_arch() -> str:
    from ringfence.policy.seccomp_profile import MACHINE_ARCH

    return MACHINE_ARCH.get(platform.machine(), platform.machine())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile", metavar="PROFILE", help="a seccomp profile (JSON), or - for standard input")
    parser.add_argument("-o", "--output", metavar="POLICY",
                        help="write the policy (TOML) here instead of standard output")
    parser.add_argument("--emit-profile", metavar="OUT", help="also write the profile with the io_uring system "
                        "calls allowed (JSON)")
    parser.add_argument("--caps", default="podman", metavar="CAPS",
                        help="the container's capabilities, for includes/excludes (default podman)")
    parser.add_argument("--arch", metavar="ARCH", help="the container's architecture as profiles name it "
                        "(amd64, arm64, x32, ...; default this machine's)")
    parser.add_argument("--name", help="the policy's name (default the profile's file name without .json)")
    add_json(parser, '"policy": ..., "opcodes": [...], "notes": [...]')


def _unwritable(path: str) -> str | None:
    if Path(path).is_dir():
        return f"cannot write {path}: it is a directory"
    parent = Path(path).parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        return f"cannot write {path}: {parent} is not a writable directory"
    return None


def _write(path: str, text: str) -> str | None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


def run(args: argparse.Namespace) -> int:
    from ringfence.policy.seccomp_import import emit_profile, import_profile
    from ringfence.policy.seccomp_profile import ARCHES, load, parse_caps, resolve

    command = f"ringfence {NAME}"
    try:
        caps = parse_caps(args.caps)
    except ValueError as exc:
        return usage(command, f"--caps: {exc}", as_json=args.json)
    arch = args.arch or _default_arch()
    if arch not in ARCHES:
        return usage(command, f"--arch: unknown architecture {arch!r}; one of {', '.join(ARCHES)}",
                     as_json=args.json)
    profile = load(args.profile)
    stem = "stdin" if args.profile == "-" else Path(args.profile).stem
    name = args.name or re.sub(r"[^0-9A-Za-z._-]+", "-", stem).strip("-") or "seccomp"
    resolved = resolve(profile, caps, arch)
    imported = import_profile(resolved, name=name)
    outputs = [(path, text) for path, text in ((args.output, imported.text),
               (args.emit_profile, emit_profile(resolved) if args.emit_profile else "")) if path]
    for path, _text in outputs:  # both checked before either is written: nothing half-written
        problem = _unwritable(path)
        if problem:
            return usage(command, problem, as_json=args.json)
    for path, text in outputs:
        problem = _write(path, text)
        if problem:
            return usage(command, problem, as_json=args.json)
    if args.json:
        document: dict[str, object] = {
            "profile": {"file": profile.name, "sha256": profile.sha256, "default": str(profile.default)},
            "caps": list(caps), "arch": arch, "policy": {"name": name, "file": args.output},
            "counts": imported.counts(), "opcodes": [d.to_json() for d in imported.decisions],
            "notes": [n.to_json() for n in imported.notes],
            "skipped": [{"where": str(s.entry.pos), "names": list(s.entry.names), "why": s.why}
                        for s in resolved.skipped],
            "emitted_profile": args.emit_profile}
        if not args.output:
            document["policy"] = {"name": name, "file": None, "text": imported.text}
        print_json(document)
        return EXIT_OK
    counts = imported.counts()
    summary = [f"{profile.name}: {counts['allowed']} opcodes allowed, {counts['conditional']} allowed under rules "
               f"on their context, {counts['denied']} denied (capabilities: {args.caps}; arch: {arch})"]
    summary += ["not carried over, or carried over differently:"] + [f"  - [{n.kind}] {n.render()}"
                                                                     for n in imported.notes]
    if args.output:
        summary.append(f"policy written to {args.output}")
    if args.emit_profile:
        summary.append(f"profile with io_uring allowed written to {args.emit_profile}")
    if args.output:
        print("\n".join(summary))
    else:
        sys.stdout.write(imported.text)
        print("\n".join(summary), file=sys.stderr)
    return EXIT_OK


__all__ = ["EPILOG", "NAME", "SUMMARY", "add_arguments", "run"]
