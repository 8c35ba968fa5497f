"""Making policy text (names, rule labels, reasons) safe inside generated comments, strings and identifiers."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ringfence.policy.plan import Registration


def one_line(text: str) -> str:
    """Control characters (newlines included) become spaces; runs of spaces shrink to one."""
    return re.sub(r"\s+", " ", "".join(c if c.isprintable() else " " for c in text)).strip()


def c_comment(text: str) -> str:
    """Text that cannot end a C comment, start a nested one, or form a trigraph (C11 still has them). Control
    characters become spaces; other spacing is kept."""
    flat = "".join(c if c.isprintable() else " " for c in text)
    return flat.replace("*/", "* /").replace("/*", "/ *").replace("??", "? ?")


def identifier(name: str) -> str:
    """A C and Python identifier made from a policy name: ``web-client`` gives ``web_client``."""
    ident = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").lower() or "policy"
    return f"p_{ident}" if ident[0].isdigit() else ident


def rule_note(registration: Registration, comment: str, reasons: Mapping[str, str]) -> str:
    """An instruction's comment, with the reasons of the rules it names: the Plan labels the first instruction of
    a filter with the labels of its rules (joined by ``, ``)."""
    if comment and comment == ", ".join(registration.rules):
        return "; ".join(f"{label}: {reasons[label]}" if reasons.get(label) else label
                         for label in registration.rules)
    return comment


def rules_with_reasons(registration: Registration, reasons: Mapping[str, str]) -> list[str]:
    return [f"{label}: {reasons[label]}" if reasons.get(label) else label for label in registration.rules]
