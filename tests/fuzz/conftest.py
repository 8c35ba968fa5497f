"""The fuzz tests share the test-only expression algebra of ``tests/bpf`` and the policy generator of
``tests/policy``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bpf"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policy"))
