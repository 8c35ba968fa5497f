"""Errors of ``ringfence.vm``; each carries the CLI exit code it maps to."""

from __future__ import annotations

from typing import ClassVar

from ringfence.errors import RingfenceError


class VmError(RingfenceError):
    """Base of every VM failure: the VM could not boot or run the command (exit code 6, the environment failed)."""

    exit_code: ClassVar[int] = 6


class VmBootError(VmError):
    """The VM did not boot, or stopped before the command reported its exit code."""


class VmTimeoutError(VmBootError):
    """The command did not finish in time; the qemu process group was killed."""


class VmUnavailableError(VmError):
    """No kernel or a host tool is missing, so no VM can be started at all (exit code 5)."""

    exit_code: ClassVar[int] = 5


class KernelNotFoundError(VmUnavailableError):
    """No suitable ``7.x`` kernel in the mirror or the cache."""


class ToolMissingError(VmUnavailableError):
    """A host tool (qemu, vng, busybox, apt-get, dpkg, depmod) is not installed."""
