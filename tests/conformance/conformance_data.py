"""What the conformance suite compares: the corpus, seeded random scenarios, programs and requests.

Sizes are environment-tunable for local work; CI uses the defaults, which meet the issue's minimums.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import progen

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "corpus" / "scenarios").rglob("*.toml"))
SEED = int(os.environ.get("RINGFENCE_SEED", "20261123"))
VM_RANDOM = int(os.environ.get("RINGFENCE_VM_RANDOM", "500"))
VM_PROGRAMS = int(os.environ.get("RINGFENCE_VM_PROGRAMS", "5000"))
VM_VERDICT_PROGRAMS = int(os.environ.get("RINGFENCE_VM_VERDICT_PROGRAMS", "200"))
HOST_RANDOM = int(os.environ.get("RINGFENCE_HOST_RANDOM", "200"))
VM_TIMEOUT = float(os.environ.get("RINGFENCE_VM_TIMEOUT", "3000"))



@cache
def random_scenarios(count: int, *, classic_only: bool) -> tuple[dict[str, Any], ...]:
    from ringfence.scenario.generate import generate_many

    # exec re-starts Python, which costs 15-30 s under TCG: the VM's random set leaves it out (the corpus has exec
    # scenarios, and the host's random set keeps it).
    return tuple(generate_many(SEED + (1 if classic_only else 0), count, classic_only=classic_only,
                               exec_steps=classic_only))


@cache
def programs() -> tuple[bytes, ...]:
    return tuple(progen.corpus(SEED, VM_PROGRAMS))


def verdict_requests(index: int) -> list[dict[str, Any]]:
    """Requests with random context words for program ``index``: NOP (user_data), SOCKET (family, type,
    protocol), OPENAT/OPENAT2 (open flags, mode, resolve: post-prep values) and CONNECT (family, port, address,
    address length; loopback only, run by the live side inside a private network namespace)."""
    import random

    rng = random.Random(SEED * 1000 + index)
    out: list[dict[str, Any]] = []
    for _ in range(4):
        out.append({"op": "NOP", "ud": rng.getrandbits(64)})
    for _ in range(4):
        fam = rng.choice((1, 2, 10, 16, 17, rng.getrandbits(32), rng.randrange(64)))
        typ = rng.choice((1, 2, 3, 5, 1 | 0o2000000, 2 | 0o4000, rng.getrandbits(32)))
        proto = rng.choice((0, 6, 17, rng.getrandbits(32)))
        out.append({"op": "SOCKET", "ud": rng.getrandbits(64), "family": fam, "type": typ, "protocol": proto})
    for op in ("OPENAT", "OPENAT2"):
        for _ in range(2):
            flags = rng.choice((0, 0o2, 0o100 | 0o2, 0o1000 | 0o1, 0o10000000, 0o200000, 0o20200000 | 0o2,
                                rng.getrandbits(23), rng.getrandbits(32)))
            req = {"op": op, "ud": rng.getrandbits(64), "flags": flags, "mode": rng.choice((0, 0o644, 0o7777,
                                                                                           rng.getrandbits(16)))}
            if op == "OPENAT2":
                req["resolve"] = rng.choice((0, 0x10, 0x08, rng.getrandbits(6)))
            out.append(req)
    for _ in range(4):
        family = rng.choice((2, 2, 10, 1))
        addr = {2: f"127.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", 10: "::1", 1: "sock"}
        req = {"op": "CONNECT", "ud": rng.getrandbits(64), "family": family, "addr": addr[family],
               "port": rng.randrange(1, 65536)}
        if rng.random() < 0.4:
            req["addr_len"] = rng.choice((0, 1, 2, 3, 8, 15, 16, 27, 28))
        out.append(req)
    return out


@cache
def verdict_programs() -> tuple[bytes, ...]:
    from ringfence.bpf import Program, diagnose

    accepted = [p for p in programs() if 8 <= len(p) <= 4096 * 8 and not diagnose(Program.from_bytes(p))]
    step = max(1, len(accepted) // max(VM_VERDICT_PROGRAMS, 1))
    return tuple(accepted[::step][:VM_VERDICT_PROGRAMS])


