"""Run commands inside Debian's 7.x kernels under qemu (virtme-ng), from any newer or older host.

``ensure_kernel(kernel, suite=...)`` fetches and installs a kernel once (cached); ``run_in_vm()`` boots it
and runs one command with the host filesystem visible. See docs/vm.md.
"""

from ringfence.vm.boot import VmResult, inside_guest, run_in_vm
from ringfence.vm.catalog import SUITES, Candidate, SelectorError
from ringfence.vm.errors import (
    KernelNotFoundError,
    ToolMissingError,
    VmBootError,
    VmError,
    VmTimeoutError,
    VmUnavailableError,
)
from ringfence.vm.fetch import KernelImage, available_per_suite, cached_kernels, ensure_kernel, known_kernels

__all__ = [
    "SUITES", "Candidate", "KernelImage", "KernelNotFoundError", "SelectorError", "ToolMissingError", "VmBootError",
    "VmError", "VmResult", "VmTimeoutError", "VmUnavailableError", "available_per_suite", "cached_kernels",
    "ensure_kernel", "inside_guest", "known_kernels", "run_in_vm",
]
