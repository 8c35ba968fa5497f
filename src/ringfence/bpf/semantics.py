"""The few run-time facts that the interpreter and the compiled fast path must share (spec §5.6).

Anything here that is [UNCONFIRMED] is one name, so a real-kernel result changes one line.
"""

from __future__ import annotations

import struct
from typing import Final

from ringfence.abi.layout import BPF_CTX_SIZE

#: Registers and scratch words are unsigned 32-bit; arithmetic wraps.
U32: Final = 0xFFFFFFFF

#: The context is read as ten native-endian words; ringfence models little-endian x86-64 (§7.7).
CTX_WORDS: Final = struct.Struct("<10I")
assert CTX_WORDS.size == BPF_CTX_SIZE

#: [UNCONFIRMED, spec §5.6 / §10.2 q7] A shift by ``X`` uses the low 5 bits of ``X`` (x86-64 and arm64
#: JITs, the generic interpreter). Constant shifts >= 32 never get here: the checker refuses them.
X_SHIFT_MASK: Final = 31


def shift_amount(x: int) -> int:
    """How far ``lsh x`` / ``rsh x`` shift for a given ``X``."""
    return x & X_SHIFT_MASK


#: What ``DIV x`` (and ``MOD x``) with ``X == 0`` returns: the program ends with 0, a denial (§5.6).
DIV_BY_ZERO_RESULT: Final = 0
