"""ganlab.submission: the zip a student hands in, and how the grader reads it back."""

import json
import zipfile

import pytest

from ganlab import submission
from ganlab._solutions import EXERCISE_MODULES


@pytest.fixture
def kit(tmp_path):
    root = tmp_path / "kit"
    for module in EXERCISE_MODULES:
        (root / "ganlab").mkdir(parents=True, exist_ok=True)
        (root / "ganlab" / module).write_text(f"# {module}\n")
    (root / "notebooks").mkdir()
    for name in ("00_setup.ipynb", "01_data.ipynb"):
        (root / "notebooks" / name).write_text('{"cells": []}')
    return root


def test_pack_then_unpack_round_trips_with_a_manifest(kit, tmp_path):
    files, missing = submission.collect(kit)
    assert not missing and len(files) == len(EXERCISE_MODULES) + 2
    manifest = submission.pack(files, tmp_path / "out" / "me.zip", kit_version="9.9")
    assert manifest["format"] == "ganlab-submission" and manifest["kit_version"] == "9.9"
    assert set(manifest["files"]) == set(files)
    notes = submission.unpack(tmp_path / "out" / "me.zip", tmp_path / "back")
    assert notes == []
    for name, path in files.items():
        assert (tmp_path / "back" / name).read_bytes() == path.read_bytes()


def test_collect_names_what_is_missing(kit):
    (kit / "ganlab" / "losses.py").unlink()
    (kit / "notebooks" / "01_data.ipynb").unlink()
    _, missing = submission.collect(kit, notebooks=["00_setup.ipynb", "01_data.ipynb"])
    assert missing == ["ganlab/losses.py", "notebooks/01_data.ipynb"]


def test_notebooks_may_live_elsewhere(kit, tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    (drive / "00_setup.ipynb").write_text("from drive")
    files, _ = submission.collect(kit, notebooks_dir=drive)
    assert files["notebooks/00_setup.ipynb"] == drive / "00_setup.ipynb"


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_unpack_writes_only_what_a_submission_holds(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../../escape.py", "x")
        z.writestr("/etc/evil", "x")
        z.writestr("ganlab/checks/__init__.py", "x")
        z.writestr("ganlab/models.py", "ok")
        z.writestr("ganlab/models.py", "second")
        link = zipfile.ZipInfo("ganlab/losses.py")
        link.external_attr = 0o120777 << 16  # a symbolic link
        z.writestr(link, "/etc/passwd")
        z.writestr("notebooks/02_critic.ipynb", "nb")
    notes = submission.unpack(bad, tmp_path / "out")
    written = sorted(
        str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file()
    )
    assert written == ["ganlab/models.py", "notebooks/02_critic.ipynb"]
    assert (tmp_path / "out" / "ganlab" / "models.py").read_text() == "ok"
    assert not (tmp_path / "escape.py").exists()
    joined = " ".join(notes)
    assert (
        "no readable manifest.json" in joined
        and "appears twice" in joined
        and "ignored 4 file(s)" in joined
    )


def test_unpack_bounds_sizes_and_checks_hashes(kit, tmp_path, monkeypatch):
    files, _ = submission.collect(kit)
    submission.pack(files, tmp_path / "s.zip", kit_version="1")
    with zipfile.ZipFile(tmp_path / "s.zip") as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["ganlab/models.py"] = b"edited after packing"
    members["notebooks/01_data.ipynb"] = b"x" * 2048
    with zipfile.ZipFile(tmp_path / "t.zip", "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    monkeypatch.setattr(submission, "MAX_MEMBER_BYTES", 1024)
    notes = " ".join(submission.unpack(tmp_path / "t.zip", tmp_path / "out"))
    assert "ganlab/models.py differs from the hash" in notes
    assert "notebooks/01_data.ipynb is too large" in notes
    assert not (tmp_path / "out" / "notebooks" / "01_data.ipynb").exists()
    assert json.loads(members["manifest.json"])["version"] == 1


def test_not_a_zip_is_a_clear_error(tmp_path):
    (tmp_path / "x.zip").write_text("not a zip")
    with pytest.raises(submission.SubmissionError, match="not a readable zip"):
        submission.unpack(tmp_path / "x.zip", tmp_path / "out")


def _submit(*args, cwd, env=None):
    import os
    import subprocess
    import sys

    env = {**{k: v for k, v in os.environ.items() if k != "GANLAB_NOTEBOOKS_DIR"}, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ganlab", "submit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
    )


@pytest.fixture
def student_kit(kit):
    (kit / "ganlab" / "__init__.py").write_text("")
    return kit


def test_ganlab_submit_packs_from_the_notebooks_folder_the_set_up_cell_leaves(student_kit):
    proc = _submit(cwd=student_kit / "notebooks")  # Colab's set-up cell chdirs there
    assert proc.returncode == 0, proc.stderr
    out = student_kit / submission.DEFAULT_OUT
    assert f"wrote {out}" in proc.stdout
    names = set(zipfile.ZipFile(out).namelist())
    assert names == {
        submission.MANIFEST,
        *submission.expected_names(["00_setup.ipynb", "01_data.ipynb"]),
    }
    manifest = json.loads(zipfile.ZipFile(out).read(submission.MANIFEST))
    assert {"kit_version", "created", "files"} <= manifest.keys()


def test_ganlab_submit_refuses_what_is_missing_naming_it_and_where_it_looked(student_kit, tmp_path):
    saved = tmp_path / "Colab Notebooks"  # the student saved only notebook 00 there
    saved.mkdir()
    (saved / "00_setup.ipynb").write_text('{"cells": []}')
    (student_kit / "ganlab" / "latent.py").unlink()
    proc = _submit(str(student_kit), "--notebooks", str(saved), cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.startswith("error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert "ganlab/latent.py" in proc.stderr and "notebooks/01_data.ipynb" in proc.stderr
    assert str(saved) in proc.stderr and "Download" in proc.stderr
    assert not (student_kit / submission.DEFAULT_OUT).exists()


def test_ganlab_submit_keeps_an_earlier_zip_unless_forced(student_kit):
    # (cwd: a folder inside the kit; in the kit's root `python -m` would import this fake kit)
    assert _submit(cwd=student_kit / "notebooks").returncode == 0
    again = _submit(cwd=student_kit / "notebooks")
    assert again.returncode == 1 and "--force" in again.stderr
    assert _submit("--force", cwd=student_kit / "notebooks").returncode == 0


def test_on_colab_submit_finds_the_notebooks_saved_to_drive(student_kit, tmp_path):
    # Colab's "Save a copy in Drive" writes "Copy of 00_setup.ipynb" into "Colab Notebooks".
    drive = tmp_path / "MyDrive" / "Colab Notebooks"
    drive.mkdir(parents=True)
    for name in ("00_setup.ipynb", "01_data.ipynb"):
        (drive / f"Copy of {name}").write_text('{"cells": [], "mine": true}')
    proc = _submit(cwd=student_kit / "notebooks", env={"GANLAB_NOTEBOOKS_DIR": str(drive)})
    assert proc.returncode == 0, proc.stderr
    archive = zipfile.ZipFile(student_kit / submission.DEFAULT_OUT)
    assert b'"mine"' in archive.read("notebooks/01_data.ipynb"), "the kit's copy was packed"


def test_notebook_00_closes_with_the_hand_in_cell():
    from pathlib import Path

    import nbformat

    nb = nbformat.read(
        str(Path(__file__).resolve().parent.parent / "notebooks" / "00_setup.ipynb"), as_version=4
    )
    last = nb.cells[-1]
    assert last.cell_type == "code" and "submission.hand_in()" in last.source
