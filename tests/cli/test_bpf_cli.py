"""``ringfence asm | disasm | check | emu`` through ``ringfence.cli.main.main`` (exit codes, stdout, stderr)."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from ringfence.bpf import Program, assemble, disassemble
from ringfence.cli import main as cli_main

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "programs"
INET_ONLY = CORPUS / "liburing_allow_inet_only.asm"
DENY_PORT = CORPUS / "liburing_connect_deny_port.asm"
MINE = ("asm", "disasm", "check", "emu")


@pytest.fixture(autouse=True)
def only_bpf_subcommands(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests need only the four cBPF subcommands, whatever else the command table lists."""
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", MINE)


def ringfence(*argv: str) -> int:
    return cli_main.main(list(argv))


def stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


@pytest.mark.parametrize("name", MINE)
def test_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = cli_main._load(name)
    with pytest.raises(SystemExit) as info:
        ringfence(name, "--help")
    out = " ".join(capsys.readouterr().out.split())
    assert info.value.code == 0
    assert module.SUMMARY in out and "exit codes:" in out and "examples:" in out


def test_top_level_help_lists_summaries(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        ringfence("--help")
    out = " ".join(capsys.readouterr().out.split())
    for name in MINE:
        assert cli_main._load(name).SUMMARY in out


class TestAsm:
    def test_hex_by_default(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert ringfence("asm", str(INET_ONLY)) == 0
        out = capsys.readouterr().out
        assert out.splitlines() == ["2000000010000000", "1500000102000000", "0600000001000000", "0600000000000000"]

    def test_raw_to_a_file(self, tmp_path: Path) -> None:
        out = tmp_path / "f.bpf"
        assert ringfence("asm", str(INET_ONLY), "-o", str(out)) == 0
        assert Program.from_bytes(out.read_bytes()) == assemble(INET_ONLY.read_text())

    def test_raw_to_stdout(self, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
        assert ringfence("asm", str(INET_ONLY), "--format", "raw") == 0
        assert capsysbinary.readouterr().out == assemble(INET_ONLY.read_text()).to_bytes()

    def test_c_and_python(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert ringfence("asm", str(INET_ONLY), "--format", "c") == 0
        text = capsys.readouterr().out
        assert text.startswith("struct sock_filter filter[] = {\n") and "{ 0x0015, 0, 1, 0x00000002 }," in text
        assert ringfence("asm", str(INET_ONLY), "--format", "python") == 0
        assert eval(capsys.readouterr().out) == [(0x20, 0, 0, 16), (0x15, 0, 1, 2), (6, 0, 0, 1), (6, 0, 0, 0)]

    def test_json_from_stdin(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        stdin(monkeypatch, b"ret #0\n")
        assert ringfence("asm", "-", "--json") == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc == {"schema": 1, "length": 1, "hex": "0600000000000000", "instructions": [[6, 0, 0, 0]]}

    def test_error_exits_3_with_a_caret(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        bad = tmp_path / "bad.asm"
        bad.write_text("ld [socket.family]\njeq #AF_INET, nowhere\n")
        assert ringfence("asm", str(bad)) == 3
        err = capsys.readouterr()
        assert err.out == "" and f"{bad}:2:15: error: undefined label 'nowhere'" in err.err and "^" in err.err

    def test_missing_file_is_a_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert ringfence("asm", "/nonexistent/x.asm") == 2
        assert "cannot read" in capsys.readouterr().err


class TestDisasm:
    def test_raw_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        program = assemble(INET_ONLY.read_text())
        path = tmp_path / "f.bpf"
        path.write_bytes(program.to_bytes())
        assert ringfence("disasm", str(path)) == 0
        assert capsys.readouterr().out == disassemble(program)

    def test_hex_from_stdin_plain(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        stdin(monkeypatch, b"0600000000000000\n")
        assert ringfence("disasm", "-", "--no-annotate") == 0
        assert capsys.readouterr().out == "        ret     #0\n"

    def test_format_override_and_json(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "prog.txt"
        path.write_bytes(bytes.fromhex("0600000001000000"))
        assert ringfence("disasm", str(path), "--format", "raw", "--json") == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["schema"] == 1 and doc["listing_format"] == 1 and doc["length"] == 1
        assert doc["lines"] == [{"pc": 0, "label": "", "code": 6, "jt": 0, "jf": 0, "k": 1, "mnemonic": "ret",
                                 "operands": "#1", "note": "allow"}]

    def test_truncated_input_is_invalid(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "f.bpf"
        path.write_bytes(b"\x06\0\0\0\0\0\0")
        assert ringfence("disasm", str(path)) == 3
        assert "not a whole number of 8-byte instructions" in capsys.readouterr().err


class TestCheck:
    def test_accepted(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert ringfence("check", str(INET_ONLY)) == 0
        assert capsys.readouterr().out == "accepted: 4 instructions\n"

    def test_rejected_lists_every_reason(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "bad.asm"
        path.write_text("ldh [0]\nmod #0\nld M[3]\n")
        assert ringfence("check", str(path)) == 3
        out = capsys.readouterr().out.splitlines()
        assert out[0] == "rejected (EINVAL): 5 problems"
        assert out[1].startswith("  pc 1: stage 2 div-by-zero: ")
        assert [line.split(":")[0].strip() for line in out[1:]] == ["pc 1", "pc 2", "pc 2", "pc 0", "pc 1"]

    def test_json_and_input_override(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "prog"
        path.write_text("0600000000000000 0e00000000000000\n")
        assert ringfence("check", str(path), "--input", "hex", "--json") == 3
        doc = json.loads(capsys.readouterr().out)
        assert doc["schema"] == 1 and doc["accepted"] is False and doc["errno"] == "EINVAL"
        assert [(d["pc"], d["stage"], d["rule"]) for d in doc["diagnostics"]] == [
            (1, 2, "unknown-code"), (1, 2, "no-final-ret"), (1, 3, "not-whitelisted")]

    def test_dead_code_rewrite_option(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "dead.asm"
        path.write_text("ja end\nmod #7\nend: ret #1\n")
        assert ringfence("check", str(path)) == 3
        assert ringfence("check", str(path), "--dead-code-rewrite") == 0
        capsys.readouterr()

    def test_asm_errors_exit_3(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "bad.asm"
        path.write_text("frob\n")
        assert ringfence("check", str(path)) == 3
        assert "unknown mnemonic 'frob'" in capsys.readouterr().err


class TestEmu:
    def test_allow_with_expect(self, capsys: pytest.CaptureFixture[str]) -> None:
        code = ringfence("emu", str(INET_ONLY), "--field", "opcode=SOCKET", "--field", "socket.family=AF_INET",
                         "--expect", "allow")
        assert code == 0
        assert capsys.readouterr().out == "verdict: allow\nreturn:  1 (0x1)\nsteps:   3\nreads:   16\n"

    def test_unexpected_verdict_exits_1(self, capsys: pytest.CaptureFixture[str]) -> None:
        code = ringfence("emu", str(INET_ONLY), "--field", "opcode=SOCKET", "--field", "socket.family=AF_INET6",
                         "--expect", "allow")
        assert code == 1
        captured = capsys.readouterr()
        assert "verdict: deny" in captured.out and "expected allow, got deny" in captured.err

    def test_trace_and_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        argv = ("emu", str(DENY_PORT), "--field", "opcode=CONNECT", "--field", "connect.family=AF_INET",
                "--field", "connect.port=22", "--field", "connect.v4_addr=127.0.0.1")
        assert ringfence(*argv, "--trace") == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].split() == ["pc", "instruction", "A", "X", "written"]
        assert out[1].split()[:3] == ["0", "ld", "[16]"] and "verdict: deny" in out
        assert ringfence(*argv, "--json", "--trace", "--expect", "deny") == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["schema"] == 1 and doc["verdict"] == "deny" and doc["value"] == 0 and doc["matched"] is True
        assert doc["reads"] == [16, 20] and [s["pc"] for s in doc["trace"]] == [0, 1, 2, 3, 4]
        ctx = bytes.fromhex(doc["ctx"])
        assert ctx[10] == 24  # pdu_size from the 7.2 profile for CONNECT
        assert ctx[20:24] == bytes([0, 22, 0, 0])

    def test_pdu_size_follows_profile_unless_given(self, capsys: pytest.CaptureFixture[str]) -> None:
        allow_all = str(CORPUS / "liburing_allow_all.asm")
        ringfence("emu", allow_all, "--field", "opcode=CONNECT", "--kernel", "7.1", "--json")
        assert bytes.fromhex(json.loads(capsys.readouterr().out)["ctx"])[10] == 0
        ringfence("emu", allow_all, "--field", "opcode=SOCKET", "--field", "pdu_size=7", "--json")
        assert bytes.fromhex(json.loads(capsys.readouterr().out)["ctx"])[10] == 7

    def test_ctx_hex(self, capsys: pytest.CaptureFixture[str]) -> None:
        ctx = bytes(16) + (2).to_bytes(4, "little") + bytes(20)
        assert ringfence("emu", str(INET_ONLY), "--ctx-hex", ctx.hex(), "--expect", "allow") == 0
        assert ringfence("emu", str(INET_ONLY), "--ctx-hex", "00") == 2
        assert "40 bytes" in capsys.readouterr().err

    def test_bad_fields_are_usage_errors(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert ringfence("emu", str(INET_ONLY), "--field", "nosuch=1") == 2
        assert "unknown context field" in capsys.readouterr().err
        with pytest.raises(SystemExit) as info:
            ringfence("emu", str(INET_ONLY), "--field", "novalue")
        assert info.value.code == 2

    def test_rejected_program_exits_3(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "bad.asm"
        path.write_text("ldh [0]\nret a\n")
        assert ringfence("emu", str(path)) == 3
        assert "not-whitelisted" in capsys.readouterr().err


class TestHostileInput:
    """Inputs other people wrote: special files, huge files, escape sequences, out-of-range fields."""

    @pytest.mark.parametrize("command", MINE)
    def test_special_files_are_usage_errors_without_blocking(self, command: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        for path in ("/dev/zero", str(fifo), str(tmp_path), str(tmp_path / "missing")):
            assert ringfence(command, path) == 2, path
            err = capsys.readouterr().err
            assert err.startswith(f"{path}: cannot read: ") and "Traceback" not in err

    @pytest.mark.parametrize("command", MINE)
    def test_json_errors_are_objects(self, command: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
        bad = tmp_path / "bad.asm"
        bad.write_text("ret #0\nfrob x\n")
        cases = [(str(tmp_path / "missing"), 2, None)] + ([(str(bad), 3, 2)] if command != "disasm" else [])
        for path, code, line in cases:
            assert ringfence(command, path, "--json") == code, path
            out = json.loads(capsys.readouterr().out)
            assert out["schema"] == 1 and out["error"]["exit"] == code and out["error"]["line"] == line, out

    def test_unreadable_file_is_a_usage_error(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Root reads every file, so there the command runs in a child that became nobody (after a warm-up run
        has imported everything it needs)."""
        path = tmp_path / "secret.asm"
        path.write_text("ret #0\n")
        assert ringfence("check", str(path)) == 0
        capsys.readouterr()
        path.chmod(0)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 99
            try:
                sys.stderr = open(write, "w", closefd=False)  # noqa: SIM115 - the child exits right after
                if os.geteuid() == 0:
                    os.setresuid(65534, 65534, 65534)
                code = ringfence("check", str(path))
                sys.stderr.flush()
            finally:
                os._exit(code)
        os.close(write)
        err = os.read(read, 4096).decode()
        os.close(read)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 2, err
        assert err.startswith(f"{path}: cannot read: ") and "ermission denied" in err, err

    @pytest.mark.parametrize(("suffix", "size", "message"), [
        (".bpf", 32 * 1024 + 8, "more than 32768 bytes"),
        (".hex", 2**20 + 16, "more than 1048576 bytes"),
        (".asm", 4 * 2**20 + 1, "more than 4194304 bytes"),
    ])
    def test_oversized_files_are_refused_quickly(self, tmp_path: Path, suffix: str, size: int, message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / f"big{suffix}"
        path.write_bytes(b"0" * size)
        assert ringfence("check", str(path)) == 3
        assert f"{path}: {message}" in capsys.readouterr().err

    def test_oversized_stdin_is_refused(self, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
        stdin(monkeypatch, bytes(50 * 2**20))
        assert ringfence("check", "-") == 3
        assert "<stdin>: more than 32768 bytes" in capsys.readouterr().err

    def test_decode_errors_name_file_and_offset(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "x.hex"
        path.write_text("0600000000000000\n06000000000000zz\n")
        assert ringfence("disasm", str(path)) == 3
        assert f"{path}: byte offset 31: 'z' is not a hex digit" in capsys.readouterr().err
        path = tmp_path / "x.asm"
        path.write_bytes(b"ret #0\n\xff\n")
        assert ringfence("check", str(path)) == 3
        assert f"{path}: byte offset 7: not UTF-8" in capsys.readouterr().err

    def test_escape_sequences_never_reach_the_terminal(self, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "evil\x1b[2J.asm"
        path.write_text("ret #0\nld [16\x1b]0;title\x07]\n")
        assert ringfence("check", str(path)) == 3
        err = capsys.readouterr().err
        assert "\x1b" not in err and "\x07" not in err and "evil␛[2J.asm:2:7:" in err and "␛]0;title␇" in err

    @pytest.mark.parametrize(("field", "message"), [
        ("connect.port=70000", "connect.port: 70000 does not fit in 2 bytes"),
        ("connect.port=-1", "connect.port: -1 is negative"),
        ("connect.v4_addr=4294967296", "connect.v4_addr: 4294967296 does not fit in 4 bytes"),
        ("connect.v4_addr=::1", "holds IPv4"),
        ("connect.v6_addr=1.2.3.4", "holds IPv6"),
        ("connect.v6_addr=nonsense:", "is not an IPv6 address"),
        ("opcode=-1", "opcode: -1 is negative"),
        ("opcode=256", "opcode: 256 does not fit in 1 byte"),
        ("user_data=18446744073709551616", "user_data: 18446744073709551616 does not fit in 8 bytes"),
        ("socket.family=-1", "socket.family: -1 is negative"),
        ("opcode=FROB", "opcode: unknown constant 'FROB'"),
        ("open.flags=O_CREAT|", "open.flags: empty term"),
    ])
    def test_emu_fields_are_validated(self, field: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
        assert ringfence("emu", str(INET_ONLY), "--field", field) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err

    def test_kernel_option_and_deprecated_profile(self, capsys: pytest.CaptureFixture[str]) -> None:
        allow_all = str(CORPUS / "liburing_allow_all.asm")
        assert ringfence("emu", allow_all, "--field", "opcode=CONNECT", "--kernel", "7.1", "--json") == 0
        assert bytes.fromhex(json.loads(capsys.readouterr().out)["ctx"])[10] == 0
        assert ringfence("emu", allow_all, "--field", "opcode=CONNECT", "--profile", "7.2", "--json") == 0
        captured = capsys.readouterr()
        assert bytes.fromhex(json.loads(captured.out)["ctx"])[10] == 24 and "deprecated" in captured.err
        with pytest.raises(SystemExit):
            ringfence("emu", "--help")
        assert "--profile" not in capsys.readouterr().out

    def test_seccomp_target(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "sandbox.asm"
        path.write_text("ld [nr]\n jeq #__NR_io_uring_setup, deny\n ret #SECCOMP_RET_ALLOW\n"
                        "deny: ret #SECCOMP_RET_ERRNO|1\n")
        assert ringfence("check", str(path)) == 3  # [nr] is no io_uring field
        capsys.readouterr()
        assert ringfence("check", str(path), "--target", "seccomp") == 0
        assert ringfence("emu", str(path), "--target", "seccomp", "--field", "nr=425", "--expect", "deny") == 0
        assert "verdict: deny (SECCOMP_RET_ERRNO|1)" in capsys.readouterr().out
        assert ringfence("emu", str(path), "--target", "seccomp", "--field", "args.0=-1") == 2
        assert ringfence("asm", str(path), "--target", "seccomp") == 0
