"""Every rule the model decides by, as data: a stable id, the mechanism it belongs to, a sentence for users,
and where the kernel's behaviour is described for maintainers.

The ids are documented in ``docs/semantics.md``; explanations, transcripts and user-facing text cite those
ids and sentences, never the internal reference. Adding a rule means adding a member here and a line there
(``tests/model/test_rules.py`` keeps the two in step).
"""

from __future__ import annotations

import enum


class Mechanism(enum.Enum):
    """Which part of the kernel decided."""

    VALIDITY = "validity"          # the call or request is malformed for this kernel
    DISPATCH = "dispatch"          # descriptor resolution and per-task (fd -1) dispatch
    PRIVILEGE = "privilege"        # the no_new_privs / CAP_SYS_ADMIN gate
    STATE = "state"                # the object is in the wrong state for the call
    CLASSIC = "classic"            # classic SQE restrictions (opcode and flag allow-lists)
    REGISTER = "register-restriction"  # classic register-opcode restrictions
    PREP = "prep"                  # the opcode's own argument checks before filters run
    FILTER = "filter"              # cBPF filters
    ACCEPTED = "accepted"          # the call succeeded
    EXECUTED = "executed"          # the request ran (its outcome is the operation's own)
    CANCELLED = "cancelled-link"   # a linked request failed, so this one never ran


class Rule(enum.Enum):
    """One decision rule. ``value`` is the stable id cited in ``docs/semantics.md``."""

    def __init__(self, rule_id: str, mechanism: Mechanism, sentence: str, reference: str) -> None:
        self.id = rule_id
        self.mechanism = mechanism
        self.sentence = sentence
        self.reference = reference

    # -- processes and tasks ----------------------------------------------------------------------------------
    NNP_SET = ("task.nnp", Mechanism.ACCEPTED, "no_new_privs is set for this task and the tasks it creates", "§4.2")
    PRIVILEGES_DROPPED = ("task.drop-privileges", Mechanism.ACCEPTED,
                          "the process becomes an unprivileged user and loses CAP_SYS_ADMIN", "§4.2")
    USERNS_ENTERED = ("task.userns", Mechanism.ACCEPTED, "the process enters a new user namespace and holds every "
                      "capability there, CAP_SYS_ADMIN included", "§4.2")
    USERNS_UNMAPPED = ("task.userns-unmapped", Mechanism.STATE, "the process is in a user namespace without uid "
                       "or gid mappings: changing ids and making a further user namespace are refused", "§4.2")
    RING_PASSED = ("ring.passed", Mechanism.ACCEPTED, "another process now holds a descriptor of the ring: its "
                   "restrictions and filters go with it, the receiver's own task restrictions do not reach it",
                   "§4.6")
    RING_NOT_SENDABLE = ("ring.not-sendable", Mechanism.VALIDITY, "io_uring descriptors cannot be sent over an "
                         "AF_UNIX socket (SCM_RIGHTS)", "§4.6")
    FORKED = ("task.fork", Mechanism.ACCEPTED, "a new process: copied descriptors, a copy of the task's "
              "restrictions, filters shared copy-on-write", "§4.6")
    THREAD = ("task.thread", Mechanism.ACCEPTED, "a new thread: shared descriptors, a copy of the creating task's "
              "restrictions, filters shared copy-on-write", "§4.6")
    EXECED = ("task.exec", Mechanism.ACCEPTED, "execve: io_uring descriptors close; restrictions, filters and "
              "no_new_privs stay", "§4.6")

    # -- io_uring_setup and close -----------------------------------------------------------------------------
    SETUP_FLAGS = ("setup.flags", Mechanism.VALIDITY, "unknown or incompatible setup flags", "io_uring_setup")
    SETUP_ENTRIES = ("setup.entries", Mechanism.VALIDITY, "the number of entries is out of range", "io_uring_setup")
    RING_CREATED = ("setup.ok", Mechanism.ACCEPTED, "the ring is created; a restricted task's restrictions and "
                    "filters are copied into it", "§4.5")
    CLOSE_NOT_OPEN = ("close.not-open", Mechanism.DISPATCH, "the ring is not open in this process", "close(2)")
    CLOSED = ("close.ok", Mechanism.ACCEPTED, "the descriptor is closed", "close(2)")

    # -- io_uring_register: dispatch ----------------------------------------------------------------------------
    REGISTER_OPCODE = ("register.opcode-range", Mechanism.VALIDITY,
                       "the register opcode is not one this kernel knows", "§4.1")
    NO_BLIND_PATH = ("register.no-task-path", Mechanism.DISPATCH,
                     "this kernel has no per-task (fd -1) io_uring_register path", "§4.1")
    BLIND_UNSUPPORTED = ("register.not-per-task", Mechanism.DISPATCH,
                         "this register opcode has no per-task (fd -1) form on this kernel", "§4.1")
    REGISTERED_INDEX = ("register.registered-index", Mechanism.DISPATCH,
                        "the registered-ring index is out of range", "§4.1")
    REGISTERED_NO_CONTEXT = ("register.registered-no-context", Mechanism.DISPATCH,
                             "the task has no io_uring context, so it has no registered rings", "§4.1")
    REGISTERED_EMPTY = ("register.registered-empty", Mechanism.DISPATCH,
                        "the registered-ring slot is empty", "§4.1, §10.1 #18")
    BAD_FD = ("register.bad-fd", Mechanism.DISPATCH, "the descriptor is not an open io_uring in this process",
              "§4.1")
    SINGLE_ISSUER = ("ring.single-issuer", Mechanism.STATE,
                     "a single-issuer ring accepts calls only from its submitter task", "§4.1, §3.5")
    REGISTER_DENIED = ("register.restricted", Mechanism.REGISTER,
                       "the ring's register restrictions do not allow this register opcode", "§3.6, §3.7")
    REGISTER_HANDLER = ("register.handler", Mechanism.EXECUTED,
                        "the register opcode's own handler ran (its outcome is declared)", "§4.1")

    # -- restriction records ------------------------------------------------------------------------------------
    RECORDS_NULL = ("records.null", Mechanism.VALIDITY, "the restriction records pointer is NULL", "§3.2")
    RECORDS_TOO_MANY = ("records.too-many", Mechanism.VALIDITY,
                        "more restriction records than the kernel accepts in one call", "§3.2, §2.9")
    RECORD_REGISTER_OP = ("records.register-op-range", Mechanism.VALIDITY,
                          "a REGISTER_OP record names a register opcode this kernel does not know", "§3.2")
    RECORD_SQE_OP = ("records.sqe-op-range", Mechanism.VALIDITY,
                     "an SQE_OP record names an SQE opcode this kernel does not know", "§3.2")
    RECORD_TYPE = ("records.type", Mechanism.VALIDITY, "a record has an unknown type", "§3.2")

    # -- ring restrictions and enable --------------------------------------------------------------------------
    RING_NOT_DISABLED = ("ring-restrictions.not-disabled", Mechanism.STATE,
                         "restrictions can only be registered on a ring created disabled (R_DISABLED)", "§3.3")
    RING_ALREADY_RESTRICTED = ("ring-restrictions.once", Mechanism.STATE,
                               "the ring already has classic restrictions (its own or inherited)", "§3.3")
    RING_RESTRICTED = ("ring-restrictions.ok", Mechanism.ACCEPTED,
                       "the ring's classic restrictions are set; the register side binds once it is enabled",
                       "§3.3, §3.7")
    ENABLE_ARGS = ("enable.args", Mechanism.VALIDITY, "ENABLE_RINGS takes no argument", "§3.5")
    ENABLE_NOT_DISABLED = ("enable.not-disabled", Mechanism.STATE, "the ring is already enabled", "§3.5")
    ENABLED = ("enable.ok", Mechanism.ACCEPTED, "the ring is enabled", "§3.5")

    # -- task restrictions ----------------------------------------------------------------------------------------
    TASK_ALREADY_RESTRICTED = ("task-restrictions.once", Mechanism.STATE,
                               "the task already has restriction state (its own, from a filter, or inherited); "
                               "classic task restrictions are once only", "§4.3")
    PRIVILEGE_GATE = ("task.privilege", Mechanism.PRIVILEGE,
                      "per-task registration needs no_new_privs or CAP_SYS_ADMIN", "§4.2")
    TASK_NR_ARGS = ("task-restrictions.nr-args", Mechanism.VALIDITY,
                    "per-task restrictions take exactly one argument", "§4.3")
    TASK_HEADER_NULL = ("task-restrictions.header-fault", Mechanism.VALIDITY,
                        "the restriction header cannot be read (NULL pointer)", "§4.3")
    TASK_HEADER_FLAGS = ("task-restrictions.header-flags", Mechanism.VALIDITY,
                         "the restriction header's flags must be 0", "§4.3")
    TASK_HEADER_RESV = ("task-restrictions.header-reserved", Mechanism.VALIDITY,
                        "the restriction header's reserved words must be 0", "§4.3")
    TASK_RESTRICTED = ("task-restrictions.ok", Mechanism.ACCEPTED,
                       "the task's classic restrictions are set; rings and tasks it creates later copy them",
                       "§4.3, §4.5")

    # -- filter registration --------------------------------------------------------------------------------------
    FILTERS_UNSUPPORTED = ("filter.unsupported", Mechanism.VALIDITY,
                           "this kernel has no io_uring cBPF filters", "§5.1")
    FILTER_NR_ARGS = ("filter.nr-args", Mechanism.VALIDITY, "a filter registration takes exactly one argument",
                      "§4.4, §5.2")
    FILTER_STRUCT_FAULT = ("filter.struct-fault", Mechanism.VALIDITY,
                           "the registration struct cannot be read (NULL pointer)", "§5.3 row 1")
    FILTER_CMD_TYPE = ("filter.cmd-type", Mechanism.VALIDITY, "cmd_type must be IO_URING_BPF_CMD_FILTER (1)",
                       "§5.3 row 2")
    FILTER_CMD_FLAGS = ("filter.cmd-flags", Mechanism.VALIDITY, "cmd_flags and resv must be 0", "§5.3 row 3")
    FILTER_OPCODE = ("filter.opcode-range", Mechanism.VALIDITY,
                     "the filter's opcode is not one this kernel knows", "§5.3 row 4")
    FILTER_FLAGS = ("filter.flags", Mechanism.VALIDITY, "filter flags other than DENY_REST and SZ_STRICT",
                    "§5.3 row 5")
    FILTER_RESV = ("filter.reserved", Mechanism.VALIDITY, "the filter's reserved bytes (resv) must be 0", "§5.3 row 6")
    FILTER_RESV2 = ("filter.reserved2", Mechanism.VALIDITY, "the filter's reserved words (resv2) must be 0",
                    "§5.3 row 7")
    FILTER_LENGTH = ("filter.length", Mechanism.VALIDITY, "a program has 1 to 4096 instructions", "§5.3 row 8")
    FILTER_PDU_SIZE = ("filter.payload-size", Mechanism.VALIDITY,
                       "the payload size the filter expects does not match this kernel's for the opcode",
                       "§5.3 row 9, §5.4")
    FILTER_NULL_PROGRAM = ("filter.null-program", Mechanism.VALIDITY, "the program pointer is NULL",
                           "§5.3 row 10")
    FILTER_PROGRAM = ("filter.program", Mechanism.VALIDITY, "the kernel's cBPF checker refuses the program",
                      "§5.3 rows 13-14, §5.5")
    FILTER_INSTALLED = ("filter.ok", Mechanism.ACCEPTED, "the filter is installed, ahead of older ones for its "
                        "opcode", "§6.2")

    # -- io_uring_enter ------------------------------------------------------------------------------------------
    ENTER_BAD_FD = ("enter.bad-fd", Mechanism.DISPATCH, "the ring is not open in this process", "§8.4")
    ENTER_DISABLED = ("enter.disabled", Mechanism.STATE, "the ring is still disabled (R_DISABLED)", "§8.4")
    ENTER_OK = ("enter.ok", Mechanism.ACCEPTED, "the submission queue was consumed", "§8.2")
    WAIT_DEFER_TASKRUN = ("wait.defer-taskrun", Mechanism.STATE,
                          "a DEFER_TASKRUN ring waited on by a task other than its submitter", "§8.4")
    WAIT_TIMEOUT = ("wait.timeout", Mechanism.STATE, "fewer completions than min_complete arrived before the "
                    "timeout: nothing is in flight once a submission's CQEs are collected", "§8.4")
    WAIT_OK = ("wait.ok", Mechanism.ACCEPTED, "enough completions were there (min_complete 0 needs none)", "§8.4")

    # -- one request ------------------------------------------------------------------------------------------------
    SQE_OPCODE = ("sqe.opcode-range", Mechanism.VALIDITY, "the SQE opcode is not one this kernel knows",
                  "§8.1 step 2")
    SQE_FLAGS = ("sqe.flags", Mechanism.VALIDITY, "SQE flag bits outside the valid ones", "§8.1 step 3")
    SQE_BUFFER_SELECT = ("sqe.buffer-select", Mechanism.VALIDITY,
                         "BUFFER_SELECT on an opcode that cannot select buffers", "§8.1 step 4")
    SQE_DRAIN_DISABLED = ("sqe.drain-disabled", Mechanism.VALIDITY,
                          "IO_DRAIN after a CQE_SKIP_SUCCESS request disabled draining on this ring", "§8.1 step 5")
    CLASSIC_OPCODE = ("classic.opcode", Mechanism.CLASSIC,
                      "the ring's classic restrictions do not allow this opcode", "§8.1 step 6, §3.6")
    CLASSIC_REQUIRED = ("classic.flags-required", Mechanism.CLASSIC,
                        "SQE flags the classic restrictions require are missing", "§8.1 step 6, §3.6")
    CLASSIC_FLAGS = ("classic.flags-allowed", Mechanism.CLASSIC,
                     "SQE flags the classic restrictions do not allow are set", "§8.1 step 6, §3.6")
    SQE_IOPOLL = ("sqe.iopoll", Mechanism.VALIDITY, "the opcode cannot run on an IOPOLL ring", "§8.1 step 7")
    SQE_PERSONALITY = ("sqe.personality", Mechanism.VALIDITY,
                       "no personality is registered on this ring under the SQE's personality id", "§8.1 step 8")
    PREP_SOCKET_TYPE = ("prep.socket-type", Mechanism.PREP,
                        "SOCKET type flag bits other than SOCK_CLOEXEC and SOCK_NONBLOCK", "§8.1 step 9")
    PREP_CONNECT_LENGTH = ("prep.connect-length", Mechanism.PREP,
                           "the CONNECT address length is negative or longer than a sockaddr_storage",
                           "§8.1 step 9")
    PREP_OPEN_FIXED = ("prep.open-fixed-file", Mechanism.PREP, "opens do not take FIXED_FILE", "§8.1 step 9")
    PREP_OPEN_PATH = ("prep.open-path", Mechanism.PREP, "the path is empty or longer than PATH_MAX",
                      "§8.1 step 9")
    PREP_BUF_INDEX = ("prep.buf-index", Mechanism.PREP, "OPENAT, OPENAT2 and SOCKET take no buffer index",
                      "§8.1 step 9")
    PREP_SOCKET_FIELDS = ("prep.socket-fields", Mechanism.PREP, "SOCKET takes no address and no op_flags",
                          "§8.1 step 9")
    PREP_DIRECT_CLOEXEC = ("prep.direct-cloexec", Mechanism.PREP,
                           "a direct descriptor (file_index) cannot be close-on-exec", "§8.1 step 9")
    FILTER_DENIED = ("filter.denied", Mechanism.FILTER, "a filter for this opcode returned 0", "§8.1 step 10, §6.4")
    FILTER_DENY_REST = ("filter.deny-rest", Mechanism.FILTER,
                        "a DENY_REST registration left this opcode permanently denied", "§6.3, §6.4")
    PASSED = ("sqe.passed", Mechanism.ACCEPTED, "every check passed; the request runs", "§8.1 step 11")
    RAN = ("sqe.ran", Mechanism.EXECUTED, "the request ran; its outcome is the operation's own", "§8.1 step 11")
    CANCELLED = ("link.cancelled", Mechanism.CANCELLED,
                 "another request in the same link chain failed, so this one never ran", "§8.3")


RULES_BY_ID = {rule.id: rule for rule in Rule}
