"""The notebooks under nbval: the solutions pass every cell; the stubs fail only at graded cells."""

import re
from pathlib import Path

import nbformat
import pytest

from nbrun import run_nbval

REPO = Path(__file__).resolve().parent.parent
STUDENT = sorted((REPO / "notebooks").glob("*.ipynb"))
SOLUTION = sorted((REPO / "solutions" / "notebooks").glob("*.ipynb"))
ANSI = re.compile(r"\x1b\[[0-9;]*m|#x1B\[[0-9;]*m")
needs_solutions = pytest.mark.skipif(
    not SOLUTION, reason="a student copy has no solutions/notebooks"
)


def _last_line(message):
    lines = [line for line in ANSI.sub("", message).strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.fixture(scope="module")
def solution_cells(tmp_path_factory):
    cells, _ = run_nbval(SOLUTION, solutions=True, tmp_path=tmp_path_factory.mktemp("nbval"))
    return cells


@pytest.fixture(scope="module")
def stub_cells(tmp_path_factory):
    cells, _ = run_nbval(STUDENT, solutions=False, tmp_path=tmp_path_factory.mktemp("nbval"))
    return cells


def test_there_are_notebooks():
    assert len(STUDENT) >= 5, (
        f"expected notebooks 00-04 at least, found {[p.name for p in STUDENT]}"
    )


@pytest.mark.slow
@needs_solutions
@pytest.mark.parametrize("notebook", [p.name for p in SOLUTION])
def test_solution_notebook_passes_every_cell(notebook, solution_cells):
    failed = [
        f"cell {c.index} ({c.cell_id}): {c.outcome}: {_last_line(c.message)}"
        for (nb, _), c in solution_cells.items()
        if nb == notebook and c.outcome != "passed"
    ]
    assert not failed, (
        f"solutions/notebooks/{notebook} under nbval with GANLAB_SOLUTIONS=1:\n" + "\n".join(failed)
    )


@pytest.mark.slow
@pytest.mark.parametrize("notebook", [p.name for p in STUDENT])
def test_stub_notebook_fails_only_at_graded_cells_with_the_stubs_error(notebook, stub_cells):
    problems = []
    for (nb, _), c in stub_cells.items():
        if nb != notebook:
            continue
        if c.graded and c.outcome != "failed":
            problems.append(
                f"graded cell {c.cell_id} {c.outcome} on the stubs: it checks nothing the student writes"
            )
        if (
            c.graded
            and c.outcome == "failed"
            and "NotImplementedError" not in _last_line(c.message)
        ):
            problems.append(
                f"graded cell {c.cell_id} failed for another reason: {_last_line(c.message)}"
            )
        if not c.graded and "raises-exception" in c.tags:  # a demo of what the check before tested
            if c.outcome == "failed" and "NotImplementedError" not in _last_line(c.message):
                problems.append(
                    f"demo cell {c.cell_id} failed for another reason: {_last_line(c.message)}"
                )
        elif not c.graded and c.outcome != "passed":
            problems.append(f"ungraded cell {c.cell_id} {c.outcome}: {_last_line(c.message)}")
    assert not problems, f"notebooks/{notebook} on the stubs:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", STUDENT + SOLUTION, ids=lambda p: str(p.relative_to(REPO)))
def test_notebook_structure(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    ids = [c.get("id") for c in nb.cells]
    assert len(set(ids)) == len(ids) and all(ids), (
        f"{path.name}: every cell needs a unique id (grading uses them)"
    )
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and "nbval-check-output" not in tags:
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name} cell {cell.id} stores outputs: strip them (`make stubs` does for notebooks/)"
            )
        if "graded" in tags:
            points = [t for t in tags if re.fullmatch(r"points-\d+", t)]
            assert len(points) == 1, (
                f"{path.name} graded cell {cell.id} needs exactly one points-N tag"
            )
            assert "checks.check_" in cell.source, (
                f"{path.name} graded cell {cell.id} calls no check"
            )
            assert cell.id.startswith("check-"), (
                f"{path.name} graded cell ids start with 'check-': {cell.id}"
            )
            calls = re.findall(r"\bchecks\.check_\w+\(", cell.source)
            assert len(calls) == 1 and cell.source.rstrip().endswith(")"), (
                f"{path.name} graded cell {cell.id} must hold exactly one check call and end with "
                "it: demos belong in the next cell, so an error there cannot cost the check's points"
            )


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: str(p.relative_to(REPO)))
def test_student_check_cells_are_protected_in_jupyterlab(path):
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if "graded" in cell.metadata.get("tags", []):
            assert (
                cell.metadata.get("editable") is False and cell.metadata.get("deletable") is False
            ), (
                f"{path.name} check cell {cell.id} is not protected: `make stubs` sets "
                '"editable": false and "deletable": false on graded cells'
            )


def test_a_notebook_whose_kernel_did_not_start_is_run_again(monkeypatch, tmp_path):
    """nbrun's retry: only the notebook with no kernel runs again, and its second result counts."""
    import nbrun

    calls = []

    def fake(notebooks, solutions, tmp, pythonpath, timeout):
        calls.append([p.name for p in notebooks])
        first = len(calls) == 1
        cells = {}
        for p in notebooks:
            hung = first and p.name == "b.ipynb"
            message = "RuntimeError: Kernel didn't respond in 180 seconds" if hung else ""
            outcome = "failed" if hung else "passed"
            cells[(p.name, 0)] = nbrun.CellResult(p.name, 0, "c", [], outcome, message)
        return cells, None

    monkeypatch.setattr(nbrun, "_nbval", fake)
    cells, _ = nbrun.run_nbval([tmp_path / "a.ipynb", tmp_path / "b.ipynb"], False, tmp_path)
    assert calls == [["a.ipynb", "b.ipynb"], ["b.ipynb"]], f"nbval runs: {calls}"
    assert {k: c.outcome for k, c in cells.items()} == {
        ("a.ipynb", 0): "passed",
        ("b.ipynb", 0): "passed",
    }


def test_nbclient_runs_start_again_only_when_the_kernel_did_not_start():
    import nbrun

    class Client:
        made = 0

        def __init__(self, error):
            Client.made += 1
            self.error = error if Client.made == 1 else None

        def execute(self):
            if self.error:
                raise self.error

    nbrun.execute_starting_again(lambda: Client(RuntimeError("Kernel didn't respond in 60 s")))
    assert Client.made == 2, "a kernel that did not start should be started once more"
    Client.made = 0
    with pytest.raises(RuntimeError, match="something else"):
        nbrun.execute_starting_again(lambda: Client(RuntimeError("something else")))
    assert Client.made == 1, "any other error must not be retried"


@pytest.mark.slow
def test_figures_show_even_where_mplbackend_says_agg(monkeypatch):
    """Docker and JupyterHub images, CI and some conda set-ups export MPLBACKEND=Agg; a kernel
    started there draws every figure into nothing, silently. The set-up cell must bring figures
    back into the notebook (notebook 01's grid of real digits: the first picture a student sees)."""
    nbclient = pytest.importorskip("nbclient")
    from nbrun import execute_starting_again

    path = next(p for p in STUDENT if p.name.startswith("01_"))
    source = nbformat.read(str(path), as_version=4)
    by_id = {c.get("id"): c for c in source.cells}
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(by_id[i].source) for i in ("setup", "load", "show-real")]
    )
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the kernel inherits it
    execute_starting_again(
        lambda: nbclient.NotebookClient(
            nb, timeout=300, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}
        )
    )
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{o.ename}: {o.evalue}" for o in errors]
    pictures = [o for o in nb.cells[-1].outputs if "image/png" in o.get("data", {})]
    assert pictures, "under MPLBACKEND=Agg the grid of real digits did not show in the notebook"
