"""What one submission is graded on, built from the instructor's files and the student's.

* The canonical notebooks are the instructor's ``notebooks/*.ipynb``. From the
  student's copy of each notebook we take only the exercise cells (ids ``ex-N-M``),
  found by cell id, else at the same position among the code cells (nbgrader's
  approach): deleting or editing a check cell in the student copy changes nothing.
* The sandbox gets the instructor's ``ganlab`` package with the student's four
  exercise modules dropped in; a missing module stays the stub (not implemented).

Everything here only reads and parses student files (``ast``, ``json``); nothing
the student wrote is executed in the grader's process.
"""

import ast
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .._solutions import EXERCISE_MODULES
from .deps import needed_cells, strip_magics

MAX_FILE_BYTES = 20 * 2**20
_POINTS = re.compile(r"points-(\d+)")
# Code that has no business in an exercise; a submission using it is flagged for review.
RED_FLAGS = {
    "ganlab.checks": r"ganlab\.checks|from ganlab import checks|\bchecks\.\w+\s*=",
    "ctypes": r"\bctypes\b",
    "frame inspection": r"_getframe|\bf_back\b|\bf_globals\b|\btb_frame\b",
    "gc": r"\bgc\.get_",
    "audit hooks": r"addaudithook",
    "os._exit": r"os\._exit",
    "solutions/": r"solutions/",
    "grades": r"grades\.csv",
    "__globals__": r"__globals__|__closure__",
}


class GradingError(Exception):
    """The instructor's side is unusable (no notebooks, a check cell without points)."""


@dataclass(frozen=True)
class Check:
    notebook: str
    cell_id: str
    points: int


@dataclass
class Submission:
    name: str
    folder: Path
    modules: dict = field(default_factory=dict)  # file name -> source text, or None (use the stub)
    notebooks: dict = field(
        default_factory=dict
    )  # notebook name -> NotebookNode, or None (missing/invalid)
    notes: list = field(default_factory=list)


def points_of(tags):
    """The K of the single ``points-K`` tag, or None when there is none (or more than one)."""
    found = [int(m.group(1)) for m in map(_POINTS.fullmatch, tags) if m]
    return found[0] if len(found) == 1 else None


def canonical_notebooks(repo, only=None):
    """``[(name, notebook)]`` of ``repo/notebooks``; ``only``: name prefixes such as ``["02", "04"]``."""
    paths = sorted(Path(repo, "notebooks").glob("*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in only)]
    if not paths:
        raise GradingError(
            f"no notebooks to grade in {Path(repo, 'notebooks')}"
            + (f" matching {','.join(only)}" if only else "")
        )
    return [(p.name, nbformat.read(str(p), as_version=4)) for p in paths]


def checks_of(name, nb):
    checks = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and "graded" in tags:
            points = points_of(tags)
            if points is None:
                raise GradingError(
                    f"{name}: graded cell {cell.get('id')} needs exactly one points-K tag"
                )
            checks.append(Check(name, cell.id, points))
    return checks


def _read_student_file(folder, rel, notes):
    """Text of ``folder/rel``, or None with a note; refuses links and files that lead outside."""
    path = folder / rel
    if not path.exists() and not path.is_symlink():
        return None
    real, root = os.path.realpath(path), os.path.realpath(folder)
    if path.is_symlink() or not real.startswith(root + os.sep) or not path.is_file():
        notes.append(f"{rel} is a link or not a regular file: ignored")
        return None
    if path.stat().st_size > MAX_FILE_BYTES:
        notes.append(f"{rel} is larger than {MAX_FILE_BYTES // 2**20} MB: ignored")
        return None
    return path.read_bytes().decode("utf-8", errors="replace")


def load_submission(folder, notebook_names):
    """Read a student's copy; never raises for a malformed one (the notes say what was wrong)."""
    folder = Path(folder)
    sub = Submission(folder.name, folder)
    if not any(folder.iterdir()):
        sub.notes.append("empty submission")
    for module in EXERCISE_MODULES:
        text = _read_student_file(folder, f"ganlab/{module}", sub.notes)
        if text is None:
            sub.notes.append(f"ganlab/{module} missing: graded as not implemented")
        else:
            try:
                compile(text, f"ganlab/{module}", "exec", dont_inherit=True)
            except (SyntaxError, ValueError) as err:
                sub.notes.append(
                    f"ganlab/{module} has a syntax error (line {getattr(err, 'lineno', '?')}): "
                    f"{getattr(err, 'msg', err)}"
                )
        sub.modules[module] = text
    for name in notebook_names:
        text = _read_student_file(folder, f"notebooks/{name}", sub.notes)
        nb = None
        if text is None:
            sub.notes.append(f"notebooks/{name} missing: its exercise cells count as not done")
        else:
            try:
                nb = nbformat.reads(text, as_version=4)
                [
                    (c.cell_type, c.get("source", "")) for c in nb.cells
                ]  # the fields we use must exist
            except Exception as err:  # not JSON, not a notebook, ...
                nb = None
                sub.notes.append(
                    f"notebooks/{name} is not a valid notebook ({type(err).__name__}): "
                    "its exercise cells count as not done"
                )
        sub.notebooks[name] = nb
    return sub


def splice(canonical, student, name):
    """The canonical notebook with the student's exercise cells; returns ``(notebook, notes)``."""
    nb = nbformat.from_dict(canonical)  # a deep copy
    notes = []

    def code(book):
        return [c for c in book.cells if c.cell_type == "code"]

    student_code = code(student) if student is not None else []
    by_id = {c.get("id"): c for c in student_code if c.get("id")}
    canonical_ids = {c.get("id") for c in nb.cells}
    for index, cell in enumerate(code(nb)):
        if not str(cell.get("id", "")).startswith("ex-"):
            continue
        mine = by_id.get(cell.id)
        if mine is None and student is not None and index < len(student_code):
            candidate = student_code[index]  # fallback: same position, if it is no other known cell
            if candidate.get("id") not in canonical_ids and "graded" not in candidate.get(
                "metadata", {}
            ).get("tags", []):
                mine = candidate
                notes.append(f"notebooks/{name}: exercise {cell.id} matched by position")
        if mine is None:
            if student is not None:
                notes.append(
                    f"notebooks/{name}: exercise cell {cell.id} not found: counts as not done"
                )
            continue
        source = mine.get("source", "")
        cell.source = "".join(source) if isinstance(source, list) else str(source)
    return nb, notes


def split_check_cells(nb):
    """Cut each graded cell after its ``checks.check_*(...)`` call; the rest becomes ``<id>-after``.

    A check cell often goes on to show something (a grid of samples); an error there
    must not cost the points the check itself earned.
    """
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if cell.cell_type != "code" or "graded" not in cell.metadata.get("tags", []):
            continue
        call = check_call(cell.source)
        lines = cell.source.splitlines(keepends=True)
        if call is None or call[0].end_lineno >= len(lines):
            continue
        rest = "".join(lines[call[0].end_lineno :])
        cell.source = "".join(lines[: call[0].end_lineno]).rstrip("\n")
        if rest.strip():
            cells.append(nbformat.v4.new_code_cell(rest.strip("\n"), id=f"{cell.id}-after"))
    nb.cells = cells
    return nb


def check_call(source):
    """``(statement, function name)`` of the first top-level ``checks.check_*(...)`` call, or None."""
    try:
        tree = ast.parse(strip_magics(source))
    except SyntaxError:
        return None
    for stmt in tree.body:
        call = getattr(stmt, "value", None) if isinstance(stmt, ast.Expr) else None
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "checks"
            and call.func.attr.startswith("check_")
        ):
            return stmt, call.func.attr
    return None


def prune(nb):
    """Drop the code cells no check needs (plots, demos; see ``deps``); exercise cells always stay."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    graded = {i for i, c in enumerate(code) if "graded" in c.metadata.get("tags", [])}
    exercises = {i for i, c in enumerate(code) if str(c.get("id", "")).startswith("ex-")}
    keep = {id(code[i]) for i in needed_cells([c.source for c in code], graded, exercises)}
    nb.cells = [c for c in nb.cells if c.cell_type != "code" or id(c) in keep]
    return nb


def red_flags(sub, spliced):
    """Notes naming suspicious APIs in the student's code (modules and exercise cells)."""
    texts = [t for t in sub.modules.values() if t]
    texts += [
        c.source
        for nb in spliced.values()
        for c in nb.cells
        if str(c.get("id", "")).startswith("ex-")
    ]
    found = [
        label for label, pattern in RED_FLAGS.items() if any(re.search(pattern, t) for t in texts)
    ]
    return [f"flagged for review: the code uses {', '.join(found)}"] if found else []


def build_sandbox(dest, package_dir, sub, spliced):
    """Write the sandbox: ``ganlab/`` (instructor's, plus the student's modules) and the notebooks."""
    dest = Path(dest)
    shutil.copytree(
        package_dir, dest / "ganlab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    for module, text in sub.modules.items():
        if text is not None:
            (dest / "ganlab" / module).write_text(text, encoding="utf-8")
    for name, nb in spliced.items():
        nbformat.write(nb, str(dest / name))
    for folder in ("home", "tmp", "runs"):
        (dest / folder).mkdir()
    return dest
