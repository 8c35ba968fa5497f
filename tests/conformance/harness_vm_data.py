"""The live harness's own VM checks, folded into each kernel's conformance boot (they used to boot separately).

The scenarios are the harness suite's (``tests/harness/_scenarios.py``), checked against their own expectations;
the two jobs are small register-outcome and verdict checks whose answers (``expect``, which the batch ignores)
were seen on Debian 7.2.13 and 7.3-rc7.
"""

from __future__ import annotations

import importlib.util
import struct
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

_SCENARIOS = Path(__file__).resolve().parents[1] / "harness" / "_scenarios.py"


@cache
def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ringfence_harness_scenarios", _SCENARIOS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def insns(rows: list[list[int]]) -> bytes:
    """Raw ``sock_filter`` bytes from ``[code, jt, jf, k]`` rows."""
    return b"".join(struct.pack("=HBBI", c, jt, jf, k & 0xFFFFFFFF) for c, jt, jf, k in rows)


def harness_scenarios() -> list[dict[str, Any]]:
    return list(_module().ALL)


def harness_jobs() -> list[dict[str, Any]]:
    m = _module()
    return [
        {"kind": "register_outcomes", "expect": ["ok", "EINVAL", "EINVAL"],
         "programs": [insns(m.RET1).hex(), "", insns([[0x94, 0, 0, 3], [6, 0, 0, 1]]).hex()]},
        {"kind": "verdicts", "program": insns(m.INET_ONLY).hex(), "requests": [
            {"op": "SOCKET", "family": 2, "type": 1}, {"op": "SOCKET", "family": 10, "type": 1},
            {"op": "CONNECT", "family": 2, "addr": "127.0.0.1", "port": 1},
            {"op": "CONNECT", "family": 10, "addr": "::1", "port": 1}],
         "expect": ["ok", "EACCES", "ECONNREFUSED", "EACCES"]},
    ]
