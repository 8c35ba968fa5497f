"""``ringfence audit``: each finding class fires on a policy that has the problem and stays quiet on its fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ringfence.abi.profiles import profile
from ringfence.bpf.asm.assemble import assemble
from ringfence.cli.main import main
from ringfence.policy.audit import Severity, audit_policy, audit_program
from ringfence.policy.load import loads

ROOT = Path(__file__).resolve().parents[2]
HEAD = ('[policy]\nname = "p"\nkernel = "7.2+"\ndefault = "deny"\n[flags]\nallowed = []\n'
        '[register]\nallowed = ["ENABLE_RINGS"]\n')


def _codes(text: str, kernel: str = "7.2") -> set[str]:
    return {f.code for f in audit_policy(loads(text), profile(kernel))}


def _allow(ops: str, extra: str = "") -> str:
    return f'[[allow]]\nops = [{", ".join(repr(o).replace(chr(39), chr(34)) for o in ops.split())}]\n{extra}'


# (code, a policy with the problem, the same policy without it)
CASES = [
    ("no-default-deny", HEAD.replace('"deny"', '"allow"') + _allow("NOP"), HEAD + _allow("NOP")),
    ("passthrough-allowed", HEAD + _allow("URING_CMD"), HEAD + _allow("NOP")),
    ("route-open", HEAD + _allow("OPENAT", 'open.flags = { none = ["O_CREAT"] }\n') + _allow("OPENAT2"),
     HEAD + _allow("OPENAT OPENAT2", 'open.flags = { none = ["O_CREAT"] }\n')),
    ("route-open", HEAD + _allow("SEND RECV") + '[[deny]]\nop = "SENDMSG"\n' + _allow("SENDMSG"),
     HEAD + _allow("SEND RECV")),
    ("connect-without-socket", HEAD + _allow("CONNECT", 'connect.port = 443\n') + _allow("SOCKET"),
     HEAD + _allow("CONNECT", 'connect.port = 443\n') + _allow("SOCKET", 'socket.family = "AF_INET"\n')),
    ("addressed-send-open", HEAD + _allow("CONNECT", 'connect.port = 443\n') + _allow("SENDMSG"),
     HEAD + _allow("CONNECT", 'connect.port = 443\n')),
    ("user-data", HEAD + _allow("NOP", "user_data = 7\n"), HEAD + _allow("NOP")),
    ("flags-unrestricted", HEAD.replace("[flags]\nallowed = []\n", "") + _allow("NOP"), HEAD + _allow("NOP")),
    ("register-unrestricted", HEAD.replace('[register]\nallowed = ["ENABLE_RINGS"]\n', "") + _allow("NOP"),
     HEAD + _allow("NOP")),
    ("widening-register", HEAD.replace('["ENABLE_RINGS"]', '["ENABLE_RINGS", "PERSONALITY"]') + _allow("NOP"),
     HEAD + _allow("NOP")),
    ("widening-route", HEAD + _allow("FIXED_FD_INSTALL"), HEAD + _allow("READ")),
    ("widening-route", HEAD + _allow("MSG_RING"), HEAD + _allow("READ")),
    ("widening-route", HEAD + _allow("FILES_UPDATE"), HEAD + _allow("READ")),
    ("direct-descriptor", HEAD + _allow("ACCEPT"), HEAD + _allow("READ")),
    ("field-unpopulated", HEAD.replace('"7.2+"', '"7.0+"') + _allow("CONNECT", "connect.port = 80\n"),
     HEAD + _allow("CONNECT", "connect.port = 80\n")),
    ("never-matches", HEAD + _allow("SOCKET", 'socket.family = { in = [2], not_in = [2] }\n'),
     HEAD + _allow("SOCKET", 'socket.family = 2\n')),
]


@pytest.mark.parametrize(("code", "bad", "good"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_finding_fires_and_its_fix_silences_it(code: str, bad: str, good: str) -> None:
    assert code in _codes(bad)
    assert code not in _codes(good)


def test_fixed_files_only_makes_widening_routes_high() -> None:
    fixed = HEAD.replace("allowed = []", 'allowed = []\nrequired = ["FIXED_FILE"]')
    high = [f for f in audit_policy(loads(fixed + _allow("READ MSG_RING ACCEPT")), profile("7.2"))
            if f.code in ("widening-route", "direct-descriptor")]
    assert {f.code for f in high} == {"widening-route", "direct-descriptor"}
    assert all(f.severity is Severity.HIGH for f in high)
    low = audit_policy(loads(HEAD + _allow("READ MSG_RING ACCEPT")), profile("7.2"))
    assert all(f.severity < Severity.HIGH for f in low)


def test_route_findings_come_from_the_opinfo_table() -> None:
    from ringfence.abi.opinfo import ROUTES

    for route in ROUTES:
        first, *rest = route.opcodes
        text = HEAD + f'[[deny]]\nop = "{first.name}"\n' + _allow(" ".join(o.name for o in rest))
        found = [f for f in audit_policy(loads(text), profile("7.2")) if f.code == "route-open"]
        assert found and route.name in found[0].message, route.name


def _program(asm: str) -> object:
    return assemble(asm)


@pytest.mark.parametrize(("asm", "op", "kernel", "code", "present"), [
    ("ld [0]\njeq #1, yes, no\nyes: ret #1\nno: ret #0\n", "NOP", "7.2", "user-data", True),
    ("ld [16]\njeq #2, yes, no\nyes: ret #1\nno: ret #0\n", "SOCKET", "7.2", "user-data", False),
    ("ld [20]\njeq #0x5000, yes, no\nyes: ret #1\nno: ret #0\n", "CONNECT", "7.0", "field-unpopulated", True),
    ("ld [20]\njeq #0x5000, yes, no\nyes: ret #1\nno: ret #0\n", "CONNECT", "7.2", "field-unpopulated", False),
    ("ret #1\n", "URING_CMD", "7.2", "passthrough-allowed", True),
    ("ret #0\n", "URING_CMD", "7.2", "passthrough-allowed", False),
    ("ld [16]\njset #0x40, no, yes\nyes: ret #1\nno: ret #0\n", "OPENAT", "7.2", "route-open", True),
    ("ret #1\n", "OPENAT", "7.2", "route-open", False),
    ("ret #1\n", "NOP", "7.2", "constant", True),
    ("ret #1\n", "MSG_RING", "7.2", "widening-route", True),
    ("ret #0\n", "MSG_RING", "7.2", "widening-route", False),
])
def test_program_findings(asm: str, op: str, kernel: str, code: str, present: bool) -> None:
    from ringfence.abi.opcodes import sqe_op

    found = {f.code for f in audit_program(assemble(asm), int(sqe_op(op)), profile(kernel))}
    assert (code in found) == present, found


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(HEAD + _allow("URING_CMD"))
    code, out, _ = _cli(["audit", str(bad), "--json"], capsys)
    doc = json.loads(out)
    assert code == 1 and doc["schema"] == 1 and doc["failed"] is True
    assert any(f["code"] == "passthrough-allowed" and f["severity"] == "high" for f in doc["findings"])
    assert _cli(["audit", str(bad), "--fail-on", "none"], capsys)[0] == 0
    good = tmp_path / "good.toml"
    good.write_text(HEAD + _allow("NOP"))
    assert _cli(["audit", str(good)], capsys)[0] == 0


def test_cli_bad_input_is_positioned_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(HEAD + '[[allow]]\nop = "OPENATT"\n')
    code, out, err = _cli(["audit", str(broken)], capsys)
    assert code == 3 and "broken.toml:" in err and "Traceback" not in err
    code, out, _ = _cli(["audit", str(broken), "--json"], capsys)
    assert code == 3 and json.loads(out)["error"]["line"] == 10
    assert _cli(["audit", str(tmp_path / "missing.toml")], capsys)[0] == 2
    asm = tmp_path / "p.asm"
    asm.write_text("ld [16]\nbogus\n")
    code, _, err = _cli(["audit", str(asm), "--opcode", "OPENAT"], capsys)
    assert code == 3 and "p.asm:2" in err
    assert _cli(["audit", str(asm)], capsys)[0] == 2
