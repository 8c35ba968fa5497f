"""Optimizer passes: each maps a :class:`~ringfence.bpf.builder.Built` to ``(Built, changed)``."""
