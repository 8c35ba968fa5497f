"""The kernel interface: io_uring rings, registrations on rings and tasks, and a feature probe, through ctypes.

Standard library only; this is the path that applies a sandbox. ``_sys`` is the only module that declares kernel
structs for ctypes. The scenario harness that drives it lives in :mod:`ringfence.harness`.
"""
