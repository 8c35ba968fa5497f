"""``ringfence import-seccomp`` on the command line: outputs, ``--json``, and errors with their position.

Bad profiles exit 3 with ``file:line:col`` (or an error object with ``--json``), unreadable ones 2, and no input
makes a traceback: a seeded run of mutated profiles checks that.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest

from ringfence.cli import main as cli_main
from ringfence.policy.load import load as load_policy
from ringfence.policy.seccomp_profile import parse

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "corpus" / "policies" / "seccomp" / "profiles" / "argument-rules.json"
SMALL = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
         "syscalls": [{"names": ["read", "socket"], "action": "SCMP_ACT_ALLOW"}]}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli_main.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _write(tmp_path: Path, text: str, name: str = "p.json") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_writes_the_policy_and_the_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy, emitted = tmp_path / "io_uring.toml", tmp_path / "seccomp-io_uring.json"
    code, out, err = _run(["import-seccomp", str(FIXTURE), "-o", str(policy), "--emit-profile", str(emitted),
                           "--arch", "amd64"], capsys)
    assert code == 0, err
    assert "opcodes allowed" in out and "not carried over" in out and str(policy) in out
    assert load_policy(policy).name == "argument-rules"
    assert parse(emitted.read_text(), "emitted.json").entries[0].names == (
        "io_uring_enter", "io_uring_register", "io_uring_setup")


def test_policy_on_standard_output_and_profile_on_standard_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(json.dumps(SMALL).encode())))
    code, out, err = _run(["import-seccomp", "-", "--arch", "amd64", "--name", "small"], capsys)
    assert code == 0, err
    assert out.startswith("# An io_uring policy") and 'name = "small"' in out
    assert "opcodes allowed" in err
    path = _write(tmp_path, out, "small.toml")
    assert load_policy(path).name == "small"


def test_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["import-seccomp", str(FIXTURE), "--arch", "amd64", "--caps", "docker", "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == 1 and doc["arch"] == "amd64" and "CAP_NET_RAW" in doc["caps"]
    assert doc["policy"]["text"].startswith("# An io_uring policy")
    assert sum(doc["counts"].values()) == len(doc["opcodes"])
    socket = next(o for o in doc["opcodes"] if o["opcode"] == "SOCKET")
    assert socket["verdict"] == "conditional" and socket["syscalls"] == ["socket"]
    assert {n["kind"] for n in doc["notes"]} >= {"allow-dropped", "action", "no-syscall"}
    assert any(s["why"].startswith("needs") for s in doc["skipped"])


@pytest.mark.parametrize(("text", "where", "words"), [
    ('{"defaultAction": "SCMP_ACT_ERRNO",\n "syscalls": [}', ":2:15:", "expected a value"),
    ('{"defaultAction": "SCMP_ACT_ERRNOO", "syscalls": []}', ":1:19:", "did you mean"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "sycalls": []}', ":1:37:", "did you mean `syscalls`"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",\n'
     ' "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}', ":2:21:", "out of range"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",\n'
     ' "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQUAL"}]}]}', ":2:42:", "did you mean"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",\n'
     ' "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}', ":2:33:", "out of range"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read", "action": "SCMP_ACT_ERRNO"}]}',
     ":1:60:", "expected an array"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "read", "names": ["write"],\n'
     ' "action": "SCMP_ACT_ERRNO"}]}', ":1:59:", "cannot both"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",\n'
     ' "errno": "EPERN"}]}', ":2:11:", "unknown errno"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",\n'
     ' "includes": {"minKernel": "five"}}]}', ":2:28:", "kernel version"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",\n'
     ' "excludes": {"cap": ["CAP_SYS_ADMIN"]}}]}', ":2:15:", "did you mean `caps`"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}],\n'
     ' "defaultAction": "SCMP_ACT_KILL"}', ":2:2:", "appears twice"),
    ('[1, 2]', ":1:1:", "expected a table"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],\n'
     ' "archMap": [{"architecture": "SCMP_ARCH_X86_64"}], "syscalls": []}', ":2:13:", "cannot both"),
    ('{"syscalls": []}', ":1:1:", "needs `defaultAction`"),
])
def test_invalid_profiles_exit_3_with_the_position(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                                     where: str, words: str) -> None:
    path = _write(tmp_path, text)
    code, out, err = _run(["import-seccomp", str(path)], capsys)
    assert code == 3, err
    assert err.startswith(f"{path}{where}"), err
    assert words in err and "Traceback" not in err
    code, out, _ = _run(["import-seccomp", str(path), "--json"], capsys)
    doc = json.loads(out)
    assert code == 3 and doc["error"]["exit"] == 3
    assert f":{doc['error']['line']}:{doc['error']['column']}:" == where


def test_unreadable_and_bad_options_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["import-seccomp", str(tmp_path / "missing.json")], ["import-seccomp", str(tmp_path)],
                 ["import-seccomp", str(FIXTURE), "--caps", "CAP_NOPE"],
                 ["import-seccomp", str(FIXTURE), "--arch", "vax"],
                 ["import-seccomp", str(FIXTURE), "-o", str(tmp_path / "no" / "such" / "dir.toml")]):
        code, _, err = _run(argv, capsys)
        assert code == 2, (argv, err)
        assert "Traceback" not in err and err.strip()
    _, _, err = _run(["import-seccomp", str(FIXTURE), "--caps", "CAP_SYS_ADMN"], capsys)
    assert "did you mean `CAP_SYS_ADMIN`" in err


def _mutate(value: Any, r: random.Random) -> Any:
    """One random change somewhere in a JSON value: a wrong type, a removed or renamed key, an odd number."""
    if isinstance(value, dict) and value and r.random() < 0.7:
        key = r.choice(list(value))
        out = dict(value)
        roll = r.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.25:
            out[key + "x"] = out.pop(key)
        else:
            out[key] = _mutate(out[key], r)
        return out
    if isinstance(value, list) and value and r.random() < 0.7:
        out_list = list(value)
        i = r.randrange(len(out_list))
        out_list[i] = _mutate(out_list[i], r)
        return out_list
    return r.choice([None, True, -1, 2**64, 1.5, "", "SCMP_ACT_LOG", "SCMP_CMP_MASKED_EQ", [], {}, 7, "x" * 70,
                     "\u0007", {"index": 9}, ["CAP_SYS_ADMIN"]])


def test_mutated_profiles_never_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = json.loads(FIXTURE.read_text())
    r = random.Random(11)
    codes: dict[int, int] = {}
    for i in range(150):
        doc = base
        for _ in range(r.randint(1, 3)):
            doc = _mutate(doc, r)
        text = json.dumps(doc)
        if r.random() < 0.2:
            text = text[:r.randrange(len(text))]
        path = _write(tmp_path, text, f"m{i}.json")
        code, _, err = _run(["import-seccomp", str(path), "--arch", "amd64", "-o", str(tmp_path / "out.toml")],
                            capsys)
        assert code in (0, 3), (text, err)
        assert "Traceback" not in err
        if code == 3:
            assert err.startswith(str(path)), err
        codes[code] = codes.get(code, 0) + 1
    assert codes.get(0) and codes.get(3)
