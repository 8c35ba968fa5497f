"""Documents are bounded while they are read: nesting depth and value count give a positioned error (never a
``RecursionError``), and the largest document a cap allows parses in bounded time and memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from ringfence.errors import InputError
from ringfence.inputs.jsondoc import parse_json
from ringfence.inputs.nodes import Limits, from_plain
from ringfence.inputs.toml import parse_toml


@pytest.mark.parametrize(("reader", "text"), [
    (parse_toml, "a = " + "[" * 5000 + "]" * 5000),
    (parse_toml, "a = " + "{b = " * 5000 + "1" + "}" * 5000),
    (parse_toml, "[" + ".".join(["k"] * 5000) + "]"),
    (parse_toml, ".".join(["k"] * 5000) + " = 1"),
    (parse_json, "[" * 100_000 + "]" * 100_000),
    (parse_json, '{"a":' * 5000 + "1" + "}" * 5000),
])
def test_deep_nesting_is_a_positioned_error(reader: object, text: str) -> None:
    with pytest.raises(InputError, match="nest deeper than 32 levels") as info:
        reader(text, "deep")  # type: ignore[operator]
    assert info.value.line == 1 and info.value.column > 0


def test_depth_and_count_limits_are_exact() -> None:
    limits = Limits(max_depth=3, max_nodes=10)
    parse_toml("a = [[1]]", "t", limits=limits)  # table 0, a 1, [ 2, [ 3... the innermost value is depth 3
    with pytest.raises(InputError, match="deeper than 3"):
        parse_toml("a = [[[1]]]", "t", limits=limits)
    parse_json("[1, 2, 3, 4, 5, 6, 7, 8, 9]", "t", limits=limits)
    with pytest.raises(InputError, match="more than 10 values"):
        parse_json("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", "t", limits=limits)
    with pytest.raises(InputError, match="more than 10 values"):
        parse_toml("\n".join(f"k{i} = {i}" for i in range(11)), "t", limits=limits)
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InputError, match="nested deeper"):
        from_plain(deep, "mem")


_MEASURE = textwrap.dedent("""
    import resource, sys, time
    from ringfence.inputs.jsondoc import parse_json
    from ringfence.inputs.toml import parse_toml
    from ringfence.errors import InputError
    kind, size = sys.argv[1], int(sys.argv[2])
    if kind == "toml-values":
        text = "a = [" + ",".join(["1"] * (size // 2)) + "]"
    elif kind == "toml-tables":
        text = "[[s]]\\nx = 1\\n" * (size // 12)
    else:
        text = "[" + ",".join(["[1, 2]"] * (size // 7)) + "]"
    text = text[:size]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        (parse_json if kind == "json" else parse_toml)(text, "big")
    except InputError:
        pass
    print(time.perf_counter() - start, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
""")


@pytest.mark.parametrize("kind", ["toml-values", "toml-tables", "json"])
def test_largest_documents_parse_in_bounded_time_and_memory(kind: str) -> None:
    out = subprocess.run([sys.executable, "-c", _MEASURE, kind, str(1 << 20)], capture_output=True, text=True,
                         check=True, timeout=120)
    seconds, megabytes = map(float, out.stdout.split())
    print(f"{kind}: 1 MiB in {seconds:.2f} s, {megabytes:.0f} MiB more peak memory")
    assert seconds < 30 and megabytes < 200
