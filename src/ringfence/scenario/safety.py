"""Load-time safety rules for the live harness: what a scenario may point the real kernel at.

The harness runs scenarios as root in agents whose working directory is a fresh per-scenario directory,
``{tmp}``. Whatever it contains at run time, a scenario that names a file elsewhere is refused when it is
loaded: OPENAT/OPENAT2 paths and AF_UNIX CONNECT paths stay inside ``{tmp}`` (relative paths are relative to
it), the only absolute paths are ``/dev/null`` and ``/dev/zero``, ``..`` may not climb out, and ``{tmp}`` may
only start a path (``{tmp}x`` would name a sibling directory).
"""

from __future__ import annotations

from typing import Final

from ringfence.scenario.caps import MAX_PATH

TMP: Final = "{tmp}"
DEVICES: Final = frozenset({"/dev/null", "/dev/zero"})


def path_problem(path: str, *, devices: bool = True) -> str | None:
    """Why ``path`` may not be used by a scenario, or None if it stays inside ``{tmp}``."""
    if "\0" in path:
        return "contains a NUL character"
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH:
        return f"is longer than {MAX_PATH} bytes"
    if devices and path in DEVICES:
        return None
    rest = path
    if path == TMP or path.startswith(TMP + "/"):
        rest = path[len(TMP):].lstrip("/")
    if TMP in rest:
        return f"has {TMP} after its start; it may only begin a path"
    if rest.startswith("/"):
        allowed = "/dev/null and /dev/zero are the only absolute paths" if devices else "absolute paths are refused"
        return f"is outside {TMP} ({allowed}; write {TMP}/name or a relative name)"
    depth = 0
    for part in rest.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return f"climbs out of {TMP} with `..`"
        elif part not in ("", "."):
            depth += 1
    return None
