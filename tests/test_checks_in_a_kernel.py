"""A failed check as a student sees it: in a real IPython kernel, the hint first, in a few lines.

nbval and the grader read ``ename`` and ``evalue``; the student reads the rendered
traceback. The hint must come first and alone (no check source, no expected answers
written in it), with the full traceback one ``%tb`` away; a stub's NotImplementedError
stays what it is.

The kernel is this environment's; ``GANLAB_KERNEL_PYTHON=/path/to/python`` runs the same
cells in another interpreter's ipykernel instead (e.g. Colab's IPython 7.34 / ipykernel
6.17 in a small venv: it needs ipykernel, torch and torchvision; the kit comes from
this checkout through PYTHONPATH).
"""

import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from nbrun import execute_starting_again

nbclient = pytest.importorskip("nbclient")
ANSI = re.compile(r"\x1b\[[0-9;]*m")

REPO = Path(__file__).resolve().parent.parent
CELLS = [
    "from ganlab import checks\nimport sys\nprint(sys.executable)",
    # A conv_out_size that forgets the + 1.
    "checks.check_conv_out_size(lambda n, k, s=1, p=0: (n + 2 * p - k) // s)",
    "%tb",
    # A generator that ignores z, through a check with a deep call stack.
    "from ganlab.models import Generator\n"
    "import torch\n"
    "class Constant(Generator):\n"
    "    def forward(self, z):\n"
    "        return super().forward(torch.zeros_like(z))\n"
    "checks.check_generator_output(Constant)",
    # A stub.
    "def lerp(z0, z1, t):\n"
    "    raise NotImplementedError('lerp is not written yet: fill it in ganlab/latent.py')\n"
    "checks.check_lerp(lerp)",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    other, kernel = os.environ.get("GANLAB_KERNEL_PYTHON"), "python3"
    saved = os.environ.get("JUPYTER_PATH")
    if other:
        kernel, root = "ganlab-other", tmp_path_factory.mktemp("jupyter")
        spec = {
            "argv": [other, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "other",
            "language": "python",
            "env": {"PYTHONPATH": str(REPO)},
        }
        (root / "kernels" / kernel).mkdir(parents=True)
        (root / "kernels" / kernel / "kernel.json").write_text(json.dumps(spec))
        os.environ["JUPYTER_PATH"] = str(root)
    try:
        execute_starting_again(
            lambda: nbclient.NotebookClient(nb, timeout=300, kernel_name=kernel, allow_errors=True)
        )
    finally:
        if other and saved is None:
            del os.environ["JUPYTER_PATH"]
        elif other:
            os.environ["JUPYTER_PATH"] = saved
    return nb


@pytest.fixture(scope="module")
def outputs(executed):
    return [[o for o in cell.outputs if o.output_type == "error"] for cell in executed.cells]


def test_the_kernel_is_the_one_asked_for(executed, outputs):
    assert not outputs[0], f"the first cell failed: {outputs[0]}"
    printed = "".join(o.get("text", "") for o in executed.cells[0].outputs).strip()
    want = os.environ.get("GANLAB_KERNEL_PYTHON")
    assert not want or printed == want, f"the kernel ran {printed!r}, not {want}"


def _text(error):
    return ANSI.sub("", "\n".join(error["traceback"]))


@pytest.mark.parametrize("cell, hint", [(1, "you forgot the + 1"), (3, "do not depend on z")])
def test_a_failed_check_shows_its_hint_first_and_nothing_else(outputs, cell, hint):
    (error,) = outputs[cell]
    assert error["ename"] == "CheckFailed", f"nbval and the grader read ename: {error['ename']}"
    assert hint in error["evalue"], f"the grader reads evalue as the hint: {error['evalue']!r}"
    text = _text(error)
    lines = [line for line in text.splitlines() if line.strip()]
    assert hint in lines[0], f"the hint is not on the first line:\n{text}"
    assert len(lines) <= 5, f"{len(lines)} lines for a failed check:\n{text}"
    assert "%tb" in text, f"the rendering does not say how to see the full traceback:\n{text}"
    for leak in ("Traceback", "fail_unless", "def check_", "ganlab/checks", "raise CheckFailed"):
        assert leak not in text, f"the rendering shows the check's source ({leak!r}):\n{text}"


def test_tb_shows_the_full_traceback(outputs):
    (error,) = outputs[2]
    text = _text(error)
    assert "check_size_formula" in text and "you forgot the + 1" in text, (
        f"%tb after a failed check should show the whole traceback:\n{text}"
    )


def test_a_stubs_error_stays_a_not_implemented_error(outputs):
    (error,) = outputs[4]
    assert error["ename"] == "NotImplementedError"
    assert error["evalue"] == "lerp is not written yet: fill it in ganlab/latent.py"
