"""Every ``--help`` pinned as golden text, and checked for what help may cite.

A change to help text shows up in review as a change to ``tests/cli/golden/``. Regenerate after a deliberate
change with ``RINGFENCE_UPDATE_GOLDEN=1 pytest tests/cli/test_help.py`` and read the diff.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

from ringfence.cli.main import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden")
UPDATE = os.environ.get("RINGFENCE_UPDATE_GOLDEN") == "1"
#: Subcommands with actions of their own, each action's help pinned too.
ACTIONS = {"scenario": ("run", "diff", "generate", "explain"), "vm": ("fetch", "run", "list")}
COMMANDS = [(), *[(name.replace("_", "-"),) for name in SUBCOMMANDS],
            *[(name, action) for name, actions in ACTIONS.items() for action in actions]]


def _help(words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        main([*words, "--help"])
    assert exited.value.code == 0
    return out.getvalue()


def _name(words: tuple[str, ...]) -> str:
    return "-".join(("ringfence", *words))


@pytest.mark.parametrize("words", COMMANDS, ids=_name)
def test_help_is_pinned(words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    text = _help(words, monkeypatch)
    golden = GOLDEN / f"{_name(words)}.txt"
    if UPDATE:
        golden.write_text(text)
    assert golden.exists(), f"no golden help for {' '.join(words)}: run with RINGFENCE_UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"{golden.name} differs: regenerate with RINGFENCE_UPDATE_GOLDEN=1 if meant"


def test_no_stale_golden_files() -> None:
    expected = {f"{_name(words)}.txt" for words in COMMANDS}
    assert {p.name for p in GOLDEN.glob("*.txt")} <= expected


@pytest.mark.parametrize("words", COMMANDS, ids=_name)
def test_help_cites_only_what_ships(words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    text = _help(words, monkeypatch)
    for cited in re.findall(r"(?:docs|examples|tests|scripts)/[\w./-]*\w", text):
        assert (ROOT / cited).exists(), f"help cites {cited}, which does not ship"
    assert "§" not in text and "kernel-semantics" not in text, "help cites the internal spec"
    assert not re.search(r"/(?:work|home|root)/", text), "help shows a machine path"
    assert "examples:" in text or words == () or words in {("vm",), ("scenario",)}, "no examples in help"
