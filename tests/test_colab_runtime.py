"""Every notebook on a Colab-like runtime, through its set-up cell (issue 9).

The environment (.ci/colab-env) has Colab's Python (3.12) and versions: torch preinstalled,
ipywidgets 7.7.1, IPython 7.34, ipykernel 6.17, notebook 6.5, nbformat 5.x; no nbval, no
JupyterLab, no ganlab. A stand-in ``google.colab`` maps Drive to a folder. As on Colab, every
notebook gets a runtime of its own (here: the kit and what the cell added are uninstalled, and
/content is new) and only Drive carries over; notebook 01 runs after a *Restart session* of
notebook 00's runtime. Then the student checks and hands in, with the notebooks in Drive.
"""

import os
import shutil
import subprocess
import zipfile

import nbformat
import pytest

from ganlab import colab, instructor, submission

from colab_standin import calls, cell_for, course_origin, write_stand_in
from runtime_env import (
    REPO,
    built_env,
    cell,
    errors,
    held,
    kernel_spec,
    read,
    run_notebook,
    text_of,
)

pytestmark = [pytest.mark.slow, pytest.mark.runtime_env]
NAMES = sorted(p.name for p in (REPO / "solutions" / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RUNTIME_DEPENDENT = ("ganlab", "torchmetrics", "lightning-utilities")


@pytest.fixture(scope="module")
def colab_run(tmp_path_factory):
    venv = built_env(".venv-colab", "GANLAB_COLAB_ENV", ".ci/colab-env")
    if not (REPO / "solutions" / "ganlab").is_dir():
        pytest.skip("needs the instructor's copy (solutions/)")
    with held(venv):  # test_browser.py's Notebook 6.5 installs and uninstalls the kit there too
        yield from _runtimes(venv, tmp_path_factory.mktemp("colab"))


def _runtimes(venv, tmp):
    """Run every notebook, each in a new runtime, then yield what the tests look at."""
    python = venv / "bin" / "python"
    origin = course_origin(tmp / "origin")
    write_stand_in(tmp / "standin")
    drive = tmp / "drive"
    env = {
        "PYTHONPATH": str(tmp / "standin"),
        "COLAB_STANDIN_LOG": str(tmp / "colab.log"),
        "COLAB_STANDIN_DRIVE": str(drive),
        "GANLAB_SOLUTIONS": "1",  # the notebooks' cells are the completed ones; so are the modules
        "GANLAB_QUICK": "1",
        "PIP_NO_INDEX": "1",  # what the cell installs comes from the environment's wheelhouse
        "PIP_FIND_LINKS": str(venv / "wheelhouse"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # ipykernel 6.17's debugger warns on every start
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "IPYTHONDIR": str(
            tmp / "ipython"
        ),  # the runtime's ~/.ipython: the set-up cell writes there
    }
    os.environ["JUPYTER_PATH"] = str(tmp / "jupyter")
    kernel = kernel_spec(tmp / "jupyter", python, env, name="colab-like")

    def new_runtime(n):
        subprocess.run(
            [str(python), "-m", "pip", "uninstall", "-y", "-q", *RUNTIME_DEPENDENT],
            capture_output=True,
        )
        shutil.rmtree(tmp / "ipython", ignore_errors=True)  # a new runtime's disk: no start-up file
        content = tmp / f"content{n}"
        content.mkdir()
        return content

    runs, content = {}, None
    for n, name in enumerate(NAMES):
        if name != "01_data.ipynb":  # 01: Restart session in 00's runtime (same disk)
            content = new_runtime(n)
        nb = instructor.derive_notebook(
            read(REPO / "solutions" / "notebooks" / name), name, keep_solution=True
        )
        cell(nb, "colab-setup").source = cell_for(colab.setup_cell_source(), origin, content)
        runs[name] = run_notebook(nb, kernel, content)
    # The student saved each notebook to Drive from Colab: "Copy of NN_....ipynb".
    saved = drive / "Colab Notebooks"
    saved.mkdir(parents=True)
    for name, nb in runs.items():
        (saved / f"{submission.COLAB_COPY}{name}").write_text(instructor.notebook_text(nb))
    yield {
        "runs": runs,
        "drive": drive,
        "kit": drive / "ganlab",
        "python": python,
        "kernel": kernel,
        "origin": origin,
        "env": env,
        "log": tmp / "colab.log",
        "content": new_runtime(len(NAMES)),
    }
    subprocess.run([str(python), "-m", "pip", "uninstall", "-y", "-q", *RUNTIME_DEPENDENT])


def test_every_notebook_runs_through_its_set_up_cell(colab_run):
    failed = {name: errors(nb) for name, nb in colab_run["runs"].items() if errors(nb)}
    assert not failed, f"cells failed on the Colab-like runtime: {failed}"


def test_set_up_cell_installs_quietly_without_touching_torch(colab_run):
    for name, nb in colab_run["runs"].items():
        out = text_of(cell(nb, "colab-setup"))
        assert "ERROR" not in out and "resolver" not in out, f"{name}: pip complained:\n{out}"
        assert f"the kit in {colab_run['kit'].resolve()}" in out, f"{name}: {out}"
    freeze = subprocess.run(
        [str(colab_run["python"]), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
    ).stdout
    assert "torch==2.14.1" in freeze, "the preinstalled torch was replaced"
    assert "nbval" not in freeze and "jupyterlab=" not in freeze


def test_restart_session_reinstalls_nothing(colab_run):
    out = text_of(cell(colab_run["runs"]["01_data.ipynb"], "colab-setup"))
    assert "installed the kit" not in out and "added" not in out, out
    fresh = text_of(cell(colab_run["runs"]["02_critic.ipynb"], "colab-setup"))
    assert "installed the kit" in fresh, "a new runtime must install the kit again"


def test_environment_check_accepts_colabs_ipywidgets_7(colab_run):
    report = text_of(cell(colab_run["runs"]["00_setup.ipynb"], "env"))
    assert "ipywidgets: 7.7.1" in report, report


def test_latent_explorer_displays_under_ipywidgets_7(colab_run):
    explorer = cell(colab_run["runs"]["06_latent_space.ipynb"], "explorer")
    views = [
        out["data"]["application/vnd.jupyter.widget-view+json"]
        for out in explorer.outputs
        if "application/vnd.jupyter.widget-view+json" in out.get("data", {})
    ]
    assert views and views[0]["model_id"], f"no widget view with a model id: {explorer.outputs}"
    # ipywidgets 7.7.1 is Colab's own: its custom widget manager is only for ipywidgets 8.
    assert ["output.enable_custom_widget_manager"] not in calls(colab_run["log"])


def test_the_kit_and_the_runs_live_in_drive(colab_run):
    assert (colab_run["kit"] / "ganlab" / "colab.py").is_file()
    assert (colab_run["drive"] / "ganlab-runs" / "notebook05" / "checkpoint.pt").is_file()
    assert not list(colab_run["drive"].glob("ganlab.partial")), "a half-finished clone was left"


def test_new_runtime_same_drive_keeps_the_students_module_edits(colab_run):
    latent = colab_run["kit"] / "ganlab" / "latent.py"
    original = latent.read_text()
    latent.write_text(original + "\nSTUDENT_EDIT = 'kept'\n")
    try:
        shutil.move(colab_run["origin"], colab_run["origin"].with_name("gone"))  # no clone needed
        nb = read(REPO / "notebooks" / "00_setup.ipynb")
        setup = cell(nb, "colab-setup")
        setup.source = cell_for(
            colab.setup_cell_source(), colab_run["origin"], colab_run["content"]
        )
        # (GANLAB_SOLUTIONS=1 here: read the student's file from the kit that was imported)
        probe = nbformat.v4.new_code_cell(
            "import ganlab, pathlib\n"
            "print('kept' in (pathlib.Path(ganlab.__file__).parent / 'latent.py').read_text())"
        )
        nb.cells = [setup, probe]
        run_notebook(nb, colab_run["kernel"], colab_run["content"])
        assert not errors(nb), errors(nb)
        assert text_of(nb.cells[1]).strip() == "True", "the edit in Drive was lost"
    finally:
        latent.write_text(original)
        shutil.move(colab_run["origin"].with_name("gone"), colab_run["origin"])


def test_hand_in_from_colab_finds_the_notebooks_in_drive(colab_run):
    nb = read(REPO / "notebooks" / "00_setup.ipynb")
    setup = cell(nb, "colab-setup")
    setup.source = cell_for(colab.setup_cell_source(), colab_run["origin"], colab_run["content"])
    hand_in = cell(nb, "hand-in")
    hand_in.source = "from ganlab import submission\nsubmission.hand_in()"
    nb.cells = [setup, hand_in]
    run_notebook(nb, colab_run["kernel"], colab_run["content"])
    assert not errors(nb), errors(nb)
    out = colab_run["kit"] / submission.DEFAULT_OUT
    names = set(zipfile.ZipFile(out).namelist())
    assert {f"notebooks/{n}" for n in NAMES} <= names, names
    assert ["files.download", str(out.resolve())] in calls(colab_run["log"]), (
        "on Colab the hand-in cell should start the download"
    )


def test_ganlab_check_sees_the_notebooks_in_drive(colab_run):
    kit = colab_run["kit"]
    for module in instructor.EXERCISE_MODULES:  # the student finished the module exercises
        shutil.copy(REPO / "solutions" / "ganlab" / module, kit / "ganlab" / module)
    env = {**os.environ, **colab_run["env"], "GANLAB_SOLUTIONS": "0"}
    proc = subprocess.run(
        [
            str(colab_run["python"]),
            "-m",
            "ganlab",
            "check",
            "--notebooks",
            str(colab_run["drive"] / "Colab Notebooks"),
        ],
        cwd=kit / "notebooks",  # where the set-up cell leaves the notebook
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for failure in ("not run (", "failed before it"):  # a kernel or set-up cell that failed
        assert failure not in proc.stdout, proc.stdout[-3000:]


def test_ganlab_check_runs_the_notebooks_on_colabs_python_and_ipython():
    """`!ganlab check` on Colab starts a kernel of its own for each notebook: Python 3.12 with
    IPython 7.34, whose `%load_ext autoreload` (every notebook's second cell, before
    `from ganlab import checks`) imports the `imp` module Python 3.12 removed. The set-up cell
    gives the student's kernel a stand-in; the grader's kernels need one too, or every check of
    every notebook scores 0 with "name 'checks' is not defined"."""
    venv = built_env(".venv-colab", "GANLAB_COLAB_ENV", ".ci/colab-env")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GANLAB_", "PYTHON"))}
    env["PYTHONPATH"] = str(REPO)  # the kit as the set-up cell installs it (a path entry)
    # Not held(venv): the module's colab_run fixture holds it until the module ends (a second
    # flock here would wait forever), and this check installs and uninstalls nothing.
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "ganlab", "check", str(REPO), "--notebook", "00"],
        cwd=REPO / "notebooks",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "No module named 'imp'" not in proc.stdout, proc.stdout[-3000:]
    assert "failed before it" not in proc.stdout, proc.stdout[-3000:]


def test_after_restart_session_the_visible_set_up_cell_alone_works(tmp_path):
    """Runtime -> Restart session, then the student runs the notebook's visible `setup` cell
    (%load_ext autoreload first), not the hidden Colab form above it. Colab's Python 3.12 with
    IPython 7.34: autoreload imports `imp`, and the stand-in the set-up cell gave the last kernel
    is gone with it. The start-up file the set-up cell wrote brings it back in every new kernel."""
    venv = built_env(".venv-colab", "GANLAB_COLAB_ENV", ".ci/colab-env")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GANLAB_", "PYTHON"))}
    standin = write_stand_in(
        tmp_path / "standin"
    )  # google.colab: the start-up file acts on Colab only
    env.update(
        PYTHONPATH=f"{standin}{os.pathsep}{REPO}",
        IPYTHONDIR=str(tmp_path / "ipython"),
        GANLAB_SOLUTIONS="1",
    )
    python = str(venv / "bin" / "python")
    # What finish_setup leaves on the runtime's disk (without installing: the kit is on PYTHONPATH).
    subprocess.run(
        [python, "-c", f"from ganlab import colab; colab.remember_session({str(REPO)!r}, False)"],
        env=env,
        check=True,
    )
    setup = cell(read(REPO / "notebooks" / "02_critic.ipynb"), "setup").source
    probe = "\nimport os\nprint('RESULT', os.getcwd(), checks.__name__)"
    proc = subprocess.run(
        [python, "-m", "IPython", "--colors=NoColor", "-c", setup + probe],
        cwd=tmp_path,  # a new kernel starts in /content
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert "No module named 'imp'" not in out, out[-3000:]
    assert f"RESULT {REPO / 'notebooks'} ganlab.checks" in out, out[-3000:]
