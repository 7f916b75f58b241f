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


def test_setup_cell_does_nothing_off_colab():
    code = (
        colab.setup_cell_source()
        + "\nimport json, os; print(json.dumps(os.environ.get('GANLAB_RUNS_DIR')))"
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "GANLAB_RUNS_DIR"},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) is None, (
        "off Colab the cell must not redirect runs to Drive"
    )
    assert time.perf_counter() - start < 5, "off Colab the set-up cell must be instant"


STAND_IN = {
    "google/colab/__init__.py": "",
    "google/colab/_log.py": (
        "import json, os\n"
        "def record(*call):\n"
        "    with open(os.environ['COLAB_STANDIN_LOG'], 'a') as f:\n"
        "        f.write(json.dumps(call) + '\\n')\n"
    ),
    "google/colab/output.py": (
        "from ._log import record\ndef enable_custom_widget_manager():\n"
        "    record('output.enable_custom_widget_manager')\n"
    ),
    "google/colab/drive.py": (
        "import os\nfrom ._log import record\n"
        "def mount(path, **kwargs):\n    record('drive.mount', path)\n"
        "    os.makedirs(os.environ['COLAB_STANDIN_DRIVE'], exist_ok=True)\n"
    ),
}


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.slow
def test_setup_cell_on_a_stand_in_colab_installs_the_kit_without_touching_torch(tmp_path):
    # The course repository as Colab would clone it (this working tree, committed on branch main).
    origin = tmp_path / "origin"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (origin / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, origin / rel)
    _git("init", "-q", "-b", colab.BRANCH, cwd=origin)
    _git("add", "-A", cwd=origin)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "course", cwd=origin)

    # A fresh virtual environment in which torch is already installed (this suite's torch, by .pth).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    import torch

    (site / "preinstalled.pth").write_text(str(Path(torch.__file__).parent.parent) + "\n")
    for rel, text in STAND_IN.items():
        (tmp_path / "standin" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "standin" / rel).write_text(text)

    kit, drive = tmp_path / "content" / "ganlab", tmp_path / "drive" / "ganlab-runs"
    cell = (
        colab.setup_cell_source()
        .replace(colab.repository_url(), (origin).as_uri())
        .replace(colab.KIT_DIR, str(kit))
        .replace(colab.DRIVE_RUNS, str(drive))
    )
    after = (
        "\nimport ganlab, torch\nfrom ganlab import environment\n"
        "from ganlab.config import TrainConfig\nfrom ganlab.trainer import Trainer\n"
        "cfg = TrainConfig(name='nb', out_dir=str(environment.runs_dir() / 'nb'), steps=2, ngf=8, ndf=8,\n"
        "                  batch_size=8, progress=False, gif=False)\n"
        "Trainer(cfg).fit()\n"
        "print('RESULT', ganlab.__file__, torch.__file__, environment.runs_dir(), os.getcwd())\n"
    )
    log = tmp_path / "colab.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GANLAB_RUNS", "PYTHONPATH"))}
    env.update(
        PYTHONPATH=str(tmp_path / "standin"),
        COLAB_STANDIN_LOG=str(log),
        COLAB_STANDIN_DRIVE=str(drive),
        GANLAB_SOLUTIONS="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    torch_record = sorted(
        p.name for p in Path(torch.__file__).parent.parent.glob("torch-*.dist-info")
    )
    proc = subprocess.run(
        [str(python), "-c", cell + after],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = proc.stdout.split("RESULT ")[-1].split()
    assert result[0] == str(kit / "ganlab" / "__init__.py"), (
        f"the kit imported from {result[0]}, not the clone"
    )
    assert not list(site.glob("torch*")), "pip installed a torch into the fresh environment"
    assert result[1].startswith(str(Path(torch.__file__).parent)), (
        "torch no longer comes from the preinstalled one"
    )
    assert (
        sorted(p.name for p in Path(torch.__file__).parent.parent.glob("torch-*.dist-info"))
        == torch_record
    )
    assert result[2] == str(drive) and (drive / "nb" / "checkpoint.pt").is_file(), (
        "checkpoints must go to the Drive folder when KEEP_RUNS_ON_DRIVE is on"
    )
    assert result[3] == str(kit / "notebooks")
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert ["output.enable_custom_widget_manager"] in calls, (
        "ipywidgets 8 needs Colab's custom widget manager"
    )
    assert ["drive.mount", "/content/drive"] in calls
