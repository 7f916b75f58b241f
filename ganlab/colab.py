"""Colab: the one place that says where the course lives, and the set-up cell built from it.

Forks change REPOSITORY (and BRANCH) here, then run ``make stubs``: every notebook's
"Open in Colab" badge and first code cell are regenerated from these two lines, and
``tests/test_colab.py`` fails if a badge anywhere (README included) points elsewhere.
"""

REPOSITORY = "ganlab-course/ganlab"  # GitHub owner/name
BRANCH = "main"
SOLUTIONS_BRANCH = "solutions"
KIT_DIR = "/content/ganlab"  # where the set-up cell clones the kit on Colab
DRIVE_RUNS = "/content/drive/MyDrive/ganlab-runs"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"


def repository_url():
    return f"https://github.com/{REPOSITORY}"


def notebook_url(path, branch=BRANCH):
    """Colab's address for a notebook of this repository, e.g. ``notebooks/05_training.ipynb``."""
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{branch}/{path}"


def badge(path, branch=BRANCH):
    return f"[![Open In Colab]({BADGE_IMAGE})]({notebook_url(path, branch)})"


SETUP_TEMPLATE = """\
# Colab set-up (generated from ganlab/colab.py). On Colab: installs the kit beside the torch
# Colab already has, enables ipywidgets, and can keep your runs on Google Drive. Elsewhere: nothing.
KEEP_RUNS_ON_DRIVE = True  # then a disconnect loses at most one checkpoint interval
import importlib.util, os, subprocess, sys
if importlib.util.find_spec("google.colab") is not None:
    KIT_DIR = "{kit_dir}"
    if importlib.util.find_spec("ganlab") is None:
        if not os.path.isdir(KIT_DIR):
            subprocess.run(["git", "clone", "--depth", "1", "--branch", "{branch}", "{url}", KIT_DIR], check=True)
        # --no-deps: Colab already has torch, torchvision, matplotlib, ipywidgets, imageio, tqdm
        # and PyYAML; this must never download another torch. torchmetrics accepts Colab's torch.
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", KIT_DIR], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "torchmetrics"], check=True)
        sys.path.insert(0, KIT_DIR)
    os.chdir(os.path.join(KIT_DIR, "notebooks"))
    from google.colab import output
    output.enable_custom_widget_manager()  # ipywidgets 8 widgets need Colab's custom manager
    if KEEP_RUNS_ON_DRIVE:
        from google.colab import drive
        drive.mount("/content/drive")
        os.environ["GANLAB_RUNS_DIR"] = "{drive_runs}"
        print("runs and checkpoints go to", os.environ["GANLAB_RUNS_DIR"])"""


def setup_cell_source(branch=BRANCH):
    return SETUP_TEMPLATE.format(
        kit_dir=KIT_DIR, branch=branch, url=repository_url(), drive_runs=DRIVE_RUNS
    )
