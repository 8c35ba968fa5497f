"""The package's layers import only downward, and the path that applies a policy uses only the standard library:
z3 belongs to the prover alone (``policy/prove.py``), which nothing on the apply path reaches."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
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
    "sandbox": {"errors", "abi", "bpf", "live", "policy"},
    "learn": {"errors", "abi", "bpf", "live", "policy"},
    # beside the floors: they may import any floor, no floor imports them
    "scenario": {"errors", "abi", "bpf", "model", "policy", "inputs"},
    "harness": {"errors", "abi", "bpf", "live", "scenario"},
    "cli": {"errors", "abi", "bpf", "scenario", "model", "live", "harness", "vm", "policy", "sandbox", "cli", "inputs",
            "learn"},
}
STDLIB_ONLY = {"live", "harness", "vm", "abi", "bpf", "errors", "sandbox", "inputs"}
#: The one module that may import z3.
PROVER = SRC / "policy" / "prove.py"
#: What ``ringfence run`` needs to apply a Plan: none of it may load the prover or z3, even indirectly.
APPLY_PATH = ("ringfence.policy.plan", "ringfence.live", "ringfence.live.ring", "ringfence.live.task",
              "ringfence.live.probe", "ringfence.cli.main", "ringfence.sandbox.apply", "ringfence.sandbox.run",
              "ringfence.cli.run")


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


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_only_the_prover_imports_z3(path: Path) -> None:
    uses = {name for name in _imports(path) if name.split(".")[0] == "z3"}
    assert not uses or path == PROVER, f"{path.name} imports {uses}: only policy/prove.py may"
    if path == PROVER:
        assert uses == {"z3"}


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120,
                          env={"PYTHONPATH": str(SRC.parent), "PATH": ""})


def test_the_apply_path_never_loads_z3() -> None:
    code = (f"import sys\nfor m in {APPLY_PATH!r}: __import__(m)\n"
            "import ringfence.cli.main as cm\ncm.build_parser()\n"
            "bad = sorted(m for m in sys.modules if m == 'z3' or m.startswith('z3.') or m.endswith('.prove'))\n"
            "print(bad)\nassert not bad, bad\n")
    done = _python(code)
    assert done.returncode == 0, done.stdout + done.stderr


def test_without_z3_the_prover_says_so() -> None:
    code = ("import sys\nsys.modules['z3'] = None\n"
            "from ringfence.errors import UnsupportedError\n"
            "try:\n    import ringfence.policy.prove\nexcept UnsupportedError as exc:\n    print('unsupported:', exc)\n"
            "else:\n    raise SystemExit('imported without z3')\n"
            "from ringfence.cli.main import main\n"
            "sys.exit(main(['verify', 'examples/policies/web-client.toml']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120,
                          cwd=SRC.parents[1], env={"PYTHONPATH": str(SRC.parent), "PATH": ""})
    assert done.returncode == 5, done.stdout + done.stderr
    assert "unsupported: " in done.stdout and "pip install 'ringfence[prove]'" in done.stdout
    assert "needs the z3 solver" in done.stderr


def _runtime_imports(path: Path) -> Iterator[tuple[str, str | None]]:
    """``(module, name)`` for every import that runs (in a function too), leaving out ``if TYPE_CHECKING:``
    blocks: a type-only import ties nothing at run time."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from ((a.name, None) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield from ((node.module, a.name) for a in node.names)


def _module_name(path: Path) -> str:
    parts = ("ringfence", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_relative_imports() -> None:
    """Absolute imports only: the layer an import reaches is then visible in the line itself."""
    relative = [f"{p.relative_to(SRC)}:{n.lineno}" for p in SRC.rglob("*.py")
                for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.ImportFrom) and n.level]
    assert not relative


def test_no_import_cycles() -> None:
    """No two modules import each other, directly or around a loop (type-only imports aside): inside a layer
    too, each module stands above what it uses."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for module, member in _runtime_imports(path):
            target = f"{module}.{member}" if member and f"{module}.{member}" in modules else module
            if target in modules and target != name and not name.startswith(target + "."):
                edges.add(target)  # a package's own __init__ runs before its modules: not a loop of theirs
        graph[name] = edges
    cycles = [sorted(c) for c in _strongly_connected(graph) if len(c) > 1]
    assert not cycles, cycles


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    for root, children_of_root in graph.items():
        if root in index:
            continue
        work = [(root, iter(sorted(children_of_root)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                out.append(component)
    return out
