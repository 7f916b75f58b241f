"""A stand-in for Colab, for the tests that run the set-up cell: the course as a git repository
to clone, a ``google.colab`` package whose ``drive.mount`` maps to a folder, and the cell
rewritten to use a temporary ``/content``."""

import json
import shutil
import subprocess
from pathlib import Path

from ganlab import colab

REPO = Path(__file__).resolve().parent.parent

STAND_IN = {
    # The runtime's ~/.ipython, where the set-up cell writes its start-up file: beside the log, in
    # the test's folder, never in the home of the machine running the tests (unless a test sets it).
    "google/colab/__init__.py": (
        "import os\n"
        "if os.environ.get('COLAB_STANDIN_LOG'):\n"
        "    folder = os.path.dirname(os.environ['COLAB_STANDIN_LOG'])\n"
        "    os.environ.setdefault('IPYTHONDIR', os.path.join(folder, 'ipython'))\n"
    ),
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
    # Drive: MyDrive under the mount point is the one folder that outlives every runtime.
    "google/colab/drive.py": (
        "import os\nfrom ._log import record\n"
        "def mount(path, **kwargs):\n    record('drive.mount', path)\n"
        "    drive = os.environ['COLAB_STANDIN_DRIVE']\n"
        "    os.makedirs(drive, exist_ok=True)\n"
        "    os.makedirs(path, exist_ok=True)\n"
        "    if not os.path.exists(os.path.join(path, 'MyDrive')):\n"
        "        os.symlink(drive, os.path.join(path, 'MyDrive'))\n"
    ),
    "google/colab/files.py": (
        "from ._log import record\ndef download(path):\n    record('files.download', path)\n"
    ),
}


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def course_origin(dest):
    """This working tree (tracked and untracked-but-not-ignored files) as a repository to clone."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    _git("init", "-q", "-b", colab.BRANCH, cwd=dest)
    _git("add", "-A", cwd=dest)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "course", cwd=dest)
    return dest


def write_stand_in(dest):
    for rel, text in STAND_IN.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text)
    return dest


def cell_for(source, origin, content, keep_on_drive=True):
    """The set-up cell ``source`` cloning ``origin``, with ``content`` standing in for /content."""
    cell = source.replace(colab.repository_url(), origin.as_uri()).replace("/content", str(content))
    if not keep_on_drive:
        cell = cell.replace("KEEP_ON_DRIVE = True", "KEEP_ON_DRIVE = False", 1)
    return cell


def calls(log):
    return [json.loads(line) for line in Path(log).read_text().splitlines()] if log.exists() else []
