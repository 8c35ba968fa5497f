"""The schema layer: types and ranges checked, nothing truncated or masked, names with the closest suggestion."""

from __future__ import annotations

import pytest

from ringfence.errors import InputError
from ringfence.inputs.nodes import Node
from ringfence.inputs.position import Pos
from ringfence.inputs.schema import U8, U64, Bits, Bool, Choice, Either, Fields, Int, ListOf, MapOf, Str, label
from ringfence.inputs.suggest import closest, did_you_mean
from ringfence.inputs.toml import parse_toml


def node(text: str) -> Node:
    """The value of ``v = <text>`` in a one-line document ``f.toml``."""
    value = parse_toml(f"v = {text}\n", "f.toml").get("v")
    assert value is not None
    return value


def fails(schema: object, text: str) -> str:
    with pytest.raises(InputError) as info:
        schema.read(node(text), "`v`")  # type: ignore[attr-defined]
    assert str(info.value).startswith("f.toml:1:5: `v`: ")
    return info.value.message


def test_ints_refuse_booleans_fractions_and_out_of_range() -> None:
    schema = Int(0, 255)
    assert schema.read(node("0x1f"), "`v`") == 31
    assert "found the boolean true" in fails(schema, "true")
    assert "fractions are not rounded" in fails(schema, "6.9")
    assert "write it without a fraction" in fails(schema, "6.0")
    assert "-1 is out of range 0..255" in fails(schema, "-1")
    assert "256 is out of range" in fails(schema, "256")
    assert "found the string `6`" in fails(schema, '"6"')
    assert "found an array" in fails(schema, "[6]")


def test_integer_text_reaches_u64() -> None:
    schema = Int(0, U64, text=True)
    assert schema.read(node('"0xffff_ffff_ffff_ffff"'), "`v`") == U64
    assert schema.read(node("9223372036854775807"), "`v`") == 2**63 - 1
    assert "out of range" in fails(schema, '"0x1_0000_0000_0000_0000"')
    assert "is not an integer" in fails(schema, '"-1"')
    assert "is not an integer" in fails(schema, '"12abc"')


def test_strings_refuse_control_characters_unless_lines() -> None:
    assert "control or invisible character `\\x1b`" in fails(Str(), '"a\\u001bb"')
    assert "control or invisible character `\\u202e`" in fails(Str(), '"a\\u202eb"')
    assert Str(lines=True).read(node('"a\\nb\\tc"'), "`v`") == "a\nb\tc"
    assert "longer than 3" in fails(Str(3), '"abcd"')
    assert "must not be empty" in fails(Str(min_len=1), '""')


def test_choice_suggests_the_closest_name() -> None:
    schema = Choice({"NOP": 0, "OPENAT": 18, "OPENAT2": 28}, what="opcode", prefixes=("IORING_OP_",))
    assert schema.read(node('"ioring_op_openat"'), "`v`") == 18
    assert "unknown opcode `OPENATT`; did you mean `OPENAT`?" in fails(schema, '"OPENATT"')
    assert "expected one of `NOP`, `OPENAT`, `OPENAT2`" in fails(schema, '"WRITE"')


def test_bits_names_numbers_lists_and_width() -> None:
    schema = Bits({"ASYNC": 16, "IO_LINK": 4}, U8, prefixes=("IOSQE_",))
    assert schema.read(node('"ASYNC|IO_LINK"'), "`v`") == 20
    assert schema.read(node('"iosqe_async | 0x40"'), "`v`") == 0x50
    assert schema.read(node('["ASYNC", "IO_LINK"]'), "`v`") == 20
    assert schema.read(node('""'), "`v`") == 0
    assert schema.read(node("255"), "`v`") == 255
    assert "unknown flag `ASYNK`; did you mean `ASYNC`?" in fails(schema, '"ASYNK"')
    assert "`0x100` is out of range 0..255" in fails(schema, '"0x100"')
    assert "256 is out of range" in fails(schema, "256")
    assert "-1 is out of range" in fails(schema, "-1")


def test_lists_bounded_and_labelled_per_element() -> None:
    schema = ListOf(Int(0, 9), 3)
    assert schema.read(node("[1, 2]"), "`v`") == (1, 2)
    assert "4 values, at most 3 allowed" in fails(schema, "[1, 2, 3, 4]")
    with pytest.raises(InputError) as info:
        schema.read(node("[1, 20]"), "`v`")
    assert str(info.value) == "f.toml:1:9: `v[1]`: 20 is out of range 0..9"
    assert "exactly 2 needed" in fails(ListOf(Int(0, 9), 2, 2), "[1]")


def test_either_picks_by_type() -> None:
    schema = Either((Choice({"A": 1}), Int(0, 9)))
    assert schema.read(node('"A"'), "`v`") == 1 and schema.read(node("7"), "`v`") == 7
    assert "expected a name name or an integer in 0..9, found the boolean true" in fails(schema, "true")
    assert Bool().read(node("false"), "`v`") is False
    assert "expected true or false" in fails(Bool(), "1")


def test_map_of_keys_and_duplicates() -> None:
    schema = MapOf(lambda text, pos, name: int(text, 0), Str(), 4)
    assert schema.read(node('{ 1 = "a", 0x2 = "b" }'), "`v`") == ((1, "a"), (2, "b"))
    with pytest.raises(InputError, match="keys `1` and `0x1` are the same"):
        schema.read(node('{ 1 = "a", "0x1" = "b" }'), "`v`")


def test_fields_refuse_unknown_keys_with_the_closest_name() -> None:
    table = parse_toml('do = "ring"\nexpext = "ok"\n', "s.toml")
    with pytest.raises(InputError) as info:
        Fields(table, allowed=("do", "expect", "ring"), what="a step")
    assert str(info.value) == "s.toml:2:1: unknown key `expext` in a step; did you mean `expect`?"
    fields = Fields(parse_toml('a = 1\nb = 2\nc = "x"\n', "s.toml"), allowed=("a", "b", "c", "d"), path="t")
    assert fields.get("a", Int(0, 9), None) == 1 and fields.get("d", Int(0, 9), 5) == 5
    assert fields.pos("c") == Pos("s.toml", 3, 5) and fields.key_pos("c") == Pos("s.toml", 3, 1)
    with pytest.raises(InputError, match="`t` needs `d`"):
        fields.need("d", Int(0, 9))
    with pytest.raises(InputError, match=r"s\.toml:3:5: `t\.c`: expected an integer"):
        fields.need("c", Int(0, 9))
    with pytest.raises(InputError, match="`a` and `b` cannot both be given"):
        fields.one_of("a", "b")
    assert fields.one_of("a", "d") == "a"


def test_suggestions_and_labels() -> None:
    assert closest("expext", ["expect", "task", "do"]) == "expect"
    assert closest("RING", ["ring"]) == "ring"
    assert closest("zzzz", ["expect"]) is None
    assert did_you_mean("zzzz", [str(i) for i in range(20)]) == ""
    assert label("sqes", 2, "ud") == "`sqes[2].ud`"
