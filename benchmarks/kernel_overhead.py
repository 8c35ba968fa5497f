"""What a sandbox costs the kernel per request: NOPs per second with no policy, with a classic-only Plan, and with
the Plan's filters-only (cBPF) variant; interleaved pairs, each run in a fresh forked child that applies the
Plan to itself; the median ratio to no policy with a 95% interval.

    ringfence vm run -- .venv/bin/python benchmarks/kernel_overhead.py [--pairs N] [--batches N]

Needs a kernel with per-task io_uring sandboxing (7.0 or later: the 7.x VM). The loop keeps Python out of the
measurement: the 256 NOP SQEs are written once and the submission queue's index array is the identity, so each
batch is one tail store and one ``io_uring_enter`` that submits and reaps 256 requests. Both children of a pair
create and close the same throwaway rings and wait before measuring (the kernel tears closed rings down in a
worker), and each run starts with untimed batches. Under TCG (no KVM) only the
ratios mean anything, not the rates. Goals: classic at most 3%, cBPF at most 10% slower than no policy.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import random
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_overhead import median_interval

from ringfence.abi.opcodes import SqeOp
from ringfence.abi.profiles import profile_for_release
from ringfence.live import _sys
from ringfence.live.ring import Ring
from ringfence.policy.build import allow, policy
from ringfence.policy.compile import compile_policy
from ringfence.policy.plan import Plan
from ringfence.sandbox.apply import restrict_self

ENTRIES = 256
READ_SIZE = 4096
WARMUP = 20     # untimed batches first
SETTLE = 0.3    # seconds between applying the Plan and measuring
U32 = struct.Struct("=I")
NOPS = policy("nop-loop", allow("NOP", "READ", "WRITE", "CLOSE"), kernel="7.0+")


def nops_per_second(batches: int, op: str = "nop") -> float:
    """Submit and reap ``batches`` x 256 requests on a fresh ring: NOPs, or 4 KiB READs of /dev/zero (all into
    one buffer); requests per second."""
    buf = ctypes.create_string_buffer(READ_SIZE)
    zero = os.open("/dev/zero", os.O_RDONLY)
    with Ring.setup(ENTRIES) as ring:
        sq, cq = ring.params.sq_off, ring.params.cq_off
        request = _sys.Sqe(opcode=SqeOp.NOP)
        if op == "read":
            request = _sys.Sqe(opcode=SqeOp.READ, fd=zero, addr=ctypes.addressof(buf), len=READ_SIZE)
        nop = bytes(request).ljust(ring.sqe_size, b"\0")
        for i in range(ENTRIES):
            ring.sqe_map[i * ring.sqe_size:(i + 1) * ring.sqe_size] = nop
            U32.pack_into(ring.sq_map, sq.array + 4 * i, i)
        tail = U32.unpack_from(ring.sq_map, sq.tail)[0]
        start = 0.0
        for batch in range(-WARMUP, batches):
            if batch == 0:
                start = time.perf_counter()
            tail = (tail + ENTRIES) & 0xFFFFFFFF
            U32.pack_into(ring.sq_map, sq.tail, tail)
            done = _sys.enter(ring.fd, ENTRIES, ENTRIES, _sys.IORING_ENTER_GETEVENTS)
            if done != ENTRIES:
                raise RuntimeError(f"submitted {done} of {ENTRIES}")
            U32.pack_into(ring.cq_map, cq.head, U32.unpack_from(ring.cq_map, cq.tail)[0])
        elapsed = time.perf_counter() - start
        cqe = struct.unpack_from("=QiI", ring.cq_map, cq.cqes)
        if cqe[1] != (READ_SIZE if op == "read" else 0):
            raise RuntimeError(f"a request failed: {cqe[1]}")
    os.close(zero)
    return batches * ENTRIES / elapsed


def in_child(plan: Plan | None, mechanism: str, batches: int, op: str = "nop") -> float:
    """Apply ``plan`` (None: nothing) in a fresh forked child and measure there."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - reports through the pipe
        try:
            if plan is not None:
                restrict_self(plan, mechanism=mechanism)
            else:  # the throwaway rings restrict_self validates on, so that both children tear the same down
                Ring.setup(1).close()
                Ring.setup(1).close()
            time.sleep(SETTLE)  # closed rings are torn down by a kernel worker: not during the measurement
            os.write(write, repr(nops_per_second(batches, op)).encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    if not answer:
        raise RuntimeError(f"the {mechanism} child failed")
    return float(answer)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--op", choices=("nop", "read"), default="nop",
                        help="NOPs (the worst case for a per-request cost) or 4 KiB reads of /dev/zero")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    plan = compile_policy(NOPS, profile_for_release(os.uname().release)).plan
    for variant in plan.variants:
        kinds = [r.kind for r in variant.registrations]
        print(f"variant {variant.mechanism}: " + ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds))))
    rows = []
    for mechanism in ("classic", "filters"):
        ratios, rates = [], []
        for _ in range(args.pairs):
            order = [None, plan]
            rng.shuffle(order)
            got = {id(p): in_child(p, mechanism, args.batches, args.op) for p in order}
            ratios.append(got[id(None)] / got[id(plan)])   # > 1: the policy is slower
            rates.append(got[id(plan)])
        r, lo, hi = median_interval(ratios)
        rows.append(f"| {mechanism} | {statistics_rate(rates)} | {(r - 1) * 100:+.1f}% [{(lo - 1) * 100:+.1f}, "
                    f"{(hi - 1) * 100:+.1f}] |")
    print(f"kernel {os.uname().release}; {args.pairs} interleaved pairs of fresh children, {args.batches} x "
          f"{ENTRIES} {args.op.upper()}s each; slowdown = median(no-policy rate / policy rate) - 1 [95% interval]")
    print(f"cpu: {_cpu_model()} (a QEMU model name means TCG emulation: then only the ratios mean anything)")
    print(f"| policy | {args.op.upper()}s/s (median, with policy) | slower than no policy |")
    print("|---|---|---|")
    print("\n".join(rows))
    return 0


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")


def statistics_rate(rates: list[float]) -> str:
    m, _, _ = median_interval(rates)
    return f"{m:,.0f}"


if __name__ == "__main__":
    sys.exit(main())
