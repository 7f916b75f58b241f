"""Every notebook in a plain install: `pip install .` with no extras (.ci/plain-env), so no
nbval, no JupyterLab and no `google` package, which the dev extra happens to bring (issue 9)."""

import subprocess

import pytest

from ganlab import instructor

from runtime_env import REPO, built_env, errors, kernel_spec, read, run_notebook

pytestmark = [pytest.mark.slow, pytest.mark.runtime_env]
NAMES = sorted(p.name for p in (REPO / "solutions" / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def plain(tmp_path_factory, monkeypatch_module):
    venv = built_env(".venv-plain", "GANLAB_PLAIN_ENV", ".ci/plain-env")
    if not (REPO / "solutions" / "ganlab").is_dir():
        pytest.skip("needs the instructor's copy (solutions/)")
    tmp = tmp_path_factory.mktemp("plain")
    env = {
        "GANLAB_SOLUTIONS": "1",  # the completed notebooks, with the reference modules
        "GANLAB_SOLUTIONS_DIR": str(REPO / "solutions" / "ganlab"),  # not in a plain install
        "GANLAB_QUICK": "1",
        "GANLAB_RUNS_DIR": str(tmp / "runs"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    monkeypatch_module.setenv("JUPYTER_PATH", str(tmp / "jupyter"))
    return venv / "bin" / "python", kernel_spec(tmp / "jupyter", venv / "bin" / "python", env), tmp


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_the_plain_install_has_no_google_package_and_no_dev_tools(plain):
    python, _, _ = plain
    for name in ("google", "nbval", "jupyterlab"):
        proc = subprocess.run([str(python), "-c", f"import {name}"], capture_output=True)
        assert proc.returncode != 0, f"{name} is importable: this is not a plain install"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_in_a_plain_install(plain, name):
    _, kernel, tmp = plain
    nb = instructor.derive_notebook(
        read(REPO / "solutions" / "notebooks" / name), name, keep_solution=True
    )
    work = tmp / name.removesuffix(".ipynb")
    work.mkdir()
    run_notebook(nb, kernel, work)
    assert not errors(nb), f"{name} fails after `pip install .`: {errors(nb)}"


@pytest.fixture(scope="module")
def own_kit(tmp_path_factory):
    """A student's folder as `pip install .` users have it: their clone of the kit (the package
    with the exercise stubs, the notebooks), in a path with a space and an accent."""
    import shutil

    kit = tmp_path_factory.mktemp("kit") / "mon cours é"
    shutil.copytree(REPO / "notebooks", kit / "notebooks")
    shutil.copytree(REPO / "ganlab", kit / "ganlab", ignore=shutil.ignore_patterns("__pycache__"))
    return kit


def _ganlab(plain, *args, cwd):
    import os

    python, _, _ = plain
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GANLAB_", "PYTHONPATH"))}
    return subprocess.run(
        [str(python.parent / "ganlab"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_ganlab_submit_works_after_a_plain_install(plain, own_kit, tmp_path):
    proc = _ganlab(
        plain, "submit", str(own_kit), "--out", str(tmp_path / "hand-in.zip"), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "hand-in.zip").is_file()


def test_ganlab_check_works_after_a_plain_install(plain, own_kit, tmp_path):
    proc = _ganlab(plain, "check", str(own_kit), "--notebook", "00", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "check-0-1" in proc.stdout and "not implemented yet" in proc.stdout, proc.stdout
