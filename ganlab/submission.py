"""Handing work in: one zip holding a student's exercise modules and notebooks, with a manifest.

    ganlab submit [KIT] [--notebooks DIR] [--out FILE] [--force]   (students; see ganlab/cli.py)
    submission.hand_in()                                    (the closing cell of notebook 00)
    ganlab grade SUBMISSIONS_DIR ...                        (instructors: folders or such zips)

The zip holds ``ganlab/<module>.py`` for every exercise module, ``notebooks/NN_*.ipynb``
for every course notebook, and ``manifest.json``::

    {"format": "ganlab-submission", "version": 1, "kit_version": "0.1.0",
     "created": "2026-12-01T12:00:00+00:00",
     "files": {"ganlab/models.py": {"sha256": "...", "bytes": 1234}, ...},
     "notes": ["notebooks/02_critic.ipynb: packed Copy of 02_critic.ipynb"]}

``collect`` finds the files, ``submit`` refuses what the grader could not read (a link, a
file too large, a notebook that is not JSON, a module with a syntax error), ``pack`` writes
the zip, ``unpack`` turns one back into a folder of the same layout as a student's copy of
the kit. Unpacking only ever writes the names above, as regular files of bounded size: a zip
is untrusted input. A zip made by hand is read as well where it names the same files (one
folder above them, Windows' ``\\``).
"""

from __future__ import annotations

import ast
import hashlib
import json
import lzma
import os
import re
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path

from ._solutions import EXERCISE_MODULES

FORMAT, VERSION = "ganlab-submission", 1
MANIFEST = "manifest.json"
# The one statement of what the grader reads of a hand-in: `ganlab submit` refuses more,
# ``unpack`` drops more, and the grader reads a student's folder with the same limits.
MAX_MODULE_BYTES = 2**20  # an exercise module: its code is a few KB
MAX_NOTEBOOK_BYTES = 20 * 2**20  # a notebook with plots is a few MB
MAX_TOTAL_BYTES = 100 * 2**20
MAX_ZIP_BYTES = MAX_TOTAL_BYTES  # the zip itself: zipfile holds its whole directory in memory
MAX_LISTED = 20_000  # members a zip may list: zipfile keeps about 0.5 KB for each, read or not
MAX_CELLS = 5000  # cells of one notebook the grader reads
MAX_FILES = 64  # members unpacked from one zip; a submission holds about a dozen
COLAB_COPY = "Copy of "  # Colab's "File -> Save a copy in Drive" names a notebook "Copy of NN_..."
DEFAULT_OUT = "ganlab-submission.zip"  # at the kit's root
_NOTEBOOK = re.compile(r"notebooks/\d\d_[A-Za-z0-9_-]{1,100}\.ipynb")  # a name any disk can hold
# What zipfile raises for a damaged or hostile zip: bad headers, a name flagged UTF-8 that is
# not (ValueError), corrupt data (zlib, lzma; bz2 raises OSError), encryption or an unknown
# compression method (RuntimeError, NotImplementedError), a member cut short (EOFError).
ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    RuntimeError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
)


class SubmissionError(Exception):
    """A submission cannot be packed (files missing) or read (not a ganlab submission zip)."""


def course_notebooks(kit_root) -> list[str]:
    """The names of the course's notebooks, e.g. ``["00_setup.ipynb", ...]``, from the kit itself:
    only names a submission may hold (not a student's "02_critic (1).ipynb" beside them)."""
    names = (p.name for p in Path(kit_root, "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return sorted(n for n in names if _NOTEBOOK.fullmatch(f"notebooks/{n}"))


def expected_names(notebooks) -> list[str]:
    """Every path a complete submission holds (besides the manifest)."""
    return [f"ganlab/{m}" for m in EXERCISE_MODULES] + [f"notebooks/{n}" for n in notebooks]


def collect(kit_root, notebooks_dir=None, notebooks=None) -> tuple[dict, list]:
    """``({name in the zip: file}, [missing names])`` for the student's copy at ``kit_root``.

    ``notebooks_dir`` is where the student's notebooks are (default ``kit_root/notebooks``;
    on Colab, the Drive folder they were saved in). ``notebooks`` defaults to the kit's list.
    """
    kit_root = Path(kit_root)
    folder = Path(notebooks_dir) if notebooks_dir is not None else kit_root / "notebooks"
    notebooks = notebooks if notebooks is not None else course_notebooks(kit_root)
    files, missing = {}, []
    for name in expected_names(notebooks):
        path = kit_root / name if name.startswith("ganlab/") else folder / Path(name).name
        copy = path.with_name(COLAB_COPY + path.name)  # Colab's "Save a copy in Drive" name
        found = [p for p in (path, copy) if p.is_file()]
        if found:  # both: the one saved last (a copy downloaded from Colab beside the kit's)
            files[name] = max(found, key=lambda p: p.stat().st_mtime)
        else:
            missing.append(name)
    return files, missing


def _newer_lookalikes(name, path) -> list[str]:
    """Notes on notebooks saved after ``path`` whose names hold its name (JupyterLab's
    "02_critic-Copy1.ipynb", a second download "02_critic (1).ipynb"): is the work in one?"""
    stem, when = Path(name).stem, path.stat().st_mtime
    return [
        f"{other.name} is newer than {path.name}: if your work is in it, rename it {Path(name).name}"
        for other in sorted(path.parent.glob(f"*{stem}*.ipynb"))
        if other != path and other.is_file() and other.stat().st_mtime > when
    ]


def _digest(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def pack(files: dict, out, kit_version: str, notes=()) -> dict:
    """Write ``files`` (``{name in the zip: path}``) and their manifest to the zip ``out``;
    ``notes`` (which file went in as which, for the student and the instructor) go with them.

    The zip is written next to ``out`` first and renamed at the end, so an interrupted
    run never leaves half a zip under the final name. Returns the manifest.
    """
    out = Path(out)
    contents = {name: Path(path).read_bytes() for name, path in sorted(files.items())}
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "kit_version": kit_version,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": {name: _digest(data) for name, data in contents.items()},
        "notes": list(notes),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")  # two runs at once: one each
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
            for name, data in contents.items():
                archive.writestr(name, data)
        os.replace(partial, out)
    except BaseException:  # a full disk, Ctrl-C: no half zip left next to the student's files
        partial.unlink(missing_ok=True)
        raise
    return manifest


def _is_kit(folder) -> bool:
    return (folder / "ganlab" / "__init__.py").is_file() and (folder / "notebooks").is_dir()


def find_kit(start=None) -> Path:
    """The kit folder (holding ``ganlab/`` and ``notebooks/``) at or above ``start`` (default:
    the working directory, e.g. ``notebooks/`` after the Colab set-up cell); else the folder
    this ganlab package was imported from, when that is a kit (not site-packages)."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if _is_kit(folder):
            return folder
    imported_from = Path(__file__).resolve().parent.parent
    if start is None and _is_kit(imported_from):
        return imported_from
    try:  # run in the folder above the kit, say: name the kit
        below = sorted(p for p in here.iterdir() if p.is_dir() and _is_kit(p))
    except OSError:
        below = []
    where = f"run it in {below[0]}" if len(below) == 1 else "run it there"
    raise SubmissionError(
        f"{here} is not inside a copy of the kit (the folder holding ganlab/ and notebooks/): "
        f"{where}, or name the kit: ganlab submit KIT"
    )


def default_notebooks_dir(kit_root) -> Path:
    """Where the student's notebooks are: GANLAB_NOTEBOOKS_DIR (Colab's set-up cell sets it to
    Drive's "Colab Notebooks") when it holds one of them, else the kit's ``notebooks/``."""
    drive = os.environ.get("GANLAB_NOTEBOOKS_DIR")
    if drive:
        names = course_notebooks(kit_root)
        if any(Path(drive, n).is_file() or Path(drive, COLAB_COPY + n).is_file() for n in names):
            return Path(drive)
    return Path(kit_root) / "notebooks"


def submit(kit_root=None, notebooks_dir=None, out=None, force=False) -> tuple[Path, dict]:
    """Pack the student's work into one zip; ``(zip path, manifest)``. Raises
    ``SubmissionError`` naming every missing file and where to put it, or an existing ``out``."""
    from . import __version__

    kit_root = find_kit(kit_root)
    folder = Path(notebooks_dir) if notebooks_dir else default_notebooks_dir(kit_root)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise SubmissionError(f"the notebooks folder {folder} {what}")
    if not course_notebooks(kit_root):
        raise SubmissionError(
            f"no course notebooks (NN_name.ipynb) in {kit_root / 'notebooks'}: the kit names the "
            "notebooks to hand in; put them back there (a fresh copy of the kit has them)"
        )
    files, missing = collect(kit_root, folder)
    if missing:
        where = ", ".join(missing)
        raise SubmissionError(
            f"cannot hand in: missing {where} (notebooks looked for in {folder}). Save every "
            "notebook there (on Colab: File -> Save a copy in Drive, or File -> Download -> "
            "Download .ipynb and upload it to that folder), or name the folder with --notebooks DIR"
        )
    _check_links(files)
    _check_sizes(files)
    _check_contents(files)
    out = Path(out) if out else kit_root / DEFAULT_OUT
    if out.is_dir():
        raise SubmissionError(f"{out} is a folder, not a zip file name")
    if not out.name.lower().endswith(".zip"):  # nor can it replace a notebook or a module
        raise SubmissionError(f"{out}: name the file *.zip (the grader reads only .zip files)")
    if out.exists() and not force:
        raise SubmissionError(f"{out} exists: pass --force to replace it")
    notes = [f"{n}: packed {p.name}" for n, p in files.items() if p.name != Path(n).name]
    for name, path in files.items():
        notes += _newer_lookalikes(name, path) if name.startswith("notebooks/") else []
    try:
        return out, pack(files, out, __version__, notes)
    except OSError as err:  # a read-only folder, a full disk, a zip open in another program
        raise SubmissionError(
            f"cannot write {out} ({err.strerror or err}): choose another file with --out FILE"
        ) from err


def max_bytes(name: str) -> int:
    """The most the grader reads of the submission file ``name`` (``ganlab/...``, ``notebooks/...``)."""
    return MAX_MODULE_BYTES if name.startswith("ganlab/") else MAX_NOTEBOOK_BYTES


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0") + " MB"


def limits_text() -> str:
    """The limits in words, for every message that refuses or drops a file."""
    return (
        f"the grader reads at most {_mb(MAX_MODULE_BYTES)} of a module, "
        f"{_mb(MAX_NOTEBOOK_BYTES)} of a notebook, {_mb(MAX_TOTAL_BYTES)} in all"
    )


def _check_sizes(files):
    """Refuse what the grader's ``unpack`` would drop as too large, while the student can fix it."""
    sizes = {name: Path(path).stat().st_size for name, path in files.items()}
    large = [f"{n} ({_mb(b)})" for n, b in sizes.items() if b > max_bytes(n)]
    total = sum(sizes.values())
    if large or total > MAX_TOTAL_BYTES:
        what = ", ".join(large) or f"{_mb(total)} in all"
        modules = any(n.startswith("ganlab/") for n in large)
        raise SubmissionError(
            f"too large to grade: {what} ({limits_text()}). "
            + ("Keep only code in the exercise modules (no data or weights). " if modules else "")
            + "Clear the notebooks' outputs (JupyterLab: Edit -> Clear Outputs of All Cells; "
            "Colab: Edit -> Clear all outputs), save, and hand in again"
        )


def _check_links(files):
    """Refuse a link in place of a file: its target (any file on the disk) would be packed."""
    links = [f"{n} is a link to {os.readlink(p)}" for n, p in files.items() if p.is_symlink()]
    if links:
        raise SubmissionError(
            f"cannot hand in: {'; '.join(links)}. Put the file itself there (the grader "
            "reads no links), and hand in again"
        )


def _read_text(path) -> str:
    """A file's text as the grader reads it: a BOM dropped, bytes not in UTF-8 replaced."""
    return Path(path).read_bytes().decode("utf-8-sig", errors="replace")


# The grader reads a submission with the next two functions (grading.assemble): `submit`
# refuses, on the student's machine, what they would not read.
def student_cells(text):
    """The code cells of a student's notebook as ``[(id or "", source)]``, or raises ValueError.

    Plain JSON, not nbformat: whatever wrote the file (JupyterLab, Colab with no ids and
    its own metadata, nbformat 4.0, an old editor with source as a list of lines), only
    ``cell_type``, ``id`` and ``source`` are read; outputs are never looked at.
    """
    data = json.loads(text)
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        raise ValueError("no list of cells")
    if len(cells) > MAX_CELLS:
        raise ValueError(f"more than {MAX_CELLS} cells")
    found = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(part for part in source if isinstance(part, str))
        cell_id = cell.get("id")
        # JSON may escape a lone surrogate ("\\ud800"), which no file can hold: '?' instead.
        source = str(source).encode("utf-8", "replace").decode("utf-8")
        found.append((cell_id if isinstance(cell_id, str) else "", source))
    return found


def syntax_error(text: str, name: str) -> str | None:
    """``"NAME has a syntax error (line N): ..."`` if the module ``text`` does not parse, else None."""
    try:
        compile(text, name, "exec", dont_inherit=True, flags=ast.PyCF_ONLY_AST)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        line = getattr(err, "lineno", 0) or "?"
        return f"{name} has a syntax error (line {line}): {getattr(err, 'msg', type(err).__name__)}"
    return None


def _notebook_problem(text: str) -> str | None:
    """Why the grader cannot read the notebook ``text`` (``student_cells``), or None."""
    if not text.strip():
        return "is empty"
    if re.search(r"^(<<<<<<<|>>>>>>>) ", text, re.MULTILINE):
        return "holds a Git merge conflict (<<<<<<< lines)"
    try:
        student_cells(text)
    except json.JSONDecodeError as err:
        return f"is not a valid notebook (cut short? line {err.lineno}: {err.msg})"
    except (ValueError, RecursionError, MemoryError) as err:
        return f"is not a valid notebook ({err or type(err).__name__})"
    return None


def _check_contents(files):
    """Refuse a notebook or module the grader cannot read: each of its exercises would score 0."""
    problems = []
    for name, path in files.items():
        text = _read_text(path)
        where = name if path.name == Path(name).name else f"{name} (saved as {path})"
        if name.startswith("notebooks/"):
            problem = _notebook_problem(text)
            problems += [f"{where} {problem}"] if problem else []
            continue
        problem = syntax_error(text, where)
        problems += [problem] if problem else []
    if problems:
        raise SubmissionError(
            f"cannot hand in: {'; '.join(problems)}. Fix each and save it (a notebook: open it "
            "in Jupyter or Colab and save it again; the kit's notebooks/ has a fresh copy), "
            "then hand in again"
        )


def written(out, manifest) -> str:
    """What ``submit`` wrote, for the student: the zip, its notes, the one thing to remember."""
    return "\n".join(
        [
            f"wrote {out}: {len(manifest['files'])} files, kit {manifest['kit_version']}",
            *(f"note: {note}" for note in manifest["notes"]),
            "Hand in this one file. Save your notebooks first: the zip holds what is on disk.",
        ]
    )


def hand_in(notebooks_dir=None):
    """The closing cell of notebook 00: pack (replacing an earlier zip), say what went in, and
    on Colab start the download."""
    out, manifest = submit(notebooks_dir=notebooks_dir, force=True)
    print(written(out, manifest))
    from .environment import on_colab

    if on_colab():
        from google.colab import files

        files.download(str(out))
    return out


def _allowed(name: str) -> bool:
    return name in {f"ganlab/{m}" for m in EXERCISE_MODULES} or bool(_NOTEBOOK.fullmatch(name))


def _inner_folder(names) -> str:
    """``"my-kit/"`` when a zip made by hand holds the submission in one folder
    (``my-kit/ganlab/models.py``; macOS's Compress adds ``__MACOSX/``), else ``""``."""
    if any(map(_allowed, names)):
        return ""
    tops = {n.split("/", 1)[0] for n in names if "/" in n and _allowed(n.split("/", 1)[1])}
    return f"{tops.pop()}/" if len(tops) == 1 else ""


def _shown(names) -> str:
    names = sorted(names)
    return ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")


def _manifest_files(archive, notes):
    """The manifest's ``files`` (``{name: {"sha256", "bytes"}}``), or None with a note."""
    try:
        with archive.open(MANIFEST) as f:
            manifest = json.loads(f.read(2**20).decode("utf-8"))
    except (*ZIP_ERRORS, KeyError, RecursionError):  # absent, damaged, not JSON, nested too deep
        notes.append("no readable manifest.json: not made by `ganlab submit`")
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        notes.append("manifest.json is not a ganlab submission manifest")
        return None
    files = manifest.get("files")
    return files if isinstance(files, dict) else {}


def _directory(zip_path):
    """``(members, bytes)`` of the zip's central directory, as its end record gives them (zip64
    too; ``(0, 0)`` without one: ``zipfile`` then says what is wrong), read before ``zipfile``
    reads the whole directory in, as its size says, whatever the count."""
    with open(zip_path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - (22 + 0xFFFF + 20 + 56)))  # end records, comment, zip64 locator
        tail = f.read()
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) - end < 22:
        return 0, 0
    members = int.from_bytes(tail[end + 10 : end + 12], "little")
    length = int.from_bytes(tail[end + 12 : end + 16], "little")
    record = tail[end - 76 : end - 20]  # zip64: its end record, then its locator, then this
    if end >= 76 and tail[end - 20 : end - 16] == b"PK\x06\x07" and record[:4] == b"PK\x06\x06":
        members = int.from_bytes(record[32:40], "little")
        length = int.from_bytes(record[40:48], "little")
    return members, length


def unpack(zip_path, dest) -> list[str]:
    """Extract a submission zip into the new folder ``dest``; returns notes for the grader.

    Only the names a submission may hold are written (exercise modules and course
    notebooks, no links, no other paths), at most ``MAX_FILES`` of them, each at most
    ``max_bytes(name)`` and all together at most ``MAX_TOTAL_BYTES``, counted while
    inflating (a member too large by its header is not inflated at all). A file whose
    hash differs from the manifest is kept, with a note. Raises ``SubmissionError`` when
    the file is not a readable zip, larger than ``MAX_ZIP_BYTES`` or lists more than
    ``MAX_LISTED`` members.
    """
    dest, label = Path(dest), Path(zip_path).name
    try:
        size = os.stat(zip_path).st_size
        if size > MAX_ZIP_BYTES:
            raise SubmissionError(
                f"{label} is {size // 2**20} MB, more than a submission holds "
                f"(at most {MAX_ZIP_BYTES // 2**20} MB): not made by `ganlab submit`"
            )
        members, length = _directory(zip_path)
        if members > MAX_LISTED or length > MAX_LISTED * 256:  # 256: a name of a usual length
            raise SubmissionError(
                f"{label} lists {members:,} file(s) in {length // 1024:,} KB, more than a "
                f"submission holds (at most {MAX_LISTED:,}): not made by `ganlab submit`"
            )
        archive = zipfile.ZipFile(zip_path)
    except ZIP_ERRORS as err:
        raise SubmissionError(f"{label} is not a readable zip file ({err})") from err
    notes, skipped, links, written, tried, total = [], [], [], [], 0, 0
    with archive:
        listed = _manifest_files(archive, notes)
        dest.mkdir(parents=True)
        # A zip made by hand: Windows tools may write "\\" for "/", and a zipped folder puts
        # everything one level down. Both name the same files: graded, with a note.
        names = [info.filename.replace("\\", "/") for info in archive.infolist()]
        inner = _inner_folder(names)
        if inner:
            notes.append(f"the files are in {inner} inside the zip: graded from there")
        for info, name in zip(archive.infolist(), names):
            name = name[len(inner) :] if inner and name.startswith(inner) else name
            if name == MANIFEST or name.endswith("/"):  # (not is_dir(): it fails on a name "")
                continue
            if not _allowed(name) or tried == MAX_FILES:  # thousands of NN_* notebooks: the rest
                skipped.append(name)
                continue
            if (info.external_attr >> 16) & 0o170000 not in (0, 0o100000):  # a link's target
                links.append(name)  # is its data: written as a file, it would be graded as code
                continue
            tried += 1
            if (dest / name).exists():
                notes.append(f"{name} appears twice in the zip: the first copy is graded")
                continue
            room = min(max_bytes(name), MAX_TOTAL_BYTES - total)
            data = None  # too large by its header: not worth inflating
            if info.file_size <= room:
                try:
                    with archive.open(info) as f:
                        data = f.read(room + 1)  # whatever the header says: one byte past
                except ZIP_ERRORS as err:
                    why = "encrypted" if info.flag_bits & 1 else str(err) or type(err).__name__
                    notes.append(f"{name} could not be read from the zip ({why}): ignored")
                    continue
                total += len(data)  # kept or not: a zip bomb's members use up the total
            if data is None or len(data) > room:
                notes.append(f"{name} is too large ({limits_text()}): ignored")
                continue
            want = (listed or {}).get(name)
            if isinstance(want, dict) and want.get("sha256") != _digest(data)["sha256"]:
                notes.append(
                    f"{name} differs from the hash in manifest.json (edited after packing?)"
                )
            path = dest / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.append(name)
        if listed is not None:  # the zip was made by `ganlab submit`: is it still what it packed?
            absent = set(listed) - set(archive.namelist())
            if absent:
                notes.append(f"manifest.json lists files the zip lacks: {_shown(absent)}")
            added = [name for name in written if name not in listed]
            if added:
                notes.append(f"not in manifest.json (added after packing?): {_shown(added)}")
    if links:
        notes.append(f"{_shown(links)}: a link or special file in the zip, not a file: ignored")
    if skipped:
        notes.append(
            f"ignored {len(skipped)} file(s) a submission does not hold: {_shown(skipped)}"
        )
    return notes
