"""The policy crash corpus says what it means: a ``refused-*`` input is refused, at a position; the rest load."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest
from entries_policy import place
from fuzz_harness import CORPUS

from ringfence.abi.profiles import profile
from ringfence.errors import PolicyError
from ringfence.policy.compile import compile_policy
from ringfence.policy.load import load

FILES: Final = sorted(p for p in (CORPUS / "policy").glob("*") if p.name != "README.md")


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_file_means_what_its_name_says(path: Path) -> None:
    target = place(path.read_bytes())
    if path.name.startswith("refused-"):
        with pytest.raises(PolicyError) as info:
            load(target)
        assert info.value.line and str(info.value).isprintable(), info.value
    else:
        compile_policy(load(target), profile("7.2"))


def test_the_corpus_is_seeded() -> None:
    assert len([p for p in FILES if p.name.startswith("refused-")]) >= 40
