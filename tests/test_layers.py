"""The package's layers import only downward, and the path that applies a policy uses only the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ringfence"

# Each layer and what it may import (besides itself and the standard library).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "inputs": {"errors"},
    "abi": {"errors"},
    "bpf": {"errors", "abi"},
    "model": {"errors", "abi", "bpf"},
    "live": {"errors", "abi", "bpf"},
    "vm": {"errors"},
    "policy": {"errors", "abi", "bpf", "model", "inputs"},
    # beside the floors: they may import any floor, no floor imports them
    "scenario": {"errors", "abi", "bpf", "model", "policy", "inputs"},
    "harness": {"errors", "abi", "bpf", "live", "scenario"},
    "cli": {"errors", "abi", "bpf", "scenario", "model", "live", "harness", "vm", "policy", "cli", "inputs"},
}
STDLIB_ONLY = {"live", "harness", "vm", "abi", "bpf", "errors", "inputs"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.stem != "__init__" else "root"


MODULES = sorted(p for p in SRC.rglob("*.py") if _layer(p) in ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    layer = _layer(path)
    for name in _imports(path):
        top = name.split(".")[0]
        if top == "ringfence":
            parts = name.split(".")
            target = parts[1] if len(parts) > 1 else "root"
            if target in ("__init__", "root"):
                continue
            assert target == layer or target in ALLOWED[layer], f"{path.name}: {layer} imports {name}"
        elif layer in STDLIB_ONLY:
            assert top in sys.stdlib_module_names or top == "__future__", f"{path.name}: non-stdlib import {name}"


def test_every_layer_exists() -> None:
    assert MODULES, "no modules found"
    assert {"abi", "bpf", "scenario", "errors", "inputs"} <= {_layer(p) for p in MODULES}
