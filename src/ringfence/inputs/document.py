"""One call from a file name to a positioned document: read safely, decode, parse TOML or JSON."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import PurePath
from typing import BinaryIO

from ringfence.inputs.jsondoc import parse_json
from ringfence.inputs.nodes import DEFAULT_LIMITS, Limits, Node
from ringfence.inputs.read import InputKind, Source, read_input
from ringfence.inputs.toml import parse_toml


class Format(enum.Enum):
    """A document language."""

    TOML = "toml"
    JSON = "json"


def format_of(name: str | os.PathLike[str], default: Format = Format.TOML) -> Format:
    """The language a file name says: ``.json`` is JSON, ``.toml`` TOML, anything else (``-``) ``default``."""
    suffix = PurePath(os.fspath(name)).suffix.lower()
    return {".json": Format.JSON, ".toml": Format.TOML}.get(suffix, default)


def parse_document(text: str, file: str, fmt: Format, *, limits: Limits = DEFAULT_LIMITS) -> Node:
    """Parse ``text`` as ``fmt``; errors are :class:`ringfence.errors.InputError` at ``file:line:col``."""
    if fmt is Format.JSON:
        return parse_json(text, file, limits=limits)
    return parse_toml(text, file, limits=limits)


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed input: where it came from (its text, for the directory its references are relative to) and its
    root node."""

    source: Source
    root: Node
    format: Format


def load_document(name: str | os.PathLike[str], kind: InputKind, *, fmt: Format | None = None,
                  limits: Limits = DEFAULT_LIMITS, stdin: BinaryIO | None = None) -> Document:
    """Read (:func:`ringfence.inputs.read.read_input`) and parse one document; ``fmt`` defaults to the name's
    suffix, TOML for standard input."""
    source = read_input(name, kind, stdin=stdin)
    chosen = fmt or format_of(name)
    return Document(source, parse_document(source.text, source.name, chosen, limits=limits), chosen)
