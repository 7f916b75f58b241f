"""Step 1 of grading (``ganlab.grading.intake``): every entry of SUBMISSIONS_DIR graded or noted."""

import os
import socket
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ganlab import submission
from ganlab.grading import assemble, intake


def _pack(path, tmp_path):
    """A zip from `ganlab submit` holding one module (an empty one is flagged)."""
    module = tmp_path / "module.py"
    module.write_text("x = 1\n")
    submission.pack({"ganlab/models.py": module}, path, "0.1.0")


def test_folders_zips_and_dot_names_are_entries_the_rest_is_listed(tmp_path):
    root = tmp_path / "class"
    (root / "alice" / "ganlab").mkdir(parents=True)
    (root / "alice" / "ganlab" / "models.py").write_text("x = 1\n")
    (root / ".bob").mkdir()
    files = {"ganlab/models.py": root / "alice" / "ganlab" / "models.py"}
    submission.pack(files, root / "carol.zip", "0.1.0")
    os.mkfifo(root / "fifo")
    os.symlink(root / "alice", root / "link")
    (root / "notes.txt").write_text("hello")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "sock"))
    try:
        entries, ignored = intake.entries(root, tmp_path / "work")
    finally:
        server.close()
    assert [e.name for e in entries] == [".bob", "alice", "carol"]
    dot = entries[0]
    assert dot.notes == ["the folder's name starts with '.' (.bob): graded anyway"]
    carol = entries[2]
    assert carol.notes[0] == "from carol.zip"
    assert (carol.folder / "ganlab" / "models.py").read_text() == "x = 1\n"
    assert dict(ignored) == {
        "fifo": "not a regular file (FIFO, device, socket)",
        "link": "a link",
        "notes.txt": "not a folder or a .zip",
        "sock": "not a regular file (FIFO, device, socket)",
    }


def test_a_zip_that_is_not_a_submission_is_a_row_with_a_note(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    with zipfile.ZipFile(root / "junk.zip", "w") as z:
        z.writestr("../../escape.py", "x")
    (root / "notazip.zip").write_text("plain text")
    (root / "dave").mkdir()
    submission.pack({}, root / "dave.zip", "0.1.0")  # dave/ and dave.zip: both graded
    entries, _ = intake.entries(root, tmp_path / "work")
    notes = {e.name: " ".join(e.notes) for e in entries}
    assert "ignored 1 file(s)" in notes["junk"]
    assert "could not be unpacked" in notes["notazip"]
    assert "a second submission named dave: graded as dave.zip" in notes["dave.zip"]
    assert not (tmp_path / "escape.py").exists()


def test_read_bounded(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert intake.read_bounded(path, 100) == b"x" * 100
    assert intake.read_bounded(path, 99) is None
    os.mkfifo(tmp_path / "fifo")
    assert intake.read_bounded(tmp_path / "fifo", 100) is None, "a FIFO must not block"
    os.symlink(path, tmp_path / "link")
    assert intake.read_bounded(tmp_path / "link", 100) is None
    assert intake.read_bounded("/dev/zero", 100) is None, "a device is not a file to read"


def test_chosen_keeps_the_named_entries_and_refuses_an_unknown_name(tmp_path):
    for name in ("alice", "bob", "carol"):
        (tmp_path / name).mkdir()
    found, _ = intake.entries(tmp_path, tmp_path / "unpacked")
    picked = intake.chosen(found, ["carol", "alice", "carol"])
    assert [e.name for e in picked] == ["alice", "carol"], "sorted, each once, nothing else"
    try:
        intake.chosen(found, ["alice", "bobb", "zed"])
    except LookupError as err:
        message = err.args[0]
    else:
        raise AssertionError("a name that matches no entry must be refused, not skipped")
    assert "'bobb' (did you mean 'bob'?)" in message and "'zed'" in message, message
    assert "alice" not in message, "only the unknown names are listed"


def test_a_zip_that_breaks_zipfile_costs_its_own_row_only(tmp_path):
    root = tmp_path / "class"
    (root / "alice").mkdir(parents=True)
    with zipfile.ZipFile(root / "bob.zip", "w") as z:  # a name flagged UTF-8 that is not
        z.writestr("ganlab/models.py", "ok")
        z.writestr("bad\u00e9", "x")
    (root / "bob.zip").write_bytes(
        (root / "bob.zip").read_bytes().replace(b"bad\xc3\xa9", b"bad\xff\xfe")
    )
    with zipfile.ZipFile(root / "carol.zip", "w") as z:  # JSON nested past the recursion limit
        z.writestr("manifest.json", "[" * 500_000)
        z.writestr("ganlab/models.py", "ok")
    entries, _ = intake.entries(root, tmp_path / "work")  # was a UnicodeDecodeError for everyone
    by_name = {e.name: e for e in entries}
    assert list(by_name) == ["alice", "bob", "carol"]
    assert "bob.zip could not be unpacked" in " ".join(by_name["bob"].notes)
    assert by_name["bob"].flags == ["bob.zip could not be unpacked (grade it by hand?)"]
    assert not list(by_name["bob"].folder.iterdir()), "a zip that failed is graded as empty"
    assert (by_name["carol"].folder / "ganlab" / "models.py").read_text() == "ok"
    assert by_name["alice"].flags == by_name["carol"].flags == []


def test_a_grader_bug_while_unpacking_costs_one_row(tmp_path, monkeypatch, capsys):
    root = tmp_path / "class"
    root.mkdir()
    _pack(root / "alice.zip", tmp_path)
    _pack(root / "bob.zip", tmp_path)
    real_unpack = intake.unpack

    def unpack(path, dest):
        if "bob" in str(path):
            (Path(dest) / "ganlab").mkdir(parents=True)
            (Path(dest) / "ganlab" / "models.py").write_text("half")
            raise MemoryError("a bug")
        return real_unpack(path, dest)

    monkeypatch.setattr(intake, "unpack", unpack)
    entries, _ = intake.entries(root, tmp_path / "work")
    alice, bob = entries
    assert alice.flags == [] and bob.flags, "the failure is for a human to review"
    assert "grading error: MemoryError: a bug" in " ".join(bob.notes)
    assert not list(bob.folder.iterdir()), "half an unpacked zip is not graded"
    assert "Traceback" in capsys.readouterr().err, "the grader's log says where it failed"


def test_a_folder_holding_only_a_zip_is_graded_as_that_zip(tmp_path):
    # A learning platform's "download all submissions": a folder per student, their upload in it.
    root = tmp_path / "class"
    (root / "Alice Smith_123_assignsubmission_file_").mkdir(parents=True)
    module = tmp_path / "models.py"
    module.write_text("x = 1\n")
    upload = root / "Alice Smith_123_assignsubmission_file_" / "ganlab-submission.zip"
    submission.pack({"ganlab/models.py": module}, upload, "0.1.0")
    (root / "bob" / "ganlab").mkdir(parents=True)  # a kit copy that also holds a zip: a folder
    submission.pack({"ganlab/models.py": module}, root / "bob" / "old.zip", "0.1.0")
    alice, bob = intake.entries(root, tmp_path / "work")[0]
    assert alice.name == "Alice Smith_123"
    assert alice.notes[0] == "from Alice Smith_123_assignsubmission_file_/ganlab-submission.zip"
    assert (alice.folder / "ganlab" / "models.py").read_text() == "x = 1\n"
    assert bob.folder == root / "bob"


def test_names_one_student_may_have_twice_are_flagged(tmp_path):
    root = tmp_path / "class"
    for name in ("Alice", "alice", "Jos\u00e9", "Jose\u0301", "dave", "eve"):  # NFC, NFD
        (root / name).mkdir(parents=True)
    _pack(root / "dave.zip", tmp_path)
    _pack(root / ".zip", tmp_path)
    entries, _ = intake.entries(root, tmp_path / "work")
    flags = {e.name: " ".join(e.flags) for e in entries}
    assert "" not in flags and flags[".zip"] == "", "a zip named .zip is a row named .zip"
    assert "'Alice' and 'alice' differ only in case" in flags["Alice"] == flags["alice"]
    assert "differ only in case or Unicode form" in flags["Jos\u00e9"] == flags["Jose\u0301"]
    assert "two submissions from dave" in flags["dave.zip"]
    assert flags["dave"] == flags["eve"] == ""


def test_files_the_grader_may_not_read_are_flagged_not_called_missing(tmp_path, monkeypatch):
    # (the grader often runs as root, who reads everything: the refusals are simulated)
    root = tmp_path / "class"
    for name in ("frank", "gina"):
        (root / name / "ganlab").mkdir(parents=True)
        (root / name / "notebooks").mkdir()
        (root / name / "ganlab" / "models.py").write_text("x = 1\n")
    locked = [str(root / "gina"), str(root / "frank" / "ganlab" / "models.py")]
    real = os.lstat, os.open, os.access, Path.iterdir

    def denied(path):
        return any(str(path) == p or str(path).startswith(p + os.sep) for p in locked)

    def refuse(real_call, path, *args, **kwargs):
        if denied(path) and str(path) != locked[0]:  # gina itself can be lstat-ed, not listed
            raise PermissionError(13, "Permission denied", str(path))
        return real_call(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lambda p, *a, **k: refuse(real[0], p, *a, **k))
    monkeypatch.setattr(os, "open", lambda p, *a, **k: refuse(real[1], p, *a, **k))
    monkeypatch.setattr(os, "access", lambda p, mode, **k: not denied(p) and real[2](p, mode))

    def iterdir(self):
        if denied(self):
            raise PermissionError(13, "Permission denied", str(self))
        return real[3](self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    frank, gina = intake.entries(root, tmp_path / "work")[0]
    assert gina.flags == [
        "the grader may not read gina, gina/ganlab, gina/notebooks: fix the permissions"
    ]
    sub = assemble.load_submission(gina.folder, [], "gina")  # was a PermissionError
    assert "the submission's folder cannot be listed (Permission denied)" in sub.notes
    assert (
        "ganlab/models.py cannot be read (permission denied): graded as not implemented"
        in sub.notes
    )
    frank_notes = assemble.load_submission(frank.folder, [], "frank").notes
    assert (
        "ganlab/models.py cannot be read (permission denied): graded as not implemented"
        in frank_notes
    )
    assert not any(n.startswith("ganlab/models.py missing") for n in frank_notes), frank_notes
    assert not any("too large" in n for n in frank_notes), frank_notes


def test_moodle_rows_are_named_by_name_and_participant_id(tmp_path):
    # Was: the row, the feedback file and --students all took Moodle's folder name,
    # "Jane Doe_12345_assignsubmission_file_", noise a gradebook matches nothing with.
    root = tmp_path / "class"
    module = tmp_path / "models.py"
    module.write_text("x = 1\n")
    for folder in ("Jane Doe_12345_assignsubmission_file_", "Jane Doe_777_assignsubmission_file_"):
        (root / folder).mkdir(parents=True)
        submission.pack({"ganlab/models.py": module}, root / folder / "hand-in.zip", "0.1.0")
    (root / "Li_Wei_9_assignsubmission_file_" / "ganlab").mkdir(parents=True)  # a kit folder
    # Without "download in folders": the upload's own name after the prefix.
    _pack(root / "Ann O_5_assignsubmission_file_ganlab-submission.zip", tmp_path)
    (root / "bob_2024").mkdir()  # not Moodle's layout: the name as it is
    entries, _ = intake.entries(root, tmp_path / "work")
    by_name = {e.name: e for e in entries}
    assert sorted(by_name) == ["Ann O_5", "Jane Doe_12345", "Jane Doe_777", "Li_Wei_9", "bob_2024"]
    assert by_name["Li_Wei_9"].notes == ["from Li_Wei_9_assignsubmission_file_/"]
    assert by_name["Ann O_5"].notes[0] == "from Ann O_5_assignsubmission_file_ganlab-submission.zip"
    assert by_name["bob_2024"].notes == [] and all(not e.flags for e in entries)
    picked = intake.chosen(entries, ["Jane Doe_12345_assignsubmission_file_", "Ann O_5"])
    assert [e.name for e in picked] == ["Ann O_5", "Jane Doe_12345"], "either name selects it"
    assert by_name["Jane Doe_12345"].moodle == ("Jane Doe", "12345"), "for Moodle's worksheet"
    assert by_name["Ann O_5"].moodle == ("Ann O", "5") and by_name["bob_2024"].moodle == ()


def test_students_with_commas_in_their_names_can_be_chosen(tmp_path):
    # Was: --students split every value at commas: "Doe, Jane" could not be graded again.
    for name in ("Doe, Jane", "Doe", "bob", "x,y"):
        (tmp_path / name).mkdir()
    found, _ = intake.entries(tmp_path, tmp_path / "unpacked")

    def chosen(*values):
        return [e.name for e in intake.chosen(found, list(values))]

    assert chosen("Doe, Jane") == ["Doe, Jane"]
    assert chosen("bob,Doe, Jane") == ["Doe, Jane", "bob"]
    assert chosen("Doe, Jane,bob", "x,y") == ["Doe, Jane", "bob", "x,y"]
    assert chosen("Doe,bob") == ["Doe", "bob"]
    assert chosen("bob, Doe") == ["Doe", "bob"], "spaces after a comma still separate names"
    with pytest.raises(LookupError, match="'Jane'"):
        chosen("Doe,Jane")  # the name is "Doe, Jane": "Jane" alone is nobody


def test_a_zip_made_by_hand_is_graded_or_flagged(tmp_path):
    # Was: a folder zipped by hand (my-kit/ganlab/models.py, macOS's __MACOSX/, Windows' "\\")
    # was "ignored N file(s)" and graded as empty: a zero for packing, with no flag to review.
    root = tmp_path / "class"
    root.mkdir()
    with zipfile.ZipFile(root / "finder.zip", "w") as z:
        z.writestr("my-kit/ganlab/models.py", "x = 1\n")
        z.writestr("my-kit/notebooks/02_critic.ipynb", "{}")
        z.writestr("__MACOSX/my-kit/ganlab/._models.py", "junk")
    with zipfile.ZipFile(root / "windows.zip", "w") as z:
        z.writestr("ganlab\\models.py", "x = 2\n")
    with zipfile.ZipFile(root / "holiday.zip", "w") as z:
        z.writestr("photos/beach.jpg", "jpeg")
    finder, holiday, windows = intake.entries(root, tmp_path / "work")[0]
    assert (finder.folder / "ganlab" / "models.py").read_text() == "x = 1\n"
    assert (finder.folder / "notebooks" / "02_critic.ipynb").is_file()
    assert "the files are in my-kit/ inside the zip: graded from there" in finder.notes
    assert (windows.folder / "ganlab" / "models.py").read_text() == "x = 2\n"
    assert finder.flags == windows.flags == []
    assert holiday.flags == ["holiday.zip holds no file a submission holds (grade it by hand?)"]


def test_names_that_are_not_utf8_are_graded_and_written(tmp_path):
    # Was: a folder named in Latin-1 (a zip from Windows unpacked by `unzip`) became a name
    # with surrogates: after grading the whole class, writing grades.csv raised
    # UnicodeEncodeError and no grades were written. And a zip's name with a newline, in a
    # flag, forged a line of the end-of-run summary.
    from ganlab.grading import engine, report

    root = tmp_path / "class"
    root.mkdir()
    os.mkdir(os.fsencode(root) + b"/caf\xe9")
    (root / "bob").mkdir()
    (root / "x\nto review (0):.zip").write_text("not a zip")
    entries, _ = intake.entries(root, tmp_path / "work")
    assert [e.name for e in entries] == ["bob", "caf\\xe9", "x\nto review (0):"]
    assert intake.chosen(entries, [os.fsdecode(b"caf\xe9")]) == [entries[1]], "--students, typed"
    check = assemble.Check("02.ipynb", "check-2-1", 1)
    results = [engine.Result(e.name, notes=e.notes, flags=e.flags) for e in entries]
    report.write_atomic(tmp_path / "g.csv", report.csv_text(results, [check]))
    worksheet = report.moodle_csv(results, [check], {}, datetime.now(timezone.utc))
    report.write_atomic(tmp_path / "m.csv", worksheet)
    report.write_feedback(results, tmp_path / "fb")
    assert "\ncaf\\xe9,0,0,1,\n" in (tmp_path / "g.csv").read_text()
    assert (tmp_path / "fb" / "caf\\xe9.md").is_file()
    lines = report.summary(results, [(os.fsdecode(b"link\xff"), "a link")], [])
    assert lines[0] == "not graded: link\\xff: a link", "its bytes, as at intake (intake.as_text)"
    assert intake.as_text("\ud800") == "\\ud800", "a lone surrogate that is no byte: escaped too"
    assert lines[1:] == [
        "to review (1):",
        "  x?to review (0):: x?to review (0):.zip could not be unpacked (grade it by hand?)",
    ]
