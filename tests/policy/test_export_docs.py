"""The export section of docs/policy.md cannot drift: its C example is what the exporter makes of the policy shown
next to it, and the usage snippet compiles against that output.

``RINGFENCE_UPDATE_DOCS=1`` rewrites the example in place instead of failing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cexport import Headers, compile_c

from ringfence.abi.profiles import profile
from ringfence.policy.compile import compile_policy
from ringfence.policy.export import rule_reasons
from ringfence.policy.export.c import to_c
from ringfence.policy.load import loads

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
_BLOCK = r"<!-- export-{name} -->\n```(\w+)\n(.*?)```\n"


def _block(text: str, name: str) -> re.Match[str]:
    found = re.search(_BLOCK.format(name=name), text, re.S)
    assert found is not None, f"docs/policy.md has no export-{name} block"
    return found


def _generated(policy_text: str) -> tuple[str, str]:
    """The whole C file, and the excerpt the docs show: the first variant's section."""
    policy = loads(policy_text, name="example.toml")
    source = to_c(compile_policy(policy, profile("7.2")).plan, reasons=rule_reasons(policy))
    start = source.index("/* ---- variant ")
    end = source.index("/* ---- variant ", start + 1) if source.count("/* ---- variant ") > 1 else \
        source.index("\n#endif /*")
    return source, source[start:end].rstrip() + "\n"


def test_the_c_example_is_generated() -> None:
    text = DOC.read_text(encoding="utf-8")
    _, excerpt = _generated(_block(text, "policy").group(2))
    shown = _block(text, "c")
    if shown.group(2) != excerpt and os.environ.get("RINGFENCE_UPDATE_DOCS") == "1":
        DOC.write_text(text[:shown.start(2)] + excerpt + text[shown.end(2):], encoding="utf-8")
        return
    assert shown.group(2) == excerpt, "docs/policy.md's C example is stale: rerun with RINGFENCE_UPDATE_DOCS=1"


def test_the_usage_snippet_compiles(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    source, _ = _generated(_block(text, "policy").group(2))
    usage = _block(text, "usage").group(2)
    header = re.search(r'#include "([^"]+)"', usage)
    assert header is not None
    main = usage.replace("#include <liburing.h>\n", "")  # liburing itself is not installed on every host
    compile_c({header.group(1): source, "main.c": main}, "main.c", tmp_path / "main", Headers("host"),
              extra=("-D_GNU_SOURCE",))
