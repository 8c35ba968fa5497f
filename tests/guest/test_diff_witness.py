"""Inside the 7.x guest: ``ringfence diff`` finds a planted one-rule difference between two policies, and the
kernel agrees. Both Plans are applied for real in forked children and the witness request is submitted under
each: the side diff says denies gets EACCES, the side it says allows does not."""

from __future__ import annotations

import errno
import ipaddress
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policy"))
import kernel_requests
from kernel_requests import kernel_results

from ringfence.abi import sqe as abisqe
from ringfence.abi.constants import AF
from ringfence.abi.opcodes import SqeOp
from ringfence.live.probe import probed_profile
from ringfence.policy.compile import compile_policy
from ringfence.policy.load import loads
from ringfence.policy.prove import Side, differences
from ringfence.policy.replay import apply_variant

ROOT = Path(__file__).resolve().parents[2]
BASE = (ROOT / "examples/policies/web-client.toml").read_text()
PLANTED = {
    "filter": BASE.replace("connect.port = [80, 443]", "connect.port = [80, 443, 8080]"),
    "classic": BASE.replace('ops = ["READ", "WRITE",', 'ops = ["FSYNC", "READ", "WRITE",'),
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_the_kernel_confirms_the_witness(kind: str) -> None:
    _, kernel = probed_profile()
    if not kernel.bpf_filters or kernel.pdu_size(int(SqeOp.CONNECT)) == 0:
        pytest.skip(f"kernel: {kernel.name} has no CONNECT filter context")  # 7.2+ carries it
    plans = []
    sides = []
    for label, text in (("a", BASE), ("b", PLANTED[kind])):
        compiled = compile_policy(loads(text, name=label), kernel)
        plans.append(compiled.plan)
        sides.append(Side(label, apply_variant(compiled.plan.variants[0], compiled.plan.target, kernel,
                                               inherited=False)))
    found = differences(sides[0], sides[1], kernel)
    assert len(found) == 1, [d.opcode for d in found]
    d = found[0]
    w = d.witness
    assert w is not None and not d.a_allows and d.b_allows
    raw = w.raw_flags or 0
    if kind == "filter":
        assert w.opcode == int(SqeOp.CONNECT) and w.ctx[16] == AF["AF_INET"]
        address = str(ipaddress.IPv4Address(w.ctx[24:28]))
        port = int.from_bytes(w.ctx[20:22], "big")
        assert port == 8080
        kernel_requests.REQUESTS["witness"] = lambda fds: abisqe.connect(
            fds["tcp4"], abisqe.sockaddr(AF["AF_INET"], address, port), flags=raw)
    else:
        assert w.opcode == int(SqeOp.FSYNC)
        kernel_requests.REQUESTS["witness"] = lambda fds: abisqe.Sqe(int(SqeOp.FSYNC), flags=raw, fd=fds["null"])
    try:
        under_a = kernel_results(plans[0], ["witness"])["witness"]
        under_b = kernel_results(plans[1], ["witness"])["witness"]
    finally:
        del kernel_requests.REQUESTS["witness"]
    print(f"witness for the planted {kind} difference: A gives {under_a}, B gives {under_b}")
    assert under_a == -errno.EACCES, under_a
    assert under_b != -errno.EACCES, under_b
