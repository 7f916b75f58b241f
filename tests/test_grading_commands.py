"""``ganlab grade`` and ``ganlab check`` (``ganlab.grading.commands``): a command line that cannot
work is refused, with one ``error:`` line and status 2, before any student is graded."""

import csv
import os
from datetime import datetime, timezone

import pytest

from ganlab.cli import build_parser
from ganlab.grading import commands, engine, report


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


def test_the_gradebook_is_moodles_grading_worksheet(tmp_path, monkeypatch, capsys):
    # Was: "Jane Doe_12345" in a Username column, which Moodle matched to no user. Its
    # assignment's "Upload grading worksheet" finds the student by "Identifier": "Participant
    # 12345", the id in the folder names of its "Download all submissions".
    root = tmp_path / "class"
    for name in ("Jane Doe_12345_assignsubmission_file_", "=cmd()_7_assignsubmission_file_", "bob"):
        (root / name).mkdir(parents=True)

    def graded(entries, canonical, checks, *args, **kwargs):  # Jane passes all, no one else
        results = [engine.Result(e.name) for e in entries]
        for r in results:
            r.checks = [engine.CheckResult(c, r.name.startswith("Jane")) for c in checks]
        return sorted(results, key=lambda r: r.name)

    monkeypatch.setattr(commands, "grade_many", graded)
    out, book = tmp_path / "grades.csv", tmp_path / "moodle.csv"
    argv = ["grade", str(root), "--out", str(out), "--gradebook", str(book), "--notebooks", "02"]
    before = datetime.now(timezone.utc).replace(microsecond=0)
    assert commands.run_grade(build_parser().parse_args([*argv, "--isolation", "none"])) == 0
    header, *rows = csv.reader(book.read_text(encoding="utf-8").splitlines())
    assert tuple(header) == report.MOODLE_HEADER
    assert header[:3] == ["Identifier", "Full name", "Grade"]
    maximum = int(rows[1][2])
    assert maximum > 0 and [row[:3] for row in rows] == [
        ["Participant 7", "'=cmd()", "0"],  # a name is no formula in the worksheet either
        ["Participant 12345", "Jane Doe", str(maximum)],
        ["", "bob", "0"],  # not from Moodle's download: no id, and Moodle skips the row
    ]
    assert all(
        before <= datetime.fromisoformat(row[3]) <= datetime.now(timezone.utc) for row in rows
    )
    assert rows[1][4] == f"{maximum}/{maximum} points" and rows[2][4].startswith("0/")
    assert "no Moodle participant id for 1 of 3 students" in capsys.readouterr().out


def test_two_submissions_of_one_participant_put_no_grade_in_the_worksheet(
    tmp_path, monkeypatch, capsys
):
    # Was: both rows said "Participant 12345", and Moodle imported one of them: here the 0 of
    # the folder of an online text, over the full marks of the code.
    root = tmp_path / "class"
    for plugin in ("file", "onlinetext"):
        (root / f"Jane Doe_12345_assignsubmission_{plugin}_").mkdir(parents=True)
    (root / "Li Wei_9_assignsubmission_file_").mkdir()

    def graded(entries, canonical, checks, *args, **kwargs):  # the file folder passes all
        results = [engine.Result(e.name) for e in entries]
        for r in results:
            r.checks = [engine.CheckResult(c, "onlinetext" not in r.name) for c in checks]
        return sorted(results, key=lambda r: r.name)

    monkeypatch.setattr(commands, "grade_many", graded)
    book = tmp_path / "moodle.csv"
    argv = ["grade", str(root), "--out", str(tmp_path / "g.csv"), "--gradebook", str(book)]
    assert commands.run_grade(build_parser().parse_args([*argv, "--isolation", "none"])) == 0
    _, *rows = csv.reader(book.read_text(encoding="utf-8").splitlines())
    assert [row[:2] for row in rows] == [
        ["", "Jane Doe"],
        ["", "Jane Doe"],
        ["Participant 9", "Li Wei"],
    ], "neither of Jane's rows may reach Moodle, Li's still does"
    assert "more than one submission from participant 12345" in capsys.readouterr().out
