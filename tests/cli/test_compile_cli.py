"""``ringfence compile`` through ``ringfence.cli.main.main``: every output format, targets, files, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ringfence.abi.opcodes import SqeOp
from ringfence.abi.profiles import profile
from ringfence.cli import main as cli_main
from ringfence.cli.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE
from ringfence.policy.compile import compile_policy
from ringfence.policy.load import load
from ringfence.policy.plan import Plan

WEB_CLIENT = str(Path(__file__).resolve().parents[2] / "examples" / "policies" / "web-client.toml")


def ringfence(capsys: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, bytes, str]:
    code = cli_main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err.decode()


def test_json_is_the_plan(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, _ = ringfence(capsysbinary, "compile", WEB_CLIENT, "--kernel", "7.2")
    assert code == EXIT_OK
    plan = Plan.loads(out.decode())
    assert plan == compile_policy(load(WEB_CLIENT), profile("7.2")).plan


@pytest.mark.parametrize("target", ["task", "ring"])
def test_c(capsysbinary: pytest.CaptureFixture[bytes], target: str) -> None:
    code, out, _ = ringfence(capsysbinary, "compile", WEB_CLIENT, "--format", "c", "--target", target)
    text = out.decode()
    assert code == EXIT_OK
    args = "int *failed_step" if target == "task" else "int ring_fd, int *failed_step"
    assert f"static inline int rf_web_client_classic_apply({args})\n" in text
    assert ('"enable"' in text) == (target == "ring")
    assert ("ringfence_no_new_privs()) < 0" in text) == (target == "task")
    assert "allow rule at" in text and ": the internal API network, TLS only */" in text


def test_python(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, _ = ringfence(capsysbinary, "compile", WEB_CLIENT, "--format", "python")
    assert code == EXIT_OK
    module: dict[str, object] = {}
    exec(compile(out, "web_client.py", "exec"), module)
    plan = compile_policy(load(WEB_CLIENT), profile("7.2")).plan
    assert module["PLAN_HASH"] == plan.hash
    variants = module["VARIANTS"]
    assert isinstance(variants, dict) and list(variants) == ["classic"]
    programs = [s["program"] for s in variants["classic"] if s["kind"] == "filter"]
    assert programs == [r.filter.program for r in plan.variants[0].registrations if r.filter]


def test_asm_and_raw(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, _ = ringfence(capsysbinary, "compile", WEB_CLIENT, "--format", "asm")
    assert code == EXIT_OK and out.startswith(b"; web-client: CONNECT filter")
    code, out, _ = ringfence(capsysbinary, "compile", WEB_CLIENT, "--format", "raw", "--opcode", "CONNECT")
    compiled = compile_policy(load(WEB_CLIENT), profile("7.2"))
    assert code == EXIT_OK and out == compiled.programs[SqeOp.CONNECT].built.program.to_bytes()
    code, _, err = ringfence(capsysbinary, "compile", WEB_CLIENT, "--format", "raw")
    assert code == EXIT_USAGE and "needs --opcode" in err


@pytest.mark.parametrize("fmt", ["json", "c", "python", "asm"])
def test_output_file(capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path, fmt: str) -> None:
    code, out, _ = ringfence(capsysbinary, "compile", WEB_CLIENT, "--format", fmt)
    target = tmp_path / f"out.{fmt}"
    assert ringfence(capsysbinary, "compile", WEB_CLIENT, "--format", fmt, "-o", str(target))[:2] == (EXIT_OK, b"")
    assert code == EXIT_OK and target.read_bytes() == out


def test_an_unwritable_output_is_a_usage_error(capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    code, _, err = ringfence(capsysbinary, "compile", WEB_CLIENT, "-o", str(tmp_path / "missing" / "x.json"))
    assert code == EXIT_USAGE and "cannot write" in err and "Traceback" not in err


def test_refusals(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, err = ringfence(capsysbinary, "compile", WEB_CLIENT, "--format", "c", "--kernel", "7.0")
    assert code == EXIT_INVALID and out == b"" and "7.0 is older" in err
    with pytest.raises(SystemExit) as info:
        ringfence(capsysbinary, "compile", WEB_CLIENT, "--format", "yaml")
    assert info.value.code == EXIT_USAGE


_WEB = str(Path(__file__).resolve().parents[2] / "examples" / "policies" / "web-client.toml")


@pytest.mark.parametrize("weight", ["socket.family=AF_INET:1e400", "socket.family=AF_INET:nan",
                                    "socket.family=AF_INET:0", "socket.family=AF_INET:x",
                                    "connect.port=99999999:2", "connect.port=-1:2"])
def test_cost_refuses_a_weight_it_cannot_use(weight: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["cost", _WEB, "--kernel", "7.2", "--weight", weight]) == EXIT_USAGE
    assert "--weight" in capsys.readouterr().err


def test_compile_raw_names_an_unknown_opcode(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["compile", _WEB, "--kernel", "7.2", "--format", "raw", "--opcode", "NOPE"]) == EXIT_USAGE
    assert "NOPE" in capsys.readouterr().err


def test_usage_errors_are_json_objects_under_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert cli_main.main(["cost", _WEB, "--kernel", "7.2", "--weight", "socket.family=AF_INET:nan", "--json"]) \
        == EXIT_USAGE
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == 1 and doc["error"]["exit"] == EXIT_USAGE and "--weight" in doc["error"]["message"]
