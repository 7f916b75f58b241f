"""The shipped generator: loads without any exercise finished, samples digits, is documented."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from ganlab import pretrained

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "ganlab" / "assets"


def test_the_pretrained_generator_works_while_the_exercises_are_stubs():
    code = (
        "import torch; from ganlab import pretrained; g = pretrained.load_pretrained();"
        "x = g(torch.randn(5, g.nz)); print(tuple(x.shape), float(x.min()) >= -1, float(x.max()) <= 1)"
    )
    env = dict(os.environ, GANLAB_SOLUTIONS="0")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert proc.returncode == 0, (
        f"notebooks 06 and 07 need it before Generator is written:\n{proc.stderr[-2000:]}"
    )
    assert proc.stdout.split() == ["(5,", "1,", "28,", "28)", "True", "True"], proc.stdout


def test_the_asset_is_small_and_says_how_it_was_made():
    size = (ASSETS / pretrained.ASSET).stat().st_size
    assert size < 5 * 2**20, (
        f"the pretrained generator is {size / 2**20:.1f} MB; keep it to a few MB"
    )
    meta = json.loads((ASSETS / pretrained.ASSET).with_suffix(".json").read_text())
    assert {"nz", "channels", "image_size", "step", "config"} <= meta.keys()


def _notebook05_run(tmp_path, steps):
    from ganlab.config import TrainConfig
    from ganlab.trainer import Trainer

    config = TrainConfig(
        name="notebook05",
        out_dir=str(tmp_path / "notebook05"),
        steps=steps,
        ngf=8,
        ndf=8,
        batch_size=8,
        progress=False,
        gif=False,
    )
    Trainer(config).fit()


def test_course_generator_prefers_a_run_that_completed_notebook_05s_schedule(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("GANLAB_QUICK", raising=False)
    _, source = pretrained.course_generator()
    assert "pretrained" in source, "with no run of notebook 05, the pretrained generator is used"
    _notebook05_run(tmp_path, steps=2)
    monkeypatch.setattr(pretrained, "notebook_schedule", lambda preset="cpu": 2)
    generator, source = pretrained.course_generator()
    assert "your run" in source and generator(torch.randn(2, 100)).shape == (2, 1, 28, 28)


def test_course_generator_ignores_a_shortened_run_and_says_why(tmp_path, monkeypatch):
    # A run that finished its own (shortened) config is not notebook 05's schedule.
    monkeypatch.setenv("GANLAB_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("GANLAB_QUICK", raising=False)
    _notebook05_run(tmp_path, steps=2)
    schedule = pretrained.notebook_schedule()
    assert schedule > 2
    _, source = pretrained.course_generator()
    assert source.startswith("the kit's pretrained generator"), (
        f"a 2-step run was preferred over the pretrained generator: {source}"
    )
    assert f"2 of notebook 05's {schedule} steps" in source, source


def test_course_generator_falls_back_when_the_students_generator_has_changed(tmp_path, monkeypatch):
    # Was: a Generator edited after notebook 05 (a size changed, a typo) crashed notebook 06's cell.
    monkeypatch.setenv("GANLAB_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("GANLAB_QUICK", raising=False)
    _notebook05_run(tmp_path, steps=2)
    monkeypatch.setattr(pretrained, "notebook_schedule", lambda preset="cpu": 2)

    def edited(*args, **kwargs):
        raise RuntimeError("size mismatch for net.0.weight")

    monkeypatch.setattr("ganlab.checkpoints.load_generator", edited)
    generator, source = pretrained.course_generator()
    assert source.startswith("the kit's pretrained generator"), source
    assert "your Generator" in source and "size mismatch" in source, source
    assert generator(torch.randn(2, generator.nz)).shape == (2, 1, 28, 28)


def test_notebooks_06_and_07_say_which_generator_they_use():
    import nbformat

    for name in ("06_latent_space.ipynb", "07_going_further.ipynb"):
        nb = nbformat.read(str(REPO / "notebooks" / name), as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "pretrained.course_generator()" in code, f"{name} does not use course_generator"
        assert 'print("generator:", source)' in code, f"{name} never says which generator it uses"
