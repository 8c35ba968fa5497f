"""Generalisation by stated rules: each rule changes what it says and is named in the policy it shaped; the
policy text loads back to the policy; merging adds runs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ringfence.abi.constants import AF, SOCK, O
from ringfence.abi.ctx import BpfCtx, connect_payload, open_payload, socket_payload
from ringfence.abi.opcodes import SqeFlag, SqeOp
from ringfence.learn.generalise import Options, describe, generalise, read_previous, weaker
from ringfence.learn.seen import Shape, shapes
from ringfence.learn.trace import parse
from ringfence.policy.load import loads
from ringfence.policy.semantics import opcode_verdict

DATA = Path(__file__).with_name("data")
LARGE = O["O_LARGEFILE"]


def _sock(family: str, type_: int, protocol: int = 0, **kw: object) -> Shape:
    return Shape(SqeOp.SOCKET, 0, (("socket.family", AF[family]), ("socket.protocol", protocol),
                                   ("socket.type", type_)), **kw)  # type: ignore[arg-type]


def _open(flags: int, mode: int = 0, opcode: int = SqeOp.OPENAT, sqe_flags: int = 0) -> Shape:
    return Shape(opcode, sqe_flags, (("open.flags", flags), ("open.mode", mode), ("open.resolve", 0)))


def _connect(family: str, addr: str, port: int) -> Shape:
    import ipaddress
    packed = ipaddress.ip_address(addr).packed.ljust(16, b"\0")
    return Shape(SqeOp.CONNECT, 0, (("connect.addr", packed.hex()), ("connect.family", AF[family]),
                                    ("connect.port", port)))


def _allows(policy_text: str, opcode: int, payload: bytes) -> bool:
    ctx = BpfCtx(opcode=opcode, pdu_size=24, payload=payload.ljust(24, b"\0")).pack()
    return opcode_verdict(loads(policy_text), opcode, ctx).allowed


def test_socket_flags_are_not_pinned_and_family_is() -> None:
    learned = generalise(Counter({_sock("AF_INET", SOCK["SOCK_STREAM"] | SOCK["SOCK_CLOEXEC"]): 2}), Options())
    assert "sock-flags" in learned.rules_used
    assert "SOCK_CLOEXEC and SOCK_NONBLOCK are not pinned" in learned.text
    assert loads(learned.text) == learned.policy
    rule = next(r for r in learned.policy.rules if SqeOp.SOCKET in r.ops)
    assert rule.reason == "learned: seen 2 times"
    assert [p.field for p in rule.predicates] == ["socket.family", "socket.type", "socket.protocol"]
    stream = SOCK["SOCK_STREAM"]
    assert _allows(learned.text, SqeOp.SOCKET, socket_payload(AF["AF_INET"], stream | SOCK["SOCK_NONBLOCK"], 0))
    assert not _allows(learned.text, SqeOp.SOCKET, socket_payload(AF["AF_INET6"], stream, 0))
    assert not _allows(learned.text, SqeOp.SOCKET, socket_payload(AF["AF_INET"], SOCK["SOCK_DGRAM"], 0))


def test_open_subset_largefile_and_forced_async() -> None:
    created = _open(O["O_WRONLY"] | O["O_CREAT"] | LARGE, 0o600, sqe_flags=SqeFlag.ASYNC)
    learned = generalise(Counter({_open(LARGE): 1, created: 1}), Options())
    for rule in ("largefile", "open-subset", "open-mode", "forced-async"):
        assert rule in learned.rules_used
    assert learned.policy.flags is not None and learned.policy.flags.allowed == 0  # the kernel's ASYNC dropped
    text = learned.text
    assert 'open.mode = "0o600"' in text
    read_only = open_payload(LARGE | O["O_CLOEXEC"], 0, 0)
    assert _allows(text, SqeOp.OPENAT, read_only)
    assert _allows(text, SqeOp.OPENAT, open_payload(O["O_WRONLY"] | O["O_CREAT"] | LARGE, 0o600, 0))
    assert not _allows(text, SqeOp.OPENAT, open_payload(O["O_WRONLY"] | O["O_CREAT"] | LARGE, 0o666, 0))
    assert not _allows(text, SqeOp.OPENAT, open_payload(O["O_RDWR"] | LARGE, 0, 0))
    assert not _allows(text, SqeOp.OPENAT, open_payload(O["O_WRONLY"] | O["O_TRUNC"] | LARGE, 0, 0))
    assert loads(text) == learned.policy


def test_program_set_async_is_kept() -> None:
    learned = generalise(Counter({Shape(SqeOp.READ, SqeFlag.ASYNC | SqeFlag.IO_LINK): 1}), Options())
    assert learned.policy.flags is not None
    assert learned.policy.flags.allowed == SqeFlag.ASYNC | SqeFlag.IO_LINK
    assert "forced-async" not in learned.rules_used


def test_connect_exact_then_widened() -> None:
    seen = Counter({_connect("AF_INET", "127.0.0.1", 7001): 1, _connect("AF_INET6", "::1", 7002): 1})
    exact = generalise(seen, Options())
    assert "exact-connect" in exact.rules_used and "widen" not in exact.rules_used
    assert exact.policy.kernel == (7, 2)
    assert 'connect.addr = "127.0.0.1"' in exact.text and "connect.port = 7001" in exact.text
    wide = generalise(seen, Options(widen={4: 24, 6: 64}))
    assert "widen" in wide.rules_used
    assert 'connect.addr = "127.0.0.0/24"' in wide.text and 'connect.addr = "::/64"' in wide.text
    assert loads(wide.text) == wide.policy
    assert _allows(exact.text, SqeOp.CONNECT, connect_payload(2, 7001, bytes([127, 0, 0, 1])))
    assert not _allows(exact.text, SqeOp.CONNECT, connect_payload(2, 7001, bytes([127, 0, 0, 2])))
    assert _allows(wide.text, SqeOp.CONNECT, connect_payload(2, 7001, bytes([127, 0, 0, 2])))
    assert not _allows(wide.text, SqeOp.CONNECT, connect_payload(2, 7002, bytes([127, 0, 0, 2])))


def test_denied_and_prep_failures_are_not_learned() -> None:
    denied = _sock("AF_INET", SOCK["SOCK_STREAM"], outcome="EACCES", init=True)
    prep = Shape(SqeOp.OPENAT, 0, (), "EINVAL", True)
    learned = generalise(Counter({denied: 1, prep: 2, Shape(SqeOp.READ, 0): 1}), Options())
    assert [r.ops for r in learned.policy.rules] == [(SqeOp.READ,)]
    assert learned.denied == ((denied, 1),) and learned.not_learned == ((prep, 2),)
    assert "Denied while learning (EACCES), not allowed here:" in learned.text
    assert "SOCKET AF_INET, SOCK_STREAM, protocol 0: once" in learned.text


def test_tracepoints_only_leaves_arguments_open_and_says_so() -> None:
    counts = shapes(parse((DATA / "host-6.18-reader.trace").read_text().splitlines()))
    learned = generalise(counts, Options(mode="tracepoints"))
    assert "open-args" in learned.rules_used
    assert "argument predicates are left open" in learned.text
    assert '"OPENAT",  # seen once; arguments left open' in learned.text
    assert [r.ops for r in learned.policy.rules] == [(SqeOp.OPENAT, SqeOp.CLOSE, SqeOp.READ)]


def test_merge_reads_back_what_was_written() -> None:
    first = generalise(Counter({_open(LARGE): 1}), Options(runs=("one",)))
    previous = read_previous(first.text)
    assert previous.counts == Counter({_open(LARGE): 1}) and previous.runs == ("one",)
    merged = generalise(previous.counts + Counter({_open(LARGE): 2}), Options(runs=(*previous.runs, "two")))
    assert "learned: seen 3 times" in merged.text and "from 2 run(s)" in merged.text
    with pytest.raises(ValueError, match="no learn-data line"):
        read_previous("[policy]\nname = 'x'\n")
    assert weaker("full", "tracepoints") == "tracepoints"


def test_describe() -> None:
    assert describe(_connect("AF_INET", "10.1.2.3", 443)) == "CONNECT AF_INET 10.1.2.3 port 443"
    assert describe(Shape(SqeOp.READ, SqeFlag.IO_LINK)) == "READ flags IO_LINK"
