"""Steps cross the agent channel as JSON and come back equal (minus their expectations)."""

from __future__ import annotations

import dataclasses

import pytest

from ringfence.harness import wire
from ringfence.scenario import parse
from ringfence.scenario import steps as s

from ._scenarios import ALL

pytestmark = pytest.mark.live


@pytest.mark.parametrize("data", ALL, ids=lambda d: d["scenario"]["name"])
def test_round_trip(data: dict[str, object]) -> None:
    for step in parse(data).steps:
        back = wire.decode_step(wire.encode_step(step))
        assert back == dataclasses.replace(step, expect=s.Expectation())


def test_bytes_and_nested_dataclasses() -> None:
    step = s.Filter(ring="r", program=b"\x06\x00\x00\x00\x01\x00\x00\x00", filter_resv=b"\x01\x02\x03")
    assert wire.decode_step(wire.encode_step(step)) == step
    sub = s.Submit(ring="r", sqes=(s.Sqe(opcode=16, addr="::1", addr_len=3),))
    assert wire.decode_step(wire.encode_step(sub)) == sub


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown step type"):
        wire.decode_step({"type": "Popen", "fields": {}})
