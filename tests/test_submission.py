"""ganlab.submission: the zip a student hands in, and how the grader reads it back."""

import json
import os
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
        for shadow in ("ganlab/Models.py", "ganlab/json.py", "ganlab/torch.py", "torch.py"):
            z.writestr(shadow, "raise SystemExit")  # a case twin; modules that shadow others
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
        and "ignored 7 file(s)" in joined
    )
    # Was: the link was listed among the files "a submission does not hold", next to models.py.
    assert "ganlab/losses.py: a link or special file in the zip, not a file: ignored" in notes


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
    monkeypatch.setattr(submission, "MAX_NOTEBOOK_BYTES", 1024)
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
    assert "note: notebooks/01_data.ipynb: packed Copy of 01_data.ipynb" in proc.stdout


def test_notebook_00_closes_with_the_hand_in_cell():
    from pathlib import Path

    import nbformat

    nb = nbformat.read(
        str(Path(__file__).resolve().parent.parent / "notebooks" / "00_setup.ipynb"), as_version=4
    )
    last = nb.cells[-1]
    assert last.cell_type == "code" and "submission.hand_in()" in last.source


# -- hostile or damaged zips: a note for that student, never an exception out of unpack ------


def _zip(path, members, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(name or zipfile.ZipInfo(name), data)  # writestr("") refuses the name
    return path


def _damage(path, name, offset=30, length=40):
    """Flip bytes of the compressed data of member ``name`` (just after its local header)."""
    raw = bytearray(path.read_bytes())
    start = raw.index(name.encode()) + len(name) + offset
    for i in range(start, min(start + length, len(raw))):
        raw[i] ^= 0x5A
    path.write_bytes(raw)
    return path


def _set_header_field(path, local_offset, central_offset, value, size):
    """Overwrite one field of every local and central header (e.g. the flags, the method)."""
    raw = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
        at = raw.find(signature)
        while at != -1:
            raw[at + offset : at + offset + size] = value.to_bytes(size, "little")
            at = raw.find(signature, at + 4)
    path.write_bytes(raw)
    return path


def _damaged_zips(tmp_path):
    """name -> (zip, the good member that must still come out)."""
    data = os.urandom(4000).hex()  # compresses poorly: damage lands in the compressed stream
    ok = {"ganlab/losses.py": "ok"}
    deflate = _zip(tmp_path / "deflate.zip", {"ganlab/models.py": data, **ok})
    lzma_zip = _zip(tmp_path / "lzma.zip", {"ganlab/models.py": data, **ok}, zipfile.ZIP_LZMA)
    manifest = json.dumps({"format": "ganlab-submission", "pad": data})
    return {
        "corrupt deflate data": (_damage(deflate, "ganlab/models.py"), "ganlab/losses.py"),
        "corrupt lzma data": (_damage(lzma_zip, "ganlab/models.py", 60), "ganlab/losses.py"),
        "corrupt manifest data": (
            _damage(_zip(tmp_path / "m.zip", {"manifest.json": manifest, **ok}), "manifest.json"),
            "ganlab/losses.py",
        ),
        "manifest nested too deep": (
            _zip(tmp_path / "deep.zip", {"manifest.json": "[" * 500_000, **ok}),
            "ganlab/losses.py",
        ),
        "encrypted members": (  # general purpose flag bit 0
            _set_header_field(_zip(tmp_path / "enc.zip", {"ganlab/models.py": "x"}), 6, 8, 1, 2),
            None,
        ),
        "unknown compression method": (
            _set_header_field(_zip(tmp_path / "m99.zip", {"ganlab/models.py": "x"}), 8, 10, 99, 2),
            None,
        ),
        "a member with an empty name": (
            _zip(tmp_path / "empty-name.zip", {"": "x", **ok}),
            "ganlab/losses.py",
        ),
        "a notebook name too long for the disk": (
            _zip(tmp_path / "long.zip", {"notebooks/00_" + "a" * 300 + ".ipynb": "{}", **ok}),
            "ganlab/losses.py",
        ),
    }


def test_a_damaged_zip_costs_the_damaged_files_only(tmp_path):
    for case, (path, good) in _damaged_zips(tmp_path).items():
        dest = tmp_path / "out" / path.stem
        notes = submission.unpack(path, dest)  # no zlib.error, LZMAError, RecursionError ...
        assert all(isinstance(n, str) for n in notes), case
        if good:
            assert (dest / good).read_text() == "ok", f"{case}: the intact file was lost"
    long = " ".join(submission.unpack(tmp_path / "long.zip", tmp_path / "out" / "long2"))
    assert "ignored 1 file(s)" in long
    enc = " ".join(submission.unpack(tmp_path / "enc.zip", tmp_path / "out" / "enc2"))
    assert "ganlab/models.py could not be read from the zip (encrypted)" in enc


def test_a_name_flagged_utf8_that_is_not_is_an_unreadable_zip(tmp_path):
    path = _zip(tmp_path / "x.zip", {"ganlab/models.py": "ok", "bad\u00e9": "x"})
    raw = path.read_bytes().replace("bad\u00e9".encode(), b"bad\xff\xfe")  # flag 0x800 stays
    path.write_bytes(raw)
    with pytest.raises(submission.SubmissionError, match="not a readable zip"):
        submission.unpack(path, tmp_path / "out")  # was a UnicodeDecodeError out of zipfile


def test_a_zip_bomb_is_not_inflated_past_the_limits(tmp_path, monkeypatch):
    monkeypatch.setattr(submission, "MAX_NOTEBOOK_BYTES", 1024)
    monkeypatch.setattr(submission, "MAX_TOTAL_BYTES", 4096)
    bomb = {f"notebooks/00_b{i}.ipynb": b"\0" * 100_000 for i in range(40)}
    path = _zip(tmp_path / "bomb.zip", {**bomb, "ganlab/models.py": b"ok"})
    inflated = []
    real_read = zipfile.ZipExtFile.read
    monkeypatch.setattr(
        zipfile.ZipExtFile, "read", lambda f, n=-1: inflated.append(real_read(f, n)) or inflated[-1]
    )
    notes = submission.unpack(path, tmp_path / "out")
    assert sum(map(len, inflated)) <= 4096, "members too large were inflated to be refused"
    assert (tmp_path / "out" / "ganlab" / "models.py").read_bytes() == b"ok"
    assert "notebooks/00_b0.ipynb is too large" in " ".join(notes)


def test_unpack_writes_at_most_max_files(tmp_path):
    many = {f"notebooks/00_n{i}.ipynb": b"" for i in range(submission.MAX_FILES + 50)}
    notes = submission.unpack(_zip(tmp_path / "many.zip", many), tmp_path / "out")
    assert len(list((tmp_path / "out" / "notebooks").iterdir())) == submission.MAX_FILES
    assert "ignored 50 file(s)" in " ".join(notes)


def test_a_zip_larger_than_a_submission_is_not_opened(tmp_path, monkeypatch):
    monkeypatch.setattr(submission, "MAX_ZIP_BYTES", 1000)  # its directory is read into memory
    path = _zip(tmp_path / "big.zip", {f"x{i}": b"" for i in range(100)})
    with pytest.raises(submission.SubmissionError, match="more than a submission holds"):
        submission.unpack(path, tmp_path / "out")


@pytest.mark.parametrize("how", ["as its end record says", "zip64", "understated"])
def test_a_zip_listing_more_members_than_a_submission_is_not_opened(tmp_path, monkeypatch, how):
    """zipfile reads every member's directory entry into memory (about 0.5 KB each) before
    anything can be checked: a 100 MB zip of a million empty files would cost a GB."""
    monkeypatch.setattr(submission, "MAX_LISTED", 50)
    members = {f"x{i:04d}": b"" for i in range(60 if how != "understated" else 2000)}
    if how == "zip64":  # the count then sits in the zip64 end record, 0xFFFF in the usual one
        monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 10)
    path = _zip(tmp_path / "many.zip", members)
    if how == "understated":  # the end record claims one member; the directory holds 2,000
        data = bytearray(path.read_bytes())
        end = data.rfind(b"PK\x05\x06")
        data[end + 8 : end + 12] = (1).to_bytes(2, "little") * 2
        path.write_bytes(bytes(data))
    with pytest.raises(submission.SubmissionError, match="more than a submission holds") as err:
        submission.unpack(path, tmp_path / "out")
    assert f"lists {1 if how == 'understated' else 60} file(s)" in str(err.value), err.value
    assert not (tmp_path / "out").exists(), "refused before anything was unpacked"
    monkeypatch.setattr(submission, "MAX_LISTED", 60)  # at the limit: opened
    if how != "understated":
        assert "ignored 60 file(s)" in " ".join(submission.unpack(path, tmp_path / "out"))


def test_unpack_notes_files_the_manifest_lists_but_the_zip_lacks(kit, tmp_path):
    files, _ = submission.collect(kit)
    submission.pack(files, tmp_path / "s.zip", kit_version="1")
    with zipfile.ZipFile(tmp_path / "s.zip") as z:
        members = {n: z.read(n) for n in z.namelist() if n != "ganlab/losses.py"}
    members["notebooks/03_extra.ipynb"] = b"{}"
    notes = submission.unpack(_zip(tmp_path / "t.zip", members), tmp_path / "out")
    assert "manifest.json lists files the zip lacks: ganlab/losses.py" in notes
    assert "not in manifest.json (added after packing?): notebooks/03_extra.ipynb" in notes


# -- ganlab submit: what the grader would not read is refused while the student can fix it --


def test_submit_writes_only_a_zip_and_never_over_the_students_files(student_kit):
    notebook = student_kit / "notebooks" / "01_data.ipynb"
    for out in (notebook, student_kit / "handin"):
        with pytest.raises(submission.SubmissionError, match=r"name the file \*\.zip"):
            submission.submit(student_kit, out=out, force=True)
    assert notebook.read_text() == '{"cells": []}', "the zip replaced the student's notebook"
    assert not (student_kit / "handin").exists(), "the grader ignores a file not named .zip"


def test_submit_refuses_a_notebook_the_grader_would_drop_as_too_large(student_kit, monkeypatch):
    monkeypatch.setattr(submission, "MAX_NOTEBOOK_BYTES", 1000)
    (student_kit / "notebooks" / "01_data.ipynb").write_text("x" * 2000)
    with pytest.raises(submission.SubmissionError, match="notebooks/01_data.ipynb.*Clear"):
        submission.submit(student_kit)
    assert not (student_kit / submission.DEFAULT_OUT).exists()


def test_pack_leaves_no_partial_zip_when_writing_fails(kit, tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", full_disk)
    with pytest.raises(OSError):
        submission.pack(submission.collect(kit)[0], tmp_path / "me.zip", "1")
    assert list(tmp_path.iterdir()) == [kit], "a half-written zip was left behind"


def test_a_module_has_one_size_limit_from_submit_to_the_grader(student_kit, tmp_path):
    # Was: `ganlab submit` took a module of up to 20 MB, the grader read 1 MB of it, and the
    # student's row said "larger than 1024 KB: ignored" and "missing".
    from ganlab.grading import assemble

    module = student_kit / "ganlab" / "models.py"
    module.write_text("x = 1\n#" + "w" * submission.MAX_MODULE_BYTES)
    with pytest.raises(
        submission.SubmissionError,
        match=r"ganlab/models\.py \(1 MB\) \(the grader reads at most 1 MB of a module, "
        r"20 MB of a notebook, 100 MB in all\)\. Keep only code",
    ):
        submission.submit(student_kit)
    said = "ganlab/models.py is too large (the grader reads at most 1 MB of a module"
    files, _ = submission.collect(student_kit)
    submission.pack(files, tmp_path / "by_hand.zip", "0.1.0")  # a zip made without the check
    assert any(
        n.startswith(said) for n in submission.unpack(tmp_path / "by_hand.zip", tmp_path / "u")
    )
    notes = assemble.load_submission(student_kit, [], "s").notes  # a folder: the same limit
    assert f"{said}, 20 MB of a notebook, 100 MB in all): graded as not implemented" in notes
    assert not any("missing" in n for n in notes), notes
    module.write_text("x = 1\n#" + "w" * (submission.MAX_MODULE_BYTES - 10))  # under: all fine
    submission.submit(student_kit)
    assert assemble.load_submission(student_kit, [], "s").modules["models.py"].startswith("x = 1")


# -- ganlab submit: what a student's folders really hold ---------------------------------

COLAB_SAVED = {  # File -> Download .ipynb on Colab: no cell ids, Colab metadata, nbformat 4.0
    "nbformat": 4,
    "nbformat_minor": 0,
    "metadata": {"colab": {"provenance": []}, "kernelspec": {"name": "python3"}},
    "cells": [
        {
            "cell_type": "code",
            "metadata": {"id": "aBc123"},
            "execution_count": None,
            "outputs": [],
            "source": ["x = 1\n", "y = 2"],
        }
    ],
}


@pytest.mark.parametrize(
    "text, said",
    [
        ("", "is empty"),  # a save cut short by a full disk, a file created by hand
        ('{"cells": [{"cell_type": "code", "sou', "not a valid notebook"),  # half-saved
        ('<<<<<<< HEAD\n{"cells": []}\n=======\n{"cells": [1]}\n>>>>>>> main\n', "merge conflict"),
        ("[1, 2]", "not a valid notebook"),  # JSON, but not a notebook
    ],
)
def test_submit_refuses_a_notebook_the_grader_cannot_read(student_kit, text, said):
    # Was: packed as it was; the grader then counted every exercise of that notebook as not done.
    (student_kit / "notebooks" / "01_data.ipynb").write_text(text)
    with pytest.raises(submission.SubmissionError, match=f"notebooks/01_data.ipynb.*{said}"):
        submission.submit(student_kit)
    assert not (student_kit / submission.DEFAULT_OUT).exists()


def test_submit_takes_notebooks_and_modules_as_the_grader_reads_them(student_kit):
    notebook = json.dumps(COLAB_SAVED).encode()
    (student_kit / "notebooks" / "01_data.ipynb").write_bytes(b"\xef\xbb\xbf" + notebook)  # BOM
    (student_kit / "ganlab" / "models.py").write_bytes(b"# caf\xe9 (cp1252)\nx = 1\n")
    out, manifest = submission.submit(student_kit)
    assert zipfile.ZipFile(out).read("notebooks/01_data.ipynb").endswith(notebook)


def test_submit_refuses_a_module_with_a_syntax_error(student_kit):
    # Was: packed; the grader graded the whole module as not implemented.
    (student_kit / "ganlab" / "losses.py").write_text("<<<<<<< HEAD\nx = 1\n=======\nx = 2\n")
    with pytest.raises(
        submission.SubmissionError, match=r"ganlab/losses\.py has a syntax error \(line 1"
    ):
        submission.submit(student_kit)


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_submit_does_not_pack_what_a_link_points_to(student_kit, tmp_path):
    # Was: ganlab/models.py -> ~/private.txt packed the private file as the student's models.py.
    private = tmp_path / "private.txt"
    private.write_text("not for the instructor")
    (student_kit / "ganlab" / "models.py").unlink()
    (student_kit / "ganlab" / "models.py").symlink_to(private)
    with pytest.raises(submission.SubmissionError, match=r"ganlab/models\.py is a link"):
        submission.submit(student_kit)
    assert not (student_kit / submission.DEFAULT_OUT).exists()


def test_the_course_notebooks_are_names_the_grader_reads(student_kit):
    # Was: "02_critic (1).ipynb" (a second download) was a course notebook, packed under a name
    # the grader ignores, and required in Drive; a name not in UTF-8 stopped submit with a traceback.
    for name in ("02_critic (1).ipynb", "Copy of 01_data.ipynb", "03_gén.ipynb"):
        (student_kit / "notebooks" / name).write_text('{"cells": []}')
    try:
        (student_kit / "notebooks" / os.fsdecode(b"04_b\xff.ipynb")).write_text("{}")
    except (OSError, UnicodeError):  # macOS and Windows accept only Unicode names
        pass
    assert submission.course_notebooks(student_kit) == ["00_setup.ipynb", "01_data.ipynb"]
    out, manifest = submission.submit(student_kit)
    assert sorted(manifest["files"]) == sorted(
        submission.expected_names(["00_setup.ipynb", "01_data.ipynb"])
    )


def test_submit_refuses_a_kit_without_its_notebooks(student_kit):
    # Was: a zip of the modules alone, "written": the notebooks' exercises all graded as not done.
    for notebook in (student_kit / "notebooks").iterdir():
        notebook.rename(student_kit / notebook.name)
    with pytest.raises(submission.SubmissionError, match="no course notebooks"):
        submission.submit(student_kit)


def test_submit_outside_a_kit_says_where_to_run_it(student_kit, tmp_path, monkeypatch):
    # Was: outside a kit, the folder ganlab was imported from was packed even when it was no
    # kit (site-packages after `pip install ganlab`): its stubs, and no notebook.
    installed = tmp_path / "site-packages" / "ganlab"
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    monkeypatch.setattr(submission, "__file__", str(installed / "submission.py"))
    monkeypatch.chdir(tmp_path)  # the folder above the kit
    with pytest.raises(submission.SubmissionError, match=f"run it in {student_kit}"):
        submission.submit()
    monkeypatch.chdir(tmp_path / "site-packages")
    with pytest.raises(submission.SubmissionError, match="not inside a copy of the kit"):
        submission.submit()
    monkeypatch.chdir(student_kit / "notebooks")
    assert submission.submit()[0] == student_kit / submission.DEFAULT_OUT


def test_the_newer_of_a_notebook_and_its_copy_is_packed(student_kit):
    # Was: "Copy of 01_data.ipynb" downloaded from Colab into the kit's notebooks/ lost to the
    # untouched 01_data.ipynb beside it, without a word.
    folder = student_kit / "notebooks"
    (folder / "Copy of 01_data.ipynb").write_text('{"cells": [], "mine": true}')
    os.utime(folder / "01_data.ipynb", (1_000_000_000, 1_000_000_000))  # the kit's, from 2001
    (folder / "00_setup-Copy1.ipynb").write_text('{"cells": []}')  # JupyterLab's "Duplicate"
    os.utime(folder / "00_setup.ipynb", (1_000_000_000, 1_000_000_000))
    out, manifest = submission.submit(student_kit)
    assert b'"mine"' in zipfile.ZipFile(out).read("notebooks/01_data.ipynb")
    notes = " ".join(manifest["notes"])
    assert "notebooks/01_data.ipynb: packed Copy of 01_data.ipynb" in notes
    assert "00_setup-Copy1.ipynb is newer than 00_setup.ipynb" in notes


def test_pack_leaves_another_runs_partial_zip_alone(kit, tmp_path):
    # Was: two runs at once wrote the same me.zip.partial, one deleting or renaming the other's.
    other = tmp_path / "me.zip.partial"
    other.write_text("another run, still writing")
    submission.pack(submission.collect(kit)[0], tmp_path / "me.zip", "1")
    assert other.read_text() == "another run, still writing"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kit", "me.zip", "me.zip.partial"]


def test_a_zip_that_cannot_be_written_is_one_clear_error(student_kit, tmp_path, monkeypatch):
    def read_only(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(zipfile, "ZipFile", read_only)  # a read-only folder (tests run as root)
    with pytest.raises(submission.SubmissionError, match=r"cannot write .*me\.zip .*--out"):
        submission.submit(student_kit, out=tmp_path / "ro" / "me.zip")


def test_submit_packs_nothing_else_of_the_students_folders(student_kit):
    (student_kit / "runs" / "demo").mkdir(parents=True)
    (student_kit / "runs" / "demo" / "checkpoint.pt").write_bytes(b"\0" * 2**20)
    (student_kit / "ganlab" / "notes.py").write_text("mine")
    (student_kit / "notebooks" / "scratch.ipynb").write_text('{"cells": []}')
    out, manifest = submission.submit(student_kit)
    assert set(zipfile.ZipFile(out).namelist()) == {submission.MANIFEST, *manifest["files"]}
    assert sorted(manifest["files"]) == sorted(
        submission.expected_names(["00_setup.ipynb", "01_data.ipynb"])
    )
