"""Reading and validating documents somebody else wrote: files, TOML and JSON with positions, typed fields.

Standard library only. The scenario loader uses it, and any other loader of user-written input should:

* :mod:`~ringfence.inputs.read` reads regular files or standard input under a size cap, as strict UTF-8;
* :mod:`~ringfence.inputs.toml` and :mod:`~ringfence.inputs.jsondoc` parse into positioned nodes
  (:mod:`~ringfence.inputs.nodes`), :mod:`~ringfence.inputs.document` picks the language and does both steps;
* :mod:`~ringfence.inputs.schema` reads fields with types, ranges and closest-name suggestions;
* :mod:`~ringfence.inputs.refs` resolves file names inside documents within a root directory.

Every error is a :class:`ringfence.errors.InputError` that prints as ``file:line:col: message``.
"""

from ringfence.inputs.document import Document, Format, format_of, load_document, parse_document
from ringfence.inputs.jsondoc import parse_json
from ringfence.inputs.nodes import (
    DEFAULT_LIMITS,
    Array,
    Limits,
    Member,
    Node,
    Scalar,
    Table,
    describe,
    from_plain,
    plain,
)
from ringfence.inputs.position import LineMap, Pos
from ringfence.inputs.read import (
    POLICY_FILE,
    PROGRAM_FILE,
    SCENARIO_FILE,
    STDIN,
    InputKind,
    Source,
    decode_utf8,
    read_bytes,
    read_input,
)
from ringfence.inputs.refs import ROOT_MARKER, References, find_root
from ringfence.inputs.schema import (
    U8,
    U16,
    U32,
    U64,
    Bits,
    Bool,
    Choice,
    Custom,
    Either,
    Fields,
    Int,
    ListOf,
    MapOf,
    Schema,
    Str,
    error_at,
    int_text,
    label,
)
from ringfence.inputs.suggest import closest, did_you_mean
from ringfence.inputs.text import clip, escape, token
from ringfence.inputs.toml import parse_toml

__all__ = [
    "DEFAULT_LIMITS", "POLICY_FILE", "PROGRAM_FILE", "ROOT_MARKER", "SCENARIO_FILE", "STDIN", "U8", "U16", "U32",
    "U64", "Array", "Bits", "Bool", "Choice", "Custom", "Document", "Either", "Fields", "Format", "InputKind", "Int",
    "Limits", "LineMap", "ListOf", "MapOf", "Member", "Node", "Pos", "References", "Scalar", "Schema", "Source",
    "Str", "Table", "clip", "closest", "decode_utf8", "describe", "did_you_mean", "error_at", "escape",
    "find_root", "format_of", "from_plain", "int_text", "label", "load_document", "parse_document", "parse_json",
    "parse_toml", "plain", "read_bytes", "read_input", "token",
]
