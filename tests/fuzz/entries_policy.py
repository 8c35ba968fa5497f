"""Fuzzed entry point: the policy loader (``ringfence.policy.load``), then the compiler on whatever loads.

Input: a first line naming the language (``toml`` or ``json``; anything else is TOML), then the file's bytes.
Each input is written as ``policies/input.<suffix>`` in a workspace whose root (marked by ``.ringfence-root``)
holds policies to include (good ones, conflicting ones, a cycle, a binary file, a directory, a FIFO, a link to
``/dev/zero``, a link and a file outside the root, a file over the size cap), so ``include`` resolves, escapes
or fails. The loader may raise only :class:`InputError` (``PolicyError``, ``UnreadableError``), with a
printable one-line message that names a position and quotes nothing of a file outside the root; a policy that
loads is compiled for two kernels, where only :class:`PolicyError` may come out.

Inputs: random TOML-ish token soup and text, example and corpus policies with random edits (as TOML and as
JSON), and random policies from ``tests/policy/policygen.py`` with one value, key or section replaced by
something hostile, written as TOML or JSON.
"""

from __future__ import annotations

import atexit
import copy
import json
import math
import os
import random
import shutil
import tempfile
import tomllib
from functools import cache
from pathlib import Path
from typing import Any, Final

import fuzz_harness
from fuzz_harness import Entry, FuzzError, register
from hypothesis import strategies as st
from policygen import policy_data

from ringfence.abi.profiles import profile
from ringfence.errors import InputError, PolicyError
from ringfence.policy.compile import compile_policy
from ringfence.policy.load import load

REPO: Final = Path(__file__).resolve().parents[2]
POLICIES: Final = sorted(p for p in [*(REPO / "examples" / "policies").glob("*.toml"),
                                     *(REPO / "tests" / "corpus" / "policies").rglob("*.toml")]
                         if p.stat().st_size < 20_000)
KERNELS: Final = (profile("7.2"), profile("7.0"))
#: Written into the file outside the root: no message may ever quote it.
SECRET: Final = "SECRET-OUTSIDE-THE-ROOT"

_FIXTURES: Final = {
    "base.toml": '[policy]\ndefault = "deny"\nkernel = "7.2+"\n[[allow]]\nops = ["READ", "WRITE"]\n',
    "allow.toml": '[policy]\ndefault = "allow"\n[[deny]]\nop = "SOCKET"\nsocket.family = "AF_PACKET"\n',
    "flags.toml": '[flags]\nallowed = ["IO_LINK"]\n[register]\nallowed = ["FILES"]\n',
    "flags2.toml": '[flags]\nallowed = ["ASYNC"]\n',
    "rules.json": '{"allow": [{"op": "CONNECT", "connect": {"port": [80, 443]}}]}',
    "loop-a.toml": '[policy]\ninclude = ["loop-b.toml"]\n',
    "loop-b.toml": '[policy]\ninclude = ["loop-a.toml"]\n',
    "nested/deep.toml": '[policy]\ninclude = ["../base.toml"]\n[[deny]]\nop = "NOP"\n',
    "broken.toml": '[policy\nname = "\x1b[2J"\n',
}


@cache
def workspace() -> Path:
    """The policies directory of a marked root with include fixtures (made once per process)."""
    top = Path(tempfile.mkdtemp(prefix="rf-fuzz-policy-"))
    atexit.register(shutil.rmtree, top, True)
    (top / "outside.toml").write_text(f'[policy]\nname = "{SECRET}"\n[[{SECRET}]]\n')
    root = top / "root"
    policies = root / "policies"
    (policies / "nested").mkdir(parents=True)
    (root / ".ringfence-root").write_text("")
    for name, text in _FIXTURES.items():
        (policies / name).write_text(text)
    (policies / "binary.toml").write_bytes(b"\x00\xff\xfe" * 100)
    (policies / "dir.toml").mkdir()
    os.mkfifo(policies / "fifo.toml")
    (policies / "zero.toml").symlink_to("/dev/zero")
    (policies / "out.toml").symlink_to(top / "outside.toml")
    with open(policies / "big.toml", "wb") as f:
        f.truncate(2 << 20)
    return policies


def split(data: bytes) -> tuple[str, bytes]:
    """The input's language and file bytes."""
    head, _, body = data.partition(b"\n")
    return (".json" if head.strip() == b"json" else ".toml"), body


def place(data: bytes) -> Path:
    """Write the input into the workspace as ``input.toml`` or ``input.json`` (the previous input removed)."""
    suffix, body = split(data)
    for old in ("input.toml", "input.json"):
        (workspace() / old).unlink(missing_ok=True)
    path = workspace() / f"input{suffix}"
    path.write_bytes(body)
    return path


def _policy(data: bytes) -> None:
    path = place(data)
    try:
        policy = load(path)
    except InputError as exc:
        text = str(exc)
        if not text.isprintable() or SECRET in text:
            raise FuzzError(f"message {text[:300]!r}") from None
        if not exc.line:
            raise FuzzError(f"no position in {text[:300]!r}") from None
        raise
    for kernel in KERNELS:
        try:
            compile_policy(policy, kernel)
        except PolicyError:
            continue


# -- inputs -----------------------------------------------------------------------------------------------------

_INCLUDES: Final = ("base.toml", "allow.toml", "flags.toml", "flags2.toml", "rules.json", "loop-a.toml",
                    "nested/deep.toml", "broken.toml", "binary.toml", "dir.toml", "fifo.toml", "zero.toml",
                    "out.toml", "big.toml", "input.toml", "input.json", "missing.toml", "../../outside.toml",
                    "../../../../../../etc/passwd", "/etc/passwd", "", ".", "a\x00b", "\x1b[2J.toml")
_TOKENS: Final = ("[policy]\n", "[[allow]]\n", "[[deny]]\n", "[flags]\n", "[register]\n", "[allow]\n", "name = ",
                  "default = ", "kernel = ", "target = ", "include = ", "op = ", "ops = ", "reason = ",
                  "socket.family = ", "socket.type = ", "socket.protocol = ", "open.flags = ", "open.mode = ",
                  "open.resolve = ", "connect.addr = ", "connect.port = ", "connect.family = ", "user_data = ",
                  "sqe_flags = ", "allowed = ", "required = ", "socket = ", "=", "[", "]", "{", "}", ",", "\n",
                  '"', "'", "#", ".", "|", '"deny"', '"allow"', '"7.2+"', '"ring"', '"SOCKET"', '"CONNECT"',
                  '"NOP"', '"OPENAT"', '"AF_INET"', '"SOCK_STREAM"', '"O_CREAT|O_RDWR"', '"10.0.0.0/8"', '"::1"',
                  '"ASYNC"', '"IO_LINK"', '"FILES"', "{ in = [", "{ range = [", "{ all = [", "{ mask = 7, equals = ",
                  "0", "1", "-1", "255", "256", "65536", "4294967296", "0x7f", '"0123"', '"0x__1"', "1e400", "6.9",
                  "inf", "nan", "true", "1979-05-27", "9" * 40, "\x00", "\x1b", "é", "\ud7ff", *(
                      json.dumps(name) for name in _INCLUDES))
_soup = st.lists(st.sampled_from(_TOKENS), max_size=40).map("".join)

_HOSTILE: Final = (0, -1, 1, 255, 256, 2**31, 2**63 - 1, -(2**63), 10**400, 6.9, math.inf, math.nan, True, "",
                   "x" * 300, "\x1b[31m", "\x00", "é", "SOCKT", "AF_INETT", "0123", "0x__1", "0x" + "f" * 90,
                   "1|2|FROB", "10.0.0.1/8", "10.0.0.0/33", "::ffff:0:0/96", "7.2", "99.0+", "rign", "alow", [],
                   [[[[1]]]], {}, {"in": []}, {"range": [5, 1]}, {"mask": 1, "equals": 2}, {"inn": [1]},
                   {"all": [0]}, ["NOP"] * 3, *_INCLUDES)
_hostile = st.one_of(st.sampled_from(_HOSTILE), st.integers(), st.text(max_size=12),
                     st.recursive(st.one_of(st.integers(-3, 300), st.text(max_size=4), st.booleans()),
                                  lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                                      st.sampled_from(["in", "not_in", "range", "family", "op", "x"]), inner,
                                      max_size=3), max_leaves=8))


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(value, dict):
        for key, sub in value.items():
            out += _paths(sub, (*here, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            out += _paths(sub, (*here, index))
    return out


def _spoil(data: dict[str, Any], r: random.Random, hostile: Any) -> None:
    """One place in a valid policy made hostile: a value replaced, a key dropped or misspelt, an include added."""
    paths = [p for p in _paths(data) if p]
    kind = r.randrange(5)
    if kind == 4 or not paths:
        head = data.setdefault("policy", {})
        if isinstance(head, dict):
            head["include"] = r.sample(_INCLUDES, r.randint(1, 2))
        return
    path = r.choice(paths)
    parent: Any = data
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if kind <= 1 or not isinstance(last, str):
        parent[last] = hostile
    elif kind == 2:
        del parent[last]
    else:
        parent[(last[:-1] or "q") + r.choice("xse_")] = parent.pop(last)


def _toml_key(key: str) -> str:
    return key if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("-inf" if value < 0 else "inf") if math.isinf(value) else repr(value)
    if isinstance(value, int | str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string or integer is TOML too
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"


def toml_policy(data: dict[str, Any]) -> str:
    """A policy structure as TOML, with ``[section]`` and ``[[allow]]`` headers where the shape allows."""
    lines = []
    for section, value in data.items():
        if isinstance(value, dict):
            lines += [f"[{_toml_key(section)}]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                lines += [f"[[{_toml_key(section)}]]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items())]
        else:
            lines.insert(0, f"{_toml_key(section)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _grammar_input(seed: int, hostile: Any, spoils: int, as_json: bool) -> bytes:
    """A random policy from ``policygen`` with ``spoils`` places made hostile, as JSON or TOML."""
    r = random.Random(seed)
    data = policy_data(seed)
    for _ in range(spoils):
        _spoil(data, r, copy.deepcopy(hostile))  # a copy: the same list twice could end up inside itself
    text = json.dumps(data, ensure_ascii=False) if as_json else toml_policy(data)  # NaN/Infinity: JSON refuses them
    return (b"json\n" if as_json else b"toml\n") + text.encode(errors="surrogatepass")


_grammar = st.builds(_grammar_input, st.integers(0, 2**32), _hostile, st.integers(0, 2), st.booleans())


_EDITS: Final = (b"[", b"]", b"{", b"}", b"=", b",", b'"', b"'", b"\n", b"#", b"-1", b"4294967296", b"1e400",
                 b"9" * 5000, b"\xff", b"\x00", b"\x1b", b"\xc3", "é".encode(), b"[" * 40, b'include = ["base.toml"]\n',
                 b'include = ["input.toml"]\n', b'include = "../../outside.toml"\n', b"[[allow]]\n", b"ops = []\n",
                 b'socket.family = "AF_INETT"\n', b'"0x__1"', b"reasn = 1\n")


def mutate(data: bytes, r: random.Random, edits: int) -> bytes:
    return fuzz_harness.mutate(data, r, edits, _EDITS)


def _mutated(path: Path, seed: int, edits: int, as_json: bool) -> bytes:
    text = path.read_bytes()
    if as_json:
        text = json.dumps(tomllib.loads(text.decode())).encode()
    return (b"json\n" if as_json else b"toml\n") + mutate(text, random.Random(seed), edits)


_corpus = st.builds(_mutated, st.sampled_from(POLICIES), st.integers(0, 2**32), st.integers(1, 6), st.booleans())
_JSON_KEYS: Final = ("policy", "allow", "deny", "flags", "register", "op", "ops", "name", "default", "kernel",
                     "include", "socket", "family", "connect", "addr", "in", "allowed", "x")
_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(_HOSTILE[:12]), st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_JSON_KEYS), inner, max_size=4),
    max_leaves=16)
_random_json = st.dictionaries(st.sampled_from(["policy", "allow", "deny", "flags", "register", "x"]), _json_values,
                               max_size=4).map(
    lambda v: b"json\n" + json.dumps(v).encode())

#: Weighted towards inputs that get past the parser: generated and edited policies reach the checks and the
#: compiler, random text mostly tests the parser.
policy_inputs: Final = st.one_of(
    _grammar, _corpus, _random_json, _grammar, _corpus, _grammar,
    _soup.map(lambda t: b"toml\n" + t.encode(errors="surrogatepass")),
    st.text(max_size=300).map(lambda t: b"toml\n" + t.encode(errors="surrogatepass")),
)

register(Entry("policy", _policy, policy_inputs, (InputError,), examples=800, seconds=5.0))
