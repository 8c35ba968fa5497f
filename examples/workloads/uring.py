"""A few io_uring requests at a time, for the example workloads: submit, wait, report what came back.

Uses ringfence's own minimal ring (``ringfence.live``): standard library only, no liburing needed. With
``RINGFENCE_REQUEST_LOG=FILE`` every request and its result is also appended to FILE as a JSON line, for
``scripts/demo_report.py`` to set beside the model's prediction.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

from ringfence.abi import sqe as abisqe
from ringfence.errors import errno_name
from ringfence.live import sqes
from ringfence.live.ring import Ring


class Uring:
    """One ring; :meth:`do` submits a request and returns its CQE result (negative errno on failure)."""

    def __init__(self) -> None:
        self.ring = Ring.setup(8)
        self.last_buffer = b""

    def do(self, sqe: abisqe.Sqe, what: str, *, buffer: int = 0, data: bytes = b"", wait: float = 20.0) -> int:
        """Submit ``sqe`` and wait up to ``wait`` seconds for its completion (-ETIMEDOUT if none comes)."""
        prepared = sqes.prepare(sqe, buffer=buffer or max(len(data), 1), data=data)
        self.ring.queue(prepared)
        self.ring.submit()
        cqes = self.ring.wait(quiet=wait, limit=wait)
        res = cqes[0].res if cqes else -110
        for kept in prepared.keep:  # what RECV/READ wrote into their buffer
            if isinstance(kept, ctypes.Array) and res > 0:
                self.last_buffer = bytes(kept)[:res]
                break
        print(f"  {what:<46} -> {'ok' if res >= 0 else errno_name(-res)}", flush=True)
        log = os.environ.get("RINGFENCE_REQUEST_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"what": what, "sqe": sqe.to_json(), "result": res}) + "\n")
        return res


def done(ok: bool) -> None:
    sys.stdout.flush()
    os._exit(0 if ok else 1)
