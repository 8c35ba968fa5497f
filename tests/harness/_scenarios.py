"""Scenarios the live tests run on the host and, through batch mode, on the 7.2 kernel in the VM.

Written as the scenario-file dict structure (docs/scenarios.md). Programs are raw ``insns`` so that these do not
depend on the assembler. Expectations come from spec §9 (liburing tests) and §3.7/§6.6; where the spec leaves a
question open (source-side COW on 7.2), the step has no expectation and the test reads the transcript.
"""

from __future__ import annotations

from typing import Any

RET1 = [[6, 0, 0, 1]]
RET0 = [[6, 0, 0, 0]]
#: allow iff the word at 16 (socket.family / connect.family) == AF_INET
INET_ONLY = [[0x20, 0, 0, 16], [0x15, 0, 1, 2], [6, 0, 0, 1], [6, 0, 0, 0]]
#: allow iff (word at 20 & 0xf) == SOCK_STREAM
TCP_ONLY = [[0x20, 0, 0, 20], [0x54, 0, 0, 0xF], [0x15, 0, 1, 1], [6, 0, 0, 1], [6, 0, 0, 0]]


def sc(name: str, steps: list[dict[str, Any]], *, kernels: tuple[str, ...] = ("*",),
       requires: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"scenario": {"name": name, "kernels": list(kernels), "requires": list(requires)}, "step": steps}


LIBURING_REGISTER_RESTRICTIONS = [
    sc("restrictions_sqe_op", [
        {"do": "ring", "ring": "r", "flags": "R_DISABLED", "expect": "ok"},
        {"do": "restrict", "ring": "r", "records": [["SQE_OP", "WRITEV"], ["SQE_OP", "WRITE"]], "expect": "ok"},
        {"do": "enable", "ring": "r", "expect": "ok"},
        {"do": "submit", "ring": "r", "sqes": [{"op": "WRITEV", "fd": "pipe.w", "ud": 1},
                                               {"op": "READV", "fd": "pipe.r", "ud": 2}],
         "expect": {"submitted": 2, "cqes": {"1": "ok", "2": "EACCES"}}},
    ]),
    sc("restrictions_register_op", [
        {"do": "ring", "ring": "r", "flags": "R_DISABLED"},
        {"do": "restrict", "ring": "r", "records": [["REGISTER_OP", "BUFFERS"]], "expect": "ok"},
        {"do": "enable", "ring": "r", "expect": "ok"},
        {"do": "register", "ring": "r", "opcode": "BUFFERS", "expect": "ok"},
        {"do": "register", "ring": "r", "opcode": "FILES", "files": ["pipe.r", "pipe.w"], "expect": "EACCES"},
    ]),
    sc("restrictions_fixed_file", [
        {"do": "ring", "ring": "r", "flags": "R_DISABLED"},
        {"do": "restrict", "ring": "r", "records": [["SQE_OP", "WRITEV"], ["SQE_OP", "READV"],
                                                    ["SQE_FLAGS_REQUIRED", "FIXED_FILE"],
                                                    ["REGISTER_OP", "FILES"]], "expect": "ok"},
        {"do": "enable", "ring": "r", "expect": "ok"},
        {"do": "register", "ring": "r", "opcode": "FILES", "files": ["pipe.r", "pipe.w"], "expect": "ok"},
        {"do": "submit", "ring": "r", "sqes": [
            {"op": "WRITEV", "fd": 1, "sqe_flags": "FIXED_FILE", "ud": 1},
            {"op": "READV", "fd": 0, "sqe_flags": "FIXED_FILE", "ud": 2},
            {"op": "WRITEV", "fd": "pipe.w", "ud": 3}],
         "expect": {"submitted": 3, "cqes": {"1": "ok", "2": "ok", "3": "EACCES"}}},
    ]),
    sc("restrictions_flags", [
        {"do": "ring", "ring": "r", "flags": "R_DISABLED"},
        {"do": "restrict", "ring": "r", "records": [["SQE_OP", "WRITEV"], ["SQE_FLAGS_ALLOWED", "ASYNC|IO_LINK"],
                                                    ["SQE_FLAGS_REQUIRED", "FIXED_FILE"]], "expect": "ok"},
        {"do": "register", "ring": "r", "opcode": "FILES", "files": ["pipe.w"], "expect": "ok"},
        {"do": "enable", "ring": "r", "expect": "ok"},
        {"do": "submit", "ring": "r", "sqes": [
            {"op": "WRITEV", "fd": 0, "sqe_flags": "FIXED_FILE", "ud": 1},
            {"op": "WRITEV", "fd": 0, "sqe_flags": "FIXED_FILE|ASYNC", "ud": 2},
            {"op": "WRITEV", "fd": 0, "sqe_flags": "FIXED_FILE|IO_LINK", "ud": 3}],
         "expect": {"submitted": 3, "cqes": {"1": "ok", "2": "ok", "3": "ok"}}},
        {"do": "submit", "ring": "r", "sqes": [{"op": "WRITEV", "fd": 0, "sqe_flags": "FIXED_FILE|IO_DRAIN",
                                                "ud": 4}], "expect": {"submitted": 1, "cqes": {"4": "EACCES"}}},
        {"do": "submit", "ring": "r", "sqes": [{"op": "WRITEV", "fd": "pipe.w", "sqe_flags": "IO_DRAIN", "ud": 5}],
         "expect": {"submitted": 1, "cqes": {"5": "EACCES"}}},
        {"do": "submit", "ring": "r", "sqes": [{"op": "WRITEV", "fd": "pipe.w", "sqe_flags": "ASYNC", "ud": 6}],
         "expect": {"submitted": 1, "cqes": {"6": "EACCES"}}},
        {"do": "submit", "ring": "r", "sqes": [{"op": "WRITEV", "fd": "pipe.w", "ud": 7}],
         "expect": {"submitted": 1, "cqes": {"7": "EACCES"}}},
    ]),
    sc("restrictions_empty", [
        {"do": "ring", "ring": "r", "flags": "R_DISABLED"},
        {"do": "restrict", "ring": "r", "records": [], "expect": "ok"},
        {"do": "enable", "ring": "r", "expect": "ok"},
        {"do": "register", "ring": "r", "opcode": "BUFFERS", "expect": "EACCES"},
        {"do": "register", "ring": "r", "opcode": "FILES", "files": ["pipe.w"], "expect": "EACCES"},
        {"do": "submit", "ring": "r", "sqes": [{"op": "WRITEV", "fd": "pipe.w", "ud": 1}],
         "expect": {"submitted": 1, "cqes": {"1": "EACCES"}}},
    ]),
    sc("restrictions_rings_not_disabled", [
        {"do": "ring", "ring": "r"},
        {"do": "restrict", "ring": "r", "records": [["SQE_OP", "WRITEV"]], "expect": "EBADFD"},
    ]),
    sc("restrictions_rings_disabled", [
        {"do": "ring", "ring": "r", "flags": "R_DISABLED"},
        {"do": "submit", "ring": "r", "sqes": [{"op": "NOP", "ud": 1}], "expect": {"submitted": "EBADFD"}},
    ]),
]

SEMANTICS = [
    # spec §3.7: only a REGISTER_OP record. Pre-7.0 the SQE side is restricted too.
    sc("split_register_op_only", [
        {"do": "ring", "ring": "r", "flags": "R_DISABLED"},
        {"do": "restrict", "ring": "r", "records": [["REGISTER_OP", "PROBE"]], "expect": "ok"},
        {"do": "enable", "ring": "r", "expect": "ok"},
        {"do": "submit", "ring": "r", "sqes": [{"op": "NOP", "ud": 1}],
         "expect": {"<7.0": {"submitted": 1, "cqes": {"1": "EACCES"}},
                    "7.0+": {"submitted": 1, "cqes": {"1": "ok"}}}},
        {"do": "register", "ring": "r", "opcode": "BUFFERS", "expect": "EACCES"},
    ]),
    sc("blind_filter_unsupported_or_needs_priv", [
        {"do": "drop_privileges"},
        {"do": "filter", "opcode": "NOP", "insns": RET1, "expect": {"<7.0": "EINVAL", "7.0+": "EACCES"}},
        {"do": "ring", "ring": "r"},
        {"do": "close", "ring": "r"},
        # the opcode range check comes before the fd lookup (§4.1)
        {"do": "filter", "ring": "r", "opcode": "NOP", "insns": RET1, "expect": {"<7.0": "EINVAL", "7.0+": "EBADF"}},
    ], requires=("unprivileged",)),
]

TASK = [
    sc("task_restrict_sqe_op", [
        {"do": "nnp"},
        {"do": "restrict", "records": [["SQE_OP", "NOP"]], "expect": "ok"},
        {"do": "ring", "ring": "r", "expect": "ok"},
        {"do": "submit", "ring": "r", "sqes": [{"op": "NOP", "ud": 1}, {"op": "READ", "fd": "zero", "ud": 2}],
         "expect": {"submitted": 2, "cqes": {"1": "ok", "2": "EACCES"}}},
    ], kernels=("7.0+",)),
    sc("task_restrict_fork_inherit_and_exec", [
        {"do": "nnp"},
        {"do": "restrict", "records": [["SQE_OP", "NOP"], ["SQE_OP", "WRITE"]], "expect": "ok"},
        {"do": "fork", "child": "c"},
        {"do": "ring", "task": "c", "ring": "r"},
        {"do": "submit", "task": "c", "ring": "r", "sqes": [{"op": "NOP", "ud": 1},
                                                            {"op": "READ", "fd": "zero", "ud": 2}],
         "expect": {"submitted": 2, "cqes": {"1": "ok", "2": "EACCES"}}},
        {"do": "exec", "task": "c", "expect": "ok"},
        {"do": "ring", "task": "c", "ring": "r2"},
        {"do": "submit", "task": "c", "ring": "r2", "sqes": [{"op": "READ", "fd": "zero", "ud": 3}],
         "expect": {"submitted": 1, "cqes": {"3": "EACCES"}}},
        {"do": "restrict", "task": "c", "records": [["SQE_OP", "NOP"]], "expect": "EPERM"},
    ], kernels=("7.0+",)),
    sc("task_restrict_double_register", [
        {"do": "nnp"},
        {"do": "restrict", "records": [["SQE_OP", "NOP"]], "expect": "ok"},
        {"do": "restrict", "records": [["SQE_OP", "NOP"]], "expect": "EPERM"},
    ], kernels=("7.0+",)),
    sc("task_restrict_register_op", [
        {"do": "nnp"},
        {"do": "restrict", "records": [["REGISTER_OP", "FILES"]], "expect": "ok"},
        {"do": "ring", "ring": "r"},
        {"do": "register", "ring": "r", "opcode": "FILES", "files": ["null"], "expect": "ok"},
        {"do": "register", "ring": "r", "opcode": "BUFFERS", "expect": "EACCES"},
        {"do": "submit", "ring": "r", "sqes": [{"op": "NOP", "ud": 1}],
         "expect": {"submitted": 1, "cqes": {"1": "ok"}}},
    ], kernels=("7.0+",)),
    sc("task_state_is_per_thread", [
        {"do": "thread", "thread": "t"},
        {"do": "nnp"},
        {"do": "filter", "opcode": "NOP", "insns": RET0, "expect": "ok"},
        {"do": "ring", "task": "t", "ring": "rt"},
        {"do": "submit", "task": "t", "ring": "rt", "sqes": [{"op": "NOP", "ud": 1}],
         "expect": {"submitted": 1, "cqes": {"1": "ok"}}},
        {"do": "thread", "thread": "u"},
        {"do": "ring", "task": "u", "ring": "ru"},
        {"do": "submit", "task": "u", "ring": "ru", "sqes": [{"op": "NOP", "ud": 2}],
         "expect": {"submitted": 1, "cqes": {"2": "EACCES"}}},
    ], kernels=("7.0+",)),
]

FILTERS = [
    sc("cbpf_no_new_privs_required_unless_root", [
        {"do": "fork", "child": "root"},
        {"do": "filter", "task": "root", "opcode": "NOP", "insns": RET1, "expect": "ok"},
        {"do": "fork", "child": "nobody"},
        {"do": "drop_privileges", "task": "nobody"},
        {"do": "filter", "task": "nobody", "opcode": "NOP", "insns": RET1, "expect": "EACCES"},
        {"do": "nnp", "task": "nobody"},
        {"do": "filter", "task": "nobody", "opcode": "NOP", "insns": RET1, "expect": "ok"},
    ], kernels=("7.0+",), requires=("unprivileged",)),
    sc("cbpf_deny_nop_and_inherit", [
        {"do": "nnp"},
        {"do": "filter", "opcode": "NOP", "insns": RET0, "expect": "ok", "expect_pdu_size": 0},
        {"do": "fork", "child": "c"},
        {"do": "ring", "task": "c", "ring": "r"},
        {"do": "submit", "task": "c", "ring": "r", "sqes": [{"op": "NOP", "ud": 1}],
         "expect": {"submitted": 1, "cqes": {"1": "EACCES"}}},
        {"do": "filter", "task": "c", "opcode": "NOP", "insns": RET1, "expect": "ok"},
        {"do": "ring", "task": "c", "ring": "r2"},
        {"do": "submit", "task": "c", "ring": "r2", "sqes": [{"op": "NOP", "ud": 2}],
         "expect": {"submitted": 1, "cqes": {"2": "EACCES"}}},
    ], kernels=("7.0+",)),
    sc("cbpf_socket_inet_tcp_stack", [
        {"do": "nnp"},
        {"do": "filter", "opcode": "SOCKET", "pdu_size": 12, "insns": INET_ONLY, "expect": "ok",
         "expect_pdu_size": 12},
        {"do": "fork", "child": "c"},
        {"do": "filter", "task": "c", "opcode": "SOCKET", "pdu_size": 12, "insns": TCP_ONLY, "expect": "ok"},
        {"do": "ring", "task": "c", "ring": "r"},
        {"do": "submit", "task": "c", "ring": "r", "sqes": [
            {"op": "SOCKET", "family": "AF_INET", "type": "SOCK_STREAM", "ud": 1},
            {"op": "SOCKET", "family": "AF_INET", "type": "SOCK_DGRAM", "ud": 2}],
         "expect": {"submitted": 2, "cqes": {"1": "ok", "2": "EACCES"}}},
        {"do": "submit", "task": "c", "ring": "r", "sqes": [
            {"op": "SOCKET", "family": "AF_INET6", "type": "SOCK_STREAM", "ud": 3}],
         "expect": {"submitted": 1, "cqes": {"3": "EACCES"}}},
    ], kernels=("7.0+",)),
    sc("cbpf_pdu_size_ring", [
        {"do": "ring", "ring": "r"},
        {"do": "filter", "ring": "r", "opcode": "SOCKET", "pdu_size": 24, "insns": RET1, "expect": "EMSGSIZE",
         "expect_pdu_size": 12},
        {"do": "filter", "ring": "r", "opcode": "SOCKET", "pdu_size": 8, "insns": RET1, "expect": "ok",
         "expect_pdu_size": 12},
        {"do": "ring", "ring": "r2"},
        {"do": "filter", "ring": "r2", "opcode": "SOCKET", "pdu_size": 8, "flags": "SZ_STRICT", "insns": RET1,
         "expect": "EMSGSIZE", "expect_pdu_size": 12},
        {"do": "filter", "ring": "r2", "opcode": "CONNECT", "pdu_size": 24, "insns": RET1,
         "expect": {"7.0-7.1": "EMSGSIZE", "7.2+": "ok"}},
    ], kernels=("7.0+",)),
    sc("cbpf_deny_rest_ring", [
        {"do": "ring", "ring": "r"},
        {"do": "filter", "ring": "r", "opcode": "NOP", "flags": "DENY_REST", "insns": RET1, "expect": "ok"},
        {"do": "submit", "ring": "r", "sqes": [{"op": "NOP", "ud": 1}],
         "expect": {"submitted": 1, "cqes": {"1": "ok"}}},
        {"do": "submit", "ring": "r", "sqes": [{"op": "SOCKET", "family": "AF_INET", "type": "SOCK_STREAM",
                                                "ud": 2}], "expect": {"submitted": 1, "cqes": {"2": "EACCES"}}},
    ], kernels=("7.0+",)),
    sc("cbpf_connect_inet_only", [
        {"do": "ring", "ring": "r"},
        {"do": "filter", "ring": "r", "opcode": "CONNECT", "pdu_size": 24, "insns": INET_ONLY, "expect": "ok"},
        {"do": "submit", "ring": "r", "sqes": [
            {"op": "CONNECT", "family": "AF_INET", "addr": "127.0.0.1", "port": 1, "ud": 1,
             "result": "ECONNREFUSED"},
            {"op": "CONNECT", "family": "AF_INET6", "addr": "::1", "port": 1, "ud": 2}],
         "expect": {"submitted": 2, "cqes": {"1": "ECONNREFUSED", "2": "EACCES"}}},
        # a denied SQE without a link flag ends the submission (§8.2): ud 4 stays queued for the next submit
        {"do": "submit", "ring": "r", "sqes": [
            {"op": "CONNECT", "family": "AF_INET6", "addr": "::1", "port": 1, "ud": 3},
            {"op": "CONNECT", "family": "AF_INET", "addr": "192.0.2.1", "port": 80, "ud": 4,
             "result": "ENETUNREACH"}],
         "expect": {"submitted": 1, "cqes": {"3": "EACCES"}}},
        {"do": "submit", "ring": "r", "sqes": [], "expect": {"submitted": 1, "cqes": {"4": "ENETUNREACH"}}},
    ], kernels=("7.2+",), requires=("netns",)),
]

# spec §6.6: the outcome is what 7.0–7.2 vs 7.3 differ on, so no expectation; tests read the transcript.
SOURCE_COW = [
    sc("source_cow_ring", [
        {"do": "nnp"},
        {"do": "filter", "opcode": "NOP", "insns": RET1, "expect": "ok"},
        {"do": "ring", "ring": "a"},
        {"do": "filter", "opcode": "NOP", "insns": RET0, "expect": "ok"},
        {"do": "submit", "ring": "a", "sqes": [{"op": "NOP", "ud": 1}]},
    ], kernels=("7.0+",)),
    sc("source_cow_child", [
        {"do": "nnp"},
        {"do": "filter", "opcode": "NOP", "insns": RET1, "expect": "ok"},
        {"do": "fork", "child": "c"},
        {"do": "filter", "opcode": "NOP", "insns": RET0, "expect": "ok"},
        {"do": "ring", "task": "c", "ring": "r"},
        {"do": "submit", "task": "c", "ring": "r", "sqes": [{"op": "NOP", "ud": 1}]},
    ], kernels=("7.0+",)),
    sc("source_cow_deny_rest", [
        {"do": "nnp"},
        {"do": "filter", "opcode": "NOP", "insns": RET1, "expect": "ok"},
        {"do": "ring", "ring": "a"},
        {"do": "filter", "opcode": "NOP", "flags": "DENY_REST", "insns": RET1, "expect": "ok"},
        {"do": "submit", "ring": "a", "sqes": [{"op": "SOCKET", "family": "AF_INET", "type": "SOCK_STREAM",
                                                "ud": 1}]},
    ], kernels=("7.0+",)),
]

ALL = LIBURING_REGISTER_RESTRICTIONS + SEMANTICS + TASK + FILTERS + SOURCE_COW
