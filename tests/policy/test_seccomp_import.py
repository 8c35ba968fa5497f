"""``ringfence import-seccomp`` against libseccomp: what the profile lets through, the policy lets through.

For Debian's packaged profiles and this project's fixtures, with several capability sets:

* the importer's reading of a profile (:func:`ringfence.policy.seccomp_profile.verdict`) gives the action the
  filter libseccomp builds from it returns, call by call (``libseccomp_oracle``), wherever the profile has no
  overlapping rules; where it has, the importer is never the more permissive;
* the policy allows a request exactly when libseccomp lets every system call the opcode stands for through with
  the request's arguments; where the importer had to leave something out (a note says so), the policy is never
  the more permissive;
* the committed policies under ``tests/corpus/policies/seccomp/`` are what the command makes today;
* ``--emit-profile`` lets the io_uring system calls through and changes nothing else.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import libseccomp_oracle as oracle
import pytest
from seccomp_sources import IMPORTS, PACKAGED, Import, packaged_or_skip

from ringfence.abi.constants import O
from ringfence.abi.opcodes import SqeOp
from ringfence.abi.opinfo import BY_SYSCALL, OPINFO
from ringfence.abi.seccomp import IO_URING_SYSCALLS
from ringfence.cli import main as cli_main
from ringfence.policy import semantics
from ringfence.policy.fields import FIELDS
from ringfence.policy.load import load as load_policy
from ringfence.policy.seccomp_import import emit_profile, import_profile
from ringfence.policy.seccomp_profile import (
    CAP_PRESETS,
    Act,
    Action,
    Comparison,
    Op,
    Resolved,
    parse,
    parse_caps,
    resolve,
    verdict,
)
from ringfence.policy.seccomp_profile import load as load_profile

pytestmark = pytest.mark.skipif(not oracle.available(), reason="libseccomp is not installed (scripts/setup.sh)")

FIXTURES = ("argument-rules.json", "overlap.json")
SOURCES = (*PACKAGED, *FIXTURES)
CAPSETS = ("podman", "docker", "none", "all")
U64 = (1 << 64) - 1
LARGEFILE = O["O_LARGEFILE"]


def _path(source: str) -> Path:
    return Import("x", source, "podman").profile()


def _raw(action: Action) -> int:
    base = {Act.KILL_PROCESS: 0x80000000, Act.KILL_THREAD: 0, Act.TRAP: 0x30000, Act.ERRNO: 0x50000,
            Act.NOTIFY: 0x7FC00000, Act.TRACE: 0x7FF00000, Act.LOG: 0x7FFC0000, Act.ALLOW: 0x7FFF0000}[action.act]
    return base | ((action.data or 0) & 0xFFFF)


def _setup(source: str, capset: str) -> tuple[Resolved, oracle.Filter, dict[str, Any]]:
    path = _path(source)
    data = json.loads(path.read_text())
    caps = parse_caps(capset)
    return resolve(load_profile(str(path)), caps, "amd64"), oracle.build(data, caps), data


def _arg_samples(resolved: Resolved, syscall: str) -> list[int]:
    values = {0, 1, 2, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, U64, U64 - 99}
    for rule in resolved.rules_for(syscall):
        for c in rule.args:
            for v in (c.value, c.value_two & c.value, c.value_two):
                values.update({v, (v + 1) & U64, (v - 1) & U64, v ^ 0x8000})
    return sorted(values)


def _satisfying(c: Comparison, r: random.Random) -> int:
    """An argument value that satisfies ``c`` (when one exists), chosen near its edges."""
    v = c.value
    if c.op is Op.MASKED_EQ:
        return (c.value_two & v) | (r.getrandbits(64) & ~v & U64)
    return {Op.EQ: v, Op.NE: v ^ (1 << r.randrange(64)), Op.LT: max(v - 1, 0), Op.LE: v, Op.GT: min(v + 1, U64),
            Op.GE: v}[c.op]


def _vectors(resolved: Resolved, syscall: str, r: random.Random) -> list[tuple[int, ...]]:
    """Calls to try: each rule's comparisons satisfied (and then one of them broken), and random ones."""
    samples = _arg_samples(resolved, syscall)
    out = [(0,) * 6]
    for rule in resolved.rules_for(syscall):
        for _ in range(3):
            args = [r.choice(samples) for _ in range(6)]
            for c in rule.args:
                args[c.index] = _satisfying(c, r)
            out.append(tuple(args))
            if rule.args:
                c = r.choice(rule.args)
                args[c.index] = r.choice(samples)
                out.append(tuple(args))
    out += [tuple(r.choice(samples) for _ in range(6)) for _ in range(30)]
    return out


def _overlapping(resolved: Resolved, syscall: str) -> bool:
    from ringfence.policy.seccomp_args import may_both_hold

    rules = resolved.rules_for(syscall)
    return any(a.action.lets_through != b.action.lets_through
               and all(may_both_hold(x, y) for x in a.args for y in b.args if x.index == y.index)
               for a, b in itertools.combinations(rules, 2))


@pytest.mark.parametrize("capset", CAPSETS)
@pytest.mark.parametrize("source", SOURCES)
def test_the_reading_of_a_profile_is_libseccomps(source: str, capset: str) -> None:
    resolved, filt, _ = _setup(source, capset)
    assert not filt.refused, filt.refused  # runtimes would fail to start the container: no such profile here
    r = random.Random(f"{source}/{capset}")
    compared = 0
    for syscall in sorted({*BY_SYSCALL, *IO_URING_SYSCALLS, *resolved.rules}):
        if oracle.syscall_number(syscall) is None:
            continue
        overlap = _overlapping(resolved, syscall)
        for args in _vectors(resolved, syscall, r):
            ours, theirs = verdict(resolved, syscall, args), filt.action(syscall, args)
            if overlap:  # precedence: never more permissive than whatever libseccomp chose
                assert not ours.lets_through or theirs & 0xFFFF0000 in (oracle.ALLOW, oracle.LOG), (syscall, args)
            else:
                assert _raw(ours) == theirs, (syscall, [hex(a) for a in args], str(ours), hex(theirs))
            compared += 1
    assert compared > 500


# -- the policy against the profile ------------------------------------------------------------------------------

_FAMILIES = (0, 1, 2, 3, 9, 10, 16, 17, 18, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF)
_TYPES = (1, 2, 3, 5, 1 | 0o2000000, 2 | 0o4000, 0xF, 0x11, 0xFFFF_FFFF)
_PROTOCOLS = (0, 6, 9, 17, 0xFFFF_FFFF)
_FLAG_BASES = (0, 1, 2, 3, O["O_CREAT"] | 1, O["O_TRUNC"], O["O_TRUNC"] | 1, O["O_CREAT"] | O["O_TRUNC"] | 2,
               O["O_DIRECTORY"], O["O_SYNC"] | 1, O["O_TMPFILE"] | 2, O["O_PATH"], O["O_PATH"] | O["O_CLOEXEC"])
_MODES = (0, 0o600, 0o644, 0o645, 0o755, 0o777)
_UNSEEN = (0, 3, 0xFFFF_FFFF_FFFF_FF9C, 0x7FFF_0000_1000)


def _contexts(op: SqeOp) -> list[tuple[dict[str, int], dict[int, int]]]:
    """Contexts the kernel can build for ``op`` (field values), each with the syscall arguments they carry."""
    if op is SqeOp.SOCKET:
        return [({"socket.family": f, "socket.type": t, "socket.protocol": p}, {})
                for f, t, p in itertools.product(_FAMILIES, _TYPES, _PROTOCOLS)]
    if op is SqeOp.OPENAT:
        out = []
        for flags, mode in itertools.product(_FLAG_BASES, _MODES):
            creating = flags & (O["O_CREAT"] | O["__O_TMPFILE"])
            if mode and not creating:
                continue
            seen = flags if flags & O["O_PATH"] else flags | LARGEFILE  # what the kernel puts in the context
            out.append(({"open.flags": seen, "open.mode": mode}, {}))
        return out
    return [({}, {})]


def _ctx(fields: dict[str, int]) -> bytes:
    ctx = bytearray(40)
    for name, value in fields.items():
        f = FIELDS[name]
        ctx[f.offset:f.offset + f.size] = value.to_bytes(f.size, "little")
    return bytes(ctx)


def _int(value: int) -> int:
    """A C int as the C library passes it to a system call: sign-extended to 64 bits."""
    return value | (U64 ^ 0xFFFF_FFFF) if value & 0x8000_0000 else value


def _carried(op: SqeOp, syscall: str, fields: dict[str, int]) -> dict[int, int]:
    """The arguments of ``syscall`` a request with this context stands for, written out independently of
    ``seccomp_args``: socket's three ints; openat's flags as the caller passed them (the kernel added
    O_LARGEFILE) and its mode."""
    if op is SqeOp.SOCKET and syscall == "socket":
        return {i: _int(fields[name]) for i, name in enumerate(("socket.family", "socket.type", "socket.protocol"))}
    if op is SqeOp.OPENAT and syscall == "openat":
        return {2: fields["open.flags"] & ~LARGEFILE, 3: fields["open.mode"]}
    return {}


def _argument_vectors(op: SqeOp, syscall: str, fields: dict[str, int], samples: list[int]) -> list[tuple[int, ...]]:
    """Argument vectors of ``syscall`` consistent with the context: the arguments it carries exactly, the others
    over ``samples``."""
    known = _carried(op, syscall, fields)
    r = random.Random(f"{op.name}/{syscall}/{sorted(fields.items())}")
    vectors = [tuple(known.get(i, r.choice(samples)) for i in range(6)) for _ in range(24)]
    vectors.append(tuple(known.get(i, 0) for i in range(6)))
    return vectors


@pytest.mark.parametrize("capset", CAPSETS)
@pytest.mark.parametrize("source", SOURCES)
def test_the_policy_lets_through_what_the_profile_does(source: str, capset: str) -> None:
    resolved, filt, _ = _setup(source, capset)
    imported = import_profile(resolved, name="t")
    noted = {n.message.split(":", 1)[0] for n in imported.notes if n.kind in ("unseen-argument", "allow-dropped")}
    exact_ops = {op for op in SqeOp if op.name not in noted
                 and not any(_overlapping(resolved, s) for s in OPINFO[op].syscalls)}
    checked = 0
    for op in SqeOp:
        syscalls = OPINFO[op].syscalls
        for fields, _ in _contexts(op):
            allowed = semantics.decide(imported.policy, int(op), 0, _ctx(fields)).allowed
            if not syscalls:
                assert allowed, op.name
                continue
            through = all(filt.lets_through(s, args) for s in syscalls
                          for args in _argument_vectors(op, s, fields, [*_UNSEEN, *_arg_samples(resolved, s)]))
            if allowed:
                assert through, (op.name, fields)
            elif op in exact_ops:
                assert not through, (op.name, fields)
            checked += 1
    assert checked > 300


# -- the committed policies ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("item", IMPORTS, ids=lambda i: i.name)
def test_committed_policies_are_current(item: Import, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"{item.name}.toml"
    assert cli_main.main([*item.argv(), "-o", str(out)]) == 0, capsys.readouterr().err
    assert out.read_text() == item.policy.read_text(), (
        f"{item.policy.name} is not what `ringfence {' '.join(item.argv())}` makes now: if the profile or the "
        "importer changed on purpose, write it again with that command and -o")
    assert load_policy(item.policy).name == item.name


def test_the_netlink_audit_rule_holds_for_socket() -> None:
    """containers-common denies socket(AF_NETLINK, *, NETLINK_AUDIT) without CAP_AUDIT_WRITE: so does SOCKET."""
    resolved = resolve(load_profile(str(packaged_or_skip("containers-common"))), CAP_PRESETS["podman"], "amd64")
    policy = import_profile(resolved, name="t").policy
    audit = _ctx({"socket.family": 16, "socket.type": 3, "socket.protocol": 9})
    route = _ctx({"socket.family": 16, "socket.type": 3, "socket.protocol": 0})
    assert not semantics.decide(policy, int(SqeOp.SOCKET), 0, audit).allowed
    assert semantics.decide(policy, int(SqeOp.SOCKET), 0, route).allowed
    with_cap = resolve(resolved.profile, (*CAP_PRESETS["podman"], "CAP_AUDIT_WRITE"), "amd64")
    assert semantics.decide(import_profile(with_cap, name="t").policy, int(SqeOp.SOCKET), 0, audit).allowed


# -- the emitted profile ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", SOURCES)
def test_the_emitted_profile_adds_io_uring_and_nothing_else(source: str) -> None:
    resolved, before, _ = _setup(source, "podman")
    text = emit_profile(resolved)
    emitted = parse(text, "emitted.json")
    after = oracle.build(json.loads(text), parse_caps("podman"))
    assert not after.refused, after.refused
    for name in IO_URING_SYSCALLS:
        assert after.lets_through(name), name
        assert verdict(resolve(emitted, parse_caps("podman"), "amd64"), name, ()).lets_through
    r = random.Random(source)
    for syscall in sorted(BY_SYSCALL):
        for args in _vectors(resolved, syscall, r)[:12]:
            assert before.action(syscall, args) == after.action(syscall, args), (syscall, args)


def test_overlaps_resolve_to_the_more_restrictive_action() -> None:
    """Where an allowing and a denying rule both match, the deny wins in the reading and in the policy (libseccomp
    itself lets the unconditional ALLOW win here: the note says so)."""
    resolved, filt, _ = _setup("overlap.json", "podman")
    assert str(verdict(resolved, "socket", (17, 1, 0))) == "SCMP_ACT_ERRNO(EPERM)"
    assert filt.lets_through("socket", (17, 1, 0))  # libseccomp: the unconditional rule replaced the other
    assert verdict(resolved, "openat", (0, 0, O["O_TRUNC"], 0)).act is Act.KILL_PROCESS
    imported = import_profile(resolved, name="t")
    packet = _ctx({"socket.family": 17, "socket.type": 1, "socket.protocol": 0})
    truncating = _ctx({"open.flags": O["O_TRUNC"] | LARGEFILE, "open.mode": 0})
    assert not semantics.decide(imported.policy, int(SqeOp.SOCKET), 0, packet).allowed
    assert not semantics.decide(imported.policy, int(SqeOp.OPENAT), 0, truncating).allowed
    assert semantics.decide(imported.policy, int(SqeOp.OPENAT), 0, _ctx({"open.flags": LARGEFILE})).allowed
    assert {n.kind for n in imported.notes} >= {"overlap", "unseen-argument", "action"}
    assert not semantics.decide(imported.policy, int(SqeOp.SEND), 0, bytes(40)).allowed  # sendto's length: unseen


def test_emitting_for_a_profile_that_allows_by_default() -> None:
    """No ALLOW entry of its own there (libseccomp refuses a rule with the default action): removing the io_uring
    names from the denying entries is enough."""
    text = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["io_uring_setup", "io_uring_enter", "io_uring_register"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["io_uring_setup", "mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]})
    resolved = resolve(parse(text, "allow.json"), (), "amd64")
    out = json.loads(emit_profile(resolved))
    assert out["syscalls"] == [{"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    after = oracle.build(out, ())
    assert not after.refused and all(after.lets_through(n) for n in IO_URING_SYSCALLS)
    assert not after.lets_through("mount")


def test_packaged_profiles_parse_as_written() -> None:
    for name in PACKAGED:
        path = packaged_or_skip(name)
        profile = load_profile(str(path))
        data = json.loads(path.read_text())
        assert len(profile.entries) == len(data["syscalls"])
        assert [list(e.names) for e in profile.entries] == [s.get("names") or [s["name"]] for s in data["syscalls"]]
