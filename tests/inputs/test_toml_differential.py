"""The positioned TOML reader against ``tomllib``: the same values on every valid document, and both refuse the
same invalid ones (generated documents, mutated documents, the scenario corpus, hand-picked edge cases)."""

from __future__ import annotations

import random
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inputs_gen import documents, mutate, same, toml_text

from ringfence.errors import InputError
from ringfence.inputs.nodes import plain
from ringfence.inputs.toml import parse_toml

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted([*ROOT.glob("tests/corpus/**/*.toml"), *ROOT.glob("examples/*.toml"), ROOT / "pyproject.toml"])


def _both(text: str) -> tuple[Any, Any]:
    """(tomllib's value or None, ours or None); None means the reader refused the text."""
    try:
        expected = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError):
        expected = None
    try:
        got = plain(parse_toml(text, "t.toml"))
    except InputError:
        got = None
    return expected, got


def _agree(text: str) -> None:
    expected, got = _both(text)
    assert (expected is None) == (got is None), f"tomllib {'refused' if expected is None else 'accepted'}: {text!r}"
    if expected is not None:
        assert same(expected, got), text


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_corpus_documents_read_the_same(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert same(tomllib.loads(text), plain(parse_toml(text, str(path))))


@settings(max_examples=400)
@given(documents(), st.randoms(use_true_random=False))
def test_generated_documents_read_the_same(doc: dict[str, Any], r: random.Random) -> None:
    text = toml_text(doc, r)
    expected, got = _both(text)
    assert expected is not None, text  # the writer only writes valid TOML
    assert same(expected, got), text


@settings(max_examples=600)
@given(documents(12), st.randoms(use_true_random=False), st.integers(1, 4))
def test_mutated_documents_are_judged_the_same(doc: dict[str, Any], r: random.Random, edits: int) -> None:
    _agree(mutate(toml_text(doc, r), r, edits))


@settings(max_examples=300)
@given(st.sampled_from(CORPUS), st.randoms(use_true_random=False), st.integers(1, 3))
def test_mutated_corpus_files_are_judged_the_same(path: Path, r: random.Random, edits: int) -> None:
    _agree(mutate(path.read_text(encoding="utf-8"), r, edits))


VALID = [
    'a = 1979-05-27T07:32:00.999999999-07:00', 'a = 1979-05-27 07:32:00Z', 'a = 1979-05-27t07:32:00z',
    'a = 07:32:00.5', 'a = 1979-05-27', 'a = """\nx\\\n   y""""', "a = '''x''''", 'a = """a""\"""',
    'a = [1,\n#c\n2,]', 'a.b.c = 1\na.d = 2\n[a.e]', '[[x]]\n[x.y]\n[[x]]\n[x.y]', 'a = {b.c = 1, b.d = 2}',
    'a = +inf\nb = -nan', '"a b".c = 1', 'a = 1e400',
    "a = '\t'", 'a = "\\u00e9\\U0001F600"', '[a.b.c]\n[a]\nb.d = 1', '[a.b]\n[a]', '"" = 1', "'' = 2",
    'a = 0o777\nb = 0b1010\nc = 0xDEAD_beef\nd = 1_000\ne = -0\nf = +0.0\ng = 6.626e-34\nh = 1E6',
    '[ a . b ]\nc = 1', 'a = [[1, 2], ["x", {y = 1}]]', 'a = []\nb = {}', 'a = 1\r\nb = 2\r\n',
    '# only a comment', '', '\n\n', 'a = """\\\n  \\\n  x"""', 'a = "\\"\\\\\\b\\f\\n\\r\\t"',
    '[a]\nb.c = 1\n[a.b.d]', 'a = 1979-05-27T00:32:00.1234567', 'x = 9223372036854775807',
    'x = -9223372036854775808', '[[a.b]]\n[a]\nc = 1', "a = '''\n\n'''",
]
INVALID = [
    'a = 1\na = 2', '[a]\n[a]', 'a = {b = 1}\n[a]', 'a.b = 1\n[a]', '[a.b]\n[a]\nb.c = 1', 'a = [1]\n[[a]]',
    '[a]\n[[a]]', '[[a]]\n[a]', 'a = 1\n[a.b]', 'a = {b = 1, b = 2}', 'a = {b = {c = 1}, b.d = 2}',
    'a = {b = 1,}', 'a = {b = 1\n}', 'a = [1 2]', 'a = 01', 'a = 0x', 'a = 1.', 'a = .5', 'a = 1e', 'a = +0x1',
    'a = 1__0', 'a = _1', 'a = 1979-13-01', 'a = 1979-05-27T25:00:00', 'a = 07:32', 'a = 1979-05-27T07:32:00+24:00',
    'a = "\\x41"', 'a = "\\u12"', 'a = "\\uD800"', 'a = "a\nb"', "a = 'a\nb'", 'a = "\x01"', 'a = 1 # \x01',
    'a = "abc', "a = '''abc", 'a = """abc""', 'a = tru', 'a = truex', 'a = infinity', 'a =', '= 1', 'a b = 1',
    '[a', '[[a]', '[ [a]]', 'a = 1 b = 2', 'a.b = 1\na.b.c = 2', 'a = 1\r', 'a = "\r"', 'a = """\\ x"""',
    '[a.b]\nc = 1\n[a]\nb = 2', 'a = {b = 1}\na.c = 2', '\ufeffa = 1', 'a = 1979-05-27T07:32:00.', 'a = nan1',
    'a = [1,,2]', 'a = [,]', 'a = {,}', '[]', '[[]]', 'a.b.c = 1\n[a.b]',
    "a = '''x''''''", 'a = """x""""""', 'a = 0x_1f',
]


@pytest.mark.parametrize("text", VALID)
def test_valid_edge_cases(text: str) -> None:
    expected, got = _both(text)
    assert expected is not None, "the case itself is wrong"
    assert same(expected, got)


@pytest.mark.parametrize("text", INVALID)
def test_invalid_edge_cases(text: str) -> None:
    expected, got = _both(text)
    assert expected is None, "the case itself is wrong"
    assert got is None
