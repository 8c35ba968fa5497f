"""Hostile and broken policy files through every command that takes one: ``compile``, ``verify``, ``cost`` and
``run --policy``. Each class of bad input has its exit code (2: the file cannot be read at all; 3 for the
other three commands and 125 for ``run``, whose own failures must not look like the command's: invalid input
at its ``file:line:col``), and never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from ringfence.abi.opcodes import SqeOp
from ringfence.cli import main as cli_main
from ringfence.errors import InputError, PolicyError, UnreadableError
from ringfence.policy import build
from ringfence.policy.load import MAX_FILES, from_data, load, loads

#: What each command answers for invalid input (run: 125, so that it cannot be mistaken for the command's).
INVALID = {"compile": 3, "verify": 3, "cost": 3, "run": 125}
COMMANDS = tuple(INVALID)
HEAD = '[policy]\nname = "p"\n'


def ringfence(command: str, path: Path | str, *extra: str) -> tuple[int, str, str]:
    """Run one command in-process on a policy file; exit code, standard output and error."""
    argv = {"compile": ["compile", str(path), "-o", os.devnull], "verify": ["verify", str(path)],
            "cost": ["cost", str(path), "--no-bound"], "run": ["run", "--policy", str(path), "--dry-run"]}[command]
    argv += list(extra)
    if command == "run":
        argv += ["--", "true"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_main.main(argv)
        except SystemExit as exc:  # run reports its own failures this way
            code = int(exc.code or 0)
    assert "Traceback" not in err.getvalue()
    return code, out.getvalue(), err.getvalue()


def write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# -- bad content: exit 3 (125 for run) at the place ------------------------------------------------------------

#: (name, file text, line:column, words the message holds)
CONTENT = [
    ("wrong-type-default", '[policy]\ndefault = 1\n', "2:11", "`default` is a string, not the integer 1"),
    ("wrong-type-op", HEAD + '[[allow]]\nop = true\n', "4:6", "not the boolean true"),
    ("wrong-type-section", 'flags = [1]\n', "1:9", "[flags] must be a table"),
    ("wrong-type-rules", '[allow]\nop = "NOP"\n', "1:1", "[[allow]] entries must be tables"),
    ("out-of-range-opcode", HEAD + '[[allow]]\nop = 300\n', "4:6", "opcode 300 is out of range 0..255"),
    ("out-of-range-port", HEAD + '[[allow]]\nop = "CONNECT"\nconnect.port = 70000\n', "5:16",
     "a port is 0..65535, not 70000"),
    ("out-of-range-huge", HEAD + '[[allow]]\nop = "SOCKET"\nsocket.protocol = { range = [0, ' + "9" * 400 + "] }\n",
     "5:33", "a 1329-bit number does not fit in 32 bits"),
    ("unknown-key", HEAD + '[[allow]]\nop = "NOP"\nreasn = "x"\n', "5:1",
     "unknown key `reasn` in a [[allow]] rule; did you mean `reason`?"),
    ("unknown-grouped-key", HEAD + '[[allow]]\nop = "SOCKET"\nsocket.famly = 2\n', "5:8",
     "did you mean `socket.family`?"),
    ("unknown-section", '[polcy]\nname = "p"\n', "1:2", "unknown section `polcy`; did you mean `policy`?"),
    ("unknown-policy-key", '[policy]\ndefualt = "deny"\n', "2:1", "did you mean `default`?"),
    ("unknown-test", HEAD + '[[allow]]\nop = "SOCKET"\nsocket.family = { inn = [2] }\n', "5:19",
     "unknown test `inn`; did you mean `in`?"),
    ("bad-cidr", HEAD + '[[allow]]\nop = "CONNECT"\nconnect.addr = "10.0.0.1/33"\n', "5:16",
     "`10.0.0.1/33` is not an IPv4 or IPv6 address or CIDR prefix"),
    ("cidr-host-bits", HEAD + '[[allow]]\nop = "CONNECT"\nconnect.addr = ["::1", "10.0.0.1/8"]\n', "5:24",
     "`10.0.0.1/8` has host bits set"),
    ("bad-opcode-name", HEAD + '[[allow]]\nops = ["READ", "SOCKT"]\n', "4:16",
     "unknown opcode `SOCKT`; did you mean `SOCKET`?"),
    ("bad-flag-name", HEAD + '[flags]\nallowed = ["IO_LINK", "ASYNK"]\n', "4:23",
     "unknown SQE flag `ASYNK`; did you mean `ASYNC`?"),
    ("bad-register-name", HEAD + '[register]\nallowed = ["FILEZ"]\n', "4:12",
     "unknown register opcode `FILEZ`; did you mean `FILES`?"),
    ("bad-constant-name", HEAD + '[[allow]]\nop = "SOCKET"\nsocket.family = "AF_INETT"\n', "5:17",
     "unknown name `AF_INETT`; did you mean `AF_INET`?"),
    ("bad-number-text", HEAD + '[[allow]]\nop = "SOCKET"\nsocket.family = "0x__2"\n', "5:17",
     "`0x__2` is not a number"),
    ("leading-zero", HEAD + '[[allow]]\nop = "SOCKET"\nsocket.family = "0123"\n', "5:17", "`0123` is not a number"),
    ("bad-kernel", '[policy]\nkernel = "7.2"\n', "2:10", 'a minimum version written like "7.2+"'),
    ("huge-kernel", '[policy]\nkernel = "' + "7" * 5000 + '.0+"\n', "2:10", "a minimum version"),
    ("bad-target", '[policy]\ntarget = "rign"\n', "2:10", "did you mean `ring`?"),
    ("field-not-carried", HEAD + '[[allow]]\nop = "NOP"\nsocket.family = 2\n', "5:8",
     "`socket.family` is not in NOP's filter context"),
    ("op-and-ops", HEAD + '[[allow]]\nop = "NOP"\nops = ["READ"]\n', "5:1", "with `op` or `ops` (one of them)"),
    ("empty-ops", HEAD + '[[allow]]\nops = []\n', "4:7", "`ops` is a non-empty list of opcodes"),
    ("huge-int", HEAD + '[[allow]]\nop = ' + "9" * 5000 + "\n", "4:6", "integer with 5000 digits is too long"),
    ("deep-nesting", HEAD + '[[allow]]\nop = ' + "[" * 200 + "]" * 200 + "\n", "4:", "nest deeper than 16 levels"),
    ("non-utf8", b'[policy]\nname = "\xff"\n', "2:9", "not UTF-8 text: byte 17 (0xff)"),
    ("nul-byte", b'[policy]\nname = "a\x00b"\n', "2:10", "control character \\x00"),
    ("control-in-name", '[policy]\nname = "\\u001b[2J"\n', "2:8", "control or invisible character `\\x1b`"),
    ("toml-syntax", '[policy\nname = "p"\n', "1:8", ""),
    ("json-top-array", "[1, 2]", "1:1", "a policy is a table (TOML) or an object (JSON) at the top level"),
    ("json-duplicate-key", '{"allow": [{"op": "NOP"}], "allow": []}', "1:28", "appears twice"),
    ("json-unknown-key", '{"allow": [{"op": "NOP", "reasn": "x"}]}', "1:26", "did you mean `reason`?"),
    ("json-nan", '{"allow": [{"op": "NOP", "user_data": NaN}]}', "1:39", "NaN and Infinity are not JSON numbers"),
]


@pytest.mark.parametrize(("name", "text", "where", "words"), CONTENT, ids=[c[0] for c in CONTENT])
def test_bad_content_is_invalid_at_its_position(tmp_path: Path, name: str, text: str | bytes, where: str,
                                                words: str) -> None:
    path = write(tmp_path, name + (".json" if name.startswith("json") else ".toml"), text)
    with pytest.raises(PolicyError) as info:
        load(path)
    assert f"{info.value.line}:{info.value.column}".startswith(where) and words in info.value.message, info.value
    for command in COMMANDS:
        code, _, err = ringfence(command, path)
        assert code == INVALID[command], (command, err)
        shown = err.removeprefix("ringfence run: ")
        assert shown.startswith(f"{path}:{where}") and words in err, (command, err)
        assert err.count("\n") == 1 and err[:-1].isprintable(), err


def test_verify_and_cost_json_carry_the_position(tmp_path: Path) -> None:
    path = write(tmp_path, "p.toml", HEAD + '[[allow]]\nop = "NOP"\nreasn = "x"\n')
    for command in ("verify", "cost"):
        code, out, _ = ringfence(command, path, "--json")
        error = json.loads(out)["error"]
        assert code == 3 and (error["type"], error["line"], error["column"], error["exit"]) == ("PolicyError", 5, 1, 3)


# -- files that cannot be read: exit 2 everywhere ----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "dev-zero"])
def test_unreadable_files_are_usage_errors(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "p.toml"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")  # a .toml name: cost tells a policy from a program by it
    with pytest.raises(UnreadableError):
        load(path)
    for command in COMMANDS:
        code, _, err = ringfence(command, path)
        assert code == 2 and str(path) in err, (command, err)


def test_a_file_over_the_cap_is_refused_quickly(tmp_path: Path) -> None:
    """Over the 1 MiB cap: refused before parsing, as the other input files are (an InputError, exit 3)."""
    path = tmp_path / "big.toml"
    with open(path, "wb") as f:
        f.truncate(50 << 20)
    with pytest.raises(PolicyError, match="more than the 1 MiB limit for policy files"):
        load(path)
    for command in COMMANDS:
        code, _, err = ringfence(command, path)
        assert code == INVALID[command] and "1 MiB limit" in err, (command, err)


@pytest.mark.parametrize("command", COMMANDS)
def test_root_must_be_a_directory(tmp_path: Path, command: str) -> None:
    path = write(tmp_path, "p.toml", HEAD)
    code, _, err = ringfence(command, path, "--root", str(tmp_path / "nowhere"))
    assert code == 2 and "--root" in err


# -- include ---------------------------------------------------------------------------------------------------

SECRET = "root:x:0:0:SECRET-CONTENT"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """``tmp/outside.toml`` (outside every root), ``tmp/corpus/`` with policies in subdirectories."""
    write(tmp_path, "outside.toml", f'[policy]\nname = "{SECRET}"\n[[{SECRET}]]\n')
    root = tmp_path / "corpus"
    write(root, "base/base.toml", '[policy]\ndefault = "deny"\nkernel = "7.2+"\n[[allow]]\nops = ["READ"]\n')
    write(root, "base/allow.toml", '[policy]\ndefault = "allow"\n')
    write(root, "base/old.toml", '[policy]\nkernel = "7.0+"\n')
    write(root, "app/loop-a.toml", '[policy]\ninclude = ["loop-b.toml"]\n')
    write(root, "app/loop-b.toml", '[policy]\n\ninclude = ["loop-a.toml"]\n')
    (root / "app" / "dir.toml").mkdir()
    os.mkfifo(root / "app" / "fifo.toml")
    (root / "app" / "out.toml").symlink_to(tmp_path / "outside.toml")
    return root


INCLUDES = [
    ("self", '["p.toml"]', "3:12", "include `p.toml` includes itself"),
    ("cycle", '["loop-a.toml"]', None, "include `loop-a.toml` includes itself"),
    ("directory", '["dir.toml"]', "3:12", "`dir.toml`: is a directory"),
    ("fifo", '["fifo.toml"]', "3:12", "`fifo.toml`: not a regular file"),
    ("missing", '["missing.toml"]', "3:12", "`missing.toml`: cannot read: no such file"),
    ("etc-passwd", '["../../../../../../../../etc/passwd"]', "3:12", "is outside the directory"),
    ("absolute", '["/etc/passwd"]', "3:12", "`/etc/passwd` is an absolute path"),
    ("outside", '["../../outside.toml"]', "3:12", "is outside the directory"),
    ("symlink-out", '["out.toml"]', "3:12", "`out.toml` leads through a symbolic link to outside"),
    ("not-text", "5", "3:11", "`include`: expected a file name, found the integer 5"),
    ("empty-name", '[""]', "3:12", "`include`: must not be empty"),
    ("nul-in-name", '["a\\u0000b"]', "3:12", "control or invisible character `\\x00`"),
    ("conflicting-default", '["../base/base.toml", "../base/allow.toml"]', None,
     '`default = "allow"` conflicts with `"deny"` in'),
    ("conflicting-kernel", '["../base/base.toml", "../base/old.toml"]', None,
     '`kernel = "7.0+"` conflicts with `"7.2+"` in'),
]


@pytest.mark.parametrize(("name", "include", "where", "words"), INCLUDES, ids=[i[0] for i in INCLUDES])
def test_bad_includes(corpus: Path, name: str, include: str, where: str | None, words: str) -> None:
    (corpus / ".ringfence-root").write_text("")
    path = write(corpus, "app/p.toml", f'[policy]\nname = "p"\ninclude = {include}\n')
    with pytest.raises(PolicyError) as info:
        load(path)
    assert words in info.value.message and SECRET not in str(info.value), info.value
    assert info.value.line, info.value
    if where is not None:
        assert (info.value.file, f"{info.value.line}:{info.value.column}") == (str(path), where), info.value
    for command in COMMANDS:
        code, out, err = ringfence(command, path)
        assert code == INVALID[command] and words in err and SECRET not in out + err, (command, err)


def test_conflicts_point_into_the_included_file(corpus: Path) -> None:
    path = write(corpus, "base/p.toml", '[policy]\nname = "p"\ninclude = ["base.toml", "allow.toml"]\n')
    with pytest.raises(PolicyError) as info:
        load(path)
    assert (info.value.file, info.value.line, info.value.column) == (str(corpus / "base" / "allow.toml"), 2, 11)
    cycle = corpus / "app" / "loop-a.toml"
    with pytest.raises(PolicyError) as info:
        load(cycle)
    assert (info.value.file, info.value.line, info.value.column) == (str(corpus / "app" / "loop-b.toml"), 3, 12)


def test_the_root_is_the_marker_or_root_option(corpus: Path) -> None:
    """Without a marker an include stays in the policy's own directory; the marker or --root widens it."""
    path = write(corpus, "app/p.toml", '[policy]\nname = "p"\ninclude = ["../base/base.toml"]\n')
    with pytest.raises(PolicyError, match="is outside the directory"):
        load(path)
    assert ringfence("compile", path)[0] == 3
    assert load(path, root=corpus).default.value == "deny"
    for command in ("compile", "cost"):
        assert ringfence(command, path, "--root", str(corpus))[0] == 0, command
    (corpus / ".ringfence-root").write_text("")
    policy = load(path)
    assert policy.kernel == (7, 2) and [r.ops for r in policy.rules] == [(int(SqeOp.READ),)]
    assert policy.sources == (str(path), str(corpus / "base" / "base.toml"))
    with pytest.raises(PolicyError, match="is outside the directory"):
        load(path, root=corpus / "app")


def test_includes_are_bounded(tmp_path: Path) -> None:
    """A diamond that doubles at every level would read 2**8 files: refused past MAX_FILES."""
    for level in range(8):
        write(tmp_path, f"l{level}.toml", f'[policy]\ninclude = ["l{level + 1}.toml", "l{level + 1}.toml"]\n')
    write(tmp_path, "l8.toml", "[policy]\n")
    with pytest.raises(PolicyError, match=f"more than {MAX_FILES} policy files"):
        load(tmp_path / "l0.toml")


def test_text_and_data_cannot_include(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="needs a policy read from a file") as info:
        loads('[policy]\ninclude = ["x.toml"]\n', name="inline.toml")
    assert (info.value.file, info.value.line, info.value.column) == ("inline.toml", 2, 12)
    with pytest.raises(PolicyError, match="needs a policy read from a file"):
        from_data({"policy": {"include": ["x.toml"]}})


# -- Python data and the builder -------------------------------------------------------------------------------

def test_data_errors_are_policy_errors() -> None:
    with pytest.raises(PolicyError, match="did you mean `reason`"):
        from_data({"allow": [{"op": "NOP", "reasn": "x"}]})
    with pytest.raises(PolicyError, match="nested deeper"):
        from_data({"allow": [{"op": _nested(40)}]})
    with pytest.raises(PolicyError, match="cannot be a"):
        from_data({"allow": [{"op": object()}]})
    with pytest.raises(PolicyError, match="unknown opcode `SOCKT`"):
        build.policy("p", build.allow("SOCKT"))
    assert issubclass(PolicyError, InputError)


def _nested(depth: int) -> object:
    value: object = "NOP"
    for _ in range(depth):
        value = [value]
    return value


def test_builder_and_file_agree(tmp_path: Path) -> None:
    path = write(tmp_path, "web.toml", '[policy]\nname = "web"\nkernel = "7.2+"\n[[allow]]\nop = "SOCKET"\n'
                 'socket.family = ["AF_INET", "AF_INET6"]\nsocket.type = "SOCK_STREAM"\n[[deny]]\nop = "CONNECT"\n'
                 'connect.port = 22\n[[allow]]\nop = "CONNECT"\nconnect.addr = { not_in = ["10.0.0.0/8"] }\n')
    built = build.policy("web", build.allow("SOCKET", socket_family=["AF_INET", "AF_INET6"], socket_type="SOCK_STREAM"),
                         build.deny("CONNECT", connect_port=22),
                         build.allow("CONNECT", connect_addr={"not_in": ["10.0.0.0/8"]}), kernel="7.2+")
    loaded = load(path)
    assert loaded == built
    assert [str(r.pos) for r in loaded.rules] == [f"{path}:4:3", f"{path}:11:3", f"{path}:8:3"]
    assert [str(p.pos) for p in loaded.rules[0].predicates] == [f"{path}:6:1", f"{path}:7:1"]
    assert loads(path.read_text(), name="web.toml") == built
