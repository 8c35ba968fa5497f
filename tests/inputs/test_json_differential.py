"""The positioned JSON reader against ``json.loads`` made strict (no NaN/Infinity, no repeated keys, no lone
surrogates): the same values on every valid document, and both refuse the same invalid ones."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inputs_gen import json_text, json_values, mutate, same

from ringfence.errors import InputError
from ringfence.inputs.jsondoc import parse_json
from ringfence.inputs.nodes import plain
from ringfence.scenario.generate import generate_many


def _reject(*_: Any) -> Any:
    raise ValueError("not strict JSON")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("repeated key")
    return dict(pairs)


def _lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_lone_surrogate(v) for v in value)
    return False


def strict_loads(text: str) -> Any:
    value = json.loads(text, parse_constant=_reject, object_pairs_hook=_pairs)
    if _lone_surrogate(value):
        raise ValueError("lone surrogate")
    return value


def _agree(text: str) -> None:
    try:
        expected = strict_loads(text)
    except (ValueError, RecursionError):
        expected = ValueError
    try:
        got = plain(parse_json(text, "t.json"))
    except InputError:
        got = ValueError
    if expected is ValueError or got is ValueError:
        assert expected is got, f"json {'refused' if expected is ValueError else 'accepted'}: {text!r}"
    else:
        assert same(expected, got), text


@settings(max_examples=400)
@given(json_values, st.randoms(use_true_random=False))
def test_generated_documents_read_the_same(value: Any, r: random.Random) -> None:
    _agree(json_text(value, r))


@settings(max_examples=600)
@given(json_values, st.randoms(use_true_random=False), st.integers(1, 4))
def test_mutated_documents_are_judged_the_same(value: Any, r: random.Random, edits: int) -> None:
    _agree(mutate(json_text(value, r), r, edits))


GENERATED = [json.dumps(d, indent=1) for d in generate_many(7, 20)]


@pytest.mark.parametrize("index", range(len(GENERATED)))
def test_generated_scenarios_read_the_same(index: int) -> None:
    _agree(GENERATED[index])


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', "NaN", "[Infinity]", "-Infinity", '"\\ud800"', '"\\udc00x"',
                                  '"\\ud800\\u0041"', "[1,]", "{,}", "01", "1.", ".5", "+1", "'a'", '"\x01"',
                                  "[1] [2]", "", " ", "tru", '{"a" 1}', '{a: 1}', "[", '"\\x41"', "\ufeff1",
                                  "1e", "-", '"\\u12"'])
def test_invalid_cases(text: str) -> None:
    _agree(text)
    with pytest.raises(InputError):
        parse_json(text, "t.json")


@pytest.mark.parametrize("text", ['{"a": [1, 2.5, -0, -0.0, 1e400, true, false, null, "\\ud83d\\ude00\\/"]}',
                                  "  [ ]  ", '"\x7f"', "123456789012345678901234567890", '{"": {}}'])
def test_valid_cases(text: str) -> None:
    _agree(text)
    parse_json(text, "t.json")


def test_corpus_json_files(tmp_path: Path) -> None:
    for doc in generate_many(3, 5):
        text = json.dumps(doc)
        assert same(json.loads(text), plain(parse_json(text, "g.json")))
