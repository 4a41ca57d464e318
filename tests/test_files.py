"""Files: whole outputs or none, no overwriting without force, only regular files in and out, bounded
reads, and nothing left behind by a run that was killed outright."""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET

import pytest

from cnnderive.errors import UserError
from cnnderive.files import check_outputs, read_regular, temporary_folder, write_atomic
from tests.cli_support import ROOT, run_cli
from tests.conftest import CONFIGS

SEED000 = CONFIGS / "seed000_tied_maxpool.yaml"


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


# -- outputs that are not regular files ----------------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/null", "/dev/full"])
def test_a_device_is_never_replaced_even_with_force(tmp_path, device):
    """`-o /dev/null --force` used to replace the device by a regular file. Reached through a symlink
    here, so that a regression replaces the link in tmp_path, never the device itself."""
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    link = tmp_path / "out.tex"
    link.symlink_to(device)
    with pytest.raises(UserError, match="character device, not a regular file"):
        write_atomic(link, "x", force=True)
    assert link.is_symlink() and os.readlink(link) == device
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tex"]


def test_a_fifo_output_is_refused_through_the_cli(tmp_path):
    fifo = tmp_path / "out.tex"
    os.mkfifo(fifo)
    code, stdout, stderr = run_cli(["latex", str(SEED000), "-o", str(fifo), "--force"])
    assert code == 2 and stdout == ""
    assert stderr == f"cnnderive: error: -o: {fifo} is a FIFO (named pipe), not a regular file; give a file name\n"
    assert fifo.is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tex"]


def test_dash_is_not_a_file_name_for_svg(tmp_path, monkeypatch):
    """`--svg -` wrote a file called `-`; it is refused (the terminal text already goes to stdout)."""
    monkeypatch.chdir(tmp_path)
    code, _, stderr = run_cli(["explain", str(SEED000), "--svg", "-"])
    assert code == 2
    assert stderr == "cnnderive: error: --svg: - (standard output) cannot take this output; give a file name\n"
    assert list(tmp_path.iterdir()) == []


def test_latex_dash_is_still_stdout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = run_cli(["latex", str(SEED000), "-o", "-"])
    assert (code, stderr) == (0, "")
    assert stdout.rstrip().endswith(r"\end{document}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spelling", ["same", "dotted", "hard link"])
def test_svg_and_html_to_one_file_are_refused_before_writing(tmp_path, spelling):
    """`--svg X --html X` wrote the SVG and then failed on the HTML; now nothing is written."""
    svg = tmp_path / "out.svg"
    html = {"same": svg, "dotted": tmp_path / "sub" / ".." / "out.svg", "hard link": tmp_path / "out.html"}[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "hard link":
        svg.write_text("old")
        os.link(svg, html)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, stderr = run_cli(["explain", str(SEED000), "--svg", str(svg), "--html", str(html), "--force"])
    assert code == 2 and stdout == ""
    assert stderr.startswith("cnnderive: error: --html: ") and "is also the file of --svg" in stderr
    assert stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_check_outputs_accepts_distinct_names(tmp_path):
    check_outputs([(tmp_path / "a.svg", "--svg"), (None, "--html"), (tmp_path / "a.html", "--html")])


def test_svg_and_html_still_work_with_two_names(tmp_path):
    svg, html = tmp_path / "a.svg", tmp_path / "a.html"
    code, _, stderr = run_cli(["explain", str(SEED000), "--svg", str(svg), "--html", str(html)])
    assert (code, stderr) == (0, "")
    assert ET.parse(svg).getroot().tag.endswith("svg")
    assert "<html" in html.read_text(encoding="utf-8")


# -- inputs that are not regular files, or too big ------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_an_endless_device_is_refused_before_reading(device):
    """Reading /dev/zero as a config used to run until memory ran out."""
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    with pytest.raises(UserError, match="character device, not a regular file"):
        read_regular(device, 1000)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    """A FIFO config blocked forever in open(). If a regression opens it again, a writer thread
    unblocks the reader after a while, and the message (not a clock) makes the test fail."""
    fifo = tmp_path / "net.yaml"
    os.mkfifo(fifo)
    done = threading.Event()

    def unblock():
        if not done.wait(20):
            with open(fifo, "w") as stream:
                stream.write("unblocked")

    threading.Thread(target=unblock, daemon=True).start()
    try:
        with pytest.raises(UserError, match=r"FIFO \(named pipe\), not a regular file"):
            read_regular(fifo, 1000, "the config")
    finally:
        done.set()


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(UserError, match="it is a folder"):
        read_regular(tmp_path, 1000)


def test_size_cap(tmp_path):
    """A file one byte over the cap is refused before it is read (a sparse file: no disk used)."""
    path = tmp_path / "big.yaml"
    with open(path, "wb") as stream:
        stream.truncate(1001)
    with pytest.raises(UserError, match="over 0.001 MB"):
        read_regular(path, 1000)
    path.write_bytes(b"x" * 1000)
    assert read_regular(path, 1000) == b"x" * 1000


# -- leftovers of a killed run --------------------------------------------------------------------

_KILLED_WHILE_WRITING = """
import os, signal, sys
from cnnderive.files import write_atomic
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # killed outright in the middle of writing
write_atomic(sys.argv[1], "half")
"""

_KILLED_WHILE_COMPILING = """
import os, signal
from cnnderive.files import temporary_folder
with temporary_folder("latex") as folder:
    open(os.path.join(folder, "derivation.tex"), "w").close()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _run_killed(code: str, *args: str, env: dict | None = None) -> None:
    """Run Python code that kills itself with SIGKILL (not the CLI: this tests the files module)."""
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL


def test_temporary_file_of_a_killed_run_is_removed_by_the_next_write(tmp_path):
    _run_killed(_KILLED_WHILE_WRITING, str(tmp_path / "out.tex"))
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".out.tex.cnnderive-") and left[0].endswith(".tmp"), left
    mine = tmp_path / f".b.tex.cnnderive-{os.getpid()}-abc123.tmp"  # a live process's file is left alone
    mine.write_text("in progress")
    write_atomic(tmp_path / "other.tex", "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "other.tex"])


def test_latex_folder_of_a_killed_run_is_removed_by_the_next_one(tmp_path, monkeypatch):
    _run_killed(_KILLED_WHILE_COMPILING, env={**os.environ, "TMPDIR": str(tmp_path)})
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith("cnnderive-latex-"), left
    unrelated = tmp_path / "cnnderive-latex-notes"  # not a name of ours: left alone
    unrelated.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with temporary_folder("latex") as folder:
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([os.path.basename(folder), unrelated.name])
    assert [p.name for p in tmp_path.iterdir()] == [unrelated.name]
