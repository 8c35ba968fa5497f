"""Regenerate the golden files of this directory; review the diff before committing it.

    .venv/bin/python tests/corpus/programs/regen.py

* ``<name>.txt`` next to each ``<name>.asm``: the disassembly listing of the assembled program.
* ``all_codes.bpf``: every code 0x00..0xff once (jt = jf = k = 0), raw ``sock_filter`` bytes, in the
  spirit of seccomp-tools' ``all_inst.bpf``; ``all_codes.txt`` is its listing.

``tests/bpf/test_corpus.py`` compares every file byte for byte with what this script would write.
"""

from __future__ import annotations

from pathlib import Path

from ringfence.bpf import Instruction, Program, assemble, disassemble

HERE = Path(__file__).resolve().parent


def all_codes() -> Program:
    return Program(tuple(Instruction(code) for code in range(256)))


def golden() -> dict[Path, bytes]:
    """Every generated file and its expected content."""
    out: dict[Path, bytes] = {}
    for source in sorted(HERE.glob("*.asm")):
        program = assemble(source.read_text(), filename=source.name)
        out[source.with_suffix(".txt")] = disassemble(program).encode()
    out[HERE / "all_codes.bpf"] = all_codes().to_bytes()
    out[HERE / "all_codes.txt"] = disassemble(all_codes()).encode()
    return out


def main() -> None:
    for path, content in golden().items():
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
            print(f"wrote {path.relative_to(HERE.parents[2])}")


if __name__ == "__main__":
    main()
