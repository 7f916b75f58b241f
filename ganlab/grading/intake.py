"""Step 1 of grading: what is in SUBMISSIONS_DIR, as one entry per student, each with notes.

* a sub-folder is one student's copy of the kit (names starting with "." too: they are
  graded, with a note, never skipped in silence);
* a ``*.zip`` is a hand-in made by ``ganlab submit``, unpacked with the bounded,
  name-checked ``ganlab.submission.unpack`` into the grader's work folder; so is the one zip
  in a folder that holds no ``ganlab/`` or ``notebooks/`` (a learning platform's "download
  all submissions" gives each student a folder with their upload in it). A zip that cannot
  be unpacked is a row with no files, flagged for review: it costs no other row;
* anything else (links, FIFOs, device nodes, sockets, other files) is not opened: it is
  listed in ``ignored`` for the end-of-run summary.

A row is named after its entry (a folder's name, a zip's without ``.zip``), except in the
layout of Moodle's "Download all submissions", where the name is cut to its readable and
stable part (``row_name``), and the entry keeps the student's full name and participant id
for Moodle's grading worksheet (``moodle_user``). Names are text from the start
(``as_text``): one that is not UTF-8 shows its bytes escaped in every output. ``chosen``
keeps the entries named by ``--students`` (grading some students again), by row name or
entry name, commas in names too. Two entries whose names differ only in case or Unicode
form (``Alice``, ``alice``) are flagged: a gradebook or a case-insensitive disk may take
them for one student.

Every read of a file a student controls goes through :func:`read_bounded`: regular
files only (no FIFO can make the grader wait, no device can feed it forever), no links,
at most ``limit`` bytes.
"""

import difflib
import itertools
import os
import re
import shutil
import stat
import sys
import traceback
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..submission import SubmissionError, unpack

# Moodle's "Download all submissions": "<full name>_<participant id>_assignsubmission_<plugin>_"
# is a folder (with "download in folders"), or the prefix of each uploaded file's name.
_MOODLE = re.compile(r"(?P<who>.+?)_(?P<id>\d+)_assign(?:submission|feedback)_[a-z]+_.*", re.S)


@dataclass
class Entry:
    name: str  # the student, as in the CSV (``row_name``)
    folder: Path  # their files, laid out as a copy of the kit
    notes: list = field(default_factory=list)
    flags: list = field(default_factory=list)  # for a human, listed at the end of the run
    source: str = ""  # its name in SUBMISSIONS_DIR, when not ``name`` (``--students`` takes both)
    moodle: tuple = ()  # (full name, participant id) in Moodle's layout (``moodle_user``)


# A byte of a name that is not UTF-8, as Python holds it in a str (``surrogateescape``).
_BYTE = re.compile("[\udc80-\udcff]")


def as_text(value):
    """``str(value)`` that UTF-8 can hold, never a UnicodeEncodeError for the run. A file name
    that is not UTF-8 (a zip unpacked from Windows: ``caf\\xe9``) is shown with its bytes
    escaped; any other lone surrogate (a student's string) as ``\\ud800``."""
    shown = _BYTE.sub(lambda byte: f"\\x{ord(byte[0]) - 0xDC00:02x}", str(value))
    return shown.encode("utf-8", "backslashreplace").decode("utf-8")


def moodle_user(name):
    """``(full name, participant id)`` in an entry named in the layout of Moodle's "Download all
    submissions", ``Jane Doe_12345_assignsubmission_file_`` (or, without folders, with the
    upload's own name after it): ``("Jane Doe", "12345")``; else ``()``. The participant id is
    the same in every download of the assignment, and is how Moodle's grading worksheet names
    the student ("Participant 12345")."""
    found = _MOODLE.fullmatch(name)
    return (found["who"], found["id"]) if found else ()


def row_name(name):
    """The student's row for the entry ``name`` (a folder's name, a zip's without ``.zip``).

    In Moodle's layout, ``Jane Doe_12345``: the name is what a person reads, the participant id
    keeps two students of one name apart; the rest names Moodle's plugin and the student's
    file, noise that changes with the upload. Any other name is the row's as it is.
    """
    user = moodle_user(name)
    return f"{user[0]}_{user[1]}" if user else name


def read_bounded(path, limit):
    """The bytes of the regular file ``path`` if it holds at most ``limit``; else None.

    Opened without following a final link and without blocking (a FIFO or a device is
    refused before any read), then checked with ``fstat`` on the open file itself.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(2**20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks) if size <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def file_kind(path):
    """``"regular"``, ``"folder"``, ``"link"``, ``"special"``, ``"missing"`` or ``"unreadable"``
    (a folder on the way denies access), without following links."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError:  # not "missing": the student's file may well be there
        return "unreadable"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "folder"
    return "regular" if stat.S_ISREG(mode) else "special"


def _unzipped(name, zip_path, dest, label):
    """The entry of the zip ``zip_path``, unpacked into ``dest``; never raises: a zip that
    cannot be unpacked is an entry with no files, flagged (the zip stays where it was)."""
    try:
        entry = Entry(name, dest, [f"from {label}", *unpack(zip_path, dest)])
        if not any(dest.iterdir()):  # a zero for how it was packed: a person should look
            entry.flags.append(f"{label} holds no file a submission holds (grade it by hand?)")
        return entry
    except (SubmissionError, OSError) as err:
        why = str(err)
    except Exception as err:  # a grader bug must cost this row, not the run
        traceback.print_exc(file=sys.stderr)
        why = f"grading error: {type(err).__name__}: {err}"
    shutil.rmtree(dest, ignore_errors=True)  # nothing half unpacked is graded
    dest.mkdir(parents=True)
    note = f"{label} could not be unpacked: {why}"
    return Entry(name, dest, [note], [f"{label} could not be unpacked (grade it by hand?)"])


def _only_zip(folder):
    """The one ``*.zip`` in ``folder`` when it holds no ``ganlab/`` or ``notebooks/``, else None."""
    if any(file_kind(folder / part) != "missing" for part in ("ganlab", "notebooks")):
        return None
    try:  # a few entries are enough to tell: a platform's folder holds the upload and little else
        first = list(itertools.islice(folder.iterdir(), 100))
    except OSError:
        return None
    zips = [p for p in first if p.name.lower().endswith(".zip") and file_kind(p) == "regular"]
    return zips[0] if len(zips) == 1 else None


def _locked(folder):
    """A flag when the grader may not read ``folder``, its ``ganlab/`` or ``notebooks/``: the
    files there would count as missing, the student's work as not done."""
    parts = [folder, folder / "ganlab", folder / "notebooks"]
    locked = [
        str(p.relative_to(folder.parent))
        for p in parts
        if file_kind(p) in ("folder", "unreadable") and not os.access(p, os.R_OK | os.X_OK)
    ]
    return [f"the grader may not read {', '.join(locked)}: fix the permissions"] if locked else []


def entries(submissions, unpack_root):
    """``(entries sorted by name, ignored [(name, why)])`` for ``submissions``."""
    found, ignored = {}, []
    for path in sorted(Path(submissions).iterdir()):
        kind, name = file_kind(path), as_text(path.name)
        dest = Path(unpack_root, f"zip-{len(found):04d}")
        if kind == "folder":
            inner = _only_zip(path)
            if inner is None:
                entry = Entry(row_name(name), path, flags=_locked(path))
                if entry.name != name:  # a zip's note names its folder already
                    entry.notes.append(f"from {name}/")
            else:
                entry = _unzipped(row_name(name), inner, dest, f"{name}/{as_text(inner.name)}")
            if name.startswith("."):
                entry.notes.append(f"the folder's name starts with '.' ({name}): graded anyway")
        elif kind == "regular" and name.lower().endswith(".zip"):
            entry = _unzipped(row_name(name[:-4] or name), path, dest, name)
        else:
            why = {"link": "a link", "special": "not a regular file (FIFO, device, socket)"}
            ignored.append((name, why.get(kind, "not a folder or a .zip")))
            continue
        if entry.name in found:  # alice/ and alice.zip: grade both, under different names
            entry.notes.append(f"a second submission named {entry.name}: graded as {name}")
            entry.flags.append(f"two submissions from {entry.name}? decide which one counts")
            entry.name = name
        entry.source = path.name if path.name != entry.name else ""  # as typed: --students
        entry.moodle = moodle_user(name)
        found[entry.name] = entry
    _flag_lookalikes(found)
    return [found[n] for n in sorted(found)], ignored


def _flag_lookalikes(found):
    """Flag names that differ only in case or Unicode form (Alice, alice; José in NFC and NFD)."""
    groups = {}
    for name in found:
        groups.setdefault(unicodedata.normalize("NFC", name).casefold(), []).append(name)
    for names in (names for names in groups.values() if len(names) > 1):
        for name in names:
            found[name].flags.append(
                f"{' and '.join(map(repr, names))} differ only in case or Unicode form: one "
                "student? (a gradebook or a case-insensitive disk takes them for one)"
            )


def _names(values, known):
    """The names in ``--students`` values: each a name, or names joined by commas. A name that
    holds commas (``Doe, Jane``) is found as the longest run of comma-joined parts that is one
    of ``known``; any other part is a name of its own, stripped of spaces."""
    names = []
    for value in values:
        parts, i = value.split(","), 0
        while i < len(parts):
            runs = (",".join(parts[i:j]) for j in range(len(parts), i, -1))
            run = next((r for r in runs if r in known or r.strip() in known), None)
            name = (run if run in known else run.strip()) if run else parts[i].strip()
            i += run.count(",") + 1 if run else 1
            if name:
                names.append(name)
    return names


def chosen(found, values):
    """The entries of ``found`` named in ``values`` (``--students``: a regrade of some students),
    sorted. A name is a row's name or the entry's own (``Jane Doe_12345`` or Moodle's folder
    name); values split at commas except inside a name (``_names``).

    A name that matches no entry raises ``LookupError`` naming the closest one: a typo must not
    grade nobody and write an empty CSV.
    """
    by_name = {entry.name: entry for entry in found}
    by_name.update({entry.source: entry for entry in found if entry.source not in ("", *by_name)})
    names = _names(values, by_name)

    def named(name):
        close = difflib.get_close_matches(name, by_name, n=1)
        return f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)

    unknown = [named(name) for name in dict.fromkeys(names) if name not in by_name]
    if unknown:
        raise LookupError(f"no submission named {', '.join(unknown)}")
    picked = {by_name[name].name: by_name[name] for name in names}
    return [picked[name] for name in sorted(picked)]
