"""Instructor commands: the solutions branch, the student copy, the solutions switch."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ganlab import instructor

from nbrun import run_nbval

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    not (REPO / "solutions" / "ganlab").is_dir(), reason="a student copy has no solutions/"
)


def git(*args, cwd):
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def course_repo(tmp_path_factory):
    """A git repo holding this working tree as one commit (tracked and untracked-but-not-ignored files)."""
    dest = tmp_path_factory.mktemp("course") / "ganlab"
    files = git("ls-files", "-co", "--exclude-standard", "-z", cwd=REPO).split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "course", cwd=dest)
    return dest


@pytest.fixture(scope="module")
def solutions_tree(course_repo, tmp_path_factory):
    commit = instructor.make_solutions_branch(course_repo)
    out = tmp_path_factory.mktemp("branch")
    archive = out / "branch.tar"
    git("archive", "-o", str(archive), "solutions", cwd=course_repo)
    shutil.unpack_archive(archive, out / "tree")
    return commit, out / "tree"


def test_solutions_branch_holds_the_completed_package(course_repo, solutions_tree):
    commit, tree = solutions_tree
    assert git("rev-parse", "solutions", cwd=course_repo) == commit
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=course_repo) == "main", (
        "the current branch changed"
    )
    assert git("status", "--porcelain", cwd=course_repo) == "", "the working tree was touched"
    for module in instructor.EXERCISE_MODULES:
        text = (tree / "ganlab" / module).read_text()
        assert "NotImplementedError(" not in text, f"the branch's ganlab/{module} is still a stub"
        assert "SOLUTION" not in text, f"markers left in the branch's ganlab/{module}"
        assert text == instructor.strip_solutions(
            (REPO / "solutions" / "ganlab" / module).read_text(), "", keep_solution=True
        )
    assert not (tree / "solutions").exists(), "the branch keeps a second copy of the solutions"
    assert (tree / instructor.BRANCH_MARKER).is_file()


def test_solutions_branch_is_rebuilt_idempotently(course_repo, solutions_tree):
    commit, _ = solutions_tree
    assert instructor.make_solutions_branch(course_repo) == commit, (
        "rebuilding from the same HEAD made a new commit"
    )


@pytest.mark.slow
def test_solutions_branch_notebooks_pass_nbval(solutions_tree, tmp_path):
    _, tree = solutions_tree
    notebooks = sorted((tree / "notebooks").glob("*.ipynb"))
    cells, proc = run_nbval(notebooks, solutions=False, tmp_path=tmp_path, pythonpath=tree)
    failed = [
        f"{nb} cell {c.cell_id}: {c.outcome}"
        for (nb, _), c in cells.items()
        if c.outcome != "passed"
    ]
    assert not failed, (
        "the solutions branch's notebooks fail under nbval:\n"
        + "\n".join(failed)
        + proc.stdout[-2000:]
    )


def test_student_copy_has_no_solutions_and_the_switch_fails_clearly(course_repo, tmp_path):
    dest = instructor.export_student(tmp_path / "student", repo=course_repo)
    assert not (dest / "solutions").exists()
    assert (dest / ".git").is_dir(), "the student copy should be a fresh git repository"
    for module in instructor.EXERCISE_MODULES:
        assert "BEGIN SOLUTION" not in (dest / "ganlab" / module).read_text()
    env = dict(os.environ, PYTHONPATH=str(dest), GANLAB_SOLUTIONS="1")
    env.pop("GANLAB_SOLUTIONS_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-c", "import ganlab"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "Student copies of ganlab do not ship them" in proc.stderr, proc.stderr


def test_export_refuses_a_non_empty_folder_and_writes_nothing(course_repo, tmp_path):
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "my-work.txt").write_text("precious")
    proc = subprocess.run(
        [sys.executable, "-m", "ganlab.instructor", "export-student", str(dest)],
        cwd=course_repo,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(course_repo)),
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["my-work.txt"]


def test_stubs_check_command_reports_a_hand_edited_stub(course_repo):
    stub = course_repo / "ganlab" / "losses.py"
    original = stub.read_text()
    try:
        stub.write_text(original.replace("# YOUR CODE HERE", "# YOUR CODE HERE\n    pass", 1))
        proc = subprocess.run(
            [sys.executable, "-m", "ganlab.instructor", "stubs", "--check"],
            cwd=course_repo,
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(course_repo)),
        )
        assert proc.returncode == 1 and "stale: ganlab/losses.py" in proc.stdout, (
            proc.stdout + proc.stderr
        )
    finally:
        stub.write_text(original)
