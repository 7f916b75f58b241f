"""``ganlab grade`` and ``ganlab check`` (``ganlab.grading.commands``): a command line that cannot
work is refused, with one ``error:`` line and status 2, before any student is graded."""

import os

import pytest

from ganlab.cli import build_parser
from ganlab.grading import commands


@pytest.fixture
def grade(tmp_path, monkeypatch, capsys):
    """Run ``ganlab grade CLASS ARGS...`` in this process; grading itself must not start."""
    (tmp_path / "class" / "alice").mkdir(parents=True)

    def no_grading(*args, **kwargs):
        raise AssertionError("the class was graded before the command line was refused")

    monkeypatch.setattr(commands, "grade_many", no_grading)

    def run(*args):
        argv = ["grade", str(tmp_path / "class"), "--isolation", "none", *map(str, args)]
        parsed = build_parser().parse_args(argv)
        status = commands.run_grade(parsed)
        return status, capsys.readouterr().err

    return run


def test_outputs_that_cannot_be_written_are_refused_before_grading(grade, tmp_path):
    (tmp_path / "a_file").write_text("keep me")
    (tmp_path / "a_folder").mkdir()
    refused = {
        "cannot write in": ["--out", tmp_path / "a_file" / "g.csv"],
        "must be different paths": ["--out", tmp_path / "g.csv", "--gradebook", tmp_path / "g.csv"],
        "--feedback-dir": ["--out", tmp_path / "g.csv", "--feedback-dir", tmp_path / "a_file"],
        "is a folder": ["--out", tmp_path / "a_folder", "--force"],
        "--work-dir": ["--out", tmp_path / "g.csv", "--work-dir", tmp_path / "nowhere"],
    }
    for message, args in refused.items():
        status, err = grade(*args)
        assert status == 2 and err.startswith("error: ") and message in err, (args, err)
    assert (tmp_path / "a_file").read_text() == "keep me"
    assert not (tmp_path / "g.csv").exists()


def test_a_work_folder_inside_the_submissions_is_refused(grade, tmp_path):
    status, err = grade("--out", tmp_path / "g.csv", "--work-dir", tmp_path / "class")
    assert status == 2 and "inside SUBMISSIONS_DIR" in err, err
    assert [p.name for p in (tmp_path / "class").iterdir()] == ["alice"], "sandboxes among entries"


def test_unreadable_submissions_are_refused(grade, tmp_path, monkeypatch):
    real_access = os.access
    locked = str(tmp_path / "class")
    monkeypatch.setattr(os, "access", lambda p, m, **k: str(p) != locked and real_access(p, m))
    status, err = grade("--out", tmp_path / "g.csv")
    assert status == 2 and "cannot be read (permission denied)" in err, err


def test_check_gathers_only_the_course_files_of_a_notebooks_folder(tmp_path):
    kit, drive = tmp_path / "kit", tmp_path / "drive"
    (kit / "ganlab").mkdir(parents=True)
    (kit / "ganlab" / "models.py").write_text("x = 1\n")
    drive.mkdir()
    (drive / "Copy of 00_setup.ipynb").write_text("{}")  # Colab's "Save a copy in Drive"
    os.mkfifo(drive / "01_data.ipynb")  # copying it would wait forever
    os.mkfifo(drive / "pipe")  # copytree raised shutil.Error: a traceback
    (drive / "data" / "MNIST").mkdir(parents=True)  # the rest of a Drive folder stays there
    (drive / "data" / "MNIST" / "train.bin").write_bytes(b"\0" * 1000)
    names = ["00_setup.ipynb", "01_data.ipynb"]
    dest = commands.gather(kit, drive, names, tmp_path / "copy")
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert copied == ["ganlab/models.py", "notebooks/00_setup.ipynb"]


def test_students_selects_names_that_hold_commas(tmp_path, monkeypatch, capsys):
    # Was: every --students value was split at commas: "Doe, Jane" was refused as "Doe", "Jane".
    for name in ("Doe, Jane", "Doe", "bob"):
        (tmp_path / "class" / name).mkdir(parents=True)
    graded = []

    def record(entries, *args, **kwargs):
        graded.append([e.name for e in entries])
        raise KeyboardInterrupt  # (stops before any grading or writing)

    monkeypatch.setattr(commands, "grade_many", record)
    for value, want in [("Doe, Jane", ["Doe, Jane"]), ("bob,Doe, Jane", ["Doe, Jane", "bob"])]:
        argv = ["grade", str(tmp_path / "class"), "--out", str(tmp_path / "g.csv")]
        parsed = build_parser().parse_args([*argv, "--isolation", "none", "--students", value])
        assert commands.run_grade(parsed) == 130, capsys.readouterr().err
        assert graded.pop() == want
