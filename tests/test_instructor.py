"""Instructor commands: the solutions branch, the student copy, the solutions switch."""

import os
import re
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
    dest = instructor.export_student(tmp_path / "student", "school/dcgan-2027", repo=course_repo)
    assert not (dest / "solutions").exists()
    assert (dest / ".git").is_dir(), "the student copy should be a fresh git repository"
    for module in instructor.EXERCISE_MODULES:
        assert "BEGIN SOLUTION" not in (dest / "ganlab" / module).read_text()
    env = dict(os.environ, PYTHONPATH=str(dest), GANLAB_SOLUTIONS="1")
    env.pop("GANLAB_SOLUTIONS_DIR", None)
    proc = subprocess.run(  # `import ganlab` works (the ganlab command can say why in one line)
        [sys.executable, "-c", "import ganlab.models"],
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
        [sys.executable, "-m", "ganlab.instructor", "export-student", str(dest), "--repo", "a/b"],
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


def test_export_checks_the_stubs_it_exports_not_the_working_tree(course_repo, tmp_path):
    """The copy is built from HEAD, so HEAD's stubs are what must be up to date: an uncommitted
    edit of solutions/ must not block the export, and an uncommitted fix must not let stale
    committed stubs out."""
    repo = tmp_path / "course"
    shutil.copytree(course_repo, repo, symlinks=True)
    instructor.write_stubs(repo)
    git("add", "-A", cwd=repo)
    git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "s",
        cwd=repo,
    )
    source = repo / "solutions" / "ganlab" / "losses.py"
    committed = source.read_text()
    source.write_text(committed + "\n# an instructor's edit, not committed yet\n")
    dest = instructor.export_student(tmp_path / "one", "a/b", repo=repo, init_git=False)
    assert "not committed yet" not in (dest / "ganlab" / "losses.py").read_text()
    source.write_text(committed)
    stub = repo / "ganlab" / "losses.py"
    good = stub.read_text()
    stub.write_text(good.replace("# YOUR CODE HERE", "# YOUR CODE HERE\n    pass", 1))
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "stale", cwd=repo)
    stub.write_text(good)  # fixed in the working tree only: HEAD still holds the stale stub
    with pytest.raises(instructor.AuthoringError, match="ganlab/losses.py"):
        instructor.export_student(tmp_path / "two", "a/b", repo=repo, init_git=False)
    assert not (tmp_path / "two").exists()


STUDENT_REPO, STUDENT_BRANCH = "school/dcgan-2027", "fall"


@pytest.fixture(scope="module")
def student_copy(course_repo, tmp_path_factory):
    dest = tmp_path_factory.mktemp("copy") / "ganlab-student"
    return instructor.export_student(dest, STUDENT_REPO, STUDENT_BRANCH, repo=course_repo)


def test_student_copy_points_only_at_its_own_repository(student_copy):
    import nbformat

    from ganlab import colab

    own = f"https://colab.research.google.com/github/{STUDENT_REPO}/blob/{STUDENT_BRANCH}/"
    notebooks = sorted((student_copy / "notebooks").glob("*.ipynb"))
    for path in [student_copy / "README.md", *notebooks]:
        text = path.read_text()
        assert colab.REPOSITORY not in text, f"{path.name} still names {colab.REPOSITORY}"
        assert own in text, f"{path.name} has no Colab badge for {STUDENT_REPO}"
    for path in notebooks:
        cells = nbformat.read(str(path), as_version=4).cells
        setup = next(c for c in cells if c.cell_type == "code")
        assert f"https://github.com/{STUDENT_REPO}" in setup.source, path.name
        assert f'"--branch", "{STUDENT_BRANCH}"' in setup.source, path.name
        assert setup.metadata.get("cellView") == "form"
    config = (student_copy / "ganlab" / "colab.py").read_text()
    assert f'REPOSITORY = "{STUDENT_REPO}"' in config and f'BRANCH = "{STUDENT_BRANCH}"' in config
    leftovers = [
        str(p.relative_to(student_copy))
        for p in student_copy.rglob("*")
        if p.is_file() and ".git" not in p.parts and colab.REPOSITORY.encode() in p.read_bytes()
    ]
    assert not leftovers, f"files still pointing at the instructor's repository: {leftovers}"


def test_student_copy_has_only_student_targets_and_files(student_copy):
    makefile = (student_copy / "Makefile").read_text()
    for target in ("stubs", "check-stubs", "solutions-branch", "student-copy"):
        assert f"\n{target}:" not in makefile, f"the student Makefile offers `make {target}`"
    assert "GANLAB_SOLUTIONS" not in makefile, "the student Makefile switches on absent solutions"
    for gone in ("solutions", "student", "scripts", "BENCHMARKS.md"):
        assert not (student_copy / gone).exists(), f"{gone} was handed out"
    tests = sorted(p.name for p in (student_copy / "tests").glob("test_*.py"))
    assert tests == ["test_kit.py"], f"instructor tests in the student copy: {tests}"


# -- what the student copy's text points at ------------------------------------------------
#
# Every path a student reads in the copy must exist in the copy. What a student reads: all of
# every notebook cell (comments in code cells too: they are read in place), every Markdown file,
# the Makefiles, and the docstrings and messages (string literals) of the Python files. Not
# scanned: `#` comments in .py files (notes for whoever maintains the kit), data and config
# files (YAML presets, JSON provenance records, pyproject.toml), and the two modules that ship
# only because they belong to the package but are written for, and only run in, the
# instructor's checkout (they need solutions/).
INSTRUCTOR_TOOLS = ("ganlab/instructor.py", "ganlab/grading/sample_class.py")
# What counts as a reference into the copy:
# * a Markdown link or image, or an HTML src/href, with a relative target: always; resolved
#   from the file's folder, as GitHub and Jupyter resolve it;
# * a path whose first part is a top-level name of the complete kit (its git tree: ganlab/,
#   notebooks/, docs/, scripts/, tests/, BENCHMARKS.md, ...), written from the kit's root as
#   the kit always writes them: it names a part of the kit, so the copy must hold it. A bare
#   file name counts only when it is one of the kit's top-level files (`BENCHMARKS.md`).
#   Paths under any other first part (runs/, data/, bench/, MyDrive/, a user's my-kit/) are
#   made at run time or chosen by the user, so nothing is checked there.
# Not references into the copy: solutions/ and student/, whose absence is what makes it a
# student copy; text naming them (the solutions switch's error, the grader's sandbox) is
# about the instructor's checkout by construction. Patterns (`ganlab/<module>.py`,
# `notebooks/NN_*.ipynb`, f"ganlab/{name}") must match at least one file.
NOT_IN_ANY_STUDENT_COPY = ("solutions", "student")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s)\]>\"'`]+", re.IGNORECASE)
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)|\b(?:src|href)\s*=\s*[\"']([^\"']+)")
# [label]: target, a Markdown link definition (looked for in Markdown only: "[-1, 1]: pixel v").
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]*<?([^\s>]+)", re.MULTILINE)
_PATH = re.compile(
    r"(?<![\w./~$@:-])(?:(?:[\w.*<>{}-]+/)+[\w.*<>{}-]*|[\w-]+\.(?:md|ipynb|py|png|gif|mk|yml|toml))"
    r"(?![\w(])"
)
_PLACEHOLDER = re.compile(r"<[^>/]*>?|\{[^}/]*\}?|(?<![A-Za-z])(?:N{2,}|NAME|OWNER|PATH)(?![a-z])")


def _student_texts(tree):
    """``[(file, line or cell, text, is Markdown)]``: what a student reads in ``tree`` (see
    above); ``line`` is the file's line where ``text`` starts, ``cell`` a notebook cell's id."""
    import ast

    import nbformat

    texts = []
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree).as_posix()
        if not path.is_file() or ".git" in path.parts or rel in INSTRUCTOR_TOOLS:
            continue
        if path.suffix == ".ipynb":
            for cell in nbformat.read(str(path), as_version=4).cells:
                texts.append(
                    (rel, f"cell {cell.get('id')}", cell.source, cell.cell_type == "markdown")
                )
        elif path.suffix == ".md" or path.name == "Makefile" or path.suffix == ".mk":
            texts.append((rel, 1, path.read_text(), path.suffix == ".md"))
        elif path.suffix == ".py":
            tree_ = ast.parse(path.read_text())
            in_fstrings = set()
            for node in ast.walk(tree_):
                if isinstance(node, ast.JoinedStr):  # f"ganlab/{x}.py": the {x} is a pattern
                    in_fstrings.update(id(v) for v in node.values)
                    text = "".join(
                        v.value if isinstance(v, ast.Constant) else "{}" for v in node.values
                    )
                    texts.append((rel, node.lineno, text, False))
            for node in ast.walk(tree_):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    if id(node) not in in_fstrings:
                        texts.append((rel, node.lineno, node.value, False))
    return texts


def _exists(base, target):
    target = _PLACEHOLDER.sub("*", target.split("#")[0].rstrip("/"))
    if not target:
        return True
    if "*" in target or "?" in target:
        return any(base.glob(target))
    return (base / target).exists()


def _where(rel, at, text, match):
    """``file:line`` of ``match`` in ``text`` (which starts at line ``at``), or ``file (cell id)``."""
    if isinstance(at, str):
        return f"{rel} ({at})"
    return f"{rel}:{at + text.count(chr(10), 0, match.start())}"


def dangling_references(tree, kit_names):
    """``["where: reference"]`` for each path the student-facing text of ``tree`` names that
    ``tree`` does not hold; ``kit_names`` are the top-level names of the complete kit."""
    tree = Path(tree).resolve()
    kit_files = {n for n in kit_names if "." in n}
    found = []
    for rel, at, text, markdown in _student_texts(tree):
        folder = (tree / rel).parent
        links = [*_LINK.finditer(text), *(_LINK_DEFINITION.finditer(text) if markdown else ())]
        for match in links:
            target = match[1] or match[2]
            if re.match(r"[a-z][a-z0-9+.-]*:|#|/", target, re.IGNORECASE):
                continue  # a URL (https:, mailto:, data:), an anchor or an absolute path
            resolved = (folder / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(tree) or not _exists(
                tree, str(resolved.relative_to(tree))
            ):
                found.append(f"{_where(rel, at, text, match)}: {target}")
        for match in _PATH.finditer(_URL.sub(lambda url: " " * len(url[0]), text)):
            ref = match[0].rstrip(".")
            first = ref.split("/")[0]
            if "/" not in ref and ref not in kit_files:
                continue
            if first not in kit_names or first in NOT_IN_ANY_STUDENT_COPY:
                continue
            if not _exists(tree, ref):
                found.append(f"{_where(rel, at, text, match)}: {ref}")
    return sorted(set(found))


def _kit_names(course_repo):
    return {rel.split("/")[0] for rel in git("ls-files", cwd=course_repo).splitlines()}


def test_student_copy_names_no_file_it_lacks(course_repo, student_copy):
    dangling = dangling_references(student_copy, _kit_names(course_repo))
    assert not dangling, (
        "the student copy sends students to files it does not hold (reword, or ship the file):\n"
        + "\n".join(dangling)
    )


def test_dangling_references_finds_what_was_left_out_and_nothing_else(tmp_path):
    """The scanner on a made-up copy: the references that once dangled (notebook 07 citing
    BENCHMARKS.md, ganlab.metrics suggesting scripts/train_feature_net.py) are found; runtime
    paths, patterns, solutions/ and comments in .py files are not."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "ganlab").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "demo.png").write_bytes(b"")
    (tmp_path / "ganlab" / "models.py").write_text("")
    (tmp_path / "ganlab" / "assets").mkdir()
    (tmp_path / "ganlab" / "assets" / "feature_net_mnist.pt").write_bytes(b"")
    nb = new_notebook(
        cells=[
            new_markdown_cell(
                "Measured on the CPU preset (BENCHMARKS.md, 10,000 samples). Your pictures are in\n"
                "`runs/demo/samples.png`, MNIST in `data/MNIST/raw/`; edit `ganlab/models.py` or\n"
                "any `ganlab/<module>.py`. ![ok](../docs/demo.png) ![gone](../docs/curves.png)\n"
                "[Colab](https://colab.research.google.com/github/a/b/blob/main/notebooks/x.ipynb)\n"
                "[fig]: ../docs/gone.png"
            ),
            new_code_cell("# see scripts/in_a_comment.py\nprint('see docs/missing.png')"),
        ]
    )
    nb.cells[0].id, nb.cells[1].id = "md", "code"
    nbformat.write(nb, str(tmp_path / "notebooks" / "07.ipynb"))
    (tmp_path / "ganlab" / "metrics.py").write_text(
        '"""Trained by scripts/train_feature_net.py, on images in\n[-1, 1]: pixel v."""\n'
        "# scripts/ in a comment is for maintainers\n"
        "def f(dataset, name):\n"
        '    a = f"ganlab/assets/{name} is missing: rebuild it with "\n'
        '    b = f"`python scripts/train_feature_net.py --dataset {dataset}`"\n'
        '    c = "an instructor\'s solutions/ganlab folder"\n'
    )
    kit = {"ganlab", "notebooks", "docs", "scripts", "solutions", "BENCHMARKS.md", "README.md"}
    assert dangling_references(tmp_path, kit) == [
        "ganlab/metrics.py:1: scripts/train_feature_net.py",
        "ganlab/metrics.py:6: scripts/train_feature_net.py",
        "notebooks/07.ipynb (cell code): docs/missing.png",
        "notebooks/07.ipynb (cell code): scripts/in_a_comment.py",
        "notebooks/07.ipynb (cell md): ../docs/curves.png",
        "notebooks/07.ipynb (cell md): ../docs/gone.png",
        "notebooks/07.ipynb (cell md): BENCHMARKS.md",
    ]


@pytest.mark.parametrize("repo", ["not-a-repo", "a/b/c", "https://github.com/a/b", "a/b.git"])
def test_export_refuses_a_repository_that_is_not_owner_slash_name(course_repo, tmp_path, repo):
    dest = tmp_path / "copy"
    proc = subprocess.run(
        [sys.executable, "-m", "ganlab.instructor", "export-student", str(dest), "--repo", repo],
        cwd=course_repo,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(course_repo)),
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error:"), proc.stderr
    assert "OWNER/NAME" in proc.stderr and not dest.exists()


def _readme_commands(readme):
    """The `make ...` lines of the README's first shell block, as a student would type them."""
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("make ")]


def test_student_copy_holds_no_solution_code_and_its_checks_use_the_students_parts(
    student_copy, tmp_path
):
    # No solution block's code anywhere (the checks' own reference parts are answers too).
    assert instructor.solution_code_in(student_copy) == []
    reference = (student_copy / "ganlab" / "checks" / "_reference.py").read_text()
    assert "nn.init.normal_" not in reference and "ConvTranspose2d" not in reference
    # A student who finished every exercise: the checks that build on other exercises pass
    # with the student's own parts; one who has not gets the unfinished part named.
    finished = tmp_path / "finished"
    shutil.copytree(student_copy, finished, ignore=shutil.ignore_patterns(".git"))
    for module in instructor.EXERCISE_MODULES:
        shutil.copy(instructor.REPO / "solutions" / "ganlab" / module, finished / "ganlab" / module)
    script = (
        "from ganlab import checks\n"
        "from ganlab.models import Critic, Generator\n"
        "from ganlab.training import critic_step, generator_step\n"
        "from ganlab.latent import slerp\n"
        "checks.check_critic_architecture(Critic)\n"
        "checks.check_generator_architecture(Generator)\n"
        "checks.check_critic_step(critic_step)\n"
        "checks.check_generator_step(generator_step)\n"
        "checks.check_slerp(slerp)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANLAB_")}
    env["PYTHONPATH"] = str(finished)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=finished, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("\u2714") == 5, done.stdout
    env["PYTHONPATH"] = str(student_copy)
    stub = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ganlab import checks\nfrom ganlab.training import critic_step\n"
            "checks.check_critic_step(critic_step)",
        ],
        cwd=student_copy,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "NotImplementedError" in stub.stderr and "ganlab/" in stub.stderr, stub.stderr


@pytest.fixture(scope="module")
def copy_venv(student_copy, tmp_path_factory):
    """The copy's .venv, standing in for `make setup`: this suite's packages by .pth, no ganlab."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    import torch

    (site / "suite.pth").write_text(str(Path(torch.__file__).parent.parent) + "\n")
    (venv / ".ganlab-installed").touch()  # newer than the copy's pyproject.toml
    return venv


def _make(target, student_copy, venv, timeout=900):
    # As a student types it in a fresh shell: not inside our own `make test` (whose MAKEFLAGS
    # and MAKELEVEL would make this make print "Entering directory" lines).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GANLAB_", "PYTHONPATH", "MAKE", "MFLAGS"))
    }
    return subprocess.run(
        ["make", *target.split()[1:], f"VENV={venv}"],
        cwd=student_copy,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.mark.slow
def test_student_readme_commands_work_as_written(student_copy, copy_venv):
    commands = _readme_commands((student_copy / "README.md").read_text())
    assert {"make lab", "make check", "make submit", "make test", "make demo"} <= set(commands)
    for command in commands:
        if command == "make lab":
            continue  # a server: test_student_make_lab_serves_the_package_files
        proc = _make(command, student_copy, copy_venv)
        out = proc.stdout + proc.stderr
        assert "Traceback" not in out and "SolutionsUnavailable" not in out, f"{command}:\n{out}"
        if command == "make check":  # unfinished exercises cost points, not an exit status
            assert proc.returncode in (0, 1), f"{command}:\n{out[-3000:]}"
        else:
            assert proc.returncode == 0, f"{command} failed:\n{out[-3000:]}"
    assert (student_copy / "ganlab-submission.zip").is_file(), "make submit wrote no zip"
    assert (student_copy / "samples.png").is_file(), "make demo drew no samples"


@pytest.mark.slow
def test_student_make_lab_serves_the_package_files(student_copy, copy_venv):
    import json
    import socket
    import time
    import urllib.request

    dry = _make("make -n lab", student_copy, copy_venv)
    command = dry.stdout.strip().splitlines()[-1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = " --allow-root" if os.geteuid() == 0 else ""  # CI containers run as root
    server = subprocess.Popen(
        f"{command} --no-browser --port={port} --IdentityProvider.token=t --ServerApp.ip=127.0.0.1"
        + root,
        shell=True,
        cwd=student_copy,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/contents/ganlab/models.py?token=t&content=0"
        for _ in range(120):
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    assert json.load(reply)["path"] == "ganlab/models.py"
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"`{command}` does not serve ganlab/models.py (the notebooks link to it)")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
