"""Downloading .deb files with apt, with a progress line and a hash check of what arrived.

apt does the transfer (``apt-get download``); before that, ``--print-uris`` tells each file's name, size
and SHA256, which gives the progress line its total and lets a cached or half-written file be checked
before it is unpacked. The progress line is drawn only on a terminal; otherwise one line at the start
and one at the end.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ringfence.vm.errors import VmUnavailableError

_URI_LINE = re.compile(r"^'(?P<uri>[^']+)'\s+(?P<name>\S+)\s+(?P<size>\d+)\s+(?P<hash>\S+)\s*$")
POLL_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class DebFile:
    """One file apt would download: where from, under which name, how big, and its SHA256."""

    uri: str
    name: str
    size: int
    sha256: str


def parse_print_uris(text: str) -> list[DebFile]:
    """The ``'URI' name size SHA256:hex`` lines of ``apt-get --print-uris download``."""
    files = []
    for line in text.splitlines():
        if not (m := _URI_LINE.match(line.strip())):
            continue
        algo, _, digest = m.group("hash").partition(":")
        if algo.upper() != "SHA256" or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            raise VmUnavailableError(f"apt gave no SHA256 for {m.group('name')}: {m.group('hash')}")
        files.append(DebFile(m.group("uri"), m.group("name"), int(m.group("size")), digest.lower()))
    return files


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verified(path: Path, deb: DebFile) -> bool:
    """Whether ``path`` holds exactly ``deb`` (size first: cheap, and catches half-written files)."""
    try:
        return path.stat().st_size == deb.size and sha256_of(path) == deb.sha256
    except OSError:
        return False


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


class Progress:
    """One status line on a terminal (``\\r``-redrawn, at most a few times a second); quiet otherwise."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label, self.total = label, total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._drawn = False

    def start(self) -> None:
        if not self.tty:
            print(f"ringfence.vm: downloading {self.label} ({_mb(self.total)})", file=self.stream, flush=True)

    def update(self, done: int) -> None:
        if not self.tty:
            return
        done = min(done, self.total)
        pct = 100 * done // self.total if self.total else 100
        rate = done / max(time.monotonic() - self.started, 1e-3)
        self.stream.write(f"\rringfence.vm: downloading {self.label}: {_mb(done)} of {_mb(self.total)} "
                          f"({pct}%, {rate / 1e6:.1f} MB/s)\x1b[K")
        self.stream.flush()
        self._drawn = True

    def finish(self, ok: bool) -> None:
        seconds = time.monotonic() - self.started
        if self._drawn:
            self.stream.write("\r\x1b[K")
        word = "downloaded" if ok else "download failed:"
        print(f"ringfence.vm: {word} {self.label} ({_mb(self.total)} in {seconds:.1f} s)", file=self.stream,
              flush=True)


def _arrived(dest: Path, files: Sequence[DebFile]) -> int:
    """Bytes on disk so far, counting apt's partial names too."""
    total = 0
    for f in files:
        for p in (dest / f.name, dest / (f.name + ".partial"), dest / "partial" / f.name):
            try:
                total += p.stat().st_size
                break
            except OSError:
                continue
    return total


def fetch(apt_argv: Sequence[str], packages: Sequence[str], files: Sequence[DebFile], dest: Path, *,
          label: str, progress: Callable[[str, int], Progress] = Progress) -> None:
    """Run ``apt_argv download PACKAGES`` in ``dest``, drawing progress, then check every file's size and hash."""
    dest.mkdir(parents=True, exist_ok=True)
    todo = [f for f in files if not verified(dest / f.name, f)]
    if not todo:
        return
    for f in todo:
        (dest / f.name).unlink(missing_ok=True)  # a stale or broken copy would be counted as progress
    bar = progress(label, sum(f.size for f in todo))
    bar.start()
    argv = [*apt_argv, "-q", "download", *packages]
    with open(dest / ".apt-download.log", "w+", encoding="utf-8") as log:
        proc = subprocess.Popen(argv, cwd=dest, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            bar.update(_arrived(dest, todo))
            time.sleep(POLL_SECONDS)
        log.seek(0)
        output = log.read()
    (dest / ".apt-download.log").unlink(missing_ok=True)
    bad = [f.name for f in todo if not verified(dest / f.name, f)]
    bar.finish(proc.returncode == 0 and not bad)
    if proc.returncode != 0:
        raise VmUnavailableError(f"{shlex.join(['apt-get', 'download', *packages])} failed "
                                 f"(exit {proc.returncode}):\n{output.strip()[-2000:]}")
    if bad:
        for name in bad:
            (dest / name).unlink(missing_ok=True)
        raise VmUnavailableError(f"downloaded files do not match apt's size or SHA256: {', '.join(bad)}")
