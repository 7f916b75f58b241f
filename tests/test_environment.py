"""ganlab.environment: the check accepts what the kit really needs and gives advice that fits."""

import sys
import types
from pathlib import Path

import pytest

from ganlab import environment

REPO = Path(__file__).resolve().parent.parent


def _colab_versions():
    lines = (REPO / ".ci" / "colab-constraints.txt").read_text().split()
    return dict(line.split("==") for line in lines if "==" in line)


def _fake(monkeypatch, name, version):
    module = types.ModuleType(name)
    module.__version__ = version
    monkeypatch.setitem(sys.modules, name, module)


def test_colabs_ipywidgets_7_7_1_passes_the_check(monkeypatch):
    version = _colab_versions()["ipywidgets"]
    _fake(monkeypatch, "ipywidgets", version)
    report = environment.check_environment(verbose=False)
    assert report["ipywidgets"] == version


def test_every_minimum_is_met_by_colabs_pins():
    colab = _colab_versions()
    for pip_name, minimum in environment.MINIMUM.values():
        if pip_name.lower() in colab:
            assert environment._version_tuple(colab[pip_name.lower()]) >= (
                environment._version_tuple(minimum)
            ), f"Colab's {pip_name} {colab[pip_name.lower()]} fails the check (>= {minimum})"


def test_too_old_names_the_package_and_the_exact_install(monkeypatch):
    _fake(monkeypatch, "ipywidgets", "7.6.5")
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    with pytest.raises(RuntimeError) as err:
        environment.check_environment(verbose=False)
    message = str(err.value)
    assert "ipywidgets 7.6.5 is too old (need >= 7.7.1)" in message
    assert "pip install 'ipywidgets>=7.7.1'" in message and "-e ." not in message


def test_on_colab_the_advice_is_to_run_the_set_up_cell(monkeypatch):
    _fake(monkeypatch, "ipywidgets", "7.6.5")
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    with pytest.raises(RuntimeError, match="Run the set-up cell"):
        environment.check_environment(verbose=False)


@pytest.mark.parametrize(
    "text, expected",
    [("7.7.1", (7, 7, 1)), ("8.1.5", (8, 1, 5)), ("2.14.1+cu130", (2, 14, 1)), ("1.2rc1", (1, 2))],
)
def test_version_tuple(text, expected):
    assert environment._version_tuple(text) == expected


def test_quick_overrides_shorten_notebook_05_only_under_ganlab_quick(monkeypatch):
    from ganlab.config import load_config

    monkeypatch.delenv("GANLAB_QUICK", raising=False)
    assert environment.quick_overrides() == [], "a student's run must keep the preset's schedule"
    monkeypatch.setenv("GANLAB_QUICK", "1")
    config = load_config(preset="cpu", overrides=environment.quick_overrides())
    assert config.steps == environment.QUICK_STEPS
    assert config.lr == config.lr_critic == 2e-4, (
        "the quick run trains at DCGAN's equal rates: in 20 steps a faster generator leads and "
        "check 5.4 wants the critic ahead"
    )
    assert config.r1 == 0, "the quick run is the plain DCGAN: no gradient penalty either"
