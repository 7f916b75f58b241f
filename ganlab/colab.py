"""Colab: where the course lives, the set-up cell built from it, and what that cell runs.

Forks change REPOSITORY (and BRANCH) here, then run ``make stubs``; an instructor who hands
out a separate student repository runs ``make student-copy DEST=... REPO=owner/name``, which
writes these two lines into the copy. Every notebook's "Open in Colab" badge and first code
cell come from them, and the kit's tests fail if a badge anywhere points elsewhere.

Colab's runtime is not ours: it preinstalls torch, torchvision, ipywidgets 7.7.1, IPython
7.34, notebook 6.5 and more, every notebook gets a fresh runtime, and *Runtime -> Restart
session* keeps the disk but forgets every import. The set-up cell (``SETUP_TEMPLATE``)
therefore only finds or clones the kit, then calls :func:`finish_setup` from it, which:

* installs the kit with ``--no-deps`` (never another torch, never a pip resolver error), as
  a plain path entry, so a folder named ``ganlab`` in the working directory cannot shadow it
  as a namespace package after a restart;
* installs, also with ``--no-deps``, exactly those of :data:`COLAB_ADDITIONS` that are missing;
* with Drive on, keeps the student's copy of the kit (the ``ganlab/*.py`` they edit) and their
  runs in Drive, so a disconnect loses neither; a new runtime finds both there again.
* when the cell ran before in this session with the other KEEP_ON_DRIVE, forgets the ``ganlab``
  imported from the other folder, so the notebook uses the files the student now edits.
* writes an IPython start-up file (:func:`remember_session`), so that after *Runtime -> Restart
  session* every new kernel of this runtime is back in the kit's notebooks folder, with the runs in
  Drive and ``%load_ext autoreload`` working, even when the student runs only a later cell.

Every step checks before it acts, so running the cell again (after a restart, or in the next
notebook) does only what is still missing.
"""

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = "ganlab-course/ganlab"  # GitHub owner/name
BRANCH = "main"
SOLUTIONS_BRANCH = "solutions"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"

DRIVE = "/content/drive"
KIT_DIR = "/content/ganlab"  # the kit's clone when Drive is off (lost with the runtime)
DRIVE_KIT_DIR = "/content/drive/MyDrive/ganlab"  # ... and when Drive is on (kept)
DRIVE_RUNS = "/content/drive/MyDrive/ganlab-runs"
# Where Colab's "File -> Save a copy in Drive" puts the student's notebooks.
DRIVE_NOTEBOOKS = "/content/drive/MyDrive/Colab Notebooks"

# What the kit needs that Colab's runtime does not ship: {import name: pip requirement}.
# Installed with --no-deps; their own dependencies (numpy, packaging, typing_extensions) are on Colab.
COLAB_ADDITIONS = {
    "torchmetrics": "torchmetrics>=1.2",
    "lightning_utilities": "lightning-utilities>=0.8",
    "nbclient": "nbclient>=0.8",  # `ganlab check` runs each notebook in a kernel
}


def repository_url(repository=REPOSITORY):
    return f"https://github.com/{repository}"


def notebook_url(path, branch=BRANCH, repository=REPOSITORY):
    """Colab's address for a notebook of this repository, e.g. ``notebooks/05_training.ipynb``."""
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/{path}"


def badge(path, branch=BRANCH, repository=REPOSITORY):
    return f"[![Open In Colab]({BADGE_IMAGE})]({notebook_url(path, branch, repository)})"


# The cell is a Colab form (#@title, cellView "form" in its metadata): Colab shows only its
# title and the check box, so the notebook's first idea is what the student sees first.
SETUP_TEMPLATE = """\
#@title Set-up: run this cell first (on Colab it installs the kit; elsewhere it checks for it)
KEEP_ON_DRIVE = True  #@param {{type:"boolean"}}
# KEEP_ON_DRIVE: your copy of the kit (the ganlab/*.py you edit) and your runs live in Google
# Drive and survive a disconnect. Safe to run again. What each step does: ganlab/colab.py.
import os, subprocess, sys
try:
    import google.colab  # only Colab has it
except ImportError:  # elsewhere: the kit must be installed for this kernel's Python
    try:
        import ganlab
    except ImportError:
        raise ModuleNotFoundError(
            f"no ganlab in this kernel's Python ({{sys.executable}}): pick the kit's environment "
            "as kernel (`make lab` in the kit's folder starts JupyterLab with it)") from None
else:
    KIT = "{kit_dir}"
    if KEEP_ON_DRIVE:
        from google.colab import drive
        drive.mount("{drive}")
        KIT = "{drive_kit_dir}"
    if not os.path.isfile(os.path.join(KIT, "ganlab", "colab.py")):
        subprocess.run(["rm", "-rf", KIT + ".partial"], check=True)
        subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", "{branch}",
                        "{url}", KIT + ".partial"], check=True)
        os.rename(KIT + ".partial", KIT)
    sys.path.insert(0, KIT)
    if getattr(sys.modules.get("ganlab"), "__file__", "") is None:
        del sys.modules["ganlab"]  # a folder named ganlab imported as a namespace package
    from ganlab.colab import finish_setup
    finish_setup(KIT, keep_on_drive=KEEP_ON_DRIVE)"""


def setup_cell_source(branch=BRANCH, repository=REPOSITORY):
    return SETUP_TEMPLATE.format(
        kit_dir=KIT_DIR,
        drive=DRIVE,
        drive_kit_dir=DRIVE_KIT_DIR,
        branch=branch,
        url=repository_url(repository),
    )


# Colab shows the form and hides the code; JupyterLab collapses the input (a click shows it).
SETUP_METADATA = {"cellView": "form", "jupyter": {"source_hidden": True}}


# -- what the cell runs, from the kit it has just found or cloned -------------------------


def _pip(*args):
    """Run pip quietly; on failure print its output (the student needs it) and raise."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *args],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        raise RuntimeError(f"pip install {' '.join(args)} failed (its output is above)")


def installed_kits():
    """The folders that installed ``ganlab`` distributions point at (editable installs)."""
    import json
    from urllib.parse import unquote

    kits = set()
    for dist in importlib.metadata.distributions():
        if (dist.metadata["Name"] or "").lower() != "ganlab":
            continue
        url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
        if url.startswith("file://"):
            kits.add(Path(unquote(url.removeprefix("file://"))))
    return kits


def _build_options():
    """``--no-build-isolation`` (no download of setuptools) where this runtime's setuptools can
    build the kit itself, as Colab's can; otherwise pip's isolated build."""
    try:
        import setuptools
    except ImportError:
        return []
    from .environment import _version_tuple

    if _version_tuple(setuptools.__version__) >= (70, 1) or importlib.util.find_spec("wheel"):
        return ["--no-build-isolation"]
    return []


def missing_additions():
    """The requirements of :data:`COLAB_ADDITIONS` whose module this runtime cannot import."""
    return [req for name, req in COLAB_ADDITIONS.items() if importlib.util.find_spec(name) is None]


def give_autoreload_its_imp():
    """Colab pairs Python 3.12 with IPython 7.34, whose ``%load_ext autoreload`` (the next cell
    of every notebook) does ``from imp import reload``, and Python 3.12 removed ``imp``
    (googlecolab/colabtools#6074). Give it a module with that one function."""
    if sys.version_info < (3, 12) or "imp" in sys.modules or importlib.util.find_spec("imp"):
        return False
    import types

    imp = types.ModuleType("imp", "ganlab.colab's stand-in for the removed module: reload only")
    imp.reload = importlib.reload
    sys.modules["imp"] = imp
    return True


def forget_other_kit(kit):
    """Drop the ``ganlab`` modules imported from a folder other than ``kit`` (the cell ran before
    in this session with the other KEEP_ON_DRIVE), so the next import, and autoreload, take the
    files of ``kit``: the ones the student now edits. Returns the folder forgotten, or None."""
    where = getattr(sys.modules.get("ganlab"), "__file__", None)
    if where is None:
        return None
    old = Path(where).resolve().parent.parent
    if old == Path(kit).resolve():
        return None
    for name in [n for n in sys.modules if n == "ganlab" or n.startswith("ganlab.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    return old


def resume_session(kit, keep_on_drive=True):
    """What the set-up cell's choices mean for one kernel: the kit's notebooks folder as working
    directory, the runs (and the saved notebooks) in Drive when ``keep_on_drive``, and a working
    ``%load_ext autoreload``. Installs nothing. Returns the runs folder, or None (``./runs``)."""
    kit = Path(kit)
    give_autoreload_its_imp()
    os.chdir(kit / "notebooks")
    if not keep_on_drive:
        return None
    # The kit is in MyDrive: the runs and the saved notebooks are beside it.
    runs = kit.parent / Path(DRIVE_RUNS).name
    os.environ["GANLAB_RUNS_DIR"] = str(runs)
    os.environ["GANLAB_NOTEBOOKS_DIR"] = str(kit.parent / Path(DRIVE_NOTEBOOKS).name)
    return runs


STARTUP_FILE = "50-ganlab-colab.py"
STARTUP_TEMPLATE = """\
# Written by ganlab's Colab set-up cell (ganlab/colab.py): IPython runs this file when a kernel
# starts, so after Runtime -> Restart session the notebook still finds the kit's folder, your
# runs in Drive and autoreload, whichever cell you run first. Lost with the runtime, as is the kit.
# Elsewhere (no google.colab, or the kit gone) it does nothing.
def _ganlab_resume():
    import os

    try:
        import google.colab  # noqa: F401
    except ImportError:
        return
    if os.path.isfile(os.path.join({kit!r}, "ganlab", "colab.py")):
        try:
            from ganlab.colab import resume_session

            resume_session({kit!r}, keep_on_drive={keep_on_drive!r})
        except Exception as err:  # never stop a kernel from starting
            print("ganlab: run the set-up cell (the first code cell) again:", repr(err))


_ganlab_resume()
del _ganlab_resume
"""


def remember_session(kit, keep_on_drive=True):
    """Write :data:`STARTUP_TEMPLATE` into IPython's start-up folder (the runtime's disk: it
    outlives a restart, not a disconnect). Returns the file written."""
    from IPython.paths import get_ipython_dir

    startup = Path(get_ipython_dir()) / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    path = startup / STARTUP_FILE
    path.write_text(STARTUP_TEMPLATE.format(kit=str(kit), keep_on_drive=bool(keep_on_drive)))
    return path


def finish_setup(kit, keep_on_drive=True, quiet=False):
    """Install what is missing, then point the notebook at the kit (see the module docstring)."""
    kit = Path(kit).resolve()
    done = []
    if kit not in installed_kits():
        # compat mode: a path entry in site-packages (a regular package found on sys.path always
        # wins over a namespace folder), no import hook.
        _pip(*_build_options(), "--config-settings", "editable_mode=compat", "-e", str(kit))
        done.append(f"installed the kit from {kit}")
    missing = missing_additions()
    if missing:
        _pip(*missing)
        importlib.invalidate_caches()
        done.append("added " + ", ".join(missing))
    old = forget_other_kit(kit)
    if old is not None:
        done.append(f"switched this session from the kit in {old}")
    runs = resume_session(kit, keep_on_drive)
    remember_session(kit, keep_on_drive)
    import ipywidgets

    if int(ipywidgets.__version__.split(".")[0]) >= 8:
        from google.colab import output  # Colab renders ipywidgets 8 with its custom manager

        output.enable_custom_widget_manager()
    if not quiet:
        import ganlab

        print(f"ganlab {ganlab.__version__} ready: the kit in {kit}", end="")
        print(f", runs in {runs}" if keep_on_drive else " (Drive off: lost at disconnect)")
        for line in done:
            print(" ", line)
    return done
