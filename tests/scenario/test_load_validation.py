"""Every field is validated in the loader, with ``file:line:col``: wrong types, ranges, unknown keys, unsafe paths
and ids, caps. Each case is a scenario that used to crash the loader or the model, or loaded while checking
nothing, and is now a :class:`ScenarioError` at the offending token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ringfence.abi.profiles import profile
from ringfence.errors import ScenarioError
from ringfence.scenario import caps, load, parse
from ringfence.scenario.model_backend import ModelBackend
from ringfence.scenario.steps import Filter, Register, Submit

HEAD = '[scenario]\nname = "t"\n\n[[step]]\ndo = "ring"\nring = "r"\n\n'  # the ring step is step 0, lines 4-6


def _load(tmp_path: Path, text: str, name: str = "s.toml") -> ScenarioError:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load(path)
    return info.value


def _step(tmp_path: Path, step: str) -> ScenarioError:
    """Load HEAD plus one more step (step 1, starting on line 8)."""
    return _load(tmp_path, HEAD + "[[step]]\n" + step + "\n")


# (step text after the [[step]] line, line, column, words in the message)
STEP_CASES = [
    ('do = "filter"\nopcode = "NOP"\ninsns = [[6, 0, 0, -1]]', 11, 20, "`insns[0][3]`: -1 is out of range"),
    ('do = "filter"\nopcode = "NOP"\ninsns = [[6, 0, 0, 6.9]]', 11, 20, "fractions are not rounded"),
    ('do = "filter"\nopcode = "NOP"\ninsns = [[6, 256, 0, 0]]', 11, 14, "`insns[0][1]`: 256 is out of range 0..255"),
    ('do = "filter"\nopcode = "NOP"\ninsns = [[0x10000, 0, 0, 0]]', 11, 11, "out of range 0..65535"),
    ('do = "filter"\nopcode = "NOP"\ninsns = [[6, 0, 0]]', 11, 10, "an instruction is [code, jt, jf, k]"),
    ('do = "filter"\nopcode = "NOP"\nprogram = "ret #0"\nfilter_resv = 1099511627776', 12, 15,
     "`filter_resv`: expected an array of 3 values"),
    ('do = "filter"\nopcode = "NOP"\nprogram = "ret #0"\nfilter_resv = [0, 0, 256]', 12, 22, "out of range 0..255"),
    ('do = "filter"\nopcode = "NOP"\nprogram = "ret #0"\nfilter_len = 4294967296', 12, 14,
     "4294967296 is out of range 0..0xffffffff"),
    ('do = "filter"\nopcode = "NOP"\nprogram = "ret #0"\nnr_args = "x"', 12, 11, "`nr_args`: expected an integer"),
    ('do = "filter"\nopcode = "NOP"\nprogram = "ret #0"\nflags = [1, 2]', 12, 10, "`flags[0]`: expected a string"),
    ('do = "filter"\nopcode = "NOP"\nprogram = "ret #0"\nflags = "DENY_REST|SZ_STRIKT"', 12, 9,
     "unknown filter flag `SZ_STRIKT`; did you mean `SZ_STRICT`?"),
    ('do = "filter"\nopcode = "NOP"\nprogram = "ret #0"\ninsns = [[6, 0, 0, 0]]', 12, 1,
     "`program` and `insns` cannot both be given"),
    ('do = "filter"\nopcode = "NOPE"\nprogram = "ret #0"', 10, 10, "unknown SQE opcode `NOPE`; did you mean `NOP`?"),
    ('do = "filter"\nopcode = "NOP"\nprogram = "ld [3]\\n foo"', 11, 11, "the program line 2, column 2: unknown"),
    ('do = "filter"\nopcode = "NOP"\nprogram = "ret #0"\npdu_size = true', 12, 12, "found the boolean true"),
    ('do = "filter"\nopcode = "NOP"\nprogram = "ret #0"\nresv2 = [0, 0, 0, 0, -1]', 12, 22, "-1 is out of range"),
    ('do = "restrict"\nnr_res = 65536\nrecords = []', 10, 10, "`nr_res`: 65536 is out of range 0..65535"),
    ('do = "restrict"\nnr_res = "all"', 10, 10, "`nr_res`: expected an integer"),
    ('do = "restrict"\nring = "r"\nnr_res = 1', 11, 10, "only exists for task restrictions"),
    ('do = "restrict"\nring = "r"\nnr_args = 65536', 11, 11, "out of range 0..65535"),
    ('do = "restrict"\nrecords = [["SQE_OP", "NOP"], ["SQE_OPP", 1]]', 10, 32,
     "unknown restriction record type `SQE_OPP`; did you mean `SQE_OP`?"),
    ('do = "restrict"\nrecords = [["SQE_OP", 256]]', 10, 23, "256 is out of range 0..255"),
    ('do = "restrict"\nrecords = [[7, "NOP"]]', 10, 16, "expected an integer in 0..255"),
    ('do = "restrict"\nrecords = [["SQE_OP"]]', 10, 12, "a restriction record is [type, value]"),
    ('do = "register"\nopcode = "PROBE"\nregistered_ring_index = "abc"', 11, 25, "expected an integer in -1..65535"),
    ('do = "register"\nopcode = "PROBE"\nregistered_ring_index = -2', 11, 25, "-2 is out of range"),
    ('do = "register"\nopcode = "PROBE"\nfiles = ["null"]', 11, 9, "only a FILES registration takes `files`"),
    ('do = "register"\nopcode = "FILES"\nfiles = ["nul"]', 11, 10, "unknown resource `nul`; did you mean `null`?"),
    ('do = "register"\nopcode = "PROBE"\nresult = "EACESS"', 11, 10, "did you mean `EACCES`?"),
    ('do = "submit"\nring = "r"\nexpext = { submitted = 1 }', 11, 1, "unknown key `expext` in this `submit` step; did "
                                                                      "you mean `expect`?"),
    ('do = "submit"\nring = "r"\nexpect = { submitted = 1, cqes = { x = "ok" } }', 11, 36,
     "`expect.cqes`: key `x` is not a user_data value"),
    ('do = "submit"\nring = "r"\nexpect = { submitted = 1, cqes = [1] }', 11, 34,
     "`expect.cqes`: expected a table, found an array"),
    ('do = "submit"\nring = "r"\nexpect = { submited = 1 }', 11, 12,
     "unknown key `submited` in a submit expectation; did you mean `submitted`?"),
    ('do = "submit"\nring = "r"\nexpect = { submitted = 1, cqes = { 1 = "EACCES", 0x1 = "ok" } }', 11, 50,
     "keys `1` and `0x1` are the same"),
    ('do = "submit"\nring = "r"\nexpect = "ok"', 11, 10, "write `{ submitted = N }` for success"),
    ('do = "submit"\nring = "r"\nexpect = { "7.0+" = { submitted = 1 }, cqes = {} }', 11, 40,
     "`cqes` is not a kernel selector"),
    ('do = "submit"\nring = "r"\nexpect = { "7.0+" = "ok" }', 11, 21, "write `{ submitted = N }` for success"),
    ('do = "ring"\nring = "q"\nexpect = { submitted = 1 }', 11, 10, "only submit steps expect a table"),
    ('do = "ring"\nring = "q"\nflags = [1, 2]', 11, 10, "`flags[0]`: expected a string"),
    ('do = "ring"\nring = "q"\nflags = "R_DISABLD"', 11, 9, "did you mean `R_DISABLED`?"),
    ('do = "ring"\nring = "q"\nentries = 65537', 11, 11, "65537 is out of range 0..0x10000"),
    ('do = "ring"\nring = "task"', 10, 8, "`task` is not a ring name"),
    ('do = "ring"\nring = "a\\u001b[31mb"', 10, 8, "`ring`: control or invisible character `\\x1b`"),
    ('do = "drop_privileges"\nuid = 0', 10, 7, "`uid`: 0 is out of range 1..65534"),
    ('do = "drop_privileges"\nuid = -1', 10, 7, "-1 is out of range 1..65534"),
    ('do = "drop_privileges"\nuid = 4294967295', 10, 7, "out of range 1..65534"),
    ('do = "fork"', 8, 1, "this `fork` step needs `child`"),
    ('do = "forc"\nchild = "c"', 9, 6, "unknown step kind `forc`; did you mean `fork`?"),
    ('do = "nnp"\ntask = 5', 10, 8, "`task`: expected a name"),
    ('do = "nnp"\nexpect = "EACESS"', 10, 10, "did you mean `EACCES`?"),
    ('do = "nnp"\nexpect = { "<7.0+" = "ok" }', 10, 12, "`<7.0+` is not a kernel selector"),
    ('do = "enable"\nring = "r"\nnr_args = -1', 11, 11, "`nr_args`: -1 is out of range 0..65535"),
    ('do = "enable"\nring = "r"\narg = 1', 11, 7, "`arg`: expected true or false"),
    ('do = "wait"\nring = "r"\ntimeout_ms = 0', 11, 14, "`timeout_ms`: 0 is out of range 1..1000"),
    ('do = "wait"\nring = "r"\nmin_complete = 65536', 11, 16, "65536 is out of range 0..65535"),
    ('do = "wait"', 8, 1, "this `wait` step needs `ring`"),
    ('do = "pass_ring"\nring = "r"\nto = "main"\nvia = "ptrace"', 12, 7, "unknown way to pass a ring `ptrace`"),
    ('do = "filter"\nnull = true\nopcode = "NOP"', 11, 10, "`null = true` passes a NULL registration"),
    ('do = "restrict"\nrecords = [["SQE_OP", "NOP", 256]]', 10, 30, "`records[0][2]`: 256 is out of range 0..255"),
    ('do = "restrict"\nrecords = [["SQE_OP", "NOP", 0, [1, 2]]]', 10, 33, "`records[0][3]`: 2 values, exactly 3"),
    ('do = "restrict"\nrecords = [["SQE_OP", "NOP", 0, [1, 2, 3], 4]]', 10, 12, "[type, value, resv, [resv2 x 3]]"),
]


@pytest.mark.parametrize(("step", "line", "column", "words"), STEP_CASES, ids=[c[3][:40] for c in STEP_CASES])
def test_step_fields_are_checked_where_they_are(tmp_path: Path, step: str, line: int, column: int,
                                                words: str) -> None:
    error = _step(tmp_path, step)
    assert error.step == 1 and (error.line, error.column) == (line, column), str(error)
    assert words in error.message, str(error)
    assert str(error).startswith(f"{tmp_path / 's.toml'}:{line}:{column}: step 1: ")


SQE_CASES = [
    ('{ op = "NOP", ud = -1 }', "`sqes[0].ud`: -1 is out of range 0..0xffffffffffffffff"),
    ('{ op = "NOP", ud = "0x1_0000_0000_0000_0000" }', "out of range"),
    ('{ op = "NOP", fd = "null" }', "unknown key `fd` in `sqes[0]` (NOP)"),
    ('{ op = "NOP", sqe_flags = 256 }', "256 is out of range 0..255"),
    ('{ op = "NOP", sqe_flags = "ASYNK" }', "did you mean `ASYNC`?"),
    ('{ op = "WRITE", fd = 3 }', "a descriptor number would reach"),
    ('{ op = "WRITE", fd = "pipe" }', "did you mean `pipe."),
    ('{ op = "WRITE", fd = "null", len = 65537 }', "`sqes[0].len`: 65537 is out of range 0..0x10000"),
    ('{ op = "WRITE", fd = "null", path = "x" }', "unknown key `path` in `sqes[0]` (WRITE)"),
    ('{ op = "OPENAT", fd = "cwd", path = "/etc/shadow" }', "is outside {tmp}"),
    ('{ op = "OPENAT", fd = "cwd", path = "../../etc/passwd" }', "climbs out of {tmp}"),
    ('{ op = "OPENAT", fd = "cwd", path = "{tmp}/../x" }', "climbs out of {tmp}"),
    ('{ op = "OPENAT", fd = "cwd", path = "{tmp}x" }', "may only begin a path"),
    ('{ op = "OPENAT", fd = "cwd", path = "a/{tmp}/b" }', "may only begin a path"),
    ('{ op = "OPENAT2", fd = "cwd", path = "/proc/self/root/etc/shadow" }', "is outside {tmp}"),
    ('{ op = "OPENAT", fd = "cwd", path = "/dev/null", flags = 4294967296 }', "out of range 0..0xffffffff"),
    ('{ op = "OPENAT", fd = "cwd", path = "/dev/null", flags = "O_CREATE" }', "did you mean `O_CREAT`?"),
    ('{ op = "OPENAT", fd = "cwd", path = "/dev/null", flags = -1 }', "-1 is out of range"),
    ('{ op = "CONNECT", family = "AF_UNIX", addr = "/run/docker.sock" }', "is outside {tmp}"),
    ('{ op = "CONNECT", family = "AF_UNIX", addr = "{tmp}/../../run/x.sock" }', "climbs out of {tmp}"),
    ('{ op = "CONNECT", family = "AF_INET", addr = "300.1.1.1" }', "is not an address of this family"),
    ('{ op = "CONNECT", family = "AF_INET", addr = "127.0.0.1", port = 65536 }', "65536 is out of range"),
    ('{ op = "CONNECT", family = "AF_PACKET" }', "needs `socket`"),
    ('{ op = "CONNECT", family = "AF_INET", socket = "AF_NETLINK" }', "unknown socket family `AF_NETLINK`"),
    ('{ op = "SOCKET", family = "AF_INETT" }', "did you mean `AF_INET`?"),
    ('{ op = "SOCKET", family = -1 }', "-1 is out of range"),
    ('{ op = "NOP", result = "EWHAT" }', "neither `ok` nor an errno name"),
    ('{ op = "OPENAT", fd = "cwd", path = "/dev/null", flags = "O_RDWR", op_flags = 1 }',
     "`op_flags` is already set by this opcode's own keys"),
    ('{ op = "OPENAT", fd = "cwd", path = "/dev/null", addr = 0 }', "a raw `addr` is only for opcodes whose address"),
    ('{ op = "READV", fd = "zero", addr = 0 }', "READV reads a structure or a path there"),
    ('{ op = "READ", fd = "zero", addr = 65537 }', "`sqes[0].addr`: 65537 is out of range 0..0x10000"),
    ('{ op = "NOP", addr = -1 }', "-1 is out of range"),
    ('{ op = "NOP", personality = 65536 }', "65536 is out of range 0..65535"),
    ('{ op = "NOP", buf_index = "0x1_0000" }', "out of range 0..65535"),
    ('{ op = "NOP", file_index = true }', "found the boolean true"),
    ('{ op = 256 }', "256"),
    ('{ op = "READ", fd = "sock" }', "unknown resource `sock`; did you mean `sock."),
]


@pytest.mark.parametrize(("sqe", "words"), SQE_CASES, ids=[c[1][:40] for c in SQE_CASES])
def test_sqe_fields_are_checked(tmp_path: Path, sqe: str, words: str) -> None:
    error = _step(tmp_path, f'do = "submit"\nring = "r"\nsqes = [\n  {sqe},\n]')
    assert error.step == 1 and error.line == 12 and error.column > 2, str(error)
    assert words in error.message, str(error)


DOC_CASES = [
    ('[scenario]\nname = "t"\nkernels = 5\n[[step]]\ndo = "nnp"\n', 3, 11, "`scenario.kernels`: expected an array"),
    ('[scenario]\nname = "t"\nkernels = [7]\n[[step]]\ndo = "nnp"\n', 3, 12, "is not a kernel selector"),
    ('[scenario]\nname = "t"\nkernels = ["7.x"]\n[[step]]\ndo = "nnp"\n', 3, 12, "`7.x` is not a kernel selector"),
    ('[scenario]\nname = "t"\nrequires = ["bpf_filtr"]\n[[step]]\ndo = "nnp"\n', 3, 13, "did you mean `bpf_filter`?"),
    ('[scenario]\nname = "t"\ntimeout = 601\n[[step]]\ndo = "nnp"\n', 3, 11, "601 is out of range 1..600"),
    ('[scenario]\nname = "t"\nauthor = "me"\n[[step]]\ndo = "nnp"\n', 3, 1, "unknown key `author` in `scenario`"),
    ('[scenario]\nname = "t"\n[[steps]]\ndo = "nnp"\n', 3, 3, "unknown key `steps` in a scenario document; did you "
                                                            "mean `step`?"),
    ('[scenario]\nname = "t"\n', 1, 1, "no [[step]] entries"),
    ('step = 1\n[scenario]\nname = "t"\n', 1, 8, "expected an array of step tables"),
    ('step = [1]\n[scenario]\nname = "t"\n', 1, 9, "a step is a table"),
    ('name = "t"\n[[step]]\ndo = "nnp"\n', 1, 1, "unknown key `name` in a scenario document"),
    ('[scenario]\n[[step]]\ndo = "nnp"\n', 1, 1, "`scenario` needs `name`"),
    ('[scenario]\nname = "t"\n[[step]]\ndo = "nnp"\ntask = "ghost"\n', 5, 1, "no task named 'ghost'"),
    ('[scenario]\nname = "t"\n[[step]]\ndo = "enable"\nring = "nope"\n', 5, 1, "unknown ring 'nope'"),
    ("[scenario]\nname = \"t\"\nx = " + "[" * 40 + "]" * 40 + "\n", 3, 20, "nest deeper than 16 levels"),
    ('[scenario]\nname = "t"\nname = "u"\n', 3, 1, "already defined"),
    ('[scenario]\nname = "t"\n[[step]]\ndo = "thread"\nthread = "t2"\n[[step]]\ndo = "userns"\n', 7, 1,
     "userns by main: its process has 2 threads"),
    ('[scenario]\nname = "t"\n[[step]]\ndo = "ring"\nring = "r"\n[[step]]\ndo = "pass_ring"\nring = "r"\nto = "main"\n',
     9, 1, "pass_ring to 'main': no such task, or it is in the sending task's own process"),
    ('[scenario]\nname = "t"\n[[step]]\ndo = "ring"\nring = "r"\n[[step]]\ndo = "pass_ring"\nring = "r"\nto = "x"\n',
     9, 1, "no such task"),
    ('[scenario]\nname = "t"\n[[step]]\ndo = "fork"\nchild = "c"\n[[step]]\ndo = "pass_ring"\nring = "r"\nto = "c"\n',
     8, 1, "unknown ring 'r'"),
]


@pytest.mark.parametrize(("text", "line", "column", "words"), DOC_CASES, ids=[c[3][:40] for c in DOC_CASES])
def test_document_level_errors(tmp_path: Path, text: str, line: int, column: int, words: str) -> None:
    error = _load(tmp_path, text)
    assert (error.line, error.column) == (line, column) and words in error.message, str(error)


@pytest.mark.parametrize("step", ['do = "submit"\nring = "r"\nsqes = [{ op = "ACCEPT", fd = "listen" }]',
                                  'do = "register"\nring = "r"\nopcode = "FILES"\nfiles = ["null", "listen"]'])
def test_the_listen_socket_needs_netns(tmp_path: Path, step: str) -> None:
    error = _step(tmp_path, step)
    assert error.step == 1 and "exists only in a private network namespace" in error.message, str(error)
    text = HEAD.replace('name = "t"', 'name = "t"\nrequires = ["netns"]') + "[[step]]\n" + step + "\n"
    (tmp_path / "ok.toml").write_text(text, encoding="utf-8")
    assert load(tmp_path / "ok.toml").requires == ("netns",)


def test_top_level_json_array_and_json_positions(tmp_path: Path) -> None:
    error = _load(tmp_path, "[1, 2]", "s.json")
    assert (error.line, error.column) == (1, 1) and "the document: expected a table, found an array" in str(error)
    error = _load(tmp_path, '{"scenario": {"name": "t"},\n "step": [{"do": "nnp", "uid": 5}]}', "s.json")
    assert (error.line, error.column, error.step) == (2, 25, 0) and "unknown key `uid`" in error.message


def test_user_data_beyond_toml_integers(tmp_path: Path) -> None:
    path = tmp_path / "u.toml"
    path.write_text(HEAD + '[[step]]\ndo = "submit"\nring = "r"\nsqes = [{ op = "NOP", ud = "0xffff_ffff_ffff_ffff" },'
                           ' { op = "NOP", ud = 9223372036854775807 }]\n'
                           'expect = { submitted = 2, cqes = { 0xffffffffffffffff = "ok", '
                           '9223372036854775807 = "ok" } }\n')
    step = load(path).steps[1]
    assert isinstance(step, Submit) and [q.sqe.user_data for q in step.sqes] == [2**64 - 1, 2**63 - 1]
    assert step.expect.default is not None
    result = ModelBackend(profile("7.2")).run(load(path)).steps[1].result
    assert sorted(result.cqes) == [(2**63 - 1, "ok"), (2**64 - 1, "ok")]  # type: ignore[union-attr]


def test_program_file_missing_directory_and_outside(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    secret = tmp_path.parent / "shadow-like"
    secret.write_text("root:$6$secret:19000::::::\n")
    for name, words in (("nope.asm", "no such file"), ("d", "is a directory"),
                        (f"../{secret.name}", "outside the directory"), ("/etc/shadow", "absolute path")):
        error = _step(tmp_path, f'do = "filter"\nopcode = "NOP"\nprogram_file = "{name}"')
        assert (error.line, error.column) == (11, 16) and words in error.message, str(error)
        assert "secret" not in str(error)


def test_program_file_errors_quote_no_more_than_a_token(tmp_path: Path) -> None:
    (tmp_path / "bad.asm").write_text("ret #0\n" + "x" * 4000 + "\x1b[2J: ld [0]\n")
    error = _step(tmp_path, 'do = "filter"\nopcode = "NOP"\nprogram_file = "bad.asm"')
    text = str(error)
    assert "`bad.asm` line 2, column 4001: unexpected character" in text and "\x1b" not in text and len(text) < 500


def test_program_file_inside_the_marked_corpus_root(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    (root / "scenarios" / "x").mkdir(parents=True)
    (root / "programs").mkdir()
    (root / ".ringfence-root").write_text("")
    (root / "programs" / "deny.asm").write_text("ret #0\n")
    path = root / "scenarios" / "x" / "s.toml"
    path.write_text(HEAD + '[[step]]\ndo = "filter"\nring = "r"\nopcode = "NOP"\nprogram_file = "../../programs/'
                           'deny.asm"\n')
    step = load(path).steps[1]
    assert isinstance(step, Filter) and step.source == "ret #0\n"
    (tmp_path / "outside.asm").write_text("ret #0\n")
    path.write_text(path.read_text().replace("../../programs/deny.asm", "../../../outside.asm"))
    with pytest.raises(ScenarioError, match="outside the directory"):
        load(path)
    assert isinstance(load(path, root=tmp_path).steps[1], Filter)  # --root widens it


def test_caps(tmp_path: Path) -> None:
    many = "".join('[[step]]\ndo = "nnp"\n' for _ in range(caps.MAX_STEPS + 1))
    error = _load(tmp_path, '[scenario]\nname = "t"\n' + many)
    assert f"at most {caps.MAX_STEPS} allowed" in error.message and error.line == 3
    sqes = ", ".join('{ op = "NOP" }' for _ in range(caps.MAX_SQES_PER_SUBMIT + 1))
    error = _step(tmp_path, f'do = "submit"\nring = "r"\nsqes = [{sqes}]')
    assert f"at most {caps.MAX_SQES_PER_SUBMIT} allowed" in error.message
    sqes = ", ".join('{ op = "NOP" }' for _ in range(caps.MAX_SQES_PER_SUBMIT))
    submits = "".join(f'[[step]]\ndo = "submit"\nring = "r"\nsqes = [{sqes}]\n'
                      for _ in range(caps.MAX_SQES // caps.MAX_SQES_PER_SUBMIT + 1))
    error = _load(tmp_path, HEAD + submits)
    assert f"more than {caps.MAX_SQES} SQEs in all" in error.message
    error = _step(tmp_path, 'do = "filter"\nopcode = "NOP"\ninsns = [' + ", ".join(["[6, 0, 0, 0]"] * 8193) + "]")
    assert "at most 8192 allowed" in error.message
    program = 'program = """' + "ld [0]\n" * 4095 + 'ret #0"""\n'
    filters = "".join(f'[[step]]\ndo = "filter"\nopcode = "NOP"\n{program}' for _ in range(2))
    sqes = ", ".join('{ op = "NOP" }' for _ in range(256))
    error = _load(tmp_path, HEAD + filters + f'[[step]]\ndo = "submit"\nring = "r"\nsqes = [{sqes}]\n' * 3)
    assert error.step == 5 and "more than 4194304 instruction runs" in error.message


def test_dict_documents_are_checked_the_same_without_lines() -> None:
    with pytest.raises(ScenarioError) as info:
        parse({"scenario": {"name": "t"}, "step": [{"do": "ring", "ring": "r", "entries": True}]}, path="d")
    assert str(info.value) == "d: step 0: `entries`: expected an integer in 0..0x10000, found the boolean true"
    with pytest.raises(ScenarioError, match="did you mean `expect`"):
        parse({"scenario": {"name": "t"}, "step": [{"do": "nnp", "expext": "ok"}]})
    scenario = parse(json.loads(json.dumps({"scenario": {"name": "t", "seed": -3}, "step": [
        {"do": "register", "opcode": "IORING_REGISTER_PROBE", "result": "ENOTSUP"}]})))
    step = scenario.steps[0]
    assert isinstance(step, Register) and step.result == "EOPNOTSUPP" and scenario.meta == {"seed": "-3"}


def test_generated_scenarios_still_load() -> None:
    from ringfence.scenario.generate import generate_many

    for doc in generate_many(4, 40) + generate_many(5, 10, classic_only=True):
        parse(doc)
