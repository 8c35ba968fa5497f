"""Steps cross the agent channel as JSON and come back equal (minus their expectations)."""

from __future__ import annotations

import dataclasses

import pytest

from ringfence.abi import sqe as abisqe
from ringfence.abi.layout import FilterRegistration
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
    reg = FilterRegistration(0, b"\x06\x00\x00\x00\x01\x00\x00\x00", filter_resv=b"\x01\x02\x03")
    step = s.Filter(ring="r", registration=reg)
    assert wire.decode_step(wire.encode_step(step)) == step
    connect = abisqe.connect(0, abisqe.sockaddr(10, "::1", 1), 3)
    sub = s.Submit(ring="r", sqes=(s.SubmitItem(connect, 0, "EINVAL", connect=s.ConnectTo(10, 1, 10, "::1", 1)),
                                   s.SubmitItem(abisqe.openat2("/x", abisqe.OpenHow(1, 2, 3)), "cwd")))
    assert wire.decode_step(wire.encode_step(sub)) == sub


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown step type"):
        wire.decode_step({"type": "Popen", "fields": {}})
