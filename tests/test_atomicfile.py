"""The one atomic-write implementation: complete files only, usual permissions."""

from __future__ import annotations

import os
import stat

import pytest

from vad.core.atomicfile import atomic_output, atomic_write_bytes, atomic_write_text


def test_writes_with_the_usual_mode(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "hello\n")
    assert target.read_text() == "hello\n"
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"


def test_an_error_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target, "w") as fh:
        fh.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_prepare_output_file_makes_the_folder_and_rejects_folders(tmp_path):
    from vad.core.atomicfile import prepare_output_file
    from vad.core.errors import InvalidInputError

    out = prepare_output_file(tmp_path / "new" / "deeper" / "eval.json", "--json")
    assert out.parent.is_dir() and not out.exists()  # the folder is made, no file yet
    with pytest.raises(InvalidInputError, match=r"--json .*: is a folder; give a file name"):
        prepare_output_file(tmp_path / "new", "--json")
    (tmp_path / "plain").write_text("x")
    with pytest.raises(InvalidInputError, match=r"--markdown .*: cannot create its folder"):
        prepare_output_file(tmp_path / "plain" / "t.md", "--markdown")  # a file where a folder should be
