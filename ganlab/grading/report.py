"""Step 5 of grading, the outputs: the per-check CSV, Moodle's grading worksheet, one Markdown
feedback file per student, and the end-of-run summary of what a human should look at.

Everything a student's code could have influenced (hints, notes) is cut to a bounded
length and has the grader's own paths replaced (``Redactor``) before it is written; all
text is made UTF-8 as names were at intake (``intake.as_text``).
"""

import csv
import io
import os
import re
import unicodedata
from collections import Counter
from itertools import groupby
from pathlib import Path

from .intake import as_text

MAX_HINT = 500  # characters of one hint in the feedback
MAX_NOTES = 2000  # characters of a row's notes in the CSV
MAX_FEEDBACK = 64 * 1024  # characters of one feedback file
# Moodle's offline grading worksheet, as the assignment's "Upload grading worksheet" reads it
# (mod/assign/feedback/offline/importgradeslib.php): columns found by their header, in English
# here; a row's student by "Identifier", "Participant <id>", the id of Moodle's folder names
# ("Jane Doe_12345_assignsubmission_file_"); "Grade" and "Last modified (grade)" are required,
# "Feedback comments" is read when that feedback type is on. "Full name" is for a person.
MOODLE_HEADER = ("Identifier", "Full name", "Grade", "Last modified (grade)", "Feedback comments")


class Redactor:
    """Replaces the grader's paths (its checkout, work folders, outputs) in text from a run."""

    def __init__(self, paths):
        found = {str(p) for p in paths if p} | {os.path.realpath(p) for p in paths if p}
        self.paths = sorted((p for p in found if len(p) > 1), key=len, reverse=True)

    def __call__(self, text):
        for path in self.paths:
            text = text.replace(path, "<grader>")
        return text


# Control characters, newlines among them: in a student's file name or error they would forge
# a line of their own (a second "Total" in the feedback, a row of another student in the CSV).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _cut(text, limit):
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clean(text, limit):
    """``text`` on one line, cut to ``limit``."""
    return _cut(_CONTROL.sub(" ", as_text(text)), limit)


def _shown(name):
    """A student's entry name on one line, each control character a visible ``?``."""
    return _CONTROL.sub("?", as_text(name))


def _cell(name):
    """A CSV cell a spreadsheet will not run: a name like ``=HYPERLINK(...)`` is a formula to
    Excel and LibreOffice; a leading ``'`` makes it text (OWASP's advice for CSV injection)."""
    name = _shown(name)
    return "'" + name if name[:1] in ("=", "+", "-", "@") else name


def _notes(result):
    return [*result.notes, *result.flags]


def csv_text(results, checks, redact=str):
    """``student, <check id>..., total, max, notes``; rows sorted by student name."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", *[c.cell_id for c in checks], "total", "max", "notes"])
    maximum = sum(c.points for c in checks)
    for result in sorted(results, key=lambda r: r.name):
        earned = {r.check.cell_id: r.earned for r in result.checks}
        writer.writerow(
            [
                _cell(result.name),
                *[earned.get(c.cell_id, 0) for c in checks],
                result.total,
                maximum,
                _clean(redact("; ".join(_notes(result))), MAX_NOTES),
            ]
        )
    return out.getvalue()


def shared_ids(results, users):
    """The participant ids of more than one row (Moodle's folders for a file and for an online
    text, say). Moodle would import one of them, maybe the 0 of the folder with no code: none
    of them gets an id in the worksheet, and a person decides which counts."""
    rows_of = Counter(users[r.name][1] for r in results if r.name in users)
    return sorted(participant for participant, rows in rows_of.items() if rows > 1)


def moodle_csv(results, checks, users, graded_at):
    """Moodle's grading worksheet (``MOODLE_HEADER``), one row per student, sorted by name.

    ``users``: ``{row name: (full name, participant id)}`` (``intake.Entry.moodle``); a row
    without one, or with one of ``shared_ids``, has no Identifier, and Moodle skips it.
    ``graded_at`` (a ``datetime`` with its time zone) is each grade's "Last modified": Moodle
    keeps a grade changed there since then.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MOODLE_HEADER)
    maximum = sum(c.points for c in checks)
    shared = shared_ids(results, users)
    for result in sorted(results, key=lambda r: r.name):
        full_name, participant = users.get(result.name, (result.name, ""))
        participant = "" if participant in shared else participant
        missed = [r.check.cell_id for r in result.checks if not r.passed]
        summary = f"{result.total}/{maximum} points" + (
            f"; not passed: {', '.join(missed)}" if missed else ""
        )
        writer.writerow(
            [
                f"Participant {participant}" if participant else "",
                _cell(full_name),  # as in grades.csv: "=HYPERLINK(...)" is no formula here either
                result.total,
                graded_at.isoformat(timespec="seconds"),
                _clean(summary, MAX_NOTES),
            ]
        )
    return out.getvalue()


def feedback(result, redact=str):
    """Markdown: the total, the notes, then every check with its points and hint."""
    maximum = sum(r.check.points for r in result.checks)
    lines = [
        f"# ganlab feedback: {_shown(result.name)}",  # a newline in a name forges no line
        "",
        f"**Total: {result.total} / {maximum} points**",
        "",
    ]
    if _notes(result):
        lines += ["Notes:", *[f"- {_clean(redact(n), MAX_HINT)}" for n in _notes(result)], ""]
    for notebook, group in groupby(result.checks, key=lambda r: r.check.notebook):
        lines += [f"## {notebook}", ""]
        for r in group:
            unit = "point" if r.check.points == 1 else "points"
            mark = "\u2714" if r.passed else "\u2718"
            line = f"- {mark} `{r.check.cell_id}`: {r.earned}/{r.check.points} {unit}"
            hint = _clean(redact(" ".join(r.hint.split())), MAX_HINT)
            lines.append(line + (f": {hint}" if not r.passed and r.hint else ""))
        lines.append("")
    return _cut("\n".join(lines), MAX_FEEDBACK)  # each line made by _clean or _shown


def write_atomic(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8", errors="backslashreplace")  # never fails the run
    os.replace(partial, path)


MAX_FILE_NAME = 200  # bytes of a feedback file's stem: disks take 255, with ".md.partial" too


def feedback_names(names):
    """``{row name: feedback file name}``: each name on one line and cut to ``MAX_FILE_NAME``
    bytes (a long folder name failed the whole feedback), and no two alike in case or Unicode
    form (``Alice``, ``alice``: one file on a case-insensitive disk), which get ``~2``, ``~3``."""
    files, taken = {}, set()
    for name in sorted(names):
        stem = _shown(name).encode()[:MAX_FILE_NAME].decode("utf-8", "ignore")
        candidate, n = stem, 1
        while unicodedata.normalize("NFC", candidate).casefold() in taken:
            n += 1
            candidate = f"{stem}~{n}"
        taken.add(unicodedata.normalize("NFC", candidate).casefold())
        files[name] = f"{candidate}.md"
    return files


def write_feedback(results, folder, redact=str):
    folder.mkdir(parents=True, exist_ok=True)
    files = feedback_names([r.name for r in results])
    for result in results:
        write_atomic(folder / files[result.name], feedback(result, redact))


def summary(results, ignored, isolation_lines):
    """The end-of-run lines: isolation, entries not graded, then every row to review."""
    lines = list(isolation_lines)
    for name, why in ignored:
        lines.append(f"not graded: {_shown(name)}: {why}")
    review = [(_shown(r.name), r.flags) for r in results if r.flags]
    if review:
        lines.append(f"to review ({len(review)}):")
        lines += [f"  {name}: {_shown('; '.join(flags))}" for name, flags in review]
    return lines
