"""Live tests talk to the running kernel. Kernel-version-specific facts are keyed by the probed profile."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

import pytest

from ringfence.abi.profiles import KernelProfile
from ringfence.live.probe import ProbeReport, probed_profile


def insns(rows: list[list[int]]) -> bytes:
    """Raw ``sock_filter`` bytes from ``[code, jt, jf, k]`` rows."""
    return b"".join(struct.pack("=HBBI", c, jt, jf, k & 0xFFFFFFFF) for c, jt, jf, k in rows)


@pytest.fixture(scope="session")
def probed() -> tuple[ProbeReport, KernelProfile]:
    report, profile = probed_profile()
    if not report.io_uring:
        pytest.skip(f"environment: io_uring unavailable here ({report.setup_error})")
    return report, profile


@pytest.fixture(scope="session")
def kernel(probed: tuple[ProbeReport, KernelProfile]) -> KernelProfile:
    return probed[1]


@pytest.fixture
def root() -> None:
    if os.geteuid() != 0:
        pytest.skip("environment: needs root (netns, dropping privileges)")


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    rd, wr = os.pipe()
    yield rd, wr
    os.close(rd)
    os.close(wr)
