"""The policy writer: every policy it writes loads back equal (the example policies, and policies built in
Python with every kind of test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from policygen import policy_data

from ringfence.errors import PolicyError
from ringfence.policy.build import allow, deny, policy
from ringfence.policy.fields import FIELDS
from ringfence.policy.load import from_data, load, loads
from ringfence.policy.write import dumps, value_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "policies").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_round_trip(path: Path) -> None:
    p = load(path)
    assert loads(dumps(p)) == p


def test_every_test_kind_round_trips() -> None:
    p = policy("all-kinds",
               allow("SOCKET", socket_family=["AF_INET", 7], socket_type="SOCK_DGRAM|SOCK_CLOEXEC",
                     socket_protocol={"not_in": ["IPPROTO_UDP"]}),
               allow("OPENAT", "OPENAT2", open_flags={"none": ["O_WRONLY", "O_CREAT"], "any": ["O_CLOEXEC"]},
                     open_mode={"range": [0, 0o644]}),
               allow("OPENAT2", open_resolve={"all": ["RESOLVE_BENEATH"]}, open_flags={"mask": 3, "equals": 0}),
               allow("CONNECT", connect_addr={"in": ["10.0.0.0/8", "::1"], "not_in": ["10.1.0.0/16"]},
                     connect_port={"min": 1024}, connect_family="AF_INET"),
               deny("CONNECT", connect_port=[22, 25], reason="no ssh, no smtp", name="mail"),
               allow("READ", "WRITE", sqe_flags={"none": ["IOSQE_FIXED_FILE"]}),
               kernel="7.2+", flags_allowed=["IO_LINK", "ASYNC"], flags_required=["IO_LINK"],
               register=["PROBE", "ENABLE_RINGS"], description="one of each")
    text = dumps(p, header=["a header"], rule_comments=[["above the first rule"]],
                 op_comments=[{}, {18: "the open"}])
    assert loads(text) == p
    assert "# the open" in text and "# above the first rule" in text and text.startswith("# a header")


def test_values_use_names_where_one_says_exactly_the_value() -> None:
    assert value_text(FIELDS["socket.type"], 0o2000001) == "SOCK_STREAM|SOCK_CLOEXEC"
    assert value_text(FIELDS["open.flags"], 0o100101) == "O_WRONLY|O_CREAT|O_LARGEFILE"
    assert value_text(FIELDS["socket.family"], 10) == "AF_INET6"
    assert value_text(FIELDS["socket.family"], 250) == 250
    assert value_text(FIELDS["open.mode"], 0o600) == "0o600"
    assert value_text(FIELDS["open.flags"], 1 << 30) == "0x40000000"



def test_random_policies_round_trip() -> None:
    loaded = 0
    for seed in range(300):
        try:
            p = from_data(policy_data(seed))
        except PolicyError:
            continue  # the generator may write a policy the loader refuses; that is not this test's subject
        loaded += 1
        assert loads(dumps(p)) == p, seed
    assert loaded > 200
