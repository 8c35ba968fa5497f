"""Files named from inside a document (a scenario's ``program_file``, a policy's ``include``), confined to a root.

A document somebody else wrote must not make ringfence read any file it likes (``/etc/shadow``) and echo a
piece of it in an error. A reference is a relative path, resolved against the document's directory, and must
end up inside the *root*: the ``--root`` directory if given, else the nearest directory at or above the
document holding the marker file :data:`ROOT_MARKER` (a corpus root), else the document's own directory.
``..`` may climb within the root (``program_file = "../programs/x.asm"``); a symbolic link whose target lies
outside the root is refused; the file is then read like any input (regular file, size cap, UTF-8).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ringfence.errors import InputError, UnreadableError
from ringfence.inputs.position import Pos
from ringfence.inputs.read import InputKind, Source, decode_utf8, read_bytes
from ringfence.inputs.text import token

#: A file of this name marks a directory as the root of a corpus: references may reach anywhere below it.
ROOT_MARKER: Final = ".ringfence-root"


def find_root(start: Path, marker: str = ROOT_MARKER) -> Path | None:
    """The nearest directory at or above ``start`` that holds ``marker``, or None."""
    here = start.resolve()
    for candidate in (here, *here.parents):
        if (candidate / marker).is_file():
            return candidate
    return None


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@dataclass(frozen=True, slots=True)
class References:
    """How one document's file references resolve: relative to ``base`` (its directory), inside ``root``."""

    base: Path
    root: Path

    @classmethod
    def for_document(cls, directory: Path, root: Path | None = None) -> References:
        """References of a document in ``directory``: ``root`` if given, else the marked corpus root above it,
        else ``directory`` itself."""
        base = directory.resolve()
        chosen = root.resolve() if root is not None else (find_root(base) or base)
        return cls(base, chosen)

    def resolve(self, name: str, pos: Pos) -> Path:
        """The real path ``name`` stands for; an :class:`InputError` at ``pos`` if it leaves the root."""
        if not name or "\0" in name:
            raise pos.error("a file name must be non-empty text without NUL characters")
        if os.path.isabs(name):
            raise pos.error(f"{token(name)} is an absolute path; name files relative to the document")
        lexical = Path(os.path.normpath(self.base / name))
        real = Path(os.path.realpath(self.base / name))
        if not _inside(lexical, self.root):
            raise pos.error(f"{token(name)} is outside the directory references are confined to "
                            f"({self.root}; --root changes it)")
        if not _inside(real, self.root):
            raise pos.error(f"{token(name)} leads through a symbolic link to outside {self.root}")
        return real

    def read(self, name: str, pos: Pos, kind: InputKind) -> Source:
        """Resolve ``name`` and read it as ``kind``. Every failure, a missing file included, is an
        :class:`InputError` at ``pos`` naming the reference, never quoting the file's content."""
        path = self.resolve(name, pos)
        try:
            data = read_bytes(path, kind, follow_symlinks=False)
            text = decode_utf8(data, name)
        except UnreadableError as exc:
            raise pos.error(f"{token(name)}: {exc.message}") from None
        except InputError as exc:
            where = f" (line {exc.line}, column {exc.column})" if exc.line else ""
            raise pos.error(f"{token(name)}: {exc.message}{where}") from None
        return Source(name, text, path)
