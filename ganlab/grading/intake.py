"""Step 1 of grading: what is in SUBMISSIONS_DIR, as one entry per student, each with notes.

* a sub-folder is one student's copy of the kit (names starting with "." too: they are
  graded, with a note, never skipped in silence);
* a ``*.zip`` is a hand-in made by ``ganlab submit``, unpacked with the bounded,
  name-checked ``ganlab.submission.unpack`` into the grader's work folder;
* anything else (links, FIFOs, device nodes, sockets, other files) is not opened: it is
  listed in ``ignored`` for the end-of-run summary.

``chosen`` keeps the entries named by ``--students`` (grading some students again).

Every read of a file a student controls goes through :func:`read_bounded`: regular
files only (no FIFO can make the grader wait, no device can feed it forever), no links,
at most ``limit`` bytes.
"""

import difflib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..submission import SubmissionError, unpack


@dataclass
class Entry:
    name: str  # the student, as in the CSV: the folder's name, or the zip's without .zip
    folder: Path  # their files, laid out as a copy of the kit
    notes: list = field(default_factory=list)


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
    """``"regular"``, ``"folder"``, ``"link"`` or ``"special"``, without following links."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "missing"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "folder"
    return "regular" if stat.S_ISREG(mode) else "special"


def entries(submissions, unpack_root):
    """``(entries sorted by name, ignored [(name, why)])`` for ``submissions``."""
    found, ignored = {}, []
    for path in sorted(Path(submissions).iterdir()):
        kind, name = file_kind(path), path.name
        if kind == "folder":
            entry = Entry(name, path)
            if name.startswith("."):
                entry.notes.append(f"the folder's name starts with '.' ({name}): graded anyway")
        elif kind == "regular" and name.lower().endswith(".zip"):
            stem = name[:-4]
            dest = Path(unpack_root, f"zip-{len(found):04d}")
            try:
                entry = Entry(stem, dest, [f"from {name}", *unpack(path, dest)])
            except (SubmissionError, OSError) as err:
                entry = Entry(stem, dest, [f"{name} could not be unpacked: {err}"])
                dest.mkdir(parents=True, exist_ok=True)
        else:
            why = {"link": "a link", "special": "not a regular file (FIFO, device, socket)"}
            ignored.append((name, why.get(kind, "not a folder or a .zip")))
            continue
        if entry.name in found:  # alice/ and alice.zip: grade both, under different names
            entry.notes.append(f"a second submission named {entry.name}: graded as {name}")
            entry.name = name
        found[entry.name] = entry
    return [found[n] for n in sorted(found)], ignored


def chosen(found, names):
    """The entries of ``found`` named in ``names`` (a regrade of some students), sorted.

    A name that matches no entry raises ``LookupError`` naming the closest one: a typo must not
    grade nobody and write an empty CSV.
    """
    by_name = {entry.name: entry for entry in found}

    def named(name):
        close = difflib.get_close_matches(name, by_name, n=1)
        return f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)

    unknown = [named(name) for name in dict.fromkeys(names) if name not in by_name]
    if unknown:
        raise LookupError(f"no submission named {', '.join(unknown)}")
    return [by_name[name] for name in sorted(set(names))]
