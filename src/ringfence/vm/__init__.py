"""Run commands inside Debian's newest 7.x kernel under qemu (virtme-ng), from any newer or older host.

``ensure_kernel()`` fetches and installs the kernel once (cached); ``run_in_vm()`` boots it and runs
one command with the host filesystem visible. See docs/vm.md.
"""

from ringfence.vm.boot import VmResult, inside_guest, run_in_vm
from ringfence.vm.errors import (
    KernelNotFoundError,
    ToolMissingError,
    VmBootError,
    VmError,
    VmTimeoutError,
    VmUnavailableError,
)
from ringfence.vm.fetch import KernelImage, cached_kernels, ensure_kernel

__all__ = [
    "KernelImage", "KernelNotFoundError", "ToolMissingError", "VmBootError", "VmError", "VmResult", "VmTimeoutError",
    "VmUnavailableError", "cached_kernels", "ensure_kernel", "inside_guest", "run_in_vm",
]
