"""Step 2 of grading, the notebooks: what one submission is graded on, from both sides' files.

* The canonical notebooks are the instructor's ``notebooks/*.ipynb``. From the
  student's copy of each notebook we take only the exercise cells (ids ``ex-N-M``),
  found by cell id, else by the marker line the kit writes into each of them
  (``# ganlab:ex-N-M``), else the exercise is reported missing: deleting or editing a
  check cell in the student copy changes nothing, and saved outputs are never read.
* Limits: a student file is read only if it is a regular file within the size limit
  ``ganlab submit`` enforces (``submission.max_bytes``, one fact for zips and folders),
  a notebook holds at most ``submission.MAX_CELLS`` cells, an exercise cell ``MAX_CELL_CHARS``.
* The sandbox gets the instructor's ``ganlab`` package with the student's four
  exercise modules dropped in; a missing module stays the stub (not implemented). Its
  ``checks/_reference.py`` is the student copy's (``ANSWER_FREE``), which holds no answers:
  the grader hands each reference to a run only once that exercise's check has run there
  (``graded_references``; ``execute`` and ``judge``).

Everything here only reads and parses student files (``ast``, ``json``); nothing
the student wrote is executed in the grader's process. The cost of parsing is bounded by
the size limits: the worst notebook of 20 MB (millions of empty JSON objects, deeply nested
ones end in a ``RecursionError``, a note) takes about 0.5 GB and 5 s of the grader while
it is parsed, and only its code cells' sources are kept.
"""

import ast
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .. import submission
from .._solutions import EXERCISE_MODULES
from ..checks import _core, _reference
from ..instructor import ANSWER_FREE_IN_THE_KIT, MARKER_RE
from ..submission import student_cells, syntax_error  # the rules submit checks too
from .deps import needed_cells, strip_magics
from .intake import file_kind, read_bounded

# What the grader parses of a submission, at most; the files' sizes: ``submission.max_bytes``.
MAX_CANONICAL_BYTES = 50 * 2**20
MAX_CELL_CHARS = 200_000  # one exercise cell's source
_POINTS = re.compile(r"points-(\d+)")
# Code that has no business in an exercise; a submission using it is flagged for review.
RED_FLAGS = {
    "ganlab.checks": r"ganlab\.checks|from ganlab import checks|\bchecks\.\w+\s*=",
    "ctypes or native memory": r"\bctypes\b|_ctypes|\bcffi\b|\bcdll\b|\bCDLL\b|pythonapi"
    r"|from_address|memmove|/proc/self/mem|memfd",
    "frame inspection": r"_getframe|\bf_back\b|\bf_globals\b|\bf_locals\b|\btb_frame\b"
    r"|\bgi_frame\b|\binspect\.(stack|currentframe|getouterframes)|__traceback__",
    "gc": r"\bgc\b",
    "process creation or signals": r"\bsubprocess\b|_posixsubprocess|fork_exec|posix_spawn"
    r"|\bfork\b|\bos\.exec|\bos\.spawn|os\.system|\.popen\b|\bPopen\b|\bpty\b|multiprocessing"
    r"|pidfd|\bos\.kill|\bkillpg\b|\bsignal\.",  # `.popen`: not a folder named popen-gw0
    "audit hooks": r"addaudithook|sys\.audit",
    "os._exit": r"os\._exit",
    "special files or other databases": r"mkfifo|mknod|\bATTACH\b|sqlite3",
    "files outside the exercise": r"solutions/|grades\.csv|/proc/|from_file|\.\./",
    "__globals__": r"__globals__|__closure__|__code__|__builtins__",
    "dynamic code": r"\bexec\(|\beval\(|\bcompile\(|__import__|importlib|base64|codecs\.decode",
    # A cell's `!cmd`, `x = !cmd`, `%%bash` start processes; `%run`, `%load` run other files.
    "shell escapes or magics": r"(?m)^[ \t]*(?:\w[\w., ]*=[ \t]*)?(?:!|%%?(?:bash|sh|script|system"
    r"|sx|sc|run|load|loadpy|pycat|writefile|file|alias|macro)\b)"
    r"|get_ipython|run_line_magic|run_cell_magic",
    # checks/_reference.py: the sandbox's copy holds no answers, but reaching for it is suspect
    "the reference solutions": r"_solutions|GANLAB_SOLUTIONS|_reference\b",
}


# The package's checks/_reference.py (answers to init_dcgan_weights, upsample_block, the losses,
# lerp), and the answer-free version a student copy gets in its place (``export-student``),
# which every sandbox gets too, over every copy of the package it can see (``sandbox.wrap``).
REFERENCE = Path("checks", "_reference.py")
ANSWER_FREE = Path(*ANSWER_FREE_IN_THE_KIT.parts[1:])  # in the package, installed ones too


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
    """``[(name, notebook)]`` of ``repo/notebooks``; ``only``: name prefixes such as ``["02", "04"]``.

    A notebook that cannot be read, or whose code cells lack ids, is a ``GradingError``
    naming the file: the instructor's copy is broken, nobody can be graded on it.
    """
    paths = sorted(Path(repo, "notebooks").glob("*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in only)]
    if not paths:
        raise GradingError(
            f"no notebooks to grade in {Path(repo, 'notebooks')}"
            + (f" matching {','.join(only)}" if only else "")
        )
    books = []
    for path in paths:
        data = read_bounded(path, MAX_CANONICAL_BYTES)
        if data is None:
            raise GradingError(
                f"{path}: not a regular file of at most {MAX_CANONICAL_BYTES // 2**20} MB"
            )
        try:
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            nbformat.validate(nb)
        except Exception as err:  # JSON, encoding, schema: all mean the same to the grader
            raise GradingError(
                f"{path} is not a valid notebook ({type(err).__name__}: {str(err)[:200]}); "
                "restore it (git checkout) or re-derive it (python -m ganlab.instructor stubs)"
            ) from None
        if any(c.cell_type == "code" and not c.get("id") for c in nb.cells):
            raise GradingError(f"{path}: a code cell has no id (re-derive the notebooks)")
        books.append((path.name, nb))
    return books


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


def graded_references(nb):
    """``{check cell id: [names]}``: the references (``checks/_reference.py``) that each check
    cell of ``nb`` grades, those its call passes by name (``checks.check_init(init_dcgan_weights)``).

    A reference is handed to a run only after the check that grades it has run there: no
    student's code can take the answer to an exercise before that exercise is graded.
    """
    answers = _core.answers(_reference)  # in a student copy, only bce: no check grades that
    found = {}
    for cell in nb.cells:
        call = check_call(cell.source) if "graded" in cell.metadata.get("tags", []) else None
        names = [a.id for a in call[0].value.args if isinstance(a, ast.Name)] if call else []
        if any(name in answers for name in names):
            found[cell.id] = [name for name in names if name in answers]
    return found


def answer_free(package_dir):
    """The student copy's ``checks/_reference.py`` for the package ``package_dir``, or None where
    the package's own holds no answers (a student copy); a GradingError where it would leak."""
    path = Path(package_dir) / ANSWER_FREE
    if path.is_file():
        return path
    if not any(getattr(f, "students_own", False) for f in vars(_reference).values()):
        raise GradingError(f"no {ANSWER_FREE}: the sandboxes would hold the checks' answers")
    return None


def _read_student_file(folder, rel, notes, then):
    """Text of ``folder/rel``, or None with a note ending in ``then`` (what that costs): a
    missing file, a link, a special file and a file larger than ``ganlab submit`` hands in
    (``submission.max_bytes``: the same limit for a folder as for a zip) are not read."""
    path = Path(folder, rel)
    kind = file_kind(path)
    if kind == "missing":
        notes.append(f"{rel} missing: {then}")
        return None
    unreadable = f"{rel} cannot be read (permission denied): {then}"  # not "missing": it's there
    if kind == "unreadable":
        notes.append(unreadable)
        return None
    real, root = os.path.realpath(path.parent), os.path.realpath(folder)
    if kind != "regular" or not (real == root or real.startswith(root + os.sep)):
        notes.append(f"{rel} is a link or not a regular file: {then}")
        return None
    data = read_bounded(path, submission.max_bytes(rel))
    if data is None:
        too_large = f"{rel} is too large ({submission.limits_text()}): {then}"
        notes.append(too_large if os.access(path, os.R_OK) else unreadable)
        return None
    # utf-8-sig: a BOM (Windows editors, some notebook tools) is an encoding mark, not code.
    return data.decode("utf-8-sig", errors="replace")


def load_submission(folder, notebook_names, name=None):
    """Read a student's copy; never raises for a malformed one (the notes say what was wrong)."""
    folder = Path(folder)
    sub = Submission(name or folder.name, folder)
    try:
        if file_kind(folder) != "folder" or not any(folder.iterdir()):
            sub.notes.append("empty submission")
    except OSError as err:  # a folder the grader may not list: its files are read one by one
        sub.notes.append(f"the submission's folder cannot be listed ({err.strerror})")
    for module in EXERCISE_MODULES:
        text = _read_student_file(
            folder, f"ganlab/{module}", sub.notes, "graded as not implemented"
        )
        if text is not None:
            problem = syntax_error(text, f"ganlab/{module}")
            sub.notes += [problem] if problem else []
        sub.modules[module] = text
    for nb_name in notebook_names:
        rel = f"notebooks/{nb_name}"
        copy = f"notebooks/{submission.COLAB_COPY}{nb_name}"  # Colab's "Save a copy in Drive"
        if file_kind(folder / rel) == "missing" and file_kind(folder / copy) != "missing":
            rel = copy  # taken as `ganlab submit` takes it, so a folder grades as its zip would
            sub.notes.append(f"{rel} graded as {nb_name}")
        text = _read_student_file(folder, rel, sub.notes, "its exercise cells count as not done")
        cells = None
        if text is not None:
            try:
                cells = student_cells(text)
            except (ValueError, RecursionError, MemoryError) as err:
                sub.notes.append(
                    f"{rel} is not a valid notebook ({type(err).__name__}): "
                    "its exercise cells count as not done"
                )
        sub.notebooks[nb_name] = cells
    return sub


def splice(canonical, student, name):
    """The canonical notebook with the student's exercise cells; returns ``(notebook, notes)``.

    Each exercise cell is found by its id, else by its marker line (``ganlab:ex-N-M``, which
    the kit writes into every exercise cell), else it is missing and says so. A duplicate
    of a cell keeps the marker but gets a new id: the id decides, then the last marked copy.
    """
    nb = nbformat.from_dict(canonical)  # a deep copy
    notes = []
    if student is None:
        return nb, notes
    by_id, by_marker = {}, {}
    for cell_id, source in student:
        by_id.setdefault(cell_id, source)
        for marked in MARKER_RE.findall(source[:2000]):
            by_marker[marked] = source
    for cell in nb.cells:
        cell_id = str(cell.get("id", ""))
        if cell.cell_type != "code" or not cell_id.startswith("ex-"):
            continue
        source = by_id.get(cell_id)
        if source is None:
            source = by_marker.get(cell_id)
        if source is None:
            notes.append(
                f"{name}: exercise {cell_id[3:].replace('-', '.')} missing (no cell with id "
                f"{cell_id} or the line '# ganlab:{cell_id}'): counts as not done"
            )
            continue
        if len(source) > MAX_CELL_CHARS:
            notes.append(
                f"{name}: exercise {cell_id[3:].replace('-', '.')} is longer than "
                f"{MAX_CELL_CHARS // 1000} k characters: counts as not done"
            )
            continue
        cell.source = source
    return nb, notes


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
    free = answer_free(package_dir)
    if free is not None:  # the grader's copy holds answers: never at rest in a sandbox
        shutil.copyfile(free, dest / "ganlab" / REFERENCE)
    for module, text in sub.modules.items():
        if text is not None:
            (dest / "ganlab" / module).write_text(text, encoding="utf-8")
    for name, nb in spliced.items():
        nbformat.write(nb, str(dest / name))
    for folder in ("home", "tmp", "runs"):
        (dest / folder).mkdir()
    return dest
