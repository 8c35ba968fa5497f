"""The program corpus: liburing's filters in our assembler, their golden listings, and ``all_codes``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from bpf_helpers import CORPUS, corpus_program

from ringfence.bpf import Program, assemble, diagnose, disassemble


def _regen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("corpus_regen", CORPUS / "regen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GOLDEN: dict[Path, bytes] = _regen().golden()

#: The instruction arrays of liburing's test/cbpf_filter.c (27255f4c), as (code, jt, jf, k), for a
#: little-endian host. Written out independently of the .asm sources, which must assemble to them.
LIBURING = {
    "deny_nop": [(0x06, 0, 0, 0)],
    "allow_all": [(0x06, 0, 0, 1)],
    "allow_inet_only": [(0x20, 0, 0, 16), (0x15, 0, 1, 2), (0x06, 0, 0, 1), (0x06, 0, 0, 0)],
    "allow_tcp_only": [(0x20, 0, 0, 20), (0x54, 0, 0, 0xF), (0x15, 0, 1, 1), (0x06, 0, 0, 1), (0x06, 0, 0, 0)],
    "deny_openat_creat": [(0x20, 0, 0, 16), (0x54, 0, 0, 0o100), (0x15, 1, 0, 0), (0x06, 0, 0, 0), (0x06, 0, 0, 1)],
    "deny_openat2_resolve_in_root": [(0x20, 0, 0, 32), (0x54, 0, 0, 0x10), (0x15, 1, 0, 0), (0x06, 0, 0, 0),
                                     (0x06, 0, 0, 1)],
    "connect_allow_family": [(0x20, 0, 0, 16), (0x15, 0, 1, 2), (0x06, 0, 0, 1), (0x06, 0, 0, 0)],
    "connect_deny_family": [(0x20, 0, 0, 16), (0x15, 1, 0, 1), (0x06, 0, 0, 1), (0x06, 0, 0, 0)],
    "connect_deny_v4_addr": [(0x20, 0, 0, 16), (0x15, 0, 2, 2), (0x20, 0, 0, 24), (0x15, 1, 0, 0x7F00007F),
                             (0x06, 0, 0, 1), (0x06, 0, 0, 0)],
    "connect_deny_port": [(0x20, 0, 0, 16), (0x15, 0, 3, 2), (0x20, 0, 0, 20), (0x15, 0, 1, 0x1600),
                          (0x06, 0, 0, 0), (0x06, 0, 0, 1)],
    "connect_deny_inet": [(0x20, 0, 0, 16), (0x15, 0, 1, 2), (0x06, 0, 0, 0), (0x06, 0, 0, 1)],
    "connect_allow_v4_addr": [(0x20, 0, 0, 16), (0x15, 0, 3, 2), (0x20, 0, 0, 24), (0x15, 0, 1, 0x0100007F),
                              (0x06, 0, 0, 1), (0x06, 0, 0, 0)],
    "connect_deny_v6_addr": [(0x20, 0, 0, 16), (0x15, 0, 8, 10), (0x20, 0, 0, 24), (0x15, 0, 6, 0xB80D0120),
                             (0x20, 0, 0, 28), (0x15, 0, 4, 0), (0x20, 0, 0, 32), (0x15, 0, 2, 0),
                             (0x20, 0, 0, 36), (0x15, 1, 0, 0xADDE0000), (0x06, 0, 0, 1), (0x06, 0, 0, 0)],
    "connect_allow_v6_addr": [(0x20, 0, 0, 16), (0x15, 0, 9, 10), (0x20, 0, 0, 24), (0x15, 0, 7, 0),
                              (0x20, 0, 0, 28), (0x15, 0, 5, 0), (0x20, 0, 0, 32), (0x15, 0, 3, 0),
                              (0x20, 0, 0, 36), (0x15, 0, 1, 0x01000000), (0x06, 0, 0, 1), (0x06, 0, 0, 0)],
    "connect_allow_port": [(0x20, 0, 0, 16), (0x15, 0, 3, 2), (0x20, 0, 0, 20), (0x15, 0, 1, 0x5000),
                           (0x06, 0, 0, 1), (0x06, 0, 0, 0)],
    "connect_deny_v4_subnet": [(0x20, 0, 0, 16), (0x15, 0, 3, 2), (0x20, 0, 0, 24), (0x54, 0, 0, 0x00FFFFFF),
                               (0x15, 1, 0, 0x00002A7F), (0x06, 0, 0, 1), (0x06, 0, 0, 0)],
    "connect_allow_v4_subnet": [(0x20, 0, 0, 16), (0x15, 0, 4, 2), (0x20, 0, 0, 24), (0x54, 0, 0, 0x00FFFFFF),
                                (0x15, 0, 1, 0x0000007F), (0x06, 0, 0, 1), (0x06, 0, 0, 0)],
    "connect_deny_v6_subnet": [(0x20, 0, 0, 16), (0x15, 0, 2, 10), (0x20, 0, 0, 24), (0x15, 1, 0, 0xB80D0120),
                               (0x06, 0, 0, 1), (0x06, 0, 0, 0)],
    "connect_allow_v6_subnet": [(0x20, 0, 0, 16), (0x15, 0, 4, 10), (0x20, 0, 0, 24), (0x54, 0, 0, 0x0000FFFF),
                                (0x15, 0, 1, 0x000080FE), (0x06, 0, 0, 1), (0x06, 0, 0, 0)],
}


@pytest.mark.parametrize("name", sorted(LIBURING))
def test_corpus_matches_liburing(name: str) -> None:
    assert corpus_program(f"liburing_{name}") == Program.of(*LIBURING[name])


def test_corpus_is_complete() -> None:
    assert {p.stem.removeprefix("liburing_") for p in CORPUS.glob("liburing_*.asm")} == set(LIBURING)


@pytest.mark.parametrize("path", sorted(GOLDEN), ids=lambda p: p.name)
def test_golden_files(path: Path) -> None:
    """Byte for byte; on a deliberate change run ``tests/corpus/programs/regen.py`` and review the diff."""
    assert path.exists(), f"{path.name} missing: run tests/corpus/programs/regen.py"
    assert path.read_bytes() == GOLDEN[path]


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.asm")), ids=lambda p: p.name)
def test_corpus_sources(path: Path) -> None:
    program = assemble(path.read_text(), filename=path.name)
    assert diagnose(program) == ()
    assert path.read_text().startswith(f"; {path.stem}:"), "each source starts with a provenance header"
    assert "origin:" in path.read_text()
    assert assemble(path.with_suffix(".txt").read_text()) == program


def test_all_codes() -> None:
    program = Program.from_bytes((CORPUS / "all_codes.bpf").read_bytes())
    assert [i.code for i in program] == list(range(256))
    assert assemble((CORPUS / "all_codes.txt").read_text()) == program
    assert assemble(disassemble(program, annotate=False)) == program
