"""The assembler: scanner (tokens with positions) -> parser (statements) -> assemble (labels, codes)."""

from ringfence.bpf.asm.assemble import assemble

__all__ = ["assemble"]
