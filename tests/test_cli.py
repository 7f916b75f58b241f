"""The ``ganlab`` command: every sub-command once, and bad input -> one ``error:`` line, no traceback."""

import os

# The switch must be on before ganlab is imported (it fixes the package path at import);
# tests/conftest.py does the same, this keeps the file runnable on its own.
os.environ["GANLAB_SOLUTIONS"] = "1"

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ganlab.cli import main  # noqa: E402
from ganlab.instructor import strip_solutions  # noqa: E402

# Tiny models: one thread avoids OpenMP oversubscription when tests run in parallel.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent
TINY = "ngf: 8\nndf: 8\nbatch_size: 16\nsteps: 4\nsample_every: 2\ncheckpoint_every: 2\nlog_every: 2\nprogress: false\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One tiny training run through the CLI, shared by the tests that need a checkpoint."""
    folder = tmp_path_factory.mktemp("cli")
    config = folder / "tiny.yaml"
    config.write_text(TINY)
    assert main(["train", str(config), "--out", str(folder / "run")]) == 0, "ganlab train failed"
    return folder / "run"


def fails(argv, capsys, code=None):
    """Run ``ganlab argv``, expect a failure; return stderr."""
    status = main(argv)
    err = capsys.readouterr().err
    assert status != 0, f"ganlab {' '.join(argv)} should fail"
    if code is not None:
        assert status == code, f"exit status {status}, expected {code}; stderr: {err}"
    assert err.startswith("error: "), f"stderr should start with 'error: ', got: {err!r}"
    assert "Traceback" not in err, f"no traceback expected: {err}"
    return err


def test_train_writes_the_run(run_dir):
    for name in ("checkpoint.pt", "samples.png", "curves.png", "training.gif"):
        assert (run_dir / name).is_file(), f"ganlab train did not write {name}"


def test_sample_png_and_npy(run_dir, tmp_path):
    assert (
        main(
            [
                "sample",
                str(run_dir / "checkpoint.pt"),
                "-n",
                "6",
                "--nrow",
                "3",
                "--out",
                str(tmp_path / "s.png"),
            ]
        )
        == 0
    )
    assert iio.imread(tmp_path / "s.png").shape == (2 * 30 + 2, 3 * 30 + 2), (
        "6 images in rows of 3 expected"
    )
    assert (
        main(
            ["sample", str(run_dir / "checkpoint.pt"), "-n", "5", "--out", str(tmp_path / "s.npy")]
        )
        == 0
    )
    images = np.load(tmp_path / "s.npy")
    assert images.shape == (5, 1, 28, 28) and images.dtype == np.float32, (
        f"got {images.shape} {images.dtype}"
    )
    assert images.min() >= -1 and images.max() <= 1, "samples must lie in [-1, 1]"


def test_export_onnx_gives_the_same_images(run_dir, tmp_path, capsys):
    onnx_path = tmp_path / "g.onnx"
    assert main(["export", str(run_dir / "checkpoint.pt"), str(onnx_path)]) == 0
    assert "max difference" in capsys.readouterr().out, (
        "export should report its check against PyTorch"
    )
    for source, out in ((run_dir / "checkpoint.pt", "a.npy"), (onnx_path, "b.npy")):
        assert (
            main(["sample", str(source), "-n", "7", "--seed", "3", "--out", str(tmp_path / out)])
            == 0
        )
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert np.abs(a - b).max() < 1e-4, (
        f"ONNX and checkpoint samples differ by {np.abs(a - b).max():.2e}"
    )


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_interpolate(run_dir, tmp_path, suffix):
    out = tmp_path / f"walk{suffix}"
    assert (
        main(
            [
                "interpolate",
                str(run_dir / "checkpoint.pt"),
                "--out",
                str(out),
                "--steps",
                "5",
                "--rows",
                "2",
                "--method",
                "lerp",
            ]
        )
        == 0
    )
    frames = iio.imread(out, index=None) if suffix == ".gif" else iio.imread(out)[None]
    if suffix == ".gif":
        assert frames.shape[0] == 5 + 3, (
            f"5 steps there and 3 back expected, got {frames.shape[0]} frames"
        )
    else:
        assert frames.shape[1:3] == (2 * 30 + 2, 5 * 30 + 2), (
            f"a row of 5 per pair expected: {frames.shape}"
        )


def test_bad_inputs_give_one_error_line(run_dir, tmp_path, capsys):
    assert "does not exist" in fails(["train", str(tmp_path / "nope.yaml")], capsys, code=2)
    bad = tmp_path / "bad.yaml"
    bad.write_text("lrr: 0.1\n")
    err = fails(["train", str(bad)], capsys, code=2)
    assert "'lrr'" in err and "Allowed keys" in err, (
        f"unknown key message should list allowed keys: {err}"
    )
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((run_dir / "checkpoint.pt").read_bytes()[:3000])
    assert str(corrupt) in fails(
        ["sample", str(corrupt), "--out", str(tmp_path / "x.png")], capsys, code=1
    )
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"precious")
    assert "--force" in fails(
        ["sample", str(run_dir / "checkpoint.pt"), "--out", str(taken)], capsys, code=2
    )
    assert taken.read_bytes() == b"precious", (
        "an existing --out must not be touched without --force"
    )
    fails(
        ["sample", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "y.png")], capsys, code=1
    )


def test_training_again_refuses_a_different_config(run_dir, tmp_path, capsys):
    config = tmp_path / "other.yaml"
    config.write_text(TINY.replace("ngf: 8", "ngf: 16"))
    before = (run_dir / "checkpoint.pt").read_bytes()
    err = fails(["train", str(config), "--out", str(run_dir)], capsys, code=2)
    assert "ngf" in err, f"the refusal should name the differing key: {err}"
    assert (run_dir / "checkpoint.pt").read_bytes() == before, (
        "a refused run must not touch the checkpoint"
    )


def _stub_dir(tmp_path):
    """The student stubs, derived from the solutions as `python -m ganlab.instructor stubs` does."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in ("models", "losses", "training", "latent"):
        source = (REPO / "solutions" / "ganlab" / f"{name}.py").read_text()
        (stubs / f"{name}.py").write_text(strip_solutions(source, f"ganlab/{name}.py"))
    return stubs


def test_unfinished_exercise_names_the_function(tmp_path):
    # A fresh process: which exercise files are used is decided when ganlab is first imported.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    student_models = REPO / "ganlab" / "models.py"
    if student_models.is_file() and "NotImplementedError" in student_models.read_text():
        env.pop("GANLAB_SOLUTIONS", None)  # the student files in ganlab/, as a student runs them
    else:  # no generated stubs here: make them, and point the switch at them
        env.update(GANLAB_SOLUTIONS="1", GANLAB_SOLUTIONS_DIR=str(_stub_dir(tmp_path)))
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    result = subprocess.run(
        [sys.executable, "-m", "ganlab", "train", str(config), "--out", str(tmp_path / "r")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, (
        f"expected exit status 1, got {result.returncode}: {result.stderr}"
    )
    assert result.stderr.startswith("error: your code is not finished"), (
        f"unexpected stderr: {result.stderr}"
    )
    assert "Generator.__init__ is not written yet" in result.stderr, (
        f"should name the function: {result.stderr}"
    )
    assert "Traceback" not in result.stderr, f"no traceback expected: {result.stderr}"
