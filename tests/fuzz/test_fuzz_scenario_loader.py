"""Fuzz the scenario loader and the model behind it: any document, however broken, loads or raises
:class:`ScenarioError`, within a time and memory bound, and a loaded scenario runs on the model or raises
:class:`ScenarioError` (a request no caller can make). Anything else is a traceback a user would see.

Inputs: documents built from the real grammar (every step kind and key, plausible and hostile values,
misspelt keys), corpus files with random edits, and random bytes, as TOML and JSON. Each input runs in a
workspace whose root holds program files, so ``program_file`` references resolve, escape or fail.

Modes, as the rest of ``tests/fuzz``:

* default (CI): a fixed number of examples per strategy, derandomized, well under 30 s in all;
* ``RINGFENCE_FUZZ=long``: 20,000 random inputs per strategy, saving the smallest failing one to
  ``corpus/scenario/crash-<hash>.<toml|json>``; ``RINGFENCE_FUZZ_EXAMPLES=N`` sets the count in either mode,
  ``RINGFENCE_FUZZ_SAVE=1`` saves crashes in CI mode too.

``corpus/scenario/`` is replayed on every run (``test_crash_corpus``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import resource
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any, Final

import fuzz_harness
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringfence.abi.profiles import profile
from ringfence.errors import ScenarioError
from ringfence.scenario.load import STEP_KEYS, load
from ringfence.scenario.model_backend import ModelBackend

HERE: Final = Path(__file__).resolve().parent
CORPUS: Final = HERE / "corpus" / "scenario"
SCENARIOS: Final = sorted((HERE.parents[0] / "corpus" / "scenarios").rglob("*.toml"))
LONG: Final = os.environ.get("RINGFENCE_FUZZ") == "long"
SAVE: Final = LONG or os.environ.get("RINGFENCE_FUZZ_SAVE") == "1"
SECONDS: Final = 5.0           # CPU seconds per input: loading plus two model runs (CPU time: a busy shared
                               # machine does not make an input look hung)
MEMORY: Final = 512 * 2**20    # new address space per input
BACKENDS: Final = (ModelBackend(profile("7.2"), detail=False), ModelBackend(profile("6.18"), detail=False))


class FuzzTimeout(BaseException):
    """One input ran past its time bound (a BaseException: no ``except Exception`` swallows it)."""


def _examples(default: int) -> int:
    override = os.environ.get("RINGFENCE_FUZZ_EXAMPLES")
    return int(override) if override else 20_000 if LONG else default


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


@contextmanager
def bounded(seconds: float = SECONDS, memory: int = MEMORY) -> Iterator[None]:
    """Run the body under a CPU-time alarm and an address-space limit, both restored afterwards. The alarm may
    land where an exception is ignored (a garbage-collector callback), so the CPU time is checked again after."""
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise FuzzTimeout(f"more than {seconds} s of CPU time")

    previous = signal.signal(signal.SIGPROF, alarm)
    started = time.process_time()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    if time.process_time() - started > seconds:
        raise FuzzTimeout(f"more than {seconds} s of CPU time")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus root with program files (good, broken, binary, a directory, a link out) and a scenario dir."""
    root = tmp_path_factory.mktemp("fuzzroot")
    (root / ".ringfence-root").write_text("")
    programs = root / "programs"
    programs.mkdir()
    (programs / "deny.asm").write_text("ret #0\n")
    (programs / "broken.asm").write_text("ld [3]\n\x1b[2J frob\n")
    (programs / "binary.asm").write_bytes(b"\x00\xff\xfe" * 100)
    (programs / "dir.asm").mkdir()
    (root.parent / "outside.asm").write_text("ret #1\n")
    (programs / "out.asm").symlink_to(root.parent / "outside.asm")
    (root / "scenarios").mkdir()
    return root / "scenarios"


def run_one(directory: Path, suffix: str, data: bytes) -> bool:
    """Load ``data`` as a scenario file and run it on the model; only ScenarioError may come out, and its
    message must be printable. True if the loader accepted the input."""
    path = directory / f"input{suffix}"
    path.write_bytes(data)
    try:
        with bounded():
            scenario = load(path)
            for backend in BACKENDS:
                with suppress(ScenarioError):
                    backend.run(scenario)
        return True
    except ScenarioError as exc:
        assert str(exc).isprintable(), f"unprintable message {str(exc)[:300]!r}"
        return False
    except FuzzTimeout as exc:
        raise AssertionError(f"hang ({exc}) on {data[:300]!r}") from None
    except MemoryError:
        raise AssertionError(f"memory blow-up on {data[:300]!r}") from None


def _save(suffix: str, data: bytes) -> Path:
    CORPUS.mkdir(parents=True, exist_ok=True)
    path = CORPUS / f"crash-{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    path.write_bytes(data)
    return path


def _fuzz(directory: Path, suffix: str, data: bytes) -> None:
    try:
        run_one(directory, suffix, data)
    except BaseException:
        if SAVE:
            print(f"saved {_save(suffix, data)}")
        raise


# -- documents from the grammar --------------------------------------------------------------------------------------

_INTS = [0, 1, -1, 2, 7, 8, 64, 255, 256, 4095, 4096, 4097, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
         2**40, 2**63 - 1, -(2**63)]
_NAMES = ["main", "r", "r2", "c", "t", "task", "", "a b", "x" * 70, "\x1b[31m"]
_WORDS = ["NOP", "OPENAT", "OPENAT2", "CONNECT", "SOCKET", "READ", "WRITEV", "FSYNC", "PROBE", "FILES", "BUFFERS",
          "QUERY", "RESTRICTIONS", "BPF_FILTER", "SQE_OP", "REGISTER_OP", "SQE_FLAGS_ALLOWED", "SQE_FLAGS_REQUIRED",
          "ASYNC|IO_LINK", "FIXED_FILE", "R_DISABLED", "SUBMIT_ALL|SINGLE_ISSUER", "DENY_REST|SZ_STRICT",
          "AF_INET", "AF_INET6", "AF_UNIX", "SOCK_STREAM|SOCK_CLOEXEC", "O_CREAT|O_RDWR", "RESOLVE_IN_ROOT", "ok",
          "EACCES", "EINVAL", "ENOTSUP", "E99", "7.0+", "<7.0", "*", "6.18-7.1", "null", "zero", "pipe.r", "pipe.w",
          "cwd", "0xffffffffffffffff", "0x10", "", "ret #0", "ld [socket.family]\n jeq #2, a, b\na: ret #1\nb: ret #0",
          "ld [3]", "{tmp}/f", "{tmp}", ".", "/dev/null", "/etc/shadow", "{tmp}/../x", "../../programs/deny.asm",
          "../programs/deny.asm", "../programs/broken.asm", "../programs/binary.asm", "../programs/dir.asm",
          "../programs/out.asm", "../../outside.asm", "127.0.0.1", "::1", "bpf_filter", "netns", "é"]
_KEYS = sorted({k for keys in STEP_KEYS.values() for k in keys} | {"do", "task", "expect"}
               | {"op", "ud", "sqe_flags", "fd", "result", "family", "type", "protocol", "path", "flags", "mode",
                  "resolve", "socket", "addr", "port", "addr_len", "len", "submitted", "cqes"})

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
_scalars = st.one_of(st.sampled_from(_INTS), st.integers(), st.sampled_from(_WORDS), _text, st.booleans(),
                     st.sampled_from([6.9, -0.0, 1e300, math.inf, math.nan]))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=5)
                       | st.dictionaries(st.sampled_from([*_KEYS, "1", "0x1", "7.0+"]), inner, max_size=4),
                       max_leaves=12)
_small = st.sampled_from([0, 1, 2, 8, 16, 24, 32, 65535, -1])
_ops = st.sampled_from(["NOP", "READ", "WRITE", "READV", "WRITEV", "OPENAT", "OPENAT2", "CONNECT", "SOCKET",
                        "FSYNC"])
_outcome = st.sampled_from(["ok", "EACCES", "EINVAL", "EBADF", "ENOENT", "ECONNREFUSED"])
#: Values each key usually has: mostly valid, so that inputs get past the first check and reach the model.
_GOOD: Final[dict[str, st.SearchStrategy[Any]]] = {
    "opcode": st.one_of(_ops, st.sampled_from(["PROBE", "BUFFERS", "FILES", "QUERY", "ENABLE_RINGS"]), _small),
    "program": st.sampled_from(["ret #0", "ret #1", "ld [user_data]\n ret a", "ld [3]\n ret #1", "ld #1",
                                "ld [socket.family]\n jeq #AF_INET, a, b\na: ret #1\nb: ret #0"]),
    "program_file": st.sampled_from(["../programs/deny.asm", "../programs/broken.asm", "../programs/out.asm",
                                     "../programs/missing.asm", "/etc/passwd"]),
    "insns": st.lists(st.tuples(st.sampled_from([6, 0x20, 0x15, 0x04]), st.integers(0, 3), st.integers(0, 3),
                                st.sampled_from([0, 1, 2, 36, 2**32 - 1])).map(list), min_size=1, max_size=5),
    "flags": st.sampled_from(["", "R_DISABLED", "SUBMIT_ALL", "SINGLE_ISSUER|R_DISABLED", "DENY_REST",
                              "SZ_STRICT|DENY_REST", 0, 1]),
    "entries": _small, "uid": st.sampled_from([65534, 1000, 1]), "pdu_size": _small, "expect_pdu_size": _small,
    "filter_len": _small, "nr_args": _small, "nr_res": _small, "cmd_type": _small, "cmd_flags": _small,
    "resv": _small, "registered_ring_index": _small, "header_flags": _small,
    "null": st.booleans(), "null_program": st.booleans(),
    "filter_resv": st.lists(st.integers(0, 2), min_size=3, max_size=3),
    "resv2": st.lists(st.integers(0, 2), min_size=5, max_size=5),
    "header_resv": st.lists(st.integers(0, 2), min_size=3, max_size=3),
    "records": st.lists(st.one_of(
        st.tuples(st.just("SQE_OP"), _ops), st.tuples(st.just("REGISTER_OP"), st.sampled_from(["PROBE", "FILES"])),
        st.tuples(st.sampled_from(["SQE_FLAGS_ALLOWED", "SQE_FLAGS_REQUIRED"]), st.sampled_from(
            ["ASYNC", "FIXED_FILE", 0, 127])), st.tuples(st.integers(0, 9), st.integers(0, 255))).map(list),
        max_size=5),
    "files": st.lists(st.sampled_from(["null", "zero", "pipe.r", "pipe.w"]), max_size=3),
    "result": _outcome,
    "expect": st.one_of(_outcome, st.fixed_dictionaries({"submitted": st.integers(0, 4)}, optional={
        "cqes": st.dictionaries(st.sampled_from(["1", "2", "3"]), _outcome, max_size=3)})),
}
_SQE_GOOD: Final[dict[str, st.SearchStrategy[Any]]] = {
    "ud": st.one_of(st.integers(0, 5), st.integers(0, 2**64 - 1), st.just("0xffffffffffffffff")),
    "sqe_flags": st.sampled_from(["", "ASYNC", "IO_LINK", "FIXED_FILE", "IO_DRAIN|ASYNC", "CQE_SKIP_SUCCESS"]),
    "fd": st.sampled_from(["null", "zero", "pipe.r", "pipe.w", "cwd", -1]),
    "result": _outcome, "len": _small,
    "family": st.sampled_from(["AF_INET", "AF_INET6", "AF_UNIX", 0, 17]),
    "type": st.sampled_from(["SOCK_STREAM", "SOCK_DGRAM|SOCK_CLOEXEC", 0x101]),
    "protocol": st.sampled_from([0, "IPPROTO_TCP"]),
    "path": st.sampled_from(["/dev/null", "{tmp}/f", "{tmp}", ".", "x/../y"]),
    "flags": st.sampled_from(["O_RDONLY", "O_CREAT|O_RDWR", "O_PATH", 0, 0x40000000]),
    "mode": st.sampled_from([0, 0o644, "0o755"]), "resolve": st.sampled_from([0, "RESOLVE_IN_ROOT"]),
    "socket": st.sampled_from(["AF_INET", "AF_UNIX"]),
    "addr": st.sampled_from(["127.0.0.1", "::1", "{tmp}/s.sock", "", "10.0.0.1"]),
    "port": st.sampled_from([0, 1, 80, 65535]), "addr_len": st.sampled_from([0, 1, 16, 28, 110, 200, -1]),
}


def _pick(draw: st.DrawFn, good: st.SearchStrategy[Any] | None) -> Any:
    """Mostly a plausible value for the key, sometimes anything at all."""
    if good is not None and draw(st.integers(0, 9)) < 8:
        return draw(good)
    return draw(_values)


@st.composite
def _sqe(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"op": draw(st.one_of(_ops, st.just(200)))}
    for key in draw(st.lists(st.sampled_from(sorted(_SQE_GOOD)), max_size=5, unique=True)):
        out[key] = _pick(draw, _SQE_GOOD[key])
    return out


@st.composite
def _step(draw: st.DrawFn, tasks: tuple[str, ...], rings: tuple[str, ...]) -> dict[str, Any]:
    kind = draw(st.sampled_from([*STEP_KEYS, "forc"]))
    out: dict[str, Any] = {"do": kind}
    keys = sorted(STEP_KEYS.get(kind, frozenset()) | {"task", "expect"})
    for key in draw(st.lists(st.sampled_from(keys), max_size=5, unique=True)):
        if key == "task":
            out[key] = draw(st.sampled_from([*tasks, *_NAMES]))
        elif key in ("child", "thread"):
            out[key] = draw(st.sampled_from(["c1", "c2", "t1", "t2", *_NAMES]))
        elif key == "ring":
            out[key] = draw(st.sampled_from([*rings, "r2", "task", *_NAMES]))
        elif key == "sqes":
            out[key] = draw(st.lists(_sqe(), max_size=4))
        else:
            out[key] = _pick(draw, _GOOD.get(key))
    if kind in ("filter", "close", "enable", "submit") and "ring" not in out and draw(st.booleans()):
        out["ring"] = draw(st.sampled_from(rings))
    if kind == "ring":
        out.setdefault("ring", draw(st.sampled_from(["r2", "r3", "r4"])))
    if kind in ("fork", "thread"):
        out.setdefault("child" if kind == "fork" else "thread", draw(st.sampled_from(["c1", "c2", "t1", "t2"])))
    if kind in ("filter", "register"):
        out.setdefault("opcode", draw(_GOOD["opcode"]))
    if draw(st.integers(0, 9)) == 7:
        out[draw(st.sampled_from(["expext", "rign", "opcod", "sqe", "program_fil"]))] = "x"
    return out


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    head: dict[str, Any] = {"name": "t" if draw(st.integers(0, 9)) != 7 else draw(_values)}
    extras = {"kernels": st.sampled_from([["*"], ["7.0+"], ["<7.0", "7.2"]]),
              "requires": st.sampled_from([[], ["bpf_filter"], ["netns", "unprivileged"]]),
              "tags": st.just(["fuzz"]), "timeout": st.integers(1, 600), "seed": st.integers(),
              "spec": st.just("x"), "description": st.just("d\ne")}
    for key in draw(st.lists(st.sampled_from(sorted(extras)), max_size=3, unique=True)):
        head[key] = _pick(draw, extras[key])
    if draw(st.integers(0, 19)) == 7:  # hypothesis favours 0: the rare branch is elsewhere
        head["author"] = "me"
    steps: list[dict[str, Any]] = [{"do": "ring", "ring": "r"}] if draw(st.integers(0, 4)) != 3 else []
    steps += draw(st.lists(_step(("main", "c1", "t1"), ("r",)), max_size=6))
    return {"scenario": head, "step": steps}


def _toml_key(key: str) -> str:
    return key if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("-inf" if value < 0 else "inf") if math.isinf(value) else repr(value)
    if isinstance(value, int | str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string for these
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"


def toml_document(doc: dict[str, Any]) -> str:
    """A grammar document as TOML: the head table, then one ``[[step]]`` table per step."""
    lines = ["[scenario]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in doc["scenario"].items())]
    for step in doc["step"]:
        lines += ["", "[[step]]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in step.items())]
    return "\n".join(lines) + "\n"


# -- mutations -------------------------------------------------------------------------------------------------------

_TOKENS = [b"[", b"]", b"{", b"}", b"=", b",", b'"', b"'", b"\n", b"#", b"-1", b"4294967296", b"1e400", b"6.9",
           b"true", b"[[step]]\n", b'do = "submit"\n', b'expext = "ok"\n', b'program_file = "/etc/shadow"\n',
           b"\xff", b"\x00", b"\x1b", b"\xc3", "é".encode(), b"[" * 40, b"{tmp}/../..", b'"0xffffffffffffffff"']


def mutate(data: bytes, r: random.Random, edits: int) -> bytes:
    return fuzz_harness.mutate(data, r, edits, _TOKENS)


# -- the tests -------------------------------------------------------------------------------------------------------

def _settings(default: int) -> settings:
    return settings(max_examples=_examples(default), derandomize=not LONG, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))


def test_grammar_documents(workspace: Path) -> None:
    seen = [0]
    started = time.perf_counter()

    @_settings(300)
    @given(documents(), st.booleans())
    def fuzz(doc: dict[str, Any], as_json: bool) -> None:
        seen[0] += 1
        if as_json:
            _fuzz(workspace, ".json", json.dumps(doc).encode())
        else:
            _fuzz(workspace, ".toml", toml_document(doc).encode())

    fuzz()
    print(f"fuzz scenario grammar: {seen[0]} inputs in {time.perf_counter() - started:.1f} s")


def test_mutated_corpus_files(workspace: Path) -> None:
    seen = [0]
    started = time.perf_counter()
    small = [p for p in SCENARIOS if p.stat().st_size < 20_000]

    @_settings(400)
    @given(st.sampled_from(small), st.randoms(use_true_random=False), st.integers(1, 6), st.booleans())
    def fuzz(path: Path, r: random.Random, edits: int, as_json: bool) -> None:
        seen[0] += 1
        data = path.read_bytes()
        if as_json:
            import tomllib

            data = json.dumps(tomllib.loads(data.decode())).encode()
        _fuzz(workspace, ".json" if as_json else ".toml", mutate(data, r, edits))

    fuzz()
    print(f"fuzz scenario corpus mutations: {seen[0]} inputs in {time.perf_counter() - started:.1f} s")


def test_random_bytes(workspace: Path) -> None:
    seen = [0]
    started = time.perf_counter()

    @_settings(300)
    @given(st.binary(max_size=2000), st.sampled_from([".toml", ".json"]))
    def fuzz(data: bytes, suffix: str) -> None:
        seen[0] += 1
        _fuzz(workspace, suffix, data)

    fuzz()
    print(f"fuzz scenario random bytes: {seen[0]} inputs in {time.perf_counter() - started:.1f} s")


CRASHES: Final = sorted(p for p in CORPUS.glob("*") if p.suffix in (".toml", ".json"))


@pytest.mark.parametrize("path", CRASHES, ids=[p.name for p in CRASHES])
def test_crash_corpus(workspace: Path, path: Path) -> None:
    """Every input that ever crashed, hung or silently passed the loader, replayed; ``refused-*`` must be refused."""
    accepted = run_one(workspace, path.suffix, path.read_bytes())
    assert not (accepted and path.name.startswith("refused-")), "the loader accepts it again"


def test_crash_corpus_is_seeded() -> None:
    assert len(CRASHES) >= 30


def test_the_bounds_catch_hangs_and_blow_ups() -> None:
    with pytest.raises(FuzzTimeout), bounded(0.2):
        while True:
            pass
    with pytest.raises(MemoryError), bounded(5, 64 * 2**20):
        bytearray(256 * 2**20)
