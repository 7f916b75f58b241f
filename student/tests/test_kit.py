"""`make test`: is this copy of the course set up correctly? (It does not grade you: `make check`.)"""

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat

from ganlab import colab, environment, submission

KIT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((KIT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/([^)\s\"']+)")


def test_the_environment_has_what_the_notebooks_import():
    report = environment.check_environment(verbose=False)
    assert report["device"] in ("cpu", "cuda", "mps")


def test_every_badge_opens_a_notebook_of_this_course_on_colab():
    prefix = f"{colab.REPOSITORY}/blob/{colab.BRANCH}/"
    for place in [KIT / "README.md", *NOTEBOOKS]:
        for target in COLAB_LINK.findall(place.read_text()):
            assert target.startswith(prefix), f"{place.name}: a badge points at {target}"
            assert (KIT / target[len(prefix) :]).is_file(), f"{place.name}: no file {target}"


def test_every_notebook_starts_with_the_set_up_cell_of_this_course():
    for path in NOTEBOOKS:
        cells = nbformat.read(str(path), as_version=4).cells
        first_code = next(c for c in cells if c.cell_type == "code")
        assert first_code.source == colab.setup_cell_source(), f"{path.name}: stale set-up cell"


def test_the_set_up_cell_does_nothing_here():
    source = colab.setup_cell_source() + "\nimport os; print(os.environ.get('GANLAB_RUNS_DIR'))"
    env = {k: v for k, v in os.environ.items() if k != "GANLAB_RUNS_DIR"}
    proc = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, cwd=KIT, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "None"


def test_the_pretrained_generator_draws_digits():
    import torch

    from ganlab import pretrained

    generator = pretrained.load_pretrained()
    images = generator(torch.randn(4, generator.nz))
    assert tuple(images.shape) == (4, 1, 28, 28)
    assert float(images.min()) >= -1 and float(images.max()) <= 1


def test_submit_packs_every_exercise_module_and_notebook(tmp_path):
    out, manifest = submission.submit(KIT, out=tmp_path / "hand-in.zip")
    names = set(zipfile.ZipFile(out).namelist())
    wanted = submission.expected_names(submission.course_notebooks(KIT))
    assert set(wanted) <= names and submission.MANIFEST in names
    assert set(manifest["files"]) == set(wanted)
