"""Random TOML and JSON documents for the differential tests: values, and many ways of writing them.

``toml_text(value, r)`` writes a dict as TOML choosing, at random, between every construct that can express it
(headers, dotted keys, inline tables, arrays of tables, the four string forms, integer bases, date spellings),
so that the reader under test meets them all; ``tomllib`` then says what the text means. ``mutate`` breaks
texts in small ways so that both readers also meet near-valid input.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import string
from typing import Any

from hypothesis import strategies as st

_BARE = string.ascii_letters + string.digits + "_-"


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types (``True`` is not ``1``, NaN equals NaN, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dt.datetime):
        return a == b and a.utcoffset() == b.utcoffset() and (a.tzinfo is None) == (b.tzinfo is None)
    return bool(a == b)


# -- values ---------------------------------------------------------------------------------------------------------

keys = st.one_of(st.text(_BARE, min_size=1, max_size=6), st.text(max_size=6),
                 st.sampled_from(["a", "b", "a.b", "1", "true", "-", "é", " ", ""]))
_texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", "'", '"', "'''", '"""', "\\", "\n", "\r\n", "\t", "\x7f", "a\x00b", "#", "\u2028"])
_times = st.times(timezones=st.none())
_datetimes = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31),
                          timezones=st.none() | st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)),
                                                                  dt.timezone(-dt.timedelta(hours=7))]))
scalars = st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                    _texts, st.dates(min_value=dt.date(1, 1, 1)), _times, _datetimes)


def documents(max_leaves: int = 25) -> st.SearchStrategy[dict[str, Any]]:
    """Nested dicts of TOML values (lists may mix types, as TOML 1.0 allows)."""
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(keys, inner, max_size=4), max_leaves=max_leaves)
    return st.dictionaries(keys, values, max_size=6)


# -- TOML writing ---------------------------------------------------------------------------------------------------

def _key(k: str, r: random.Random) -> str:
    if k and all(c in _BARE for c in k) and r.random() < 0.8:
        return k
    if "'" not in k and all(c >= " " and c != "\x7f" for c in k) and r.random() < 0.4:
        return f"'{k}'"
    return _basic(k, r)


def _basic(s: str, r: random.Random) -> str:
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c < " " or c == "\x7f":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}.get(c, f"\\u{ord(c):04x}")
                       if c != "\t" or r.random() < 0.5 else c)
        elif ord(c) > 127 and r.random() < 0.3:
            out.append(f"\\U{ord(c):08x}" if r.random() < 0.5 else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else c)
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _string(s: str, r: random.Random) -> str:
    x = r.random()
    clean = all((c >= " " and c != "\x7f") or c == "\t" for c in s)
    if x < 0.2 and clean and "'" not in s:
        return f"'{s}'"
    if x < 0.35 and all((c >= " " and c != "\x7f") or c in "\t\n" for c in s) and "'''" not in s \
            and not s.endswith("'") and "\r" not in s:
        return "'''" + ("\n" if r.random() < 0.5 else "") + s + "'''"
    if x < 0.5 and "\r" not in s:
        body = _basic(s, r)[1:-1].replace("\\n", "\n") if r.random() < 0.5 else _basic(s, r)[1:-1]
        if body.endswith('"') and not body.endswith('\\"'):
            return _basic(s, r)
        cont = "\\\n   " if r.random() < 0.3 else ""
        return '"""' + ("\n" if r.random() < 0.5 else "") + cont + body + '"""'
    return _basic(s, r)


def _int(n: int, r: random.Random) -> str:
    x = r.random()
    if n >= 0 and x < 0.15:
        return hex(n)
    if n >= 0 and x < 0.25:
        return "0o" + format(n, "o")
    if n >= 0 and x < 0.3:
        return "0b" + format(n, "b")
    text = str(n)
    if x < 0.4 and len(text.lstrip("-")) > 3:
        digits = text.lstrip("-")
        text = text[: len(text) - len(digits)] + digits[0] + "_" + digits[1:]
    if n >= 0 and x > 0.95:
        text = "+" + text
    return text


def _float(f: float, r: random.Random) -> str:
    if math.isnan(f):
        return r.choice(["nan", "+nan", "-nan"])
    if math.isinf(f):
        return ("-" if f < 0 else r.choice(["", "+"])) + "inf"
    text = repr(f)
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exp = text.split("e")
        text = f"{mantissa}.0e{exp}" if r.random() < 0.5 else text
    return text


def _datetime(v: Any, r: random.Random) -> str:
    if isinstance(v, dt.datetime):
        text = v.isoformat(sep=r.choice(["T", " ", "t"]))
        if v.tzinfo is dt.UTC and r.random() < 0.5:
            text = text.removesuffix("+00:00") + r.choice(["Z", "z"])
        return text
    return v.isoformat()


def _value(v: Any, r: random.Random, depth: int) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return _int(v, r)
    if isinstance(v, float):
        return _float(v, r)
    if isinstance(v, str):
        return _string(v, r)
    if isinstance(v, dt.date | dt.time):
        return _datetime(v, r)
    if isinstance(v, list):
        sep = ",\n  " if r.random() < 0.3 else ", "
        tail = "," if v and r.random() < 0.3 else ""
        comment = " # c\n" if r.random() < 0.2 else ""
        return "[" + comment + sep.join(_value(x, r, depth + 1) for x in v) + tail + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k, r)} = {_value(x, r, depth + 1)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def toml_text(doc: dict[str, Any], r: random.Random) -> str:
    """``doc`` written as TOML, constructs chosen by ``r``."""
    lines: list[str] = []
    _table(doc, [], lines, r)
    return "\n".join(lines) + ("\n" if r.random() < 0.8 else "")


def _table(doc: dict[str, Any], path: list[str], lines: list[str], r: random.Random) -> None:
    later: list[tuple[str, Any]] = []
    for k, v in doc.items():
        if (isinstance(v, dict) and v and r.random() < 0.5) or (_is_table_array(v) and r.random() < 0.6):
            later.append((k, v))
        elif isinstance(v, dict) and v and r.random() < 0.3 and all(not isinstance(x, dict) for x in v.values()):
            for sub_k, sub_v in v.items():  # dotted keys
                lines.append(f"{_key(k, r)} . {_key(sub_k, r)} = {_value(sub_v, r, 1)}")
        else:
            lines.append(f"{_key(k, r)} = {_value(v, r, 1)}" + (" # note" if r.random() < 0.1 else ""))
    for k, v in later:
        sub = [*path, k]
        header = ".".join(_key(p, r) for p in sub)
        if isinstance(v, dict):
            lines.append(f"\n[{header}]")
            _table(v, sub, lines, r)
        else:
            for item in v:
                lines.append(f"\n[[{header}]]")
                _table(item, sub, lines, r)


# -- JSON writing ---------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=10)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=25)


def json_text(value: Any, r: random.Random) -> str:
    indent = r.choice([None, 1, 2, "\t"])
    return json.dumps(value, indent=indent, ensure_ascii=r.random() < 0.5)


# -- mutations ------------------------------------------------------------------------------------------------------

_ALPHABET = "[]{}=,.\"'#\n \t\\0123456789abcxyz_-+:TZe"


def mutate(text: str, r: random.Random, edits: int = 3) -> str:
    """``text`` with a few random edits: a character deleted, inserted or replaced, a line duplicated or
    swapped, a slice repeated."""
    for _ in range(edits):
        if not text:
            text = r.choice(_ALPHABET)
            continue
        at = r.randrange(len(text))
        kind = r.randrange(6)
        if kind == 0:
            text = text[:at] + text[at + 1:]
        elif kind == 1:
            text = text[:at] + r.choice(_ALPHABET) + text[at:]
        elif kind == 2:
            text = text[:at] + r.choice(_ALPHABET) + text[at + 1:]
        elif kind == 3:
            lines = text.split("\n")
            i = r.randrange(len(lines))
            lines.insert(i, lines[i])
            text = "\n".join(lines)
        elif kind == 4:
            lines = text.split("\n")
            i, j = r.randrange(len(lines)), r.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        else:
            end = min(len(text), at + r.randint(1, 8))
            text = text[:end] + text[at:end] + text[end:]
    return text
