"""File references from inside documents stay inside their root; errors never show a foreign file's content."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ringfence.errors import InputError
from ringfence.inputs.position import Pos
from ringfence.inputs.read import PROGRAM_FILE
from ringfence.inputs.refs import ROOT_MARKER, References, find_root

SECRET = "root:$6$very-secret-hash:19000:0:99999:7:::"
HERE = Pos("doc.toml", 3, 14)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "scenarios" / "x").mkdir(parents=True)
    (root / "programs").mkdir()
    (root / ROOT_MARKER).write_text("")
    (root / "programs" / "p.asm").write_text("ret #0\n")
    (tmp_path / "shadow").write_text(SECRET + "\n")
    return root


def test_root_is_the_marked_directory_above(corpus: Path) -> None:
    doc_dir = corpus / "scenarios" / "x"
    assert find_root(doc_dir) == corpus.resolve()
    refs = References.for_document(doc_dir)
    assert refs.root == corpus.resolve() and refs.base == doc_dir.resolve()
    assert References.for_document(corpus.parent).root == corpus.parent.resolve()  # no marker: its own directory
    assert References.for_document(doc_dir, corpus / "programs").root == (corpus / "programs").resolve()


def test_dotdot_within_the_root_works(corpus: Path) -> None:
    refs = References.for_document(corpus / "scenarios" / "x")
    source = refs.read("../../programs/p.asm", HERE, PROGRAM_FILE)
    assert source.text == "ret #0\n" and source.name == "../../programs/p.asm"


@pytest.mark.parametrize("name", ["../../../shadow", "/etc/shadow", "/etc/passwd", "../../.." + "/shadow"])
def test_escaping_the_root_is_refused_without_reading(corpus: Path, name: str) -> None:
    refs = References.for_document(corpus / "scenarios" / "x")
    with pytest.raises(InputError) as info:
        refs.read(name, HERE, PROGRAM_FILE)
    assert str(info.value).startswith("doc.toml:3:14: ") and "secret" not in str(info.value)


def test_symlink_out_of_the_root_is_refused(corpus: Path) -> None:
    link = corpus / "programs" / "evil.asm"
    link.symlink_to(corpus.parent / "shadow")
    inside = corpus / "programs" / "alias.asm"
    inside.symlink_to(corpus / "programs" / "p.asm")
    refs = References.for_document(corpus / "scenarios" / "x")
    with pytest.raises(InputError, match="symbolic link") as info:
        refs.read("../../programs/evil.asm", HERE, PROGRAM_FILE)
    assert "secret" not in str(info.value)
    assert refs.read("../../programs/alias.asm", HERE, PROGRAM_FILE).text == "ret #0\n"


def test_missing_directory_fifo_and_empty_names(corpus: Path) -> None:
    refs = References.for_document(corpus / "scenarios" / "x")
    os.mkfifo(corpus / "programs" / "fifo")
    for name, words in (("nope.asm", "no such file"), (".", "is a directory"), ("../../programs/fifo",
                        "not a regular file"), ("", "non-empty"), ("a\0b", "NUL")):
        with pytest.raises(InputError, match=words) as info:
            refs.read(name, HERE, PROGRAM_FILE)
        assert str(info.value).startswith("doc.toml:3:14: ")


def test_bad_utf8_in_a_reference_is_positioned(corpus: Path) -> None:
    (corpus / "programs" / "bin.asm").write_bytes(b"ret #0\n\xff\xfe")
    refs = References.for_document(corpus / "programs")
    with pytest.raises(InputError, match=r"not UTF-8 text: byte 7 .*line 2, column 1"):
        refs.read("bin.asm", HERE, PROGRAM_FILE)
