"""Tests that run *inside* a booted 7.x kernel (the VM), as root, against the real kernel.

They are collected only inside a guest: the per-kernel VM boot of the conformance suite runs
``pytest tests/guest`` in the guest and reports every result on the host, one test each. On the host they are
not collected at all (never skipped silently: the host-side report test fails if the guest run is missing).

To run one file by hand: ``ringfence vm run -- .venv/bin/python -m pytest -q tests/guest/test_x.py``.
"""

from __future__ import annotations

from ringfence.vm import inside_guest

collect_ignore_glob = [] if inside_guest() else ["test_*.py"]
