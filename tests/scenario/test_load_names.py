"""The loader checks names and the exec rule once, so neither backend has to: errors name the file and the step."""

from __future__ import annotations

from typing import Any

import pytest

from ringfence.errors import ScenarioError
from ringfence.scenario import parse


def _load(*steps: dict[str, Any]) -> None:
    parse({"scenario": {"name": "t"}, "step": list(steps)}, path="t.toml")


@pytest.mark.parametrize(("steps", "message", "index"), [
    ([{"do": "ring", "task": "ghost", "ring": "r"}], "no task named 'ghost' exists at this point", 0),
    ([{"do": "enable", "ring": "never"}], "unknown ring 'never'", 0),
    ([{"do": "thread", "thread": "t"}, {"do": "exec"}], "exec by main: its process has 2 threads", 1),
    ([{"do": "fork", "child": "c"}, {"do": "fork", "task": "c", "child": "c"}], "task name 'c' is empty or already "
                                                                                "used", 1),
    ([{"do": "ring", "ring": "r"}, {"do": "ring", "ring": "r"}], "ring name 'r' is empty or already used", 1),
    ([{"do": "submit", "ring": "r", "sqes": []}, {"do": "ring", "ring": "r"}], "unknown ring 'r'", 0),
    ([{"do": "register", "opcode": "BPF_FILTER"}], "use a `filter` step", 0),
    ([{"do": "register", "opcode": "RESTRICTIONS"}], "use a `restrict` step", 0),
])
def test_names_and_exec_are_checked_when_loading(steps: list[dict[str, Any]], message: str, index: int) -> None:
    with pytest.raises(ScenarioError) as info:
        _load(*steps)
    assert message in str(info.value) and info.value.step == index and info.value.path == "t.toml"


def test_a_forked_child_can_exec_while_its_parent_has_threads() -> None:
    _load({"do": "thread", "thread": "t"}, {"do": "fork", "child": "c"}, {"do": "exec", "task": "c"})
