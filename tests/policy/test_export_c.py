"""Exported C under gcc -std=c11 -Wall -Wextra -Werror: with this host's headers alone (older than the io_uring
structures it needs, so its own declarations are used), with Debian sid's kernel headers, and with sid's liburing
included first. Every exported byte is compared with the Plan, the structures with the headers' own, and each
variant's apply function runs in a forked child and must fail (or succeed) exactly as ringfence.live does for
the same calls on this kernel.

The sid packages are fetched once through the private apt configuration and cached; without network or apt the
tests skip, except in CI (``CI=true``) or with ``RINGFENCE_REQUIRE_VM=1``, where that is a failure.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cexport import (
    SID_PACKAGES,
    Headers,
    check_program,
    compile_c,
    live_outcomes,
    run,
    unavailable,
    variant_prefixes,
)
from policygen import policy_data

from ringfence.abi.profiles import profile
from ringfence.errors import RingfenceError
from ringfence.policy.ast import TargetKind
from ringfence.policy.compile import compile_policy
from ringfence.policy.export import cdecl, rule_reasons
from ringfence.policy.export.c import to_c
from ringfence.policy.load import from_data, load
from ringfence.policy.plan import Plan
from ringfence.vm.debs import ensure_packages

ROOT = Path(__file__).resolve().parents[2]
WEB_CLIENT = ROOT / "examples" / "policies" / "web-client.toml"
PROFILE = profile("7.2")
ODD = {"policy": {"name": "odd */ name ??/", "default": "deny", "kernel": "7.2+"},
       "allow": [{"ops": ["SOCKET"], "socket": {"family": "AF_INET"}, "name": "in*/et",
                  "reason": "closes */ a comment, ??/ trigraph,\nnewline"},
                 {"ops": ["READ", "CLOSE"], "reason": "plain"}],
       "deny": [{"ops": ["OPENAT"], "open": {"flags": {"any": ["O_CREAT"]}}, "reason": "no creating"}]}

# an empty register allow-list and nothing else: a restrictions step without a single record
LOCKED = {"policy": {"name": "locked", "default": "deny", "kernel": "7.0+"}, "register": {"allowed": []}}


def _compiled(name: str) -> tuple[Plan, str]:
    if name.startswith("web-client"):
        policy = load(str(WEB_CLIENT))
    elif name == "odd":
        policy = from_data(ODD)
    elif name.startswith("locked"):
        policy = from_data(LOCKED)
    else:
        policy = from_data(policy_data(int(name.split("-")[1])))
    if name.endswith("ring"):
        policy = dataclasses.replace(policy, target=TargetKind.RING)
    plan = compile_policy(policy, PROFILE).plan
    return plan, to_c(plan, reasons=rule_reasons(policy))


POLICIES = ("web-client", "web-client-ring", "random-4", "random-4-ring", "random-11", "random-17", "odd", "locked",
            "locked-ring")
ALONE = Headers("this host's headers", own_declarations=not Path("/usr/include/linux/io_uring/bpf_filter.h").exists())


@pytest.fixture(scope="session")
def sid_headers() -> tuple[Headers, Headers]:
    """sid's linux-libc-dev alone, and liburing-dev in front of it (liburing.h included first)."""
    try:
        liburing, linux = ensure_packages(SID_PACKAGES)
    except RingfenceError as exc:
        unavailable(f"cannot fetch {', '.join(SID_PACKAGES)} from sid: {exc}")
        raise
    kernel = Headers(f"sid linux-libc-dev {linux.version}", tuple(linux.include_dirs()))
    both = Headers(f"sid liburing-dev {liburing.version} + linux-libc-dev {linux.version}",
                   (*liburing.include_dirs(), *linux.include_dirs()), liburing=True)
    return kernel, both


@pytest.fixture(scope="module")
def live() -> dict[str, list[tuple[str, int, int]]]:
    """ringfence.live's outcome per policy and variant, computed once."""
    return {}


def _check(name: str, headers: Headers, tmp_path: Path, live: dict[str, list[tuple[str, int, int]]],
           *, all_names: bool) -> None:
    plan, source = _compiled(name)
    header = "sandbox.h"
    # the file alone, as its own translation unit: strict C11, no feature macros
    compile_c({header: source}, header, tmp_path / "alone.o", headers, link=False)
    program = check_program(plan, source, header, headers, all_names=all_names)
    binary = compile_c({header: source, "main.c": program}, "main.c", tmp_path / "main", headers,
                       extra=("-D_GNU_SOURCE",))
    got = run(binary)
    if name not in live:
        live[name] = live_outcomes(plan)
    assert [(m, r, s) for m, r, s, _ in got] == live[name], (headers.name, got)
    for (mechanism, ret, step, step_name), variant in zip(got, plan.variants, strict=True):
        assert mechanism == variant.mechanism
        if ret < 0:  # the failing step is named, and it is a step of this variant
            assert step >= 0 and step_name != "none"
            kinds = (["no_new_privs"] if plan.target == "task" else []) + [r.kind for r in variant.registrations]
            assert step_name.split(" ")[0] == kinds[step], (step_name, kinds)


@pytest.mark.parametrize("name", POLICIES)
def test_with_this_hosts_headers(name: str, tmp_path: Path, live: dict[str, list[tuple[str, int, int]]]) -> None:
    _check(name, ALONE, tmp_path, live, all_names=False)


@pytest.mark.parametrize("name", POLICIES)
def test_with_sid_kernel_headers(name: str, tmp_path: Path, sid_headers: tuple[Headers, Headers],
                                 live: dict[str, list[tuple[str, int, int]]]) -> None:
    _check(name, sid_headers[0], tmp_path, live, all_names=True)


@pytest.mark.parametrize("name", POLICIES)
def test_after_sid_liburing(name: str, tmp_path: Path, sid_headers: tuple[Headers, Headers],
                            live: dict[str, list[tuple[str, int, int]]]) -> None:
    _check(name, sid_headers[1], tmp_path, live, all_names=True)


def test_on_a_kernel_without_filters_the_filter_step_fails(tmp_path: Path) -> None:
    """On a kernel without io_uring filters (this host's, when it predates 7.0), a ring gets its restriction
    records and then fails at the first filter, with the kernel's errno, and says so."""
    plan, source = _compiled("web-client-ring")
    if live_outcomes(plan)[0][1] == 0:
        pytest.skip("this kernel accepts io_uring filters")
    program = check_program(plan, source, "sandbox.h", ALONE, all_names=False)
    got = run(compile_c({"sandbox.h": source, "main.c": program}, "main.c", tmp_path / "main", ALONE,
                        extra=("-D_GNU_SOURCE",)))
    mechanism, ret, step, step_name = got[0]
    assert (mechanism, step, step_name) == ("classic", 1, "filter IORING_OP_CONNECT") and ret < 0


@pytest.mark.parametrize("which", ["alone", "sid-kernel", "sid-liburing"])
def test_two_policies_in_one_program(which: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Shared declarations and helpers are guarded: two exported files can be included together."""
    headers = ALONE if which == "alone" else request.getfixturevalue("sid_headers")[which == "sid-liburing"]
    (_, a), (_, b) = _compiled("web-client"), _compiled("random-4-ring")
    calls = [f"{p}_apply(&step)" for p in variant_prefixes(a)] + \
            [f"{p}_apply(-1, &step)" for p in variant_prefixes(b)]
    main = ("#include <liburing.h>\n" if headers.liburing else "") + '#include "a.h"\n#include "b.h"\n' + \
        "int main(int argc, char **argv)\n{\n\tint step;\n\n\t(void)argv;\n\tif (argc > 99) {\n" + \
        "".join(f"\t\t(void){c};\n" for c in calls) + "\t}\n\treturn 0;\n}\n"
    compile_c({"a.h": a, "b.h": b, "main.c": main}, "main.c", tmp_path / "main", headers, extra=("-D_GNU_SOURCE",))


def test_a_broken_declaration_is_caught(tmp_path: Path) -> None:
    """The layout checks can fail: a declaration with a member out of place does not compile."""
    _, source = _compiled("web-client")
    broken = source.replace("\t__u8 pdu_size;\n", "\t__u16 pdu_size;\n", 1)
    assert broken != source
    with pytest.raises(AssertionError, match=r"static assertion failed: .struct io_uring_bpf_filter is 64 bytes"):
        compile_c({"sandbox.h": broken}, "sandbox.h", tmp_path / "x.o", ALONE, link=False)


def test_a_look_alike_that_differs_is_caught(tmp_path: Path, sid_headers: tuple[Headers, Headers]) -> None:
    """The comparison with liburing's structures can fail: a look-alike with a member of the wrong size."""
    wrong = dataclasses.replace(cdecl.BPF_FILTER, members=tuple(
        dataclasses.replace(m, ctype="__u16") if m.name == "pdu_size" else m for m in cdecl.BPF_FILTER.members))
    main = "#include <liburing.h>\n#include <stddef.h>\n" + cdecl.declarations((wrong,), "x_") + \
        cdecl.comparison_asserts((wrong,), "x_") + "int main(void) { return 0; }\n"
    with pytest.raises(AssertionError, match=r"static assertion failed: .size of io_uring_bpf_filter\.pdu_size"):
        compile_c({"main.c": main}, "main.c", tmp_path / "main", sid_headers[1], extra=("-D_GNU_SOURCE",))


def test_a_wrong_byte_is_caught(tmp_path: Path) -> None:
    """The byte comparison can fail: a program whose Plan says something else is reported."""
    plan, source = _compiled("web-client")
    broken = source.replace("BPF_STMT(BPF_RET | BPF_K, 1),", "BPF_STMT(BPF_RET | BPF_K, 2),", 1)
    assert broken != source
    program = check_program(plan, broken, "sandbox.h", ALONE, all_names=False)
    binary = compile_c({"sandbox.h": broken, "main.c": program}, "main.c", tmp_path / "main", ALONE,
                       extra=("-D_GNU_SOURCE",))
    with pytest.raises(AssertionError, match="MISMATCH rf_web_client_classic_connect_program"):
        run(binary)
