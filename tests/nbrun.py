"""Run notebooks under nbval in a subprocess and read back one result per code cell."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent


@dataclass
class CellResult:
    notebook: str
    index: int  # position among the notebook's code cells (nbval's "Cell N")
    cell_id: str
    tags: list
    outcome: str  # passed | failed | skipped
    message: str

    @property
    def graded(self):
        return "graded" in self.tags


# A kernel that never answered its first message: no cell of the notebook ran. Seen in CI
# with parallel kernels (jupyter_client#487 port races; ipykernel 7 start-up hangs), so
# such a notebook is run once more, alone; a second failure is reported as it is.
NO_START = ("Kernel didn't respond", "Kernel died before replying to kernel_info")


def _did_not_start(text):
    return any(m in text for m in NO_START)


def execute_starting_again(make_client):
    """``make_client().execute()`` (an nbclient ``NotebookClient`` with allow_errors), with a
    fresh client once more if its kernel did not start (``NO_START``): no cell ran then."""
    try:
        make_client().execute()
    except RuntimeError as err:
        if not _did_not_start(str(err)):
            raise
        make_client().execute()


def run_nbval(notebooks, solutions, tmp_path, pythonpath=None, timeout=900):
    """nbval over ``notebooks``; returns ``({(notebook name, cell index): CellResult}, proc)``.

    ``solutions`` turns the GANLAB_SOLUTIONS switch on for the kernels. Quick mode
    keeps the training notebooks to a few steps. A notebook whose kernel did not start
    is run again once (see ``NO_START``); ``proc`` is then the second run's.
    """
    notebooks = [Path(p) for p in notebooks]
    cells, proc = _nbval(notebooks, solutions, Path(tmp_path), pythonpath, timeout)
    again = sorted(
        {c.notebook for c in cells.values() if c.outcome == "failed" and _did_not_start(c.message)}
    )
    if again:
        retry = Path(tmp_path) / "retry"
        retry.mkdir(exist_ok=True)
        paths = [p for p in notebooks if p.name in again]
        redo, proc = _nbval(paths, solutions, retry, pythonpath, timeout)
        cells.update(redo)
    return cells, proc


def _nbval(notebooks, solutions, tmp_path, pythonpath, timeout):
    env = dict(
        os.environ,
        GANLAB_QUICK="1",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYTHONDONTWRITEBYTECODE="1",
        GANLAB_RUNS_DIR=str(Path(tmp_path) / "runs"),
    )
    env["GANLAB_SOLUTIONS"] = "1" if solutions else "0"
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    report = Path(tmp_path) / f"nbval-{'solutions' if solutions else 'stubs'}.xml"
    workers = ["-n", "2", "--dist", "loadfile"] if len(notebooks) > 1 else []
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--nbval-lax",
        "--nbval-current-env",
        "--nbval-cell-timeout",
        "300",
        "--nbval-kernel-startup-timeout",
        "180",
        "-q",
        f"--junitxml={report}",
        "-o",
        "junit_family=xunit1",
        "--rootdir",
        str(notebooks[0].parent),
        *workers,
        *map(str, notebooks),
    ]
    proc = subprocess.run(
        cmd, cwd=notebooks[0].parent, env=env, capture_output=True, text=True, timeout=timeout
    )
    if not report.exists():
        raise RuntimeError(f"nbval did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return parse(report, notebooks), proc


def parse(report, notebooks):
    cells = {}
    for path in notebooks:
        code = [c for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]
        for i, cell in enumerate(code):
            cells[(path.name, i)] = CellResult(
                path.name,
                i,
                cell.get("id", ""),
                cell.metadata.get("tags", []),
                "missing",
                "nbval did not report this cell",
            )
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name", "")
        if not name.startswith("Cell "):
            continue
        notebook = Path(case.get("file") or case.get("classname", "")).name
        if not notebook.endswith(".ipynb"):
            notebook = case.get("classname", "").rsplit(".", 1)[0].split(".")[-1] + ".ipynb"
        key = (notebook, int(name.split()[1]))
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = "skipped" if tag == "skipped" else "failed"
                message = (node.get("message") or "") + "\n" + (node.text or "")
        if key in cells:
            cells[key].outcome, cells[key].message = outcome, message
    return cells
