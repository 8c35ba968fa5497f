"""Seeded random policies, as the file structure (so they go through the real loader), and random contexts.

Values are biased towards the interesting: the constants policies name, boundaries, bits that prep adds.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from ringfence.abi.constants import AF, IPPROTO, RESOLVE, SOCK, O
from ringfence.abi.ctx import BpfCtx, connect_payload, open_payload, socket_payload
from ringfence.abi.opcodes import SqeOp

OPS = ("NOP", "READ", "WRITE", "SOCKET", "OPENAT", "OPENAT2", "CONNECT", "SEND", "RECV", "CLOSE")
_FAMILIES = ("AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK", "AF_PACKET", 0)
_TYPES = ("SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_STREAM|SOCK_CLOEXEC", "SOCK_DGRAM|SOCK_NONBLOCK")
_PROTOS = ("IPPROTO_IP", "IPPROTO_TCP", "IPPROTO_UDP", 0)
_OFLAGS = ("O_CREAT", "O_WRONLY", "O_RDWR", "O_TRUNC", "O_APPEND", "O_DIRECTORY", "O_PATH", "O_NOFOLLOW",
           "O_CLOEXEC", "O_LARGEFILE", "O_EXCL", "O_NONBLOCK")
_RESOLVES = tuple(RESOLVE)
_V4 = ("127.0.0.0/8", "127.0.0.1", "10.0.0.0/8", "192.168.1.0/24", "127.42.0.0/16", "0.0.0.0/0")
_V6 = ("::1", "2001:db8::/32", "fe80::/10", "::/0", "::ffff:0:0/96")


def _pick(r: random.Random, pool: tuple[Any, ...], most: int = 3) -> list[Any]:
    return r.sample(pool, r.randint(1, min(most, len(pool))))


def _value_test(r: random.Random, pool: tuple[Any, ...], numeric: bool) -> Any:
    x = r.random()
    if x < 0.35:
        return r.choice(pool)
    if x < 0.6:
        return _pick(r, pool)
    if x < 0.75:
        return {"not_in": _pick(r, pool)}
    if numeric and x < 0.9:
        lo = r.randrange(0, 64)
        return {"range": [lo, lo + r.randrange(0, 64)]}
    return {"in": _pick(r, pool)}


def _bits_test(r: random.Random, pool: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in r.sample(("all", "none", "any"), r.randint(1, 2)):
        out[mode] = _pick(r, pool, 2)
    return out


def _predicates(r: random.Random, op: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if op == "SOCKET":
        if r.random() < 0.7:
            out.setdefault("socket", {})["family"] = _value_test(r, _FAMILIES, False)
        if r.random() < 0.5:
            out.setdefault("socket", {})["type"] = r.choice(_TYPES) if r.random() < 0.6 else _pick(r, _TYPES)
        if r.random() < 0.3:
            out.setdefault("socket", {})["protocol"] = _value_test(r, _PROTOS, True)
    elif op in ("OPENAT", "OPENAT2"):
        if r.random() < 0.8:
            out.setdefault("open", {})["flags"] = _bits_test(r, _OFLAGS)
        if r.random() < 0.3:
            out.setdefault("open", {})["mode"] = r.choice([0, 0o644, {"range": [0, 0o777]}, {"mask": 0o7000,
                                                                                             "equals": 0}])
        if op == "OPENAT2" and r.random() < 0.5:
            out.setdefault("open", {})["resolve"] = _bits_test(r, _RESOLVES)
    elif op == "CONNECT":
        if r.random() < 0.5:
            nets = _pick(r, _V4 + _V6)
            out.setdefault("connect", {})["addr"] = nets if r.random() < 0.7 else {"not_in": nets}
        if r.random() < 0.5:
            out.setdefault("connect", {})["port"] = r.choice(
                [22, 80, [80, 443], {"range": [1024, 65535]}, {"not_in": [22, 23]}, {"range": [0, 1023]}])
        if r.random() < 0.3:
            out.setdefault("connect", {})["family"] = _value_test(r, ("AF_INET", "AF_INET6", "AF_UNIX", 0), False)
    if r.random() < 0.1:
        out["user_data"] = {"range": [0, 1 << r.randrange(1, 64)]}
    if r.random() < 0.1:
        out["sqe_flags"] = {"none": ["FIXED_FILE"]} if r.random() < 0.5 else {"any": ["IO_LINK", "IO_HARDLINK"]}
    return out


def policy_data(seed: int, *, max_rules: int = 8) -> dict[str, Any]:
    """One random policy in the file structure."""
    r = random.Random(seed)
    rules: dict[str, list[dict[str, Any]]] = {"allow": [], "deny": []}
    for _ in range(r.randint(0, max_rules)):
        action = "allow" if r.random() < 0.7 else "deny"
        ops = _pick(r, OPS, 2)
        preds = _predicates(r, ops[0]) if len(ops) == 1 and r.random() < 0.8 else {}
        rules[action].append({"ops": ops, **preds, "reason": f"rule {len(rules[action])}"})
    data: dict[str, Any] = {"policy": {"name": f"random-{seed}", "default": r.choice(["deny", "allow"]),
                                       "kernel": "7.2+"}}
    if r.random() < 0.3:
        data["flags"] = {"allowed": _pick(r, ("IO_LINK", "ASYNC", "FIXED_FILE", "IO_HARDLINK"), 3)}
    data.update({k: v for k, v in rules.items() if v})
    return data


def context(r: random.Random, opcode: int) -> bytes:
    """A post-prep-shaped context for ``opcode`` with random but plausible payload values."""
    flags = r.choice([0, 0x10, 0x04, 0x01, r.randrange(0x80)]) & 0x7F
    ud = r.choice([0, 1, r.getrandbits(64)])
    payload = bytes(24)
    pdu = 0
    if opcode == SqeOp.SOCKET:
        fam = r.choice([*AF.values(), r.getrandbits(32)])
        typ = r.choice([*SOCK.values(), 1 | SOCK["SOCK_CLOEXEC"], 2 | SOCK["SOCK_NONBLOCK"], r.getrandbits(32)])
        payload, pdu = socket_payload(fam, typ, r.choice([*IPPROTO.values(), r.getrandbits(32)])), 12
    elif opcode in (SqeOp.OPENAT, SqeOp.OPENAT2):
        fl = 0
        for name in O:
            if r.random() < 0.15:
                fl |= O[name]
        if r.random() < 0.1:
            fl = r.getrandbits(64)
        resolve = r.choice([0, *RESOLVE.values(), r.getrandbits(6), r.getrandbits(64)])
        payload, pdu = open_payload(fl, r.choice([0, 0o644, 0o4755, r.getrandbits(64)]), resolve), 24
    elif opcode == SqeOp.CONNECT:
        fam = r.choice([2, 2, 10, 10, 1, 0])
        port = r.choice([22, 80, 443, 0, r.randrange(65536)])
        if fam == 2:
            addr = ipaddress.IPv4Address(r.choice(["127.0.0.1", "10.1.2.3", "192.168.1.9", "127.42.7.7",
                                                   str(ipaddress.IPv4Address(r.getrandbits(32)))])).packed
        elif fam == 10:
            addr = ipaddress.IPv6Address(r.choice(["::1", "2001:db8::5", "fe80::1", "::ffff:127.0.0.1",
                                                   "::ffff:10.0.0.1", str(ipaddress.IPv6Address(
                                                       r.getrandbits(128)))])).packed
        else:
            addr, port = b"", 0
        payload, pdu = connect_payload(fam, port, addr), 24
    return BpfCtx(ud, opcode, flags, pdu, payload).pack()
