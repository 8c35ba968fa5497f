"""Every table, key and value knows its file, line and column; errors read ``file:line:col: message``."""

from __future__ import annotations

import pytest

from ringfence.errors import InputError
from ringfence.inputs.jsondoc import parse_json
from ringfence.inputs.nodes import Array, Scalar, Table, from_plain
from ringfence.inputs.position import Pos
from ringfence.inputs.toml import parse_toml

TOML = """\
# comment
[scenario]
name = "x"   # trailing

[[step]]
do = "ring"
a.b.c = [1,
  { k = "v" }]

[[step]]
expect = { submitted = 1, cqes = { 1 = "EACCES" } }
"""


def test_toml_positions() -> None:
    doc = parse_toml(TOML, "f.toml")
    assert doc.pos == Pos("f.toml", 1, 1)
    head = doc.members["scenario"]
    assert head.key_pos == Pos("f.toml", 2, 2) and head.value.pos == Pos("f.toml", 2, 1)
    assert isinstance(head.value, Table) and head.value.members["name"].value.pos == Pos("f.toml", 3, 8)
    steps = doc.get("step")
    assert isinstance(steps, Array) and [t.pos.line for t in steps] == [5, 10]
    first = steps.items[0]
    assert isinstance(first, Table)
    a = first.members["a"]
    assert a.key_pos == Pos("f.toml", 7, 1)
    assert isinstance(a.value, Table)
    b = a.value.members["b"]
    assert b.key_pos == Pos("f.toml", 7, 3)
    assert isinstance(b.value, Table)
    c = b.value.members["c"].value
    assert isinstance(c, Array) and c.pos == Pos("f.toml", 7, 9)
    assert c.items[0].pos == Pos("f.toml", 7, 10)
    inline = c.items[1]
    assert isinstance(inline, Table) and inline.pos == Pos("f.toml", 8, 3)
    assert inline.members["k"].key_pos == Pos("f.toml", 8, 5) and inline.members["k"].value.pos.column == 9
    second = steps.items[1]
    assert isinstance(second, Table)
    expect = second.get("expect")
    assert isinstance(expect, Table)
    cqes = expect.get("cqes")
    assert isinstance(cqes, Table) and cqes.members["1"].key_pos == Pos("f.toml", 11, 36)


def test_json_positions() -> None:
    doc = parse_json('{\n  "a": [1,\n   {"b": "c"}],\n  "d": null\n}', "f.json")
    assert isinstance(doc, Table) and doc.pos == Pos("f.json", 1, 1)
    a = doc.members["a"]
    assert a.key_pos == Pos("f.json", 2, 3) and a.value.pos == Pos("f.json", 2, 8)
    assert isinstance(a.value, Array)
    inner = a.value.items[1]
    assert isinstance(inner, Table) and inner.members["b"].value.pos == Pos("f.json", 3, 10)
    d = doc.get("d")
    assert isinstance(d, Scalar) and d.value is None and d.pos == Pos("f.json", 4, 8)


def test_columns_count_characters_and_crlf_keeps_lines() -> None:
    doc = parse_toml('"é" = "ü"\r\nx = 1\r\n', "u.toml")
    assert doc.members["é"].value.pos == Pos("u.toml", 1, 7)
    assert doc.members["x"].value.pos == Pos("u.toml", 2, 5)


@pytest.mark.parametrize(("text", "where", "words"), [
    ('a = 1\nb = [1,\n  2 3]\n', "t.toml:3:5", "expected `,` or `]`"),
    ('a = 1\na = 2\n', "t.toml:2:1", "already defined (line 1)"),
    ('[x]\n[x]\n', "t.toml:2:1", "table `x` is already defined (line 1)"),
    ('a = "x\x1by"\n', "t.toml:1:7", "control character \\x1b"),
    ('a = "\\q"\n', "t.toml:1:6", "invalid escape `\\\\q`"),
])
def test_toml_errors_are_positioned(text: str, where: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        parse_toml(text, "t.toml")
    assert str(info.value).startswith(where + ": ") and words in str(info.value)
    assert "\x1b" not in str(info.value)


@pytest.mark.parametrize(("text", "where", "words"), [
    ('{"a": 1,\n "a": 2}', "t.json:2:2", "appears twice"),
    ('[1,\n 2,]', "t.json:2:4", "expected a value"),
    ('{"a": NaN}', "t.json:1:7", "NaN and Infinity"),
    ('[1] x', "t.json:1:5", "end of the document"),
])
def test_json_errors_are_positioned(text: str, where: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        parse_json(text, "t.json")
    assert str(info.value).startswith(where + ": ") and words in str(info.value)


def test_plain_documents_have_no_line() -> None:
    node = from_plain({"a": [1, {"b": 2}], 3: "x"}, "mem")
    assert isinstance(node, Table) and node.pos == Pos("mem") and str(node.pos) == "mem"
    assert "3" in node
    with pytest.raises(InputError):
        from_plain({"a": object()}, "mem")
    with pytest.raises(InputError):
        from_plain({"a": b"bytes"}, "mem")
