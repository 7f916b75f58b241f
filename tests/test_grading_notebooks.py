"""Step 2 of grading: notebooks however they come back (Colab, JupyterLab, edited by hand).

The exercise cell is found by its id, else by the marker line the kit writes into it,
else the exercise is reported missing by number; saved outputs never matter. Fast: no
kernel runs here (the graded runs are in tests/test_grading.py).
"""

import copy
import json
import os
import re
from datetime import datetime, timezone

import nbformat
import pytest

from ganlab import cli, instructor, submission
from ganlab.grading import assemble, commands
from ganlab.grading.sample_class import perfect_copy

REPO = commands.REPO
needs_solutions = pytest.mark.skipif(
    not (REPO / "solutions" / "ganlab").is_dir(), reason="a student copy has no solutions/"
)


def _canonical(name="02_critic.ipynb"):
    return dict(assemble.canonical_notebooks(REPO, [name[:2]]))[name]


def _exercise(nb, cell_id):
    return next(c.source for c in nb.cells if c.get("id") == cell_id)


def _student_json(tmp_path, transform):
    """The perfect copy's notebook 02 as JSON, changed by ``transform(dict)``."""
    folder = perfect_copy(tmp_path / "s")
    data = json.loads((folder / "notebooks" / "02_critic.ipynb").read_text())
    transform(data)
    return json.dumps(data)


def _splice(text):
    return assemble.splice(_canonical(), assemble.student_cells(text), "02_critic.ipynb")


def test_the_kit_marks_every_exercise_cell():
    for name, nb in assemble.canonical_notebooks(REPO):
        for cell in nb.cells:
            if cell.cell_type == "code" and str(cell.get("id", "")).startswith("ex-"):
                first = cell.source.splitlines()[0]
                assert instructor.MARKER_RE.match(first).group(1) == cell.id, (name, first)
    assert instructor.mark_exercise(instructor.mark_exercise("x = 1", "ex-1-1"), "ex-1-1") == (
        instructor.EXERCISE_MARKER.format(id="ex-1-1") + "\nx = 1"
    ), "marking twice writes the line once"


WIDGET = "application/vnd.jupyter.widget-view+json"


def as_colab(data):
    """What Colab writes back: no cell ids, its own metadata (``colab``, ``accelerator``, cell
    ``executionInfo``), widget outputs, nbformat 4.0, sources as lists."""
    data["nbformat_minor"] = 0
    data["metadata"] = {
        "colab": {"provenance": [], "gpuType": "T4", "toc_visible": True},
        "accelerator": "GPU",
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
        "language_info": {"name": "python"},
        "widgets": {"application/vnd.jupyter.widget-state+json": {"0a1b": {"state": {}}}},
    }
    for i, cell in enumerate(data["cells"]):
        cell.pop("id", None)
        cell["metadata"] = {"id": f"Xy{i}Q", "colab": {"base_uri": "https://localhost:8080/"}}
        if cell["cell_type"] == "code":
            cell["metadata"]["executionInfo"] = {"status": "ok", "elapsed": 12, "user_tz": -60}
            cell["metadata"]["outputId"] = f"out-{i}"
            cell["execution_count"] = i
            cell["outputs"] = [
                {"output_type": "stream", "name": "stdout", "text": ["x\n"], "metadata": {}},
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {
                        WIDGET: {"model_id": "0a1b", "version_major": 2, "version_minor": 0},
                        "text/plain": ["HBox(children=(FloatProgress(value=0.0),))"],
                    },
                },
            ]
        source = cell["source"]
        cell["source"] = source.splitlines(keepends=True) if isinstance(source, str) else source


@needs_solutions
def test_a_notebook_saved_by_colab_is_graded_by_its_markers(tmp_path):
    nb, notes = _splice(_student_json(tmp_path, as_colab))
    assert notes == []
    assert "return (n + 2 * padding - kernel) // stride + 1" in _exercise(nb, "ex-2-1")


def _minor(n):
    def older(data):  # what an older writer saved: no ids before 4.5, sources as one string
        data["nbformat_minor"] = n
        for cell in data["cells"]:
            cell.pop("id", None)
            cell["source"] = "".join(cell["source"])

    return older


SAVED_BY = {
    "jupyterlab": lambda data: None,
    "colab": as_colab,
    **{f"nbformat 4.{n}": _minor(n) for n in range(5)},
}


@needs_solutions
@pytest.mark.parametrize("bom", [False, True], ids=["", "with BOM"])
@pytest.mark.parametrize("writer", sorted(SAVED_BY))
def test_a_notebook_grades_the_same_whatever_saved_it(tmp_path, writer, bom):
    # Was: a notebook saved with a UTF-8 BOM (some Windows editors, tools that re-save JSON) was
    # "not a valid notebook": every exercise of it counted as not done.
    def read_back(folder, transform, bom):
        text = _student_json(folder, transform)
        path = folder / "s" / "notebooks" / "02_critic.ipynb"
        path.write_bytes(b"\xef\xbb\xbf" * bom + text.encode("utf-8"))
        sub = assemble.load_submission(folder / "s", ["02_critic.ipynb"])
        nb, notes = assemble.splice(
            _canonical(), sub.notebooks["02_critic.ipynb"], "02_critic.ipynb"
        )
        return nb, [*sub.notes, *notes]

    want, _ = read_back(tmp_path / "lab", SAVED_BY["jupyterlab"], False)
    got, notes = read_back(tmp_path / "other", SAVED_BY[writer], bom)
    assert notes == []
    assert got.cells == want.cells
    assert "return (n + 2 * padding - kernel) // stride + 1" in _exercise(got, "ex-2-1")


@needs_solutions
def test_a_folder_with_colabs_copy_of_name_grades_as_its_zip_would(tmp_path):
    # Was: `ganlab submit` packed "Copy of 02_critic.ipynb" as the notebook, but a folder handed
    # in with that name counted the notebook's exercises as not done.
    folder = perfect_copy(tmp_path / "s")
    notebooks = folder / "notebooks"
    (notebooks / "02_critic.ipynb").rename(notebooks / "Copy of 02_critic.ipynb")
    sub = assemble.load_submission(folder, ["02_critic.ipynb"])
    assert sub.notes == ["notebooks/Copy of 02_critic.ipynb graded as 02_critic.ipynb"]
    nb, notes = assemble.splice(_canonical(), sub.notebooks["02_critic.ipynb"], "02_critic.ipynb")
    assert notes == [] and "stride + 1" in _exercise(nb, "ex-2-1")


@needs_solutions
def test_a_lone_surrogate_in_a_cell_costs_that_cell_not_the_row(tmp_path):
    # Was: valid JSON ("\\ud800") that no UTF-8 file can hold: writing the sandbox raised
    # UnicodeEncodeError, a "grading error" that zeroed every notebook of the submission.
    from ganlab.grading import engine

    def surrogate(data):
        ex = next(c for c in data["cells"] if c.get("id") == "ex-2-1")
        ex["source"] = "".join(ex["source"]) + "\ns = '\ud800'\n"

    folder = tmp_path / "t"
    (folder / "notebooks").mkdir(parents=True)
    (folder / "notebooks" / "02_critic.ipynb").write_text(_student_json(tmp_path, surrogate))
    sub = assemble.load_submission(folder, ["02_critic.ipynb"])
    nb, _ = assemble.splice(_canonical(), sub.notebooks["02_critic.ipynb"], "02_critic.ipynb")
    box = assemble.build_sandbox(tmp_path / "box", engine.PACKAGE, sub, {"02_critic.ipynb": nb})
    assert "s = '?'" in _exercise(nbformat.read(str(box / "02_critic.ipynb"), 4), "ex-2-1")


@needs_solutions
def test_a_module_saved_with_a_bom_is_the_same_code(tmp_path):
    folder = perfect_copy(tmp_path / "s")
    module = folder / "ganlab" / "models.py"
    text = module.read_text()
    module.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    sub = assemble.load_submission(folder, [])
    assert sub.modules["models.py"] == text and sub.notes == [], sub.notes  # was a syntax error


@needs_solutions
def test_autosaved_outputs_are_never_read(tmp_path):
    def autosaved(data):
        for cell in data["cells"]:
            if cell["cell_type"] == "code":  # a check cell "passed" in the saved outputs
                cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "\u2714"}]
                cell["execution_count"] = 7

    text = _student_json(tmp_path, autosaved)
    nb, _ = _splice(text)
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code")
    assert nb.cells == _splice(_student_json(tmp_path / "again", lambda d: None))[0].cells


@needs_solutions
def test_duplicated_reordered_and_retyped_cells(tmp_path):
    def edit(data):
        code = [c for c in data["cells"] if c["cell_type"] == "code"]
        ex = next(c for c in code if c.get("id") == "ex-2-1")
        # Retyped: a new cell (new id) with the marker line; the original emptied and moved last.
        retyped = copy.deepcopy(ex)
        retyped["id"] = "a1b2c3"
        ex_index = data["cells"].index(ex)
        data["cells"].remove(ex)
        data["cells"].insert(0, retyped)
        data["cells"].append(dict(ex, source="# my scratch copy\n"))
        data["cells"].insert(ex_index, dict(copy.deepcopy(retyped), id="dup1"))  # a duplicate

    nb, notes = _splice(_student_json(tmp_path, edit))
    assert _exercise(nb, "ex-2-1") == "# my scratch copy\n", "the id decides first"

    # Without the id, the marked copies: the last one wins.
    def no_id(data):
        edit(data)
        data["cells"] = [c for c in data["cells"] if c.get("id") != "ex-2-1"]
        data["cells"][-1]["source"] = instructor.EXERCISE_MARKER.format(id="ex-2-1") + "\nlast = 1"

    nb, notes = _splice(_student_json(tmp_path / "b", no_id))
    assert _exercise(nb, "ex-2-1").endswith("last = 1") and notes == []


@needs_solutions
def test_a_deleted_exercise_is_named_missing(tmp_path):
    def delete(data):
        data["cells"] = [c for c in data["cells"] if c.get("id") != "ex-2-1"]

    nb, notes = _splice(_student_json(tmp_path, delete))
    assert notes == [
        "02_critic.ipynb: exercise 2.1 missing (no cell with id ex-2-1 or the line "
        "'# ganlab:ex-2-1'): counts as not done"
    ]
    assert "NotImplementedError" in _exercise(nb, "ex-2-1"), "the stub stays"


def test_limits_on_what_is_parsed(tmp_path):
    too_many = {"cells": [{"cell_type": "code", "source": ""}] * (submission.MAX_CELLS + 1)}
    with pytest.raises(ValueError, match="more than"):
        assemble.student_cells(json.dumps(too_many))
    folder = tmp_path / "s"
    (folder / "notebooks").mkdir(parents=True)
    (folder / "ganlab").mkdir()
    big = folder / "notebooks" / "02_critic.ipynb"
    with open(big, "wb") as f:
        f.truncate(submission.MAX_NOTEBOOK_BYTES + 1)
    (folder / "ganlab" / "models.py").write_text("x = (" * 300_000)  # over the module limit
    os.mkfifo(folder / "ganlab" / "losses.py")  # would block a naive reader forever
    sub = assemble.load_submission(folder, ["02_critic.ipynb"])
    notes = "\n".join(sub.notes)
    assert "notebooks/02_critic.ipynb is too large (the grader reads at most" in notes
    assert "ganlab/models.py is too large (the grader reads at most 1 MB of a module" in notes
    assert "ganlab/losses.py is a link or not a regular file: graded as not implemented" in notes
    deep = folder / "ganlab" / "latent.py"
    deep.write_text("x = " + "(" * 5000 + ")" * 5000)
    sub = assemble.load_submission(folder, [])
    assert "ganlab/latent.py has a syntax error" in "\n".join(sub.notes)


def _broken_kit(tmp_path, how):
    kit = tmp_path / "kit"
    (kit / "notebooks").mkdir(parents=True)
    path = kit / "notebooks" / "02_critic.ipynb"
    if how == "fifo":
        os.mkfifo(path)
    elif how == "json":
        path.write_text('{"cells": [')
    else:
        nb = nbformat.v4.new_notebook()
        nb.cells.append(nbformat.v4.new_code_cell("x = 1"))
        data = json.loads(nbformat.writes(nb))
        del data["cells"][0]["id"]
        data["nbformat_minor"] = 4
        path.write_text(json.dumps(data))
    return kit


@pytest.mark.parametrize("how", ["fifo", "json", "no ids"])
def test_a_broken_canonical_notebook_is_one_error_line(tmp_path, monkeypatch, capsys, how):
    kit = _broken_kit(tmp_path, how)
    monkeypatch.setattr(commands, "REPO", kit)
    (tmp_path / "class" / "alice").mkdir(parents=True)
    status = cli.main(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "g.csv")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and "02_critic.ipynb" in err, err
    assert "Traceback" not in err and not (tmp_path / "g.csv").exists()


def test_check_finds_the_kit_from_inside_it(tmp_path):
    kit = tmp_path / "kit"
    (kit / "ganlab").mkdir(parents=True)
    (kit / "notebooks").mkdir()
    assert commands.kit_root(kit / "notebooks") == kit, "JupyterLab's cwd is notebooks/"
    assert commands.kit_root(kit) == kit, "Colab's set-up cell changes into the clone"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert commands.kit_root(elsewhere) in (REPO, elsewhere)


def test_the_moodle_gradebook_and_redacted_feedback():
    from ganlab.grading import engine, report

    checks = [
        assemble.Check("02.ipynb", "check-2-1", 1),
        assemble.Check("02.ipynb", "check-2-2", 2),
    ]
    bob = engine.Result("bob", notes=[f"saw {REPO}/solutions"])
    bob.checks = [engine.CheckResult(checks[0], True), engine.CheckResult(checks[1], False, "x")]
    alice = engine.Result("alice")
    alice.checks = [engine.CheckResult(c, True) for c in checks]
    users = {"bob": ("Bob Roe", "42")}  # bob's entry came from Moodle's download, alice's not
    graded_at = datetime(2026, 12, 7, 20, 0, tzinfo=timezone.utc)
    text = report.moodle_csv([bob, alice], checks, users, graded_at)
    assert text.splitlines() == [
        "Identifier,Full name,Grade,Last modified (grade),Feedback comments",
        ",alice,3,2026-12-07T20:00:00+00:00,3/3 points",
        "Participant 42,Bob Roe,1,2026-12-07T20:00:00+00:00,1/3 points; not passed: check-2-2",
    ]
    redact = report.Redactor([REPO])
    assert str(REPO) not in report.feedback(bob, redact)
    assert "<grader>/solutions" in report.csv_text([bob], checks, redact)
    bob.checks[1].hint = "y" * 10**6  # a hint the student's code made as long as it liked
    assert len(report.feedback(bob)) < report.MAX_FEEDBACK + 100


@pytest.mark.parametrize(
    "source, flagged",
    [
        ("import os\nos.popen('ls')", True),
        ("from subprocess import Popen", True),
        ("p = Popen(['ls'])", True),
        # A path is not a process: pytest-xdist's tmp folders are named popen-gw0, popen-gw1.
        ("open('/tmp/pytest-of-root/popen-gw0/grades.csv', 'w')", False),
    ],
)
def test_process_creation_flag_names_calls_not_paths(source, flagged):
    pattern = assemble.RED_FLAGS["process creation or signals"]
    assert bool(re.search(pattern, source)) is flagged, source


@pytest.mark.parametrize(
    "source, flagged",
    [
        ("!cat /etc/hostname", "shell escapes or magics"),
        ("x = 1\n  !pip install torch", "shell escapes or magics"),
        ("files = !ls /", "shell escapes or magics"),
        ("%%bash\ncat /etc/passwd", "shell escapes or magics"),
        ("%run -i other.py", "shell escapes or magics"),
        ("%load models_copy.py", "shell escapes or magics"),
        ("%%writefile ganlab/checks/__init__.py\nx = 1", "shell escapes or magics"),
        ("get_ipython().system('ls')", "shell escapes or magics"),
        ("from ganlab import _solutions", "the reference solutions"),
        ("import os\nos.environ['GANLAB_SOLUTIONS'] = '1'", "the reference solutions"),
        # What honest cells hold: operators, strings, the magics of timing and plotting.
        ("ok = a != b\nrest = 7 % 3\ns = '!'", None),
        ("%time train(3)\n%matplotlib inline\nfrom IPython.display import display", None),
    ],
)
def test_shell_escapes_magics_and_the_solutions_are_flagged(source, flagged):
    # Was: `!cmd`, `%%bash`, `%run` and ganlab._solutions in an exercise cell were not flagged:
    # a sandbox refuses them, but the row only said "failed", nothing for a human to look at.
    sub = assemble.Submission(name="s", folder=REPO, modules={"models.py": None})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source, id="ex-2-1")])
    want = [f"flagged for review: the code uses {flagged}"] if flagged else []
    assert assemble.red_flags(sub, {"02.ipynb": nb}) == want, source


def test_only_the_four_exercise_modules_reach_the_sandbox(tmp_path):
    # A student's ganlab/json.py, torch.py, checks/ or a torch.py beside the notebooks would
    # shadow the real ones if copied: the sandbox gets the grader's ganlab and four modules.
    folder = tmp_path / "s"
    (folder / "ganlab" / "checks").mkdir(parents=True)
    (folder / "notebooks").mkdir()
    for shadow in (
        "ganlab/json.py",
        "ganlab/torch.py",
        "ganlab/checks/__init__.py",
        "ganlab/models.py",
        "notebooks/torch.py",
        "torch.py",
        "json.py",
    ):
        (folder / shadow).write_text("raise SystemExit('shadowed')\n")
    sub = assemble.load_submission(folder, [])
    sandbox = assemble.build_sandbox(tmp_path / "box", commands.engine.PACKAGE, sub, {})
    shadowed = [p for p in sandbox.rglob("*.py") if "shadowed" in p.read_text()]
    assert [str(p.relative_to(sandbox)) for p in shadowed] == ["ganlab/models.py"]
    assert not (sandbox / "ganlab" / "json.py").exists() and not (sandbox / "torch.py").exists()


@pytest.mark.parametrize("kit", [REPO, REPO / "solutions"], ids=["stubs", "solutions"])
def test_the_kit_as_handed_out_raises_no_red_flag(kit):
    """Every student starts from the stubs and may end with the reference's code: a red flag
    in either (a docstring that says ``.eval()`` matches ``eval(``) flags the whole class."""
    modules = {
        f"{name}.py": (kit / "ganlab" / f"{name}.py").read_text()
        for name in ("models", "losses", "training", "latent")
    }
    books = {
        p.name: nbformat.read(str(p), as_version=4) for p in (kit / "notebooks").glob("*.ipynb")
    }
    sub = assemble.Submission(name="handed-out", folder=kit, modules=modules)
    assert assemble.red_flags(sub, books) == [], f"{kit}: the kit's own code is flagged"
