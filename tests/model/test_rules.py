"""The rule catalogue: every rule the model decides by is documented in docs/semantics.md, under the same id."""

from __future__ import annotations

import re
from pathlib import Path

from ringfence.model.rules import RULES_BY_ID, Mechanism, Rule

DOC = Path(__file__).resolve().parents[2] / "docs" / "semantics.md"


def _documented() -> set[str]:
    """Ids in the first column of the doc's rule tables."""
    found = set()
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        for cell in cells[1:3]:
            m = re.fullmatch(r"`([a-z0-9-]+\.[a-z0-9-]+)`", cell)
            if m:
                found.add(m.group(1))
    return found


def test_every_rule_is_documented_and_nothing_else() -> None:
    assert _documented() == set(RULES_BY_ID)


def test_ids_are_unique_and_stable_in_form() -> None:
    assert len(RULES_BY_ID) == len(Rule)
    for rule in Rule:
        assert re.fullmatch(r"[a-z][a-z0-9-]*\.[a-z0-9-]+", rule.id), rule.id
        assert isinstance(rule.mechanism, Mechanism) and rule.sentence and rule.reference


def test_user_text_cites_no_internal_reference() -> None:
    for rule in Rule:
        assert "§" not in rule.sentence, rule
