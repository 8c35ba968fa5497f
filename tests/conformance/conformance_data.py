"""What the conformance suite compares: the corpus, seeded random scenarios, programs and requests, per kernel.

Sizes differ per suite (see ``SUITE_SIZES``) so that the whole README test command fits its time budget with
every 7.x kernel; ``RINGFENCE_VM_RANDOM``, ``RINGFENCE_VM_PROGRAMS`` and ``RINGFENCE_VM_VERDICT_PROGRAMS`` override
them for every kernel (for quick local iterations).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import progen

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "corpus" / "scenarios").rglob("*.toml"))
SEED = int(os.environ.get("RINGFENCE_SEED", "20261123"))
HOST_RANDOM = int(os.environ.get("RINGFENCE_HOST_RANDOM", "200"))
VM_TIMEOUT = float(os.environ.get("RINGFENCE_VM_TIMEOUT", "3000"))


@dataclass(frozen=True)
class Sizes:
    """How much one kernel's boot compares. ``seed`` differs per suite, so each kernel gets its own random set."""

    random: int
    programs: int
    verdict_programs: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (f"{len(CORPUS)} corpus + {self.random} random scenarios, {self.programs} checker programs, "
                f"{self.verdict_programs} verdict programs")


#: Per suite: sid (the stable target) gets the full set; experimental (a release candidate) the same sizes with
#: its own seed. Chosen so that ``CI=true ./scripts/test`` stays well inside 50 minutes on 2 cores.
SUITE_SIZES: dict[str, Sizes] = {
    "sid": Sizes(random=500, programs=5000, verdict_programs=200, seed=SEED),
    "experimental": Sizes(random=500, programs=5000, verdict_programs=200, seed=SEED + 7),
}


def sizes_for(suite: str) -> Sizes:
    """The suite's sizes, with the environment's overrides applied."""
    base = SUITE_SIZES.get(suite, SUITE_SIZES["sid"])

    def env(name: str, default: int) -> int:
        value = os.environ.get(name)
        return int(value) if value else default

    return Sizes(random=env("RINGFENCE_VM_RANDOM", base.random), programs=env("RINGFENCE_VM_PROGRAMS", base.programs),
                 verdict_programs=env("RINGFENCE_VM_VERDICT_PROGRAMS", base.verdict_programs), seed=base.seed)


@cache
def random_scenarios(seed: int, count: int, *, classic_only: bool) -> tuple[dict[str, Any], ...]:
    from ringfence.scenario.generate import generate_many

    # exec re-starts Python, which costs 15-30 s under TCG: the VM's random set leaves it out (the corpus has exec
    # scenarios, and the host's random set keeps it).
    return tuple(generate_many(seed + (1 if classic_only else 0), count, classic_only=classic_only,
                               exec_steps=classic_only))


@cache
def programs(count: int) -> tuple[bytes, ...]:
    return tuple(progen.corpus(SEED, count))


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
def verdict_programs(count: int, wanted: int) -> tuple[bytes, ...]:
    from ringfence.bpf import Program, diagnose

    accepted = [p for p in programs(count) if 8 <= len(p) <= 4096 * 8 and not diagnose(Program.from_bytes(p))]
    step = max(1, len(accepted) // max(wanted, 1))
    return tuple(accepted[::step][:wanted])
