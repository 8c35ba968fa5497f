"""Trace text as the kernel wrote it (captured with `ringfence learn --save-trace`, see tests/learn/data/README.md)
read into records and request shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ringfence.abi.opcodes import SqeOp
from ringfence.learn.seen import Shape, dumps, from_json, shapes, to_json
from ringfence.learn.trace import Complete, Context, Failed, Submit, TraceError, parse, parse_line

DATA = Path(__file__).with_name("data")


def _lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


def test_host_tracepoints_only() -> None:
    records = parse(_lines("host-6.18-reader.trace"))
    assert [type(r) for r in records] == [Submit, Complete] * 3
    first = records[0]
    assert isinstance(first, Submit)
    assert (first.pid, first.opcode, first.flags, first.user_data) == (25324, SqeOp.OPENAT, 0x2000, 0)
    assert first.req == 0xFFFF888102E02F00
    counts = shapes(records)
    assert counts == {Shape(SqeOp.OPENAT, 0): 1, Shape(SqeOp.READ, 0): 1, Shape(SqeOp.CLOSE, 0): 1}


def test_kernel_flag_bits_above_iosqe_are_dropped() -> None:
    # READ and CONNECT carry 0x400000 in the kernel's request flags, OPENAT 0x2000: none of them is an IOSQE bit
    assert all(s.flags == 0 for s in shapes(parse(_lines("7.2-echo-tracepoints.trace"))))


def test_two_processes_interleaved() -> None:
    counts = shapes(parse(_lines("7.2-echo-tracepoints.trace")))
    by_op = {op: sum(n for s, n in counts.items() if s.opcode == op) for op in {s.opcode for s in counts}}
    assert by_op == {SqeOp.SOCKET: 2, SqeOp.ACCEPT: 1, SqeOp.CONNECT: 1, SqeOp.SEND: 2, SqeOp.RECV: 2,
                     SqeOp.CLOSE: 1}


def test_shapes_round_trip_through_json() -> None:
    counts = shapes(parse(_lines("7.2-echo-tracepoints.trace")))
    assert from_json(to_json(counts)) == counts
    assert dumps(counts).startswith("[{")


def test_lines_that_are_not_ours_are_ignored() -> None:
    assert parse_line("# tracer: nop") is None
    assert parse_line("") is None
    assert parse_line("  bash-1 [000] ..... 1.0: sched_switch: prev_comm=bash") is None


def test_a_broken_line_of_ours_is_an_error() -> None:
    line = _lines("host-6.18-reader.trace")[-1].replace("result 0", "result zero")
    with pytest.raises(TraceError, match="io_uring_complete"):
        parse_line(line)


def test_denied_request_with_its_context() -> None:
    # nosy.py under examples/policies/file-reader.toml (filters-only: the observer filters came first): the
    # SOCKET's context was built, then the base policy's filter refused it
    records = parse(_lines("7.2-nosy.trace"))
    ctx, failed = records[-3], records[-2]
    assert ctx == Context(204, 0xFF28CF8746CB3700, "socket", 0, (("socket.family", 2), ("socket.type", 1),
                                                                 ("socket.protocol", 0)))
    assert failed == Failed(204, 0xFF28CF8746CB3700, 0, SqeOp.SOCKET, 0, -13)
    counts = shapes(records)
    denied = Shape(SqeOp.SOCKET, 0, (("socket.family", 2), ("socket.protocol", 0), ("socket.type", 1)), "EACCES",
                   True)
    assert counts[denied] == 1


def test_requests_without_a_traced_completion_still_count() -> None:
    # on 7.2 READ and CLOSE showed no io_uring_complete here; the next request on the same pointer (or the
    # end of the trace) closes them
    for name in ("7.2-nosy.trace", "7.2-reader.trace"):
        counts = shapes(parse(_lines(name)))
        assert counts[Shape(SqeOp.READ, 0)] == 1 and counts[Shape(SqeOp.CLOSE, 0)] == 1, name


def test_connect_context_port_and_address_in_host_terms() -> None:
    ctx = next(r for r in parse(_lines("7.2-echo.trace")) if isinstance(r, Context) and r.kind == "connect")
    assert ctx.get("connect.family") == 2 and ctx.get("connect.port") == 7001
    assert ctx.get("connect.addr") == bytes([127, 0, 0, 1]) + bytes(12)
