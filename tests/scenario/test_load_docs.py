"""The loader against the examples in docs/scenarios.md and docs/model.md, run on the model."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from ringfence.abi.profiles import profile
from ringfence.scenario import parse, runner
from ringfence.scenario.model_backend import ModelBackend
from ringfence.scenario.steps import Filter, Submit, SubmitExpect

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _toml_blocks(name: str) -> list[str]:
    text = (DOCS / name).read_text()
    return [b for b in re.findall(r"```toml\n(.*?)```", text, flags=re.S) if "[scenario]" in b]


def test_scenarios_md_example_loads() -> None:
    blocks = _toml_blocks("scenarios.md")
    assert blocks, "docs/scenarios.md lost its example"
    scenario = parse(tomllib.loads(blocks[0]), path="docs/scenarios.md")
    assert scenario.name == "test_deny_nop" and scenario.requires == ("bpf_filter",)
    assert isinstance(scenario.steps[1], Filter) and scenario.steps[1].registration is not None
    assert scenario.steps[1].registration.program == bytes([6, 0, 0, 0, 0, 0, 0, 0])
    last = scenario.steps[3]
    assert isinstance(last, Submit) and last.expect.default == SubmitExpect(1, ((1, "EACCES"),))


@pytest.mark.parametrize("name", ["scenarios.md", "model.md"])
def test_doc_examples_pass_on_the_model(name: str) -> None:
    for block in _toml_blocks(name):
        scenario = parse(tomllib.loads(block), path=f"docs/{name}")
        for kernel in ("7.2", "7.3"):
            report = runner.run(ModelBackend(profile(kernel)), scenario)
            assert report.passed or report.skipped, [m.render() for m in report.mismatches]


def test_per_kernel_expectations() -> None:
    doc = {"scenario": {"name": "k"}, "step": [
        {"do": "filter", "ring": "r0", "opcode": "CONNECT", "program": "ret #1", "pdu_size": 24,
         "expect": {"<7.2": "EMSGSIZE", "7.2+": "ok"}},
    ]}
    doc["step"].insert(0, {"do": "ring", "ring": "r0"})
    scenario = parse(doc)
    for kernel in ("7.0", "7.1", "7.2", "7.3"):
        assert runner.run(ModelBackend(profile(kernel)), scenario).passed
