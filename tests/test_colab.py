"""Colab: badges point at the one configured repository, and the set-up cell works as on Colab."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from ganlab import colab

from colab_standin import calls, cell_for, course_origin, write_stand_in

REPO = Path(__file__).resolve().parent.parent
STUDENT = sorted((REPO / "notebooks").glob("*.ipynb"))
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/([^)\s\"']+)")


def test_every_colab_link_points_at_the_configured_repository_and_an_existing_notebook():
    places = [REPO / "README.md", *STUDENT]
    found = 0
    for place in places:
        for target in COLAB_LINK.findall(place.read_text()):
            found += 1
            prefix = f"{colab.REPOSITORY}/blob/{colab.BRANCH}/"
            assert target.startswith(prefix), (
                f"{place.name}: a Colab link points at {target}, not {prefix}..."
            )
            assert (REPO / target[len(prefix) :]).is_file(), (
                f"{place.name}: Colab link to a missing file {target}"
            )
    assert found >= len(STUDENT) + 1, "the README and every notebook need an Open in Colab badge"


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.name)
def test_notebook_starts_with_its_badge_and_the_setup_cell(path):
    cells = nbformat.read(str(path), as_version=4).cells
    assert cells[0].source == colab.badge(f"notebooks/{path.name}"), (
        f"{path.name}: badge missing or stale"
    )
    first_code = next(c for c in cells if c.cell_type == "code")
    assert first_code.source == colab.setup_cell_source(), (
        f"{path.name}: the first code cell is not the set-up cell"
    )
    assert first_code.metadata.get("cellView") == "form", (
        f"{path.name}: the set-up cell is not collapsed to a form in Colab (cellView: form)"
    )
    assert first_code.metadata.get("jupyter", {}).get("source_hidden") is True, (
        f"{path.name}: the set-up cell's code is not collapsed in JupyterLab"
    )


def test_setup_cell_is_a_short_colab_form():
    lines = colab.setup_cell_source().splitlines()
    assert lines[0].startswith("#@title "), (
        "Colab shows a form only for a cell opening with #@title"
    )
    assert len(lines) <= 30, f"the set-up cell has {len(lines)} lines; its work is in finish_setup"
    assert "#@param" in lines[1], "KEEP_ON_DRIVE should be a check box of the form"
    assert all(len(line) <= 100 for line in lines)


# Python where no package named `google` exists at all (a plain `pip install .`, the conda
# environment): a meta-path finder that refuses `google` as if it were not installed.
NO_GOOGLE = (
    "import sys, importlib.abc\n"
    "class _NoGoogle(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'google' or name.startswith('google.'):\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
    "sys.meta_path.insert(0, _NoGoogle())\n"
)


@pytest.mark.parametrize("google", ["absent", "present"])
def test_setup_cell_does_nothing_off_colab(google):
    # "absent": the first failure of issue 9, importlib.util.find_spec("google.colab") raised
    # ModuleNotFoundError wherever no `google` package (e.g. protobuf) happened to be installed.
    code = (
        (NO_GOOGLE if google == "absent" else "")
        + colab.setup_cell_source()
        + "\nimport json, os; print(json.dumps([os.environ.get('GANLAB_RUNS_DIR'), os.getcwd()]))"
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "GANLAB_RUNS_DIR"},
    )
    assert proc.returncode == 0, f"the set-up cell fails off Colab:\n{proc.stderr[-2000:]}"
    assert json.loads(proc.stdout.splitlines()[-1]) == [None, str(REPO)], (
        "off Colab the cell must neither redirect runs to Drive nor change folder"
    )
    assert time.perf_counter() - start < 5, "off Colab the set-up cell must be instant"


def test_off_colab_a_kernel_without_the_kit_is_told_so_by_the_set_up_cell():
    # JupyterLab or VS Code started from another Python (a global install, conda's base): the
    # set-up cell used to pass silently and the next cell failed with a bare "No module named
    # 'ganlab'". The cell says which Python the kernel runs and what to pick instead.
    hide = NO_GOOGLE.replace("name == 'google' or name.startswith('google.')", "name == 'ganlab'")
    proc = subprocess.run(
        [sys.executable, "-c", NO_GOOGLE + hide + colab.setup_cell_source()],
        capture_output=True,
        text=True,
        cwd=REPO.parent,
    )
    assert proc.returncode != 0, "the set-up cell passed in a Python without the kit"
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: no ganlab in this kernel's Python"), last
    assert sys.executable in last and "make lab" in last, last


def _venv_with_torch(path):
    """A fresh virtual environment in which torch is already installed (this suite's, by .pth)."""
    import torch

    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "preinstalled.pth").write_text(str(Path(torch.__file__).parent.parent) + "\n")
    return python, site


def _run(python, code, cwd, env):
    proc = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "ERROR" not in out and "dependency resolver" not in out, (
        f"the set-up cell printed a pip error:\n{out[-3000:]}"
    )
    return proc.stdout


TRAIN = (
    "\nimport ganlab, torch\nfrom ganlab import environment\n"
    "from ganlab.config import TrainConfig\nfrom ganlab.trainer import Trainer\n"
    "cfg = TrainConfig(name='nb', out_dir=str(environment.runs_dir() / 'nb'), steps=2, ngf=8,\n"
    "                  ndf=8, batch_size=8, progress=False, gif=False)\n"
    "Trainer(cfg).fit()\n"
)
WHERE = (
    "\nimport ganlab, torch, os\nprint('RESULT', ganlab.__file__, torch.__file__, os.getcwd())\n"
)


def _env(tmp_path, drive):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GANLAB_", "PYTHONPATH"))}
    env.update(
        PYTHONPATH=str(tmp_path / "standin"),
        COLAB_STANDIN_LOG=str(tmp_path / "colab.log"),
        COLAB_STANDIN_DRIVE=str(drive),
        GANLAB_SOLUTIONS="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        IPYTHONDIR=str(
            tmp_path / "ipython"
        ),  # the runtime's ~/.ipython: the set-up cell writes there
    )
    return env


def _drive_runtime(tmp_path, venv="venv", content="content"):
    """A Colab-like runtime with Drive: ``(origin, drive, env, python, content)``, the course
    repository, Drive's folder, the environment, the runtime's Python and its empty /content."""
    origin = course_origin(tmp_path / "origin")
    write_stand_in(tmp_path / "standin")
    drive = tmp_path / "drive"
    env = _env(tmp_path, drive)
    python, _ = _venv_with_torch(tmp_path / venv)
    (tmp_path / content).mkdir()
    return origin, drive, env, python, tmp_path / content


@pytest.mark.slow
def test_setup_cell_survives_restart_session_without_a_namespace_package_trap(tmp_path):
    # Drive off: the kit is cloned to /content/ganlab, and /content is the working directory,
    # so after Restart session `import ganlab` could find that folder as a namespace package.
    import torch

    origin = course_origin(tmp_path / "origin")
    write_stand_in(tmp_path / "standin")
    python, site = _venv_with_torch(tmp_path / "venv")
    content = tmp_path / "content"
    content.mkdir()
    cell = cell_for(colab.setup_cell_source(), origin, content, keep_on_drive=False)
    env = _env(tmp_path, tmp_path / "drive")
    torch_record = sorted(
        p.name for p in Path(torch.__file__).parent.parent.glob("torch-*.dist-info")
    )
    first = _run(python, cell + TRAIN + WHERE, content, env)
    kit = content / "ganlab"
    assert "installed the kit" in first, first
    result = first.split("RESULT ")[-1].split()
    assert result[0] == str(kit / "ganlab" / "__init__.py"), f"imported {result[0]}"
    assert result[1].startswith(str(Path(torch.__file__).parent)), "torch was replaced"
    assert not list(site.glob("torch*")), "pip installed a torch into the fresh environment"
    assert (
        sorted(p.name for p in Path(torch.__file__).parent.parent.glob("torch-*.dist-info"))
        == torch_record
    )
    assert result[2] == str(kit / "notebooks")
    assert (kit / "notebooks" / "runs" / "nb" / "checkpoint.pt").is_file()

    # Restart session: same disk, fresh process in /content. A cell that imports the kit
    # before the set-up cell runs again, then the set-up cell, which has nothing left to do.
    restarted = _run(python, "from ganlab import checks, environment" + WHERE, content, env)
    assert restarted.split("RESULT ")[-1].split()[0] == str(kit / "ganlab" / "__init__.py"), (
        "after a restart `ganlab` is not the installed kit (namespace package?)"
    )
    again = _run(python, cell + WHERE, content, env)
    assert "installed the kit" not in again and "added" not in again, (
        f"the set-up cell re-installed after a restart:\n{again}"
    )
    assert again.split("RESULT ")[-1].split()[0] == str(kit / "ganlab" / "__init__.py")
    assert ["output.enable_custom_widget_manager"] in calls(tmp_path / "colab.log"), (
        "ipywidgets 8 needs Colab's custom widget manager"
    )


@pytest.mark.slow
def test_with_drive_on_a_new_runtime_finds_the_students_edited_kit_and_runs(tmp_path):
    origin, drive, env, python, _ = _drive_runtime(tmp_path, "venv1", "content1")
    cell = cell_for(colab.setup_cell_source(), origin, tmp_path / "content1")
    first = _run(python, cell + TRAIN + WHERE, tmp_path / "content1", env)
    kit = drive / "ganlab"
    imported = Path(first.split("RESULT ")[-1].split()[0]).resolve()
    assert imported == kit / "ganlab" / "__init__.py", (
        f"with Drive on, the student's copy of the kit must live in Drive, not {imported}"
    )
    assert (drive / "ganlab-runs" / "nb" / "checkpoint.pt").is_file(), "runs must go to Drive"
    assert ["drive.mount", str(tmp_path / "content1" / "drive")] in calls(tmp_path / "colab.log")
    latent = kit / "ganlab" / "latent.py"
    latent.write_text(latent.read_text() + "\nSTUDENT_EDIT = 'kept'\n")

    # A disconnect: a new runtime (new environment, empty /content), the same Drive. The
    # course repository is not even reachable: nothing needs cloning.
    shutil.rmtree(origin)
    python, _ = _venv_with_torch(tmp_path / "venv2")
    (tmp_path / "content2").mkdir()
    cell = cell_for(colab.setup_cell_source(), origin, tmp_path / "content2")
    code = (
        cell
        + "\nfrom ganlab import latent, environment\nprint('EDIT', latent.STUDENT_EDIT, environment.runs_dir())"
    )
    env.pop("GANLAB_SOLUTIONS")  # the student's own ganlab/latent.py, as edited in Drive
    second = _run(python, code, tmp_path / "content2", env)
    assert "EDIT kept" in second, "the student's edit to ganlab/latent.py was lost"
    assert second.split()[-1] == str(drive / "ganlab-runs")


@pytest.mark.slow
def test_ticking_keep_on_drive_and_running_the_cell_again_switches_to_the_drive_kit(tmp_path):
    # The student ran the set-up cell with Drive off, then ticked KEEP_ON_DRIVE and ran it again
    # in the same session: from then on the notebook must use (and autoreload) the kit in Drive,
    # the files they now edit, not the clone in /content that was imported first.
    origin, drive, env, python, content = _drive_runtime(tmp_path)
    env.pop("GANLAB_SOLUTIONS")
    off = cell_for(colab.setup_cell_source(), origin, content, keep_on_drive=False)
    on = cell_for(colab.setup_cell_source(), origin, content)
    code = (
        off
        + "\nfrom ganlab import latent\n"
        + on
        + "\nimport ganlab\nfrom ganlab import latent\n"
        + "print('RESULT', ganlab.__file__, latent.__file__, getattr(latent, 'STUDENT_EDIT', '-'))"
    )
    # The student's edit, in Drive's copy only (cloned there beforehand for the test to edit).
    kit = drive / "ganlab"
    subprocess.run(["git", "clone", "-q", str(origin), str(kit)], check=True)
    latent = kit / "ganlab" / "latent.py"
    latent.write_text(latent.read_text() + "\nSTUDENT_EDIT = 'in-drive'\n")
    out = _run(python, code, content, env)
    package, module, edit = out.split("RESULT ")[-1].split()
    assert Path(package).resolve() == kit / "ganlab" / "__init__.py", (
        f"after switching to Drive the notebook still imports {package}"
    )
    assert Path(module).resolve() == latent.resolve() and edit == "in-drive", out[-2000:]


@pytest.mark.slow
def test_after_restart_session_a_later_cell_still_finds_the_runs_in_drive(tmp_path):
    # Runtime -> Restart session, then the student runs a later cell (or the visible `setup`
    # cell) without the hidden set-up cell first. The disk is kept, os.environ and os.chdir are
    # not: before, runs went to /content/runs (lost at a disconnect, and notebook 06 could not
    # find notebook 05's run in Drive) and the hand-in missed the notebooks in Drive.
    origin, drive, env, python, content = _drive_runtime(tmp_path)
    _run(python, cell_for(colab.setup_cell_source(), origin, content), content, env)
    kit = drive / "ganlab"

    notebook = nbformat.read(str(REPO / "notebooks" / "05_training.ipynb"), as_version=4)
    setup = next(c.source for c in notebook.cells if c.get("id") == "setup")
    probe = (
        "\nimport os\nfrom ganlab import environment\n"
        "print('RESULT', environment.runs_dir(), os.getcwd(), os.environ.get('GANLAB_NOTEBOOKS_DIR'),"
        " sep='|')"
    )
    # A new kernel: IPython (magics, start-up files) in the same runtime, started in /content.
    proc = subprocess.run(
        [str(python), "-m", "IPython", "--colors=NoColor", "-c", setup + probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=content,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "RESULT" in out, out[-3000:]
    runs, cwd, notebooks = out.split("RESULT|")[-1].splitlines()[0].split("|")
    assert Path(runs) == kit.parent / "ganlab-runs", f"after a restart runs go to {runs}"
    assert Path(cwd) == kit / "notebooks", f"after a restart the notebook works in {cwd}"
    assert Path(notebooks) == kit.parent / "Colab Notebooks"


def test_the_start_up_file_does_nothing_off_colab(tmp_path, monkeypatch):
    # The file stays in ~/.ipython; on a laptop (or a test machine) every later kernel runs it.
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    path = colab.remember_session(REPO, keep_on_drive=True)
    assert path.parent == tmp_path / "ipython" / "profile_default" / "startup"
    code = (
        NO_GOOGLE
        + path.read_text()
        + "\nimport os\nprint(os.getcwd(), os.environ.get('GANLAB_RUNS_DIR'),"
        + " [n for n in dir() if 'ganlab' in n])"
    )
    env = {k: v for k, v in os.environ.items() if k != "GANLAB_RUNS_DIR"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [str(tmp_path), "None", "[]"], proc.stdout


def test_the_start_up_file_on_colab_restores_the_folder_and_the_runs_for_any_path(
    tmp_path, monkeypatch
):
    # Drive paths have spaces ("Colab Notebooks", "My Drive" in a shortcut), and a student's
    # folder can hold a quote: the file is Python, so the paths are written as literals.
    kit = tmp_path / "My Drive" / "Ada's ganlab"
    (kit / "ganlab").mkdir(parents=True)
    (kit / "ganlab" / "colab.py").write_text("")  # the kit is there (its code: this checkout's)
    (kit / "notebooks").mkdir()
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    path = colab.remember_session(kit, keep_on_drive=True)
    standin = write_stand_in(tmp_path / "standin")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANLAB_")}
    env["PYTHONPATH"] = f"{standin}{os.pathsep}{REPO}"
    code = path.read_text() + (
        "\nimport os\nfrom ganlab import environment\n"
        "print(os.getcwd(), environment.runs_dir(), os.environ['GANLAB_NOTEBOOKS_DIR'], sep='|')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().split("|") == [
        str(kit / "notebooks"),
        str(kit.parent / "ganlab-runs"),
        str(kit.parent / "Colab Notebooks"),
    ], proc.stdout


def test_the_stand_in_keeps_the_start_up_file_out_of_this_machines_home(tmp_path):
    # Tests that run the set-up cell without an IPYTHONDIR of their own (tests/test_browser.py)
    # must not leave a start-up file in ~/.ipython for every later kernel of this machine.
    standin = write_stand_in(tmp_path / "standin")
    env = {k: v for k, v in os.environ.items() if k != "IPYTHONDIR"}
    env.update(PYTHONPATH=f"{standin}{os.pathsep}{REPO}", COLAB_STANDIN_LOG=str(tmp_path / "log"))
    code = "import google.colab\nfrom ganlab import colab\nprint(colab.remember_session('/k'))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Path(proc.stdout.strip()).is_relative_to(tmp_path / "ipython"), proc.stdout
