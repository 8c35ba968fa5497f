"""§7: what a filter sees, post-prep; and liburing's open/connect filter cases (§9.3)."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import pytest
from modelkit import ALLOW, Run

from ringfence.abi.constants import O
from ringfence.abi.ctx import BpfCtx

PDU = {"SOCKET": 12, "OPENAT": 24, "OPENAT2": 24, "CONNECT": 24}


def context(sqe: dict[str, Any], kernel: str = "7.2") -> BpfCtx:
    """The context the first filter saw for ``sqe`` (an allow-all filter on its opcode)."""
    op = sqe["op"]
    pdu = PDU.get(op, 0) if not (op == "CONNECT" and kernel in ("7.0", "7.1")) else 0
    run = Run(kernel, {"do": "ring", "ring": "r"},
              {"do": "filter", "ring": "r", "opcode": op, "program": ALLOW, "pdu_size": pdu})
    run.submit("r", {"ud": 0x1122334455667788, **sqe})
    filters = run.sqe_explain()[0].decision.filters
    assert filters is not None and filters.context is not None
    return BpfCtx.unpack(filters.context)


def open_fields(ctx: BpfCtx) -> tuple[int, int, int]:
    flags, mode, resolve = struct.unpack("<QQQ", ctx.payload)
    return flags, mode, resolve


def test_header_fields() -> None:
    ctx = context({"op": "NOP", "sqe_flags": "IO_LINK|CQE_SKIP_SUCCESS"})
    assert (ctx.user_data, ctx.opcode, ctx.sqe_flags, ctx.pdu_size) == (0x1122334455667788, 0, 0x44, 0)
    assert ctx.payload == bytes(24) and ctx.pack()[11:16] == bytes(5)


@pytest.mark.parametrize(("flags", "mode", "want_flags", "want_mode", "async_"), [
    ("O_RDONLY", 0o644, O["O_LARGEFILE"], 0, False),                                     # mode 0 without O_CREAT
    ("O_CREAT|O_RDWR", 0o104755, O["O_CREAT"] | O["O_RDWR"] | O["O_LARGEFILE"], 0o4755, True),
    ("O_TRUNC|O_WRONLY", 0, O["O_TRUNC"] | O["O_WRONLY"] | O["O_LARGEFILE"], 0, True),
    ("O_TMPFILE|O_RDWR", 0o600, O["O_TMPFILE"] | O["O_RDWR"] | O["O_LARGEFILE"], 0o600, True),
    ("O_PATH|O_CREAT|O_NOFOLLOW|O_RDWR", 0o600, O["O_PATH"] | O["O_NOFOLLOW"], 0, False),   # O_PATH subset, no LFS
    (0x4000_0000 | O["O_DIRECTORY"], 0, O["O_DIRECTORY"] | O["O_LARGEFILE"], 0, False),      # VALID_OPEN_FLAGS
])
def test_openat_post_prep(flags: Any, mode: int, want_flags: int, want_mode: int, async_: bool) -> None:
    ctx = context({"op": "OPENAT", "path": "/dev/null", "flags": flags, "mode": mode})
    assert open_fields(ctx) == (want_flags, want_mode, 0)
    assert ctx.pdu_size == 24
    assert bool(ctx.sqe_flags & 0x10) is async_                    # forced async shows as IOSQE_ASYNC


def test_openat2_copies_open_how() -> None:
    ctx = context({"op": "OPENAT2", "path": ".", "flags": "O_DIRECTORY", "mode": 0o777, "resolve": 0x10})
    assert open_fields(ctx) == (O["O_DIRECTORY"] | O["O_LARGEFILE"], 0o777, 0x10)
    ctx = context({"op": "OPENAT2", "path": ".", "flags": "O_PATH", "mode": 0, "resolve": 0})
    assert open_fields(ctx) == (O["O_PATH"], 0, 0)


def test_socket_type_is_raw() -> None:
    ctx = context({"op": "SOCKET", "family": "AF_INET6", "type": "SOCK_DGRAM|SOCK_CLOEXEC|SOCK_NONBLOCK",
                   "protocol": 17})
    assert struct.unpack("<III", ctx.payload[:12]) == (10, 2 | 0o2000000 | 0o4000, 17)
    assert ctx.payload[12:] == bytes(12) and ctx.pdu_size == 12


def test_fsync_is_forced_async() -> None:
    assert context({"op": "FSYNC", "fd": "null"}).sqe_flags == 0x10


@pytest.mark.parametrize(("fields", "family", "port", "addr"), [
    ({"family": "AF_INET", "addr": "127.0.0.1", "port": 22}, 2, 22, bytes([127, 0, 0, 1])),
    ({"family": "AF_INET", "addr": "127.0.0.1", "port": 22, "addr_len": 8}, 2, 0, b""),
    ({"family": "AF_INET", "addr": "127.0.0.1", "port": 22, "addr_len": 1}, 0, 0, b""),
    ({"family": "AF_INET", "addr": "127.0.0.1", "port": 22, "addr_len": 0}, 0, 0, b""),
    ({"family": "AF_INET6", "addr": "2001:db8::dead", "port": 443}, 10, 443,
     ipaddress.IPv6Address("2001:db8::dead").packed),
    ({"family": "AF_INET6", "addr": "::1", "port": 443, "addr_len": 24}, 10, 0, b""),
    ({"family": "AF_UNIX", "addr": "{tmp}/sock"}, 1, 0, b""),
])
def test_connect_population(fields: dict[str, Any], family: int, port: int, addr: bytes) -> None:
    ctx = context({"op": "CONNECT", **fields})
    got_family, = struct.unpack("<I", ctx.payload[:4])
    assert (got_family, int.from_bytes(ctx.payload[4:6], "big")) == (family, port)
    assert ctx.payload[6:8] == b"\0\0"
    assert ctx.payload[8:] == addr.ljust(16, b"\0")


@pytest.mark.parametrize("kernel", ["7.0", "7.1"])
def test_connect_has_no_payload_before_7_2(kernel: str) -> None:
    ctx = context({"op": "CONNECT", "family": "AF_INET", "addr": "127.0.0.1", "port": 22}, kernel)
    assert ctx.pdu_size == 0 and ctx.payload == bytes(24)


def test_no_context_without_a_real_filter_at_the_head() -> None:
    run = Run("7.2", {"do": "ring", "ring": "r"},
              {"do": "filter", "ring": "r", "opcode": "NOP", "program": ALLOW, "flags": "DENY_REST"})
    run.each("r", {"op": "READ", "ud": 1, "fd": "zero"}, {"op": "NOP", "ud": 2})
    first, second = run.sqe_explain(-2)[0], run.sqe_explain()[0]
    assert first.decision.filters is not None and first.decision.filters.context is None
    assert first.result == "EACCES"
    assert second.decision.filters is not None and second.decision.filters.context is not None


# -- liburing §9.3 filter cases on open and connect -------------------------------------------------------------------

DENY_CREAT = "ld [open.flags]\n jset #O_CREAT, no, ok\nok: ret #1\nno: ret #0"
DENY_IN_ROOT = "ld [open.resolve]\n jset #RESOLVE_IN_ROOT, no, ok\nok: ret #1\nno: ret #0"


def test_deny_openat_creat() -> None:
    run = Run("7.2", {"do": "nnp"}, {"do": "ring", "ring": "before"},
              {"do": "filter", "opcode": "OPENAT", "program": DENY_CREAT, "pdu_size": 24}, {"do": "ring", "ring": "r"})
    creat = {"op": "OPENAT", "path": "{tmp}/x", "flags": "O_CREAT|O_RDWR", "mode": 0o600}
    assert run.cqes("before", {**creat, "ud": 1}) == {1: "ok"}
    assert run.cqes("r", {**creat, "ud": 2}) == {2: "EACCES"}
    assert run.cqes("r", {"op": "OPENAT", "ud": 3, "path": "/dev/null"}) == {3: "ok"}


def test_deny_openat2_resolve_in_root() -> None:
    run = Run("7.2", {"do": "nnp"}, {"do": "filter", "opcode": "OPENAT2", "program": DENY_IN_ROOT, "pdu_size": 24},
              {"do": "ring", "ring": "r"})
    base = {"op": "OPENAT2", "path": ".", "flags": "O_DIRECTORY"}
    assert run.each("r", {**base, "ud": 1, "resolve": 0x10}, {**base, "ud": 2}) == {1: "EACCES", 2: "ok"}


CONNECT_DENY_INET = "ld [connect.family]\n jeq #AF_INET, no, ok\nok: ret #1\nno: ret #0"
CONNECT_V4_SUBNET = 'ld [connect.v4_addr]\n and #ip4("255.255.255.0")\n jeq #ip4("127.42.0.0"), no, ok' \
                    "\nok: ret #1\nno: ret #0"


def _connect(ud: int, family: str, addr: str, port: int = 80, **extra: Any) -> dict[str, Any]:
    return {"op": "CONNECT", "ud": ud, "family": family, "addr": addr, "port": port, "result": "ECONNREFUSED",
            **extra}


def test_connect_stale_addr_len() -> None:
    run = Run("7.2", {"do": "nnp"}, {"do": "filter", "opcode": "CONNECT", "program": CONNECT_DENY_INET,
                                     "pdu_size": 24}, {"do": "ring", "ring": "r"})
    assert run.cqes("r", _connect(1, "AF_INET", "127.0.0.1", 1)) == {1: "EACCES"}
    assert run.cqes("r", _connect(2, "AF_INET", "127.0.0.1", 1, addr_len=1, result="EINVAL")) == {2: "EINVAL"}


def test_connect_deny_v4_subnet() -> None:
    run = Run("7.2", {"do": "nnp"}, {"do": "filter", "opcode": "CONNECT", "program": CONNECT_V4_SUBNET,
                                     "pdu_size": 24}, {"do": "ring", "ring": "r"})
    got = run.each("r", _connect(1, "AF_INET", "127.0.0.1"), _connect(2, "AF_INET", "127.42.0.1"),
                   _connect(3, "AF_INET", "127.42.0.99"))
    assert got == {1: "ECONNREFUSED", 2: "EACCES", 3: "EACCES"}
