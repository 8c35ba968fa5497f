"""Helper functions usable in operands; the names (context fields, constants) come from the target.

Context loads see native-endian words (spec §7.7; ringfence models little-endian x86-64), so the
network-order helpers return the value a ``ld`` of that field yields: ``htons(22)`` is 0x1600 and
``ip4("127.0.0.1")`` is 0x0100007f.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from ringfence.bpf.target import IOURING

#: io_uring's constant and field names (kept for callers of the earlier module-level tables).
CONSTANTS: Final[Mapping[str, int]] = IOURING.constants
FIELDS: Final[Mapping[str, int]] = IOURING.fields


def _le_word(data: bytes) -> int:
    return int.from_bytes(data, "little")


def htons(port: int | str) -> int:
    """The port word's value for a port in host order: the two network-order bytes read as LE."""
    if not isinstance(port, int) or not 0 <= port <= 0xFFFF:
        raise ValueError("htons() takes a port number 0..65535")
    return _le_word(port.to_bytes(2, "big"))


def ip4(address: int | str) -> int:
    """An IPv4 address (or mask) as the LE word a load of ``connect.v4_addr`` yields."""
    if not isinstance(address, str):
        raise ValueError('ip4() takes a quoted address: ip4("127.0.0.1")')
    return _le_word(ipaddress.IPv4Address(address).packed)


def ip6(address: int | str, word: int | str = 0) -> int:
    """Word 0..3 of an IPv6 address (or mask) as a load of ``connect.v6_addr.N`` yields it."""
    if not isinstance(address, str) or not isinstance(word, int) or not 0 <= word <= 3:
        raise ValueError('ip6() takes a quoted address and a word 0..3: ip6("2001:db8::1", 0)')
    return _le_word(ipaddress.IPv6Address(address).packed[4 * word:4 * word + 4])


FUNCTIONS: Final[Mapping[str, Callable[..., int]]] = MappingProxyType({
    "htons": htons, "ip4": ip4, "inet4": ip4, "ip6": ip6, "inet6": ip6,
})
