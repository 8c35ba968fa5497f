"""The documented limits of the scenario format (``docs/scenarios.md``, "Limits").

They keep a scenario somebody else wrote from making the loader, the model or the live harness allocate,
loop or wait without bound; each is far above what the corpus uses.
"""

from __future__ import annotations

from typing import Final

from ringfence.inputs.nodes import Limits

#: Nesting depth and number of values in one document (a 1 MiB file is the size cap, ``SCENARIO_FILE``).
DOCUMENT: Final = Limits(max_depth=16, max_nodes=200_000)
MAX_STEPS: Final = 1024
MAX_SQES_PER_SUBMIT: Final = 256
MAX_SQES: Final = 4096                  # in all the submit steps of a scenario
MAX_PROGRAM_INSNS: Final = 8192         # in one filter program (the kernel takes at most 4096)
MAX_INSNS: Final = 65536                # in all the filter programs of a scenario
#: Filter instructions in all times SQEs in all: what the model may have to interpret (every SQE may run every
#: filter), about a second per million.
MAX_WORK: Final = 1 << 22
MAX_RECORDS: Final = 4096               # restriction records in one step
MAX_COUNT: Final = 65535                # nr_args, nr_res
MAX_ENTRIES: Final = 65536              # ring entries (the kernel refuses 0 and more than 32768)
MAX_BUFFER: Final = 65536               # `len` of READ/WRITE/READV/WRITEV, bytes
MAX_ADDR_LEN: Final = 4096              # CONNECT `addr_len` (the kernel refuses more than 128)
MAX_FILES: Final = 64                   # resources in one FILES registration
MAX_SELECTORS: Final = 16               # kernel selectors in `kernels` or one per-kernel expectation
MAX_TIMEOUT: Final = 600                # seconds, `[scenario] timeout`
UID_RANGE: Final = (1, 65534)           # `drop_privileges.uid`: a real unprivileged id, never root or -1
MAX_PATH: Final = 4095                  # bytes of an OPENAT path (PATH_MAX less its NUL)
MAX_WAIT_MS: Final = 1000               # `timeout_ms` of a wait step: how long one bounded wait may block
ARENA_SIZE: Final = 65536               # bytes of an agent's arena: a raw SQE `addr` is an offset into it
