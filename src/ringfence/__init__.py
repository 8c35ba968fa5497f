"""ringfence: seccomp for io_uring.

Layers, each importing only downward:
``abi`` -> ``bpf`` -> ``scenario`` -> ``model`` | ``live`` -> ``policy`` -> ``cli``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
