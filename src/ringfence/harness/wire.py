"""Messages between the coordinator and its agents: one JSON object per ``SOCK_SEQPACKET`` packet.

Seqpacket socket pairs behave like a pair of pipes that keep message boundaries and can carry descriptors
(``SCM_RIGHTS``), which is how a forking agent hands the coordinator the control channel of its new child.
Steps travel as JSON too (:func:`encode_step` / :func:`decode_step`), because an agent that re-executed itself no
longer has the scenario in memory.
"""

from __future__ import annotations

import dataclasses
import json
import select
import socket
from typing import Any

from ringfence.abi.layout import FilterRegistration, Restriction, TaskRestrictionHeader
from ringfence.abi.sqe import OpenHow, Sqe
from ringfence.scenario import steps as _steps

MAX_MESSAGE = 1 << 20
MAX_FDS = 4
#: Every record type a step may hold: only these are rebuilt from a message.
_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    *_steps.STEPS.values(), _steps.Expectation, _steps.SubmitExpect, _steps.SubmitItem, _steps.ConnectTo,
    Restriction, TaskRestrictionHeader, FilterRegistration, Sqe, OpenHow)}


class ChannelClosedError(Exception):
    """The other side closed the channel (or died)."""


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of seqpacket sockets; both ends close on exec unless marked inheritable."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | tuple[int, ...] = ()) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def recv(sock: socket.socket, timeout: float | None = None) -> tuple[dict[str, Any], list[int]]:
    """One message and any descriptors that came with it. Raises ``TimeoutError`` or :class:`ChannelClosedError`."""
    if timeout is not None and not select.select([sock], [], [], max(timeout, 0))[0]:
        raise TimeoutError(f"no message within {timeout:g} s")
    try:
        data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    except ConnectionResetError:
        raise ChannelClosedError("connection reset") from None
    if not data:
        raise ChannelClosedError("end of channel")
    return json.loads(data), fds


def _enc(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__,
                "fields": {f.name: _enc(getattr(value, f.name)) for f in dataclasses.fields(value)
                           if f.name != "expect"}}
    if isinstance(value, (tuple, list)):
        return {"tuple": [_enc(v) for v in value]}
    return value


def _dec(value: Any) -> Any:
    if isinstance(value, dict):
        if "bytes" in value:
            return bytes.fromhex(value["bytes"])
        if "tuple" in value:
            return tuple(_dec(v) for v in value["tuple"])
        cls = _TYPES.get(value["type"])
        if cls is None:
            raise ValueError(f"unknown step type {value['type']!r}")
        return cls(**{k: _dec(v) for k, v in value["fields"].items()})
    return value


def encode_step(step: _steps.Step) -> dict[str, Any]:
    """A step as JSON-able data (its expectation is left out: agents do not need it)."""
    encoded: dict[str, Any] = _enc(step)
    return encoded


def decode_step(data: dict[str, Any]) -> _steps.Step:
    step = _dec(data)
    if not isinstance(step, _steps.Step):
        raise ValueError("not a step")
    return step
