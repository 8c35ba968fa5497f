"""Helpers shared by the cBPF tests (a uniquely named module, importable from any test here)."""

from __future__ import annotations

from pathlib import Path

from ringfence.bpf import Program, assemble

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "programs"


def corpus_program(name: str) -> Program:
    """The assembled ``tests/corpus/programs/<name>.asm``."""
    path = CORPUS / f"{name}.asm"
    return assemble(path.read_text(), filename=path.name)
