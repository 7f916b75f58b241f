"""Instructor tools: derive the student version from the one source of each solution.

The reference solutions are the only hand-edited copy of every exercise:

    solutions/ganlab/<module>.py    exercise modules, solution code between markers
    solutions/notebooks/*.ipynb     every notebook, exercise cells with markers

A solution block looks like this (the notebook named is the one that explains it)::

        # BEGIN SOLUTION (notebooks/02_critic.ipynb)
        ...reference code...
        # END SOLUTION

Commands (also behind ``make``)::

    python -m ganlab.instructor stubs [--check]     # write ganlab/*.py and notebooks/ from solutions/
    python -m ganlab.instructor solutions-branch    # (re)create git branch `solutions` from HEAD
    python -m ganlab.instructor export-student DEST --repo OWNER/NAME [--branch B]
                                                    # a copy for students, no solutions in it

``stubs`` swaps each block for a ``NotImplementedError`` that names the function, the
file and the notebook, and strips notebook outputs (except cells whose output nbval
compares). ``tests/test_stubs.py`` re-derives everything and fails on any difference.
"""

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ._solutions import EXERCISE_MODULES

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = "solutions"
BRANCH = "solutions"
BRANCH_MARKER = "SOLUTIONS_BRANCH.md"
KEEP_OUTPUT_TAG = "nbval-check-output"

# The first line of every exercise cell: when a notebook comes back without cell ids (Colab
# writes none) or with new ones (a retyped cell), the grader finds the student's answer by it.
EXERCISE_MARKER = "# ganlab:{id} (keep this line: the grader finds your answer by it)"
MARKER_RE = re.compile(r"^[ \t]*#[ \t]*ganlab:(ex-\d+-\d+)\b", re.MULTILINE)

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?: \((?P<ref>[^)]*)\))?[ \t]*$")
_END = re.compile(r"^[ \t]*# END SOLUTION[ \t]*$")


class AuthoringError(Exception):
    """A solution file is malformed, or a command cannot run here."""


def _qualnames(source):
    """Map each line number to the qualified name of the innermost def around it."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a notebook cell with %magics: no names, the message says "this cell"
        return {}
    names = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                for line in range(child.lineno, child.end_lineno + 1):
                    names[line] = name
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return names


def _quoted(text):
    """A double-quoted Python string literal of ``text`` (the formatter's quote style)."""
    return json.dumps(text, ensure_ascii=False)


def strip_solutions(source, where, keep_solution=False):
    """Replace (or, with ``keep_solution``, just unmark) every solution block of ``source``.

    ``where`` names the place students edit, e.g. ``ganlab/models.py`` or
    ``this cell of notebooks/02_critic.ipynb``.
    """
    lines = source.splitlines(keepends=True)
    names = _qualnames(source)
    out, block = [], None
    for number, line in enumerate(lines, start=1):
        if block is None:
            match = _BEGIN.match(line)
            if not match:
                if _END.match(line):
                    raise AuthoringError(f"{where}, line {number}: END SOLUTION without BEGIN")
                out.append(line)
                continue
            block = number
            if not keep_solution:
                indent, ref = match["indent"], match["ref"]
                name = names.get(number, "this exercise")
                first = f"{name} is not written yet: fill it in {where}"
                second = (f" ({ref} explains it)" if ref else "") + ", then remove this raise."
                # Two string lines, as the formatter (ruff format) would write them.
                out.append(f"{indent}# YOUR CODE HERE\n")
                out.append(
                    f"{indent}raise NotImplementedError(\n{indent}    {_quoted(first)}\n"
                    f"{indent}    {_quoted(second)}\n{indent})\n"
                )
        elif _END.match(line):
            block = None
        elif _BEGIN.match(line):
            raise AuthoringError(f"{where}, line {number}: BEGIN SOLUTION inside another block")
        elif keep_solution:
            out.append(line)
    if block is not None:
        raise AuthoringError(f"{where}, line {block}: BEGIN SOLUTION is never closed")
    return "".join(out)


def has_solution_block(source):
    return any(_BEGIN.match(line) for line in source.splitlines())


# -- notebooks ---------------------------------------------------------------------------


def read_notebook(path):
    import nbformat

    return nbformat.read(str(path), as_version=4)


def notebook_text(nb):
    import nbformat

    return nbformat.writes(nb) + "\n"


def place_colab_cells(nb, name, branch, repository):
    """Put (or replace) the "Open in Colab" badge and the Colab set-up cell, both from
    ganlab/colab.py, at the top of ``nb``, pointing at ``repository``'s ``branch``."""
    from nbformat.v4 import new_code_cell, new_markdown_cell

    from . import colab

    badge = new_markdown_cell(colab.badge(f"notebooks/{name}", branch, repository))
    setup = new_code_cell(colab.setup_cell_source(branch, repository))
    setup.metadata.update(colab.SETUP_METADATA)
    badge.id, setup.id = "colab-badge", "colab-setup"
    nb.cells = [c for c in nb.cells if c.get("id") not in ("colab-badge", "colab-setup")]
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells = [badge] + nb.cells[:first_code] + [setup] + nb.cells[first_code:]
    return nb


def derive_notebook(nb, name, keep_solution=False):
    """The student (or, with ``keep_solution``, the completed) version of a solution notebook,
    with the Colab cells of :func:`place_colab_cells` pointing at the branch of this version."""
    import copy

    from . import colab

    nb = copy.deepcopy(nb)
    branch = colab.SOLUTIONS_BRANCH if keep_solution else colab.BRANCH
    place_colab_cells(nb, name, branch, colab.REPOSITORY)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        where = f"this cell of notebooks/{name}"
        cell.source = strip_solutions(cell.source, where, keep_solution).rstrip("\n")
        if str(cell.get("id", "")).startswith("ex-"):
            cell.source = mark_exercise(cell.source, cell.id)
        if "graded" in cell.metadata.get("tags", []):  # JupyterLab then protects the check cells
            cell.metadata["editable"], cell.metadata["deletable"] = False, False
        if KEEP_OUTPUT_TAG not in cell.metadata.get("tags", []):
            cell.outputs, cell.execution_count = [], None
    return nb


def mark_exercise(source, cell_id):
    """``source`` with the exercise marker of ``cell_id`` as its first line (exactly once)."""
    lines = [line for line in source.splitlines() if not MARKER_RE.match(line)]
    return "\n".join([EXERCISE_MARKER.format(id=cell_id), *lines])


# -- the derived files -------------------------------------------------------------------


def derived_files(repo=REPO, keep_solution=False):
    """``{relative path: text}`` of every file derived from ``solutions/``."""
    repo = Path(repo)
    files = {}
    for module in EXERCISE_MODULES:
        src = repo / SOLUTIONS / "ganlab" / module
        files[f"ganlab/{module}"] = strip_solutions(
            src.read_text(), f"ganlab/{module}", keep_solution
        )
    for src in sorted((repo / SOLUTIONS / "notebooks").glob("*.ipynb")):
        nb = derive_notebook(read_notebook(src), src.name, keep_solution)
        files[f"notebooks/{src.name}"] = notebook_text(nb)
    return files


def stale_files(repo=REPO):
    """Relative paths whose content differs from what ``stubs`` would write."""
    repo = Path(repo)
    stale = [
        p
        for p, text in derived_files(repo).items()
        if not (repo / p).is_file() or (repo / p).read_text() != text
    ]
    expected = {f"notebooks/{p.name}" for p in (repo / SOLUTIONS / "notebooks").glob("*.ipynb")}
    stale += [
        f"notebooks/{p.name}"
        for p in (repo / "notebooks").glob("*.ipynb")
        if f"notebooks/{p.name}" not in expected
    ]  # a notebook with no source
    return sorted(stale)


def write_stubs(repo=REPO):
    repo = Path(repo)
    if not (repo / SOLUTIONS / "ganlab").is_dir():
        raise AuthoringError(
            f"no {SOLUTIONS}/ganlab in {repo}: this is a student copy, "
            "the stubs are already what students get"
        )
    changed = []
    for rel, text in derived_files(repo).items():
        path = repo / rel
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(rel)
    return changed


# -- git: the solutions branch and the student copy ---------------------------------------


def _git(*args, repo=REPO, env=None, input=None):
    result = subprocess.run(
        ["git", *args], cwd=repo, env=env, input=input, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise AuthoringError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _committed_text(repo, rel):
    return _git("show", f"HEAD:{rel}", repo=repo)


def make_solutions_branch(repo=REPO, branch=BRANCH):
    """(Re)create ``branch`` from HEAD with the completed package and notebooks.

    Works on git objects only (a temporary index): the working tree, the current
    branch and uncommitted work are left untouched. Returns the new commit's sha.
    """
    repo = Path(repo)
    head = _git("rev-parse", "HEAD", repo=repo)
    if _git("status", "--porcelain", "--", SOLUTIONS, repo=repo):
        print(
            f"note: uncommitted changes in {SOLUTIONS}/ are not included; the branch is built from HEAD",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory() as tmp:
        # Derive from the committed solutions, so the branch matches HEAD exactly.
        _git("worktree", "add", "--detach", f"{tmp}/tree", head, repo=repo)
        try:
            completed = derived_files(f"{tmp}/tree", keep_solution=True)
        finally:
            _git("worktree", "remove", "--force", f"{tmp}/tree", repo=repo)
        env = dict(os.environ, GIT_INDEX_FILE=f"{tmp}/index")
        _git("read-tree", head, repo=repo, env=env)
        _git("rm", "-r", "--cached", "--quiet", SOLUTIONS, repo=repo, env=env)
        completed[BRANCH_MARKER] = (
            "# The solutions branch\n\n"
            f"Generated from main at `{head}` by `make solutions-branch`; do not edit it by hand.\n"
            "The package and notebooks here are the completed versions. Never give this branch to students.\n"
        )
        for rel, text in completed.items():
            blob = _git("hash-object", "-w", "--stdin", repo=repo, input=text)
            _git("update-index", "--add", "--cacheinfo", f"100644,{blob},{rel}", repo=repo, env=env)
        tree = _git("write-tree", repo=repo, env=env)
    parents = ["-p", head]
    old = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
        cwd=repo,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if old:
        if _git("rev-parse", f"{old}^{{tree}}", repo=repo) == tree:
            return old  # already up to date
        parents = ["-p", old, "-p", head]
    commit = _git("commit-tree", tree, *parents, "-m", f"Solutions for {head[:12]}", repo=repo)
    _git("update-ref", f"refs/heads/{branch}", commit, repo=repo)
    return commit


# What the student copy leaves out (besides solutions/): the instructor's README, Makefile and
# tests, which need solutions/, are replaced by the ones in student/, written for students.
# What the copy keeps must not send students to what it leaves out (notebooks, Markdown,
# docstrings, messages): tests/test_instructor.py::test_student_copy_names_no_file_it_lacks.
STUDENT_TEMPLATES = "student"
INSTRUCTOR_ONLY = (SOLUTIONS, STUDENT_TEMPLATES, "tests", "scripts", ".ci", "BENCHMARKS.md")
# The checks' references without the answers (each calls the student's own function): a
# student copy's checks/_reference.py, and what the grader gives every sandbox in its place.
ANSWER_FREE_IN_THE_KIT = Path("ganlab", "checks", "_answer_free.py")
_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}/[A-Za-z0-9._-]{1,100}")
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")


def retarget(tree, repository, branch):
    """Point every badge, link and the set-up cell of the kit at ``tree`` to ``repository``.

    Rewrites the two lines of ganlab/colab.py that say where the course lives, re-places the
    Colab cells of every notebook, and replaces the configured repository's address wherever
    else it appears (README links). Raises if any text file still names the old repository.
    """
    from . import colab

    if not _REPOSITORY.fullmatch(repository) or repository.endswith((".git", ".")):
        raise AuthoringError(f"--repo must look like OWNER/NAME on GitHub, not {repository!r}")
    if not _BRANCH.fullmatch(branch) or ".." in branch:
        raise AuthoringError(f"--branch {branch!r} is not a git branch name")
    tree = Path(tree)
    config = tree / "ganlab" / "colab.py"
    text = config.read_text()
    for name, value in (("REPOSITORY", repository), ("BRANCH", branch)):
        text, n = re.subn(rf'^{name} = "[^"]*"', f'{name} = "{value}"', text, count=1, flags=re.M)
        if n != 1:
            raise AuthoringError(f"{config}: no `{name} = ...` line to retarget")
    config.write_text(text)
    for path in sorted((tree / "notebooks").glob("*.ipynb")):
        nb = read_notebook(path)
        place_colab_cells(nb, path.name, branch, repository)
        path.write_text(notebook_text(nb))
    old_colab = colab.notebook_url("", colab.BRANCH)
    new_colab = colab.notebook_url("", branch, repository)
    old, stale = colab.repository_url(), []
    for path in sorted(tree.rglob("*")):
        if (
            path.suffix not in {".md", ".py", ".ipynb", ".toml", ".yml", ".cfg"}
            or ".git" in path.parts
        ):
            continue
        text = path.read_text()
        fixed = text.replace(old_colab, new_colab).replace(old, colab.repository_url(repository))
        if fixed != text:
            path.write_text(fixed)
        if colab.REPOSITORY != repository and colab.REPOSITORY in fixed:
            stale.append(str(path.relative_to(tree)))
    if stale:
        raise AuthoringError(
            f"still naming {colab.REPOSITORY} after retargeting: {', '.join(stale)}"
        )


def _code_lines(text):
    """The lines of ``text`` that are code: stripped, without blanks and comments."""
    return [t for t in (line.strip() for line in text.splitlines()) if t and not t.startswith("#")]


def solution_blocks(repo=REPO):
    """``[(where, code lines)]`` of every solution block in ``solutions/ganlab`` of two lines or more."""
    blocks = []
    for module in EXERCISE_MODULES:
        path = Path(repo) / SOLUTIONS / "ganlab" / module
        block = None
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if _BEGIN.match(line):
                block, start = [], number
            elif _END.match(line):
                code = _code_lines("\n".join(block))
                if len(code) >= 2:
                    blocks.append((f"{SOLUTIONS}/ganlab/{module}:{start}", code))
                block = None
            elif block is not None:
                block.append(line)
    return blocks


def solution_code_in(tree, repo=REPO):
    """Files of ``tree`` holding a solution block's code lines in a row: ``["file (block)"]``."""
    found = []
    blocks = solution_blocks(repo)
    for path in sorted(Path(tree).rglob("*.py")):
        code = _code_lines(path.read_text())
        joined = "\n".join(code)
        for where, block in blocks:
            if "\n".join(block) in joined:
                found.append(f"{path.relative_to(tree)} ({where})")
    return found


def export_student(dest, repository, branch="main", repo=REPO, init_git=True):
    """Write a student copy of HEAD to ``dest``, for the repository ``repository`` (OWNER/NAME).

    Everything but the instructor's files (``INSTRUCTOR_ONLY``), plus the README, Makefile and
    tests of ``student/``; verified leak-free; every badge retargeted (:func:`retarget`).
    """
    repo, dest = Path(repo), Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise AuthoringError(
            f"{dest} exists and is not empty; choose a new folder (nothing was written)"
        )
    if _git("status", "--porcelain", "--untracked-files=no", repo=repo):
        print(
            "note: uncommitted changes are not included; the student copy is built from HEAD",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "head.tar"
        _git("archive", "--format=tar", "-o", str(archive), "HEAD", repo=repo)
        tree = Path(tmp) / "tree"
        shutil.unpack_archive(archive, tree)
        # The stubs of what is exported (HEAD), not of the working tree: uncommitted fixes
        # would hide stale committed stubs, and uncommitted edits would block a sound HEAD.
        stale = stale_files(tree)
        if stale:
            raise AuthoringError(
                "the committed stubs are out of date with the committed solutions/ "
                "(run `make stubs` and commit): " + ", ".join(stale)
            )
        templates = Path(tmp) / "templates"
        if not (tree / STUDENT_TEMPLATES).is_dir():
            raise AuthoringError(f"no {STUDENT_TEMPLATES}/ (the student README, Makefile, tests)")
        shutil.move(tree / STUDENT_TEMPLATES, templates)
        for rel in INSTRUCTOR_ONLY:
            path = tree / rel
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        shutil.copytree(templates, tree, dirs_exist_ok=True)
        (tree / ANSWER_FREE_IN_THE_KIT).replace(tree / "ganlab" / "checks" / "_reference.py")
        leaks = [
            str(p.relative_to(tree))
            for p in tree.rglob("*")
            if p.is_file()
            and p.suffix in {".py", ".ipynb"}
            and "BEGIN SOLUTION" in p.read_text()
            and p.name != "instructor.py"
        ]
        if leaks:
            raise AuthoringError("solution markers found in the student copy: " + ", ".join(leaks))
        copied = solution_code_in(tree, repo)
        if copied:
            raise AuthoringError("solution code found in the student copy: " + ", ".join(copied))
        retarget(tree, repository, branch)
        shutil.copytree(tree, dest, dirs_exist_ok=True)
    if init_git:
        _git("init", "--quiet", "-b", branch, repo=dest)
        _git("add", "-A", repo=dest)
        _git(
            "-c",
            "user.name=ganlab",
            "-c",
            "user.email=ganlab@localhost",
            "commit",
            "--quiet",
            "-m",
            "ganlab student copy",
            repo=dest,
        )
    return dest


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m ganlab.instructor", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    stubs = sub.add_parser(
        "stubs", help="derive ganlab/ exercise stubs and notebooks/ from solutions/"
    )
    stubs.add_argument(
        "--check", action="store_true", help="only report stale files; exit 1 if any"
    )
    sub.add_parser("solutions-branch", help=f"(re)create the git branch '{BRANCH}' from HEAD")
    export = sub.add_parser("export-student", help="write a student copy (no solutions) to DEST")
    export.add_argument("dest")
    export.add_argument(
        "--repo",
        required=True,
        metavar="OWNER/NAME",
        help="the GitHub repository students get (badges and the set-up cell point there)",
    )
    export.add_argument("--branch", default="main", help="its branch (default: main)")
    export.add_argument(
        "--no-git", action="store_true", help="do not make DEST a fresh git repository"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "stubs" and args.check:
            stale = stale_files()
            for rel in stale:
                print(f"stale: {rel}")
            if stale:
                print("run `make stubs` to re-derive them from solutions/", file=sys.stderr)
            return 1 if stale else 0
        if args.command == "stubs":
            changed = write_stubs()
            print("\n".join(f"wrote {rel}" for rel in changed) or "stubs are up to date")
        elif args.command == "solutions-branch":
            commit = make_solutions_branch()
            print(f"branch '{BRANCH}' is at {commit[:12]} (completed package and notebooks)")
        else:
            dest = export_student(args.dest, args.repo, args.branch, init_git=not args.no_git)
            print(f"student copy for {args.repo} written to {dest}")
    except (AuthoringError, OSError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
