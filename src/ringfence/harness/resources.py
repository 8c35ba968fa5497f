"""Per-scenario resources an agent process names in SQEs: descriptors, a temp directory, created sockets.

``"null"`` is ``/dev/null`` opened read-write, ``"zero"`` ``/dev/zero``, ``"pipe.r"``/``"pipe.w"`` the ends of
one pipe, ``"cwd"`` is ``AT_FDCWD``; ``{tmp}`` in a path expands to the scenario's temp directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ringfence.abi.constants import AT_FDCWD
from ringfence.errors import ScenarioError

NAMES = ("null", "zero", "pipe.r", "pipe.w", "cwd")


@dataclass(slots=True)
class Resources:
    """Descriptors by name, and the temp directory. Survive fork (copied) and exec (passed inheritable)."""

    tmp: str
    fds: dict[str, int] = field(default_factory=dict)

    @classmethod
    def open(cls, tmp: str) -> Resources:
        rd, wr = os.pipe()
        fds = {"null": os.open("/dev/null", os.O_RDWR), "zero": os.open("/dev/zero", os.O_RDWR),
               "pipe.r": rd, "pipe.w": wr}
        return cls(tmp, fds)

    def fd(self, name: str | int) -> int:
        """The descriptor number for a resource name; ints pass through (fixed-file indexes, raw fds)."""
        if isinstance(name, int):
            return name
        if name == "cwd":
            return AT_FDCWD
        if name.lstrip("-").isdigit():
            if int(name) >= 0:  # a descriptor number reaches whatever the agent has open under it
                raise ScenarioError(f"refusing descriptor number {name}; name a resource ({', '.join(NAMES)})")
            return int(name)
        try:
            return self.fds[name]
        except KeyError:
            raise ScenarioError(f"unknown resource {name!r}; known: {', '.join(NAMES)}") from None

    def path(self, text: str) -> str:
        return text.replace("{tmp}", self.tmp)

    def make_inheritable(self) -> None:
        for fd in self.fds.values():
            os.set_inheritable(fd, True)
