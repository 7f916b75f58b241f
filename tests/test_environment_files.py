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


def _make_torch_pins():
    """setup.mk's ``TORCH := torch==X torchvision==Y``: what `make setup` installs first."""
    line = re.search(r"^TORCH\s*:?=\s*(.+)$", (REPO / "setup.mk").read_text(), re.M)
    return line.group(1).split()


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    expected = dict(_normalise(r) for r in project["dependencies"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = dict(_normalise(r) for r in pip if not r.startswith("-e"))
    # torch and torchvision: the release `make setup` installs (setup.mk), inside pyproject's range.
    pinned = dict(_normalise(r) for r in _make_torch_pins())
    for name, spec in pinned.items():
        assert listed.get(name) == spec, (
            f"environment.yml should pin {name}{spec}, as `make setup` does (setup.mk's TORCH), "
            f"not {name}{listed.get(name, ' (missing)')}"
        )
        assert Requirement(name + expected[name]).specifier.contains(spec.removeprefix("==")), (
            f"setup.mk's {name}{spec} is outside pyproject.toml's {name}{expected[name]}"
        )
        listed[name] = expected[name]
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


def _fake_python(folder, version):
    """A `python3` that says it is ``version`` (3.9.6: macOS's own, too old for the pinned torch;
    3.15.0: newer than any it has wheels for, torch 2.14.1 covering 3.10 to 3.14, where Homebrew
    and rolling distributions move python3 within weeks); its `-c` code sees that version."""
    folder.mkdir()
    info = tuple(int(v) for v in version.split(".")) + ("final", 0)
    fake = folder / "python3"
    fake.write_text(
        f'#!/bin/sh\n[ "$1" = --version ] && {{ echo "Python {version}"; exit 0; }}\n'
        '[ "$1" = -c ] || exit 1\n'
        f'exec {sys.executable} -c "import sys; sys.version_info = {info!r}\n$2"\n'
    )
    fake.chmod(0o755)
    return folder


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_takes_a_python_new_enough_for_the_pinned_torch(tmp_path):
    fake = _fake_python(tmp_path / "bin", "3.9.6")
    (fake / "python3.12").symlink_to(sys.executable)
    proc = _make(["--eval", "show: ; @echo $(PYTHON)", "show"], f"{fake}:/usr/bin:/bin", tmp_path)
    assert proc.returncode == 0, proc.stderr
    chosen = proc.stdout.strip()
    assert chosen.startswith("python3.1"), f"make took {chosen!r}, not the newer python3.1X"
    minimum = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert (
        "(3, 10) <= sys.version_info[:2]" in (REPO / "setup.mk").read_text() and minimum == ">=3.10"
    ), "setup.mk's floor and pyproject's requires-python must agree"


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_passes_over_a_python_too_new_for_the_pinned_torch(tmp_path):
    fake = _fake_python(tmp_path / "bin", "3.15.0")
    (fake / "python3.12").symlink_to(sys.executable)
    proc = _make(["--eval", "show: ; @echo $(PYTHON)", "show"], f"{fake}:/usr/bin:/bin", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "python3.12", (
        f"make took {proc.stdout.strip()!r}: `pip install torch==2.14.1` fails on Python 3.15"
    )
    (fake / "python3.12").unlink()
    (tmp_path / "pyproject.toml").touch()
    proc = _make(["setup"], fake, tmp_path)
    assert proc.returncode != 0 and "Python 3.15.0" in proc.stderr, proc.stderr
    assert "<= 3.14" in proc.stderr, proc.stderr
    assert not (tmp_path / ".venv").exists(), "a venv of a Python too new was created"


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_without_a_new_enough_python_says_what_to_install(tmp_path):
    (tmp_path / "pyproject.toml").touch()
    proc = _make(["setup"], _fake_python(tmp_path / "bin", "3.9.6"), tmp_path)
    assert proc.returncode != 0
    assert "ganlab needs Python >= 3.10" in proc.stderr and "Python 3.9.6" in proc.stderr, (
        proc.stderr
    )
    assert "make PYTHON=" in proc.stderr
    assert not (tmp_path / ".venv").exists(), "a venv of a Python too old was created"


def test_pyproject_uses_nothing_setuptools_has_deprecated():
    """A deprecated pyproject.toml key is a build that stops working on the day setuptools drops
    it, on every student's `pip install -e .` (pip's isolated build takes the newest setuptools)."""
    script = (
        "import warnings\n"
        "from setuptools.dist import Distribution\n"
        "from setuptools.config.pyprojecttoml import apply_configuration\n"
        "warnings.simplefilter('error')\n"
        "apply_configuration(Distribution(), 'pyproject.toml')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    warning = [line for line in proc.stderr.splitlines() if "Warning" in line or "Error" in line]
    assert proc.returncode == 0, warning[-1:] or proc.stderr[-2000:]
