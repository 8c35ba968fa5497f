"""The closest valid name for a misspelt one, so errors can say "did you mean `expect`?"."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from ringfence.inputs.text import token


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely stands for: a case-insensitive equal, else the nearest by similarity
    (ratio at least 0.6), else None."""
    options = list(dict.fromkeys(choices))
    folded = {c.casefold(): c for c in options}
    if word.casefold() in folded:
        return folded[word.casefold()]
    found = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if found:
        return found[0]
    found = difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.6)
    return folded[found[0]] if found else None


def did_you_mean(word: str, choices: Iterable[str], *, listing: int = 12) -> str:
    """``"; did you mean `x`?"``, or, with no close match, ``"; expected one of a, b, c"`` when there are at
    most ``listing`` choices; empty otherwise. Meant to follow a message."""
    options = sorted(dict.fromkeys(choices))
    near = closest(word, options)
    if near is not None:
        return f"; did you mean {token(near)}?"
    if options and len(options) <= listing:
        return "; expected one of " + ", ".join(token(o) for o in options)
    return ""
