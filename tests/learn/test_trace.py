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


def test_failed_and_context_records_from_words() -> None:
    # the shapes of the probe and req_failed lines (fields as the kernel prints them; see the 7.2 captures)
    ctx = parse_line("python-9 [000] ...1. 5.0: rf_socket: (__io_uring_run_bpf_filters+0x2c0/0x2f0 <- "
                     "io_socket_bpf_populate) req=0xff01 sf=0 family=10 type=524289 protocol=0")
    assert ctx == Context(9, 0xFF01, "socket", 0, (("socket.family", 10), ("socket.type", 524289),
                                                   ("socket.protocol", 0)))
    failed = parse_line("python-9 [000] ..... 5.1: io_uring_req_failed: ring ff00, req ff01, user_data 0x7, "
                        "opcode SOCKET, flags 0x0, prio=0, off=1, addr=0, len=0, rw_flags=0x0, buf_index=0, "
                        "personality=0, file_index=0, pad=0x0, addr3=0, error=-13")
    assert failed == Failed(9, 0xFF01, 7, SqeOp.SOCKET, 0, -13)
    assert shapes([ctx, failed]) == {Shape(SqeOp.SOCKET, 0, (("socket.family", 10), ("socket.protocol", 0),
                                                             ("socket.type", 524289)), "EACCES", True): 1}
