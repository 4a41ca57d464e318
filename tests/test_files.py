"""write_atomic: whole files or none, no overwriting without force, clear errors."""

import pytest

from cnnderive.errors import UserError
from cnnderive.files import write_atomic


def test_writes_text_and_bytes(tmp_path):
    write_atomic(tmp_path / "a.tex", "x = 1\n")
    write_atomic(tmp_path / "b.pdf", b"%PDF-1.5")
    assert (tmp_path / "a.tex").read_text() == "x = 1\n"
    assert (tmp_path / "b.pdf").read_bytes() == b"%PDF-1.5"


def test_existing_file_needs_force_and_is_left_alone_without_it(tmp_path):
    target = tmp_path / "a.tex"
    target.write_text("old")
    with pytest.raises(UserError, match="exists; add --force"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    write_atomic(target, "new", force=True)
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.tex"]


def test_missing_folder_and_folder_path_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        write_atomic(tmp_path / "nope" / "a.tex", "x")
    with pytest.raises(UserError, match="is a folder"):
        write_atomic(tmp_path, "x", force=True)


def test_error_names_the_option(tmp_path):
    (tmp_path / "a.svg").write_text("old")
    with pytest.raises(UserError) as error:
        write_atomic(tmp_path / "a.svg", "new", option="--svg")
    assert str(error.value).startswith("--svg: ")
