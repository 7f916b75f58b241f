"""environment.yml and pyproject.toml must list the same dependencies; setup.mk must pick a Python
that the pinned torch has wheels for."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

REPO = Path(__file__).resolve().parent.parent


def _normalise(requirement):
    name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", requirement.strip()).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    expected = dict(_normalise(r) for r in project["dependencies"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = dict(_normalise(r) for r in pip if not r.startswith("-e"))
    assert listed == expected, (
        f"environment.yml pip section {listed} differs from pyproject.toml "
        f"dependencies {expected}: change both together"
    )
    assert any(r == "-e ." or r.startswith("-e .[") for r in pip), (
        "environment.yml must install the kit itself (-e .)"
    )
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    minimum = project["requires-python"].lstrip(">=")
    assert tuple(map(int, python.split("=")[-1].split("."))) >= tuple(
        map(int, minimum.split("."))
    ), f"environment.yml asks for {python}, below requires-python {project['requires-python']}"


def test_no_dependency_pins_torch_to_a_version_colab_would_have_to_download():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name, spec = _normalise(requirement)
        if name in ("torch", "torchvision"):
            assert "==" not in spec and "<" not in spec, (
                f"{requirement}: an exact or upper pin would make pip replace Colab's preinstalled torch"
            )


def test_colabs_versions_satisfy_every_dependency():
    """Colab's pins (.ci/colab-constraints.txt) must meet pyproject's ranges, or pip on Colab
    prints a resolver ERROR (or replaces Colab's packages); what Colab lacks stays out."""
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    colab = dict(
        line.split("==")
        for line in (REPO / ".ci" / "colab-constraints.txt").read_text().split()
        if "==" in line
    )
    assert colab.get("ipywidgets") == "7.7.1", "the constraints file lost Colab's ipywidgets pin"
    for text in project["dependencies"]:
        requirement = Requirement(text)
        name = requirement.name.lower()
        assert name not in ("jupyterlab", "nbval", "notebook"), (
            f"{text}: Colab has no {name}; it belongs in an extra, not in the dependencies"
        )
        if name in colab:
            assert requirement.specifier.contains(colab[name], prereleases=True), (
                f"{text} rejects Colab's {name} {colab[name]}"
            )


def _make(args, path, cwd):
    return subprocess.run(
        [shutil.which("make"), "-f", str(REPO / "setup.mk"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": str(path), "HOME": str(cwd)},
    )


def _old_python(folder):
    """A `python3` that is too old for the pinned torch (as macOS's own 3.9 is)."""
    folder.mkdir()
    old = folder / "python3"
    old.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.9.6"\nexit 1\n')
    old.chmod(0o755)
    return folder


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_takes_a_python_new_enough_for_the_pinned_torch(tmp_path):
    fake = _old_python(tmp_path / "bin")
    (fake / "python3.12").symlink_to(sys.executable)
    proc = _make(["--eval", "show: ; @echo $(PYTHON)", "show"], f"{fake}:/usr/bin:/bin", tmp_path)
    assert proc.returncode == 0, proc.stderr
    chosen = proc.stdout.strip()
    assert chosen.startswith("python3.1"), f"make took {chosen!r}, not the newer python3.1X"
    minimum = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert (
        "sys.version_info < (3, 10)" in (REPO / "setup.mk").read_text() and minimum == ">=3.10"
    ), "setup.mk's floor and pyproject's requires-python must agree"


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_without_a_new_enough_python_says_what_to_install(tmp_path):
    (tmp_path / "pyproject.toml").touch()
    proc = _make(["setup"], _old_python(tmp_path / "bin"), tmp_path)
    assert proc.returncode != 0
    assert "ganlab needs Python >= 3.10" in proc.stderr and "Python 3.9.6" in proc.stderr, (
        proc.stderr
    )
    assert "make PYTHON=" in proc.stderr
    assert not (tmp_path / ".venv").exists(), "a venv of a Python too old was created"
