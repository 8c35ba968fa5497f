"""The ABI tables: sizes, values against the C header on this machine, context words against spec §7.7."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ringfence.abi import (
    OPINFO,
    PROFILES,
    BpfCtx,
    FilterRegistration,
    RegisterOp,
    Restriction,
    SqeOp,
    ctx_from_fields,
    profile,
    profile_for_release,
    register_op,
    sqe_flags,
    sqe_op,
)
from ringfence.abi.layout import BPF_PDU_SIZE_OFFSET, pack_task_restrictions
from ringfence.abi.profiles import matches

HEADER = Path("/usr/include/linux/io_uring.h")


def test_struct_sizes() -> None:
    assert len(Restriction(1, 2).pack()) == 16
    assert len(pack_task_restrictions([Restriction(1, 0)])) == 32
    reg = FilterRegistration(opcode=45, program=bytes(8), pdu_size=12).pack(0x1000)
    assert len(reg) == 72
    assert reg[BPF_PDU_SIZE_OFFSET] == 12
    assert int.from_bytes(reg[24:32], "little") == 0x1000 and int.from_bytes(reg[16:20], "little") == 1
    assert len(BpfCtx().pack()) == 40


def test_opcode_counts_match_profiles() -> None:
    assert len(SqeOp) == PROFILES["7.2"].op_last == 65
    assert len(RegisterOp) == PROFILES["7.2"].register_last == 38
    assert PROFILES["7.2"].max_restrictions == 107  # spec §2.9
    assert PROFILES["6.18"].max_restrictions == 4 + 36 + 63


def test_name_parsing() -> None:
    assert sqe_op("IORING_OP_OPENAT2") is SqeOp.OPENAT2
    assert register_op("IORING_REGISTER_BPF_FILTER") is RegisterOp.BPF_FILTER
    assert register_op("UNREGISTER_FILES") is RegisterOp.UNREGISTER_FILES
    assert sqe_flags("FIXED_FILE|IOSQE_ASYNC") == 0x11
    with pytest.raises(ValueError):
        sqe_op("NOPE")


@pytest.mark.skipif(not HEADER.exists() or not shutil.which("cc"),
                    reason="environment: needs the kernel UAPI header and a C compiler")
def test_values_agree_with_the_c_header(tmp_path: Path) -> None:
    """Every opcode the machine's header knows has the value our table gives it."""
    text = HEADER.read_text()
    names = [f"IORING_OP_{op.name}" for op in SqeOp if re.search(rf"\bIORING_OP_{op.name}\b", text)]
    names += [f"IORING_{'' if op.name.startswith('UNREGISTER') else 'REGISTER_'}{op.name}" for op in RegisterOp]
    names = [n for n in names if re.search(rf"\b{n}\b", text)]
    assert len(names) > 40
    src = tmp_path / "v.c"
    src.write_text("#include <stdio.h>\n#include <linux/io_uring.h>\nint main(void){\n"
                   + "".join(f'printf("%s %d\\n", "{n}", (int){n});\n' for n in names) + "return 0;}\n")
    subprocess.run(["cc", "-o", str(tmp_path / "v"), str(src)], check=True)
    out = subprocess.run([str(tmp_path / "v")], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        name, value = line.split()
        if name.startswith("IORING_OP_"):
            assert int(sqe_op(name)) == int(value), name
        else:
            assert int(register_op(name)) == int(value), name


def test_context_words_match_spec_7_7() -> None:
    c = ctx_from_fields({"opcode": "CONNECT", "sqe_flags": "IOSQE_ASYNC", "pdu_size": 24,
                         "connect.family": "AF_INET", "connect.port": 22, "connect.v4_addr": "127.0.0.1"})
    assert c.word(8) == 16 | 0x10 << 8 | 24 << 16
    assert c.word(20) == 0x00001600
    assert c.word(24) == 0x0100007F
    v6 = ctx_from_fields({"connect.family": "AF_INET6", "connect.v6_addr": "2001:db8::dead"})
    assert v6.word(24) == 0xB80D0120 and v6.word(36) == 0xADDE0000
    o = ctx_from_fields({"open.flags": "O_CREAT|O_RDWR|O_LARGEFILE", "open.resolve": "RESOLVE_IN_ROOT"})
    assert o.word(16) == 0o100102 and o.word(20) == 0 and o.word(32) == 0x10
    u = ctx_from_fields({"user_data": 0x1122334455667788})
    assert (u.word(0), u.word(4)) == (0x55667788, 0x11223344)
    assert BpfCtx.unpack(c.pack()) == c


def test_context_rejects_mixed_members_and_unknown_fields() -> None:
    with pytest.raises(ValueError):
        ctx_from_fields({"socket.family": 2, "open.flags": 0})
    with pytest.raises(ValueError):
        ctx_from_fields({"socket.nope": 2})


def test_profiles() -> None:
    assert profile("7.2").pdu_size(SqeOp.CONNECT) == 24
    assert profile("7.1").pdu_size(SqeOp.CONNECT) == 0
    assert profile("7.0").pdu_size(SqeOp.SOCKET) == 12
    assert not profile("6.18").bpf_filters and not profile("6.18").split_restrictions
    assert profile("7.3").source_cow and not profile("7.2").source_cow
    assert profile_for_release("7.2.13+deb14-amd64").name == "7.2"
    assert profile_for_release("6.18.44-fc-v782").name == "6.18"
    assert profile("7.2").with_features(source_cow=True).source_cow
    with pytest.raises(KeyError):
        profile("5.10")


@pytest.mark.parametrize(("selector", "name", "want"), [
    ("*", "6.18", True), ("7.0+", "6.18", False), ("7.0+", "7.2", True), ("<7.0", "6.18", True),
    ("7.2", "7.2", True), ("7.2", "7.3", False), ("6.18-7.1", "7.1", True), ("6.18-7.1", "7.2", False),
    (">=7.2", "7.3", True), ("<=7.0", "7.1", False),
])
def test_version_selectors(selector: str, name: str, want: bool) -> None:
    assert matches(selector, profile(name)) is want


def test_opinfo_covers_every_opcode() -> None:
    assert set(OPINFO) == set(SqeOp)
    assert OPINFO[SqeOp.SOCKET].ctx_member == "socket"
    assert OPINFO[SqeOp.CONNECT].ctx_member == "connect"
