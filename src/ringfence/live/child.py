"""Run a function in a forked child and get its JSON-able result back: the way to try irreversible things.

Task restrictions, task filters and no_new_privs can never be undone, so the probe and the tests try them in a
child. The child never returns into the caller's code: it always leaves through ``os._exit``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import traceback
from collections.abc import Callable
from typing import Any

from ringfence.errors import KernelError, RingfenceError


class ChildError(RingfenceError):
    """The child raised (anything but :class:`KernelError`, which is re-raised as such), crashed, or timed out."""


def run_in_child(fn: Callable[[], Any], *, timeout: float = 20.0) -> Any:
    """``fn()`` evaluated in a fresh fork; its result must be JSON-serialisable."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, reported through the pipe
        code = 0
        try:
            os.close(rd)
            try:
                payload = {"value": fn()}
            except BaseException as exc:  # everything crosses the pipe; nothing returns into the caller
                payload = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
                if isinstance(exc, KernelError):
                    payload["errno"], payload["operation"] = exc.errno, exc.operation
            data = json.dumps(payload).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(wr, view):]
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(wr)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([rd], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise ChildError(f"child did not answer within {timeout:g} s")
            chunk = os.read(rd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(rd)
        os.waitpid(pid, 0)
    if not chunks:
        raise ChildError("child exited without an answer")
    payload = json.loads(b"".join(chunks))
    if "errno" in payload:
        raise KernelError(int(payload["errno"]), f"in child: {payload['operation']}")
    if "error" in payload:
        raise ChildError(f"in child: {payload['error']}\n{payload.get('trace', '')}")
    return payload["value"]
