"""environment.yml and pyproject.toml must list the same dependencies."""

import re
from pathlib import Path

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
