"""Run notebooks in another Python environment (the Colab-like one, a plain install) with nbclient:
a kernel spec naming that environment's Python, in a temporary JUPYTER_PATH."""

import contextlib
import json
import os
from pathlib import Path

import nbformat
import pytest

from nbrun import execute_starting_again

REPO = Path(__file__).resolve().parent.parent


def built_env(default, variable, script):
    """The environment folder, or skip naming the script that builds it."""
    folder = Path(os.environ.get(variable) or REPO / default)
    if not (folder / ".complete").is_file():
        pytest.skip(f"no environment at {folder}: build it with {script} (or set {variable})")
    return folder


@contextlib.contextmanager
def held(folder):
    """Hold the environment in ``folder`` for the caller alone, across pytest-xdist workers.

    Tests that uninstall and reinstall the kit in one environment (a new Colab runtime) must not
    overlap: one worker's uninstall would take torchmetrics from under the other's notebook."""
    import fcntl  # POSIX only, as are the environments (built by bash scripts)

    with open(Path(folder) / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def kernel_spec(jupyter_path, python, env, name="runtime"):
    """Write a kernel spec ``name`` that starts ``python``'s ipykernel with ``env`` added."""
    spec = Path(jupyter_path) / "kernels" / name
    spec.mkdir(parents=True, exist_ok=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": name, "language": "python", "env": env})
    )
    return name


def run_notebook(nb, kernel, cwd, timeout=600):
    """Execute ``nb`` (a NotebookNode, changed in place) in a fresh kernel; return it.

    Errors are kept in the outputs (allow_errors) so a test can say which cell failed."""
    from nbclient import NotebookClient

    execute_starting_again(
        lambda: NotebookClient(
            nb,
            kernel_name=kernel,
            timeout=timeout,
            allow_errors=True,
            resources={"metadata": {"path": str(cwd)}},
        )
    )
    return nb


def errors(nb, allowed_tags=("raises-exception",)):
    """``[(cell id, "Name: message")]`` of the cells that raised, except those tagged to raise."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or set(cell.metadata.get("tags", [])) & set(allowed_tags):
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append((cell.get("id"), f"{out.ename}: {out.evalue}"[:300]))
    return found


def text_of(cell):
    """Everything a cell printed (streams and plain-text results)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append("\n".join(out.traceback))
    return "".join(parts)


def cell(nb, cell_id):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def read(path):
    return nbformat.read(str(path), as_version=4)
