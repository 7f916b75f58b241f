"""Step 1 of grading (``ganlab.grading.intake``): every entry of SUBMISSIONS_DIR graded or noted."""

import os
import socket
import zipfile

from ganlab import submission
from ganlab.grading import intake


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
