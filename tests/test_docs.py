"""The README and docs/ run: every command they show is executed and its output compared.

Convention (also stated for readers in docs/README.md):

* A fenced block marked ``console`` is a transcript: each line starting with ``$ `` is a command, the lines
  after it (up to the next ``$ ``) are its output, compared exactly, except: trailing blanks are ignored, the
  scratch directory the commands run in reads as ``$TMP``, a duration such as ``0.12 s`` matches any, and a
  line ``...`` stands for any number of lines left out. A command must exit 0, unless the output shown
  ends with a line ``[exit N]``. Commands run with bash in a scratch directory that has
  ``examples``, ``tests``, ``docs``, ``scripts`` and ``benchmarks`` of this checkout, with ``ringfence`` on
  ``PATH``; later commands see the files earlier ones wrote.
* A ``python`` block is run as a script in the same way and must exit 0.
* An HTML comment right before a block changes that: ``<!-- docs-test: exit-only (why) -->`` runs it and
  checks only that every command exits 0 (output that depends on the machine or on timing);
  ``<!-- docs-test: not run (why) -->`` shows it without running it (it boots a VM, needs another kernel,
  or is the test command itself). Both must say why; the test lists them, so nothing is skipped silently.
* After a deliberate change, ``RINGFENCE_UPDATE_DOCS=1 pytest tests/test_docs.py`` writes each console
  block's real output back into its document (read the diff before committing).
* Any other fenced block that holds a ``$ `` line, and any ``sh``/``bash`` block, is an error unless marked:
  a command shown must be run or marked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINKED = ("examples", "tests", "docs", "scripts", "benchmarks")
UPDATE = os.environ.get("RINGFENCE_UPDATE_DOCS") == "1"
_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
_MARK = re.compile(r"<!--\s*docs-test:\s*(exit-only|not run)\s*\(([^)]+)\)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    language: str
    text: str
    mode: str  # "compare", "exit-only" or "not run"
    why: str

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def _blocks() -> list[Block]:
    out = []
    for document in DOCUMENTS:
        text = document.read_text()
        for match in _FENCE.finditer(text):
            before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            mark = _MARK.search(before)
            line = text.count("\n", 0, match.start()) + 1
            out.append(Block(document, line, match.group(1), match.group(2), mark.group(1) if mark else "compare",
                             mark.group(2).strip() if mark else ""))
    return out


BLOCKS = _blocks()
RUNNABLE = [b for b in BLOCKS if b.language in ("console", "python") and b.mode != "not run"]


def _scratch(tmp_path: Path) -> Path:
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "RINGFENCE_UPDATE"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "100"
    return env


def _transcript(text: str) -> list[tuple[str, str]]:
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in steps]


_DURATION = re.compile(r"\b\d+(?:\.\d+)? s\b")


def _normal(text: str, scratch: Path) -> list[str]:
    text = _DURATION.sub("<t> s", text.replace(str(scratch), "$TMP"))
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def _matches(got: list[str], shown: list[str]) -> bool:
    """``shown`` equals ``got`` where a ``...`` line in ``shown`` stands for any run of lines."""
    if not shown:
        return not got
    if shown[0] == "...":
        return any(_matches(got[i:], shown[1:]) for i in range(len(got) + 1))
    return bool(got) and got[0] == shown[0] and _matches(got[1:], shown[1:])


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.name)
def test_shown_commands_run(block: Block, tmp_path: Path) -> None:
    scratch = _scratch(tmp_path)
    if block.language == "python":
        done = subprocess.run([sys.executable, "-c", block.text], capture_output=True, text=True, check=False,
                              cwd=scratch, env=_env(), timeout=600)
        assert done.returncode == 0, f"{block.name}: {done.stderr[-2000:]}"
        return
    steps = _transcript(block.text)
    assert steps, f"{block.name}: a console block without a `$ ` command"
    fresh: list[str] = []
    for command, shown in steps:
        done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True,
                              check=False, cwd=scratch, env=_env(), timeout=600)
        got = done.stdout + done.stderr
        if block.mode == "exit-only":
            assert done.returncode == 0, f"{block.name}: `{command}` exited {done.returncode}:\n{got[-2000:]}"
        else:
            expected = _normal(shown, scratch)
            code = int(expected.pop()[6:-1]) if expected and re.fullmatch(r"\[exit \d+\]", expected[-1]) else 0
            fresh += [f"$ {command}", *_shown(got, scratch, done.returncode)]
            if UPDATE:
                continue
            assert done.returncode == code, f"{block.name}: `{command}` exited {done.returncode}:\n{got}"
            assert _matches(_normal(got, scratch), expected), \
                f"{block.name}: `{command}` printed something else:\n{got}"


    if UPDATE and block.mode == "compare":
        text = block.document.read_text()
        new = "\n".join(fresh) + "\n"
        if new != block.text:
            assert text.count(block.text) == 1, f"{block.name}: block text is not unique; update it by hand"
            block.document.write_text(text.replace(block.text, new))


def _shown(output: str, scratch: Path, code: int) -> list[str]:
    """How a command's real output is written into a document."""
    lines = [line.rstrip() for line in output.replace(str(scratch), "$TMP").strip("\n").splitlines()]
    return lines + ([f"[exit {code}]"] if code else [])


def test_every_shown_command_is_run_or_marked() -> None:
    loose = [b.name for b in BLOCKS if b.mode != "not run" and (
        b.language in ("sh", "bash", "shell")
        or (b.language not in ("console", "python") and any(line.startswith("$ ") for line in b.text.splitlines())))]
    assert not loose, f"blocks showing `$ ` commands that are neither console transcripts nor marked: {loose}"


def test_blocks_not_run_say_why() -> None:
    """The list a reader (and CI's log) sees of what is shown but not run here, and why."""
    shown_only = [b for b in BLOCKS if b.mode == "not run"]
    for block in shown_only:
        assert len(block.why) >= 8, f"{block.name}: say why it is not run"
        print(f"not run: {block.name}: {block.why}")
