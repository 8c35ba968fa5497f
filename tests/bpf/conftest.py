"""Shared fixtures for the cBPF toolchain tests: the program corpus."""

from __future__ import annotations

import pytest
from bpf_helpers import CORPUS, corpus_program

from ringfence.bpf import CheckedProgram, check


@pytest.fixture(scope="session")
def corpus() -> dict[str, CheckedProgram]:
    """Every ``.asm`` of the corpus, checked, by name without the ``liburing_`` prefix."""
    return {p.stem.removeprefix("liburing_"): check(corpus_program(p.stem)) for p in sorted(CORPUS.glob("*.asm"))}
