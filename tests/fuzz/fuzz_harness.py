"""The fuzz harness: entry points, their inputs, bounds, modes and crash corpus (see ``README.md``).

An :class:`Entry` is a function from bytes to nothing that may raise only its documented, typed errors
(``allowed``) on bad input. ``test_fuzz.py`` runs every registered entry over hypothesis-generated inputs
and replays every file of ``corpus/<name>/``. Anything else is a failure: another exception (a
traceback a user would see), more than ``seconds`` of wall time for one input, or more than ``memory``
bytes of new address space. To fuzz another entry point, add a module ``entries_<area>.py`` here that
calls :func:`register`; it is imported automatically.
"""

from __future__ import annotations

import hashlib
import os
import random
import resource
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Final

from hypothesis import strategies as st

CORPUS: Final = Path(__file__).resolve().parent / "corpus"

#: ``RINGFENCE_FUZZ=long`` runs many more examples, randomly seeded, and saves crashes to the corpus;
#: ``RINGFENCE_FUZZ_EXAMPLES=N`` sets the count per entry in either mode.
LONG: Final = os.environ.get("RINGFENCE_FUZZ") == "long"
SAVE: Final = LONG or os.environ.get("RINGFENCE_FUZZ_SAVE") == "1"
LONG_EXAMPLES: Final = 20_000


class FuzzTimeout(BaseException):
    """One input ran past its time bound (a BaseException, so no ``except Exception`` swallows it)."""


class FuzzError(AssertionError):
    """An entry point misbehaved on one input."""


@dataclass(frozen=True)
class Entry:
    """One fuzzed entry point. ``run`` takes the raw input; ``allowed`` are the errors it documents."""

    name: str
    run: Callable[[bytes], object]
    inputs: st.SearchStrategy[bytes]
    allowed: tuple[type[BaseException], ...] = ()
    examples: int = 200          # per CI run
    seconds: float = 2.0         # per input
    memory: int = 512 * 2**20    # new address space per input

    @property
    def corpus(self) -> Path:
        return CORPUS / self.name

    def corpus_files(self) -> list[Path]:
        return sorted(p for p in self.corpus.glob("*") if p.is_file() and p.name != "README.md")

    def save(self, data: bytes) -> Path:
        """Keep a crashing input for ever (``corpus/<name>/crash-<hash>``)."""
        self.corpus.mkdir(parents=True, exist_ok=True)
        path = self.corpus / f"crash-{hashlib.sha256(data).hexdigest()[:16]}"
        path.write_bytes(data)
        return path


ENTRIES: dict[str, Entry] = {}


def register(entry: Entry) -> Entry:
    if entry.name in ENTRIES:
        raise ValueError(f"fuzz entry {entry.name!r} registered twice")
    ENTRIES[entry.name] = entry
    return entry


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


@contextmanager
def bounded(seconds: float, memory: int) -> Iterator[None]:
    """Run the body with a wall-clock alarm and an address-space limit; both restored afterwards."""
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise FuzzTimeout(f"more than {seconds} s")

    old_handler = signal.signal(signal.SIGALRM, alarm)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + memory
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_one(entry: Entry, data: bytes) -> None:
    """Run ``entry`` on ``data``; raises :class:`FuzzError` on anything but its allowed errors."""
    try:
        with bounded(entry.seconds, entry.memory):
            entry.run(data)
    except entry.allowed:
        return
    except FuzzTimeout as exc:
        raise FuzzError(f"{entry.name}: hang ({exc}) on {data[:200]!r}") from None
    except MemoryError:
        raise FuzzError(f"{entry.name}: memory blow-up on {data[:200]!r}") from None
    except Exception as exc:
        raise FuzzError(f"{entry.name}: {type(exc).__name__}: {exc} on {data[:200]!r}") from exc


def mutate(data: bytes, r: random.Random, edits: int, tokens: Sequence[bytes]) -> bytes:
    """Random edits (the loader fuzzers' text mutator): bytes or ``tokens`` inserted, deleted or replaced,
    slices repeated, lines swapped."""
    for _ in range(edits):
        at = r.randrange(len(data) + 1)
        kind = r.randrange(5)
        if kind == 0:
            data = data[:at] + r.choice(tokens) + data[at:]
        elif kind == 1:
            data = data[:at] + data[at + r.randint(1, 16):]
        elif kind == 2:
            data = data[:at] + bytes([r.randrange(256)]) + data[at + 1:]
        elif kind == 3:
            end = min(len(data), at + r.randint(1, 200))
            data = data[:end] + data[at:end] * r.randint(1, 3) + data[end:]
        else:
            lines = data.split(b"\n")
            i, j = r.randrange(len(lines)), r.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
    return data
