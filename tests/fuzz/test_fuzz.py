"""Fuzz every registered entry point (``entries_*.py``) and replay the crash corpus.

Modes (see ``tests/fuzz/README.md``):

* default (CI): each entry runs its ``examples`` count, derandomized (the same inputs every run), about
  a minute in all on one core;
* ``RINGFENCE_FUZZ=long``: 20,000 random inputs per entry, and a failing input is saved to
  ``corpus/<entry>/crash-<hash>`` (the smallest one hypothesis found);
* ``RINGFENCE_FUZZ_EXAMPLES=N`` overrides the count; ``RINGFENCE_FUZZ_SAVE=1`` saves crashes in CI mode.

Select one entry with ``-k``: ``pytest tests/fuzz -k asm``.
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path

import pytest
from fuzz_harness import ENTRIES, LONG, LONG_EXAMPLES, SAVE, Entry, FuzzError, run_one
from hypothesis import HealthCheck, given, settings

for _module in sorted(Path(__file__).parent.glob("entries_*.py")):
    importlib.import_module(_module.stem)


def _examples(entry: Entry) -> int:
    override = os.environ.get("RINGFENCE_FUZZ_EXAMPLES")
    return int(override) if override else LONG_EXAMPLES if LONG else entry.examples


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_fuzz(name: str) -> None:
    entry = ENTRIES[name]
    failing: list[bytes] = []
    seen = [0]

    @settings(max_examples=_examples(entry), derandomize=not LONG, database=None if not LONG else settings().database,
              deadline=None, suppress_health_check=list(HealthCheck))
    @given(entry.inputs)
    def fuzz(data: bytes) -> None:
        seen[0] += 1
        try:
            run_one(entry, data)
        except FuzzError:
            failing.append(data)
            raise

    start = time.perf_counter()
    try:
        fuzz()
    finally:
        print(f"fuzz {name}: {seen[0]} inputs in {time.perf_counter() - start:.1f} s")
        if failing and SAVE:
            print(f"saved {entry.save(min(failing, key=len))}")


CORPUS = [(name, path) for name, entry in sorted(ENTRIES.items()) for path in entry.corpus_files()]


@pytest.mark.parametrize(("name", "path"), CORPUS, ids=[f"{n}/{p.name}" for n, p in CORPUS])
def test_crash_corpus(name: str, path: Path) -> None:
    """Every input that ever crashed an entry point, replayed."""
    run_one(ENTRIES[name], path.read_bytes())


def test_every_entry_has_a_corpus() -> None:
    assert {name for name, _ in CORPUS} >= {"asm", "emu", "files"}
