"""The ``ganlab`` command: every sub-command once, and bad input -> one ``error:`` line, no traceback."""

import os

# The switch must be on before ganlab is imported (it fixes the package path at import);
# tests/conftest.py does the same, this keeps the file runnable on its own.
os.environ["GANLAB_SOLUTIONS"] = "1"

import importlib.util  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from terminal import as_in_a_terminal  # noqa: E402

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


# ---- bad input on every sub-command: one `error:` line, the right exit status ----
def _config(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(TINY + text)
    return str(path)


def _binary(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01")
    return str(path)


def _a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return str(path)


def _corrupt_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(20):
        iio.imwrite(folder / f"{i}.png", np.full((8, 8, 3), i * 10, np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return f"dataset: folder:{folder}\nimage_size: 32\n"


def _file(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _npy(tmp_path, array, name="s.npy"):
    """``array`` saved as ``name``; a dict of arrays makes an .npz archive under that name."""
    with open(tmp_path / name, "wb") as f:  # a file object: np.savez would add .npz to a name
        if isinstance(array, dict):
            np.savez(f, **array)
        else:
            np.save(f, array)
    return str(tmp_path / name)


def _fifo(tmp_path, name):
    os.mkfifo(tmp_path / name)  # reading it would wait for a writer forever
    return str(tmp_path / name)


def _copy(source, tmp_path, name):
    (tmp_path / name).write_bytes(Path(source).read_bytes())
    return str(tmp_path / name)


NO_GPU = not torch.cuda.is_available()
# (argv builder: (tmp_path, checkpoint) -> argv, exit status, words the error line must hold)
BAD = {
    "betas outside [0, 1)": (
        lambda t, c: ["train", _config(t, "beta1: 1.5\n")],
        2,
        "beta1 must be in [0, 1)",
    ),
    "dropout outside [0, 1)": (
        lambda t, c: ["train", _config(t, "dropout: 2\n")],
        2,
        "dropout must be",
    ),
    "negative seed": (
        lambda t, c: ["train", _config(t, "seed: -3\n")],
        2,
        "seed must be in [0, 2147483647]",
    ),
    "unknown dataset": (
        lambda t, c: ["train", _config(t, "dataset: mnits\n")],
        2,
        "unknown dataset",
    ),
    "unsupported image size": (
        lambda t, c: ["train", _config(t, "image_size: 30\n")],
        2,
        "image_size",
    ),
    "unknown device": (
        lambda t, c: ["train", _config(t, "device: gpu0\n")],
        2,
        "not a device name",
    ),
    "config not text": (lambda t, c: ["train", _binary(t)], 2, "not a text file"),
    "--out is a file": (
        lambda t, c: ["train", _config(t, ""), "--out", _a_file(t)],
        2,
        "is a file",
    ),
    "unknown preset": (lambda t, c: ["train", "--preset", "cpuu"], 2, "unknown preset"),
    "bad override": (
        lambda t, c: ["train", "--preset", "demo", "--set", "steps=[1,"],
        2,
        "not valid YAML",
    ),
    "no config": (lambda t, c: ["train"], 2, "--preset"),
    "corrupt image in a folder": (
        lambda t, c: [
            *("train", _config(t, _corrupt_folder(t)), "--set", "batch_size=4"),
            *("--out", str(t / "r")),
        ],
        1,
        "broken.png cannot be read as an image",
    ),
    "sample --nrow 0": (
        lambda t, c: ["sample", c, "--out", str(t / "x.png"), "--nrow", "0"],
        2,
        "--nrow",
    ),
    "sample --nrow -2": (
        lambda t, c: ["sample", c, "--out", str(t / "x.png"), "--nrow", "-2"],
        2,
        "--nrow",
    ),
    "sample -n 0": (lambda t, c: ["sample", c, "--out", str(t / "x.png"), "-n", "0"], 2, "-n"),
    "sample --out a folder": (lambda t, c: ["sample", c, "--out", str(t)], 2, "folder"),
    "sample --out .txt": (
        lambda t, c: ["sample", c, "--out", str(t / "x.txt")],
        2,
        "unsupported file type",
    ),
    "sample unknown device": (
        lambda t, c: ["sample", c, "--out", str(t / "x.png"), "--device", "gpu0"],
        2,
        "not a device name",
    ),
    "sample missing file": (
        lambda t, c: ["sample", str(t / "no.pt"), "--out", str(t / "x.png")],
        1,
        "no such file",
    ),
    "interpolate --steps 1": (
        lambda t, c: ["interpolate", c, "--out", str(t / "w.gif"), "--steps", "1"],
        2,
        "--steps",
    ),
    "interpolate --rows 0": (
        lambda t, c: ["interpolate", c, "--out", str(t / "w.gif"), "--rows", "0"],
        2,
        "--rows",
    ),
    "interpolate --fps 0": (
        lambda t, c: ["interpolate", c, "--out", str(t / "w.gif"), "--fps", "0"],
        2,
        "--fps",
    ),
    "export --opset 5": (
        lambda t, c: ["export", c, str(t / "g.onnx"), "--opset", "5"],
        2,
        "--opset",
    ),
    "export not .onnx": (lambda t, c: ["export", c, str(t / "g.bin")], 2, "unsupported file type"),
    "evaluate --n -5": (lambda t, c: ["evaluate", c, "--n", "-5"], 2, "--n"),
    "evaluate --n 0": (lambda t, c: ["evaluate", c, "--n", "0"], 2, "--n"),
    "evaluate wrong suffix": (
        lambda t, c: ["evaluate", str(t / "x.csv")],
        2,
        "expected a checkpoint",
    ),
    "evaluate missing file": (lambda t, c: ["evaluate", str(t / "x.npy")], 1, "no such file"),
    "unknown command": (lambda t, c: ["trian"], 2, "invalid choice"),
    # files that are not what the command needs
    "config is a folder": (lambda t, c: ["train", str(t)], 2, "is a folder"),
    "sample a run folder": (
        lambda t, c: ["sample", str(Path(c).parent), "--out", str(t / "x.png")],
        1,
        "did you mean",
    ),
    "sample a .pt2 without its .json": (
        lambda t, c: ["sample", _file(t, "g.pt2", b"PK"), "--out", str(t / "x.png")],
        1,
        "needs g.json beside it",
    ),
    "evaluate an .npz named .npy": (
        lambda t, c: ["evaluate", _npy(t, {"a": np.zeros(3)})],
        1,
        "not an .npy file",
    ),
    "evaluate a PNG named .npy": (
        lambda t, c: ["evaluate", _file(t, "s.npy", b"\x89PNG\r\n\x1a\n")],
        1,
        "not an .npy file",
    ),
    "evaluate an .npy of text": (
        lambda t, c: ["evaluate", _npy(t, np.array(["a", "b"]))],
        1,
        "holds <U1 values",
    ),
    "evaluate 3 images": (
        lambda t, c: ["evaluate", _npy(t, np.zeros((3, 1, 28, 28), np.float32))],
        1,
        "need at least 4 images",
    ),
    "evaluate --n 3": (lambda t, c: ["evaluate", c, "--n", "3"], 1, "need at least 4 images"),
    # numbers out of range
    "sample -n too many": (
        lambda t, c: ["sample", c, "--out", str(t / "x.png"), "-n", "100000000"],
        2,
        "at most 50,000 images",
    ),
    "sample -n 2.5": (
        lambda t, c: ["sample", c, "--out", str(t / "x.png"), "-n", "2.5"],
        2,
        "must be a positive whole number",
    ),
    "sample --seed -1": (
        lambda t, c: ["sample", c, "--out", str(t / "x.png"), "--seed", "-1"],
        2,
        "--seed: must be a whole number in [0,",
    ),
    "evaluate --seed 10**30": (
        lambda t, c: ["evaluate", c, "--seed", str(10**30)],
        2,
        "--seed: must be a whole number in [0,",
    ),
    "interpolate --fps nan": (
        lambda t, c: ["interpolate", c, "--out", str(t / "w.gif"), "--fps", "nan"],
        2,
        "--fps must be a positive number",
    ),
    "interpolate too many images": (
        lambda t, c: ["interpolate", c, "--out", str(t / "w.gif"), "--steps", "100000"],
        2,
        "at most 50,000 images",
    ),
    # outputs that cannot be written
    "sample --out inside a file": (
        lambda t, c: ["sample", c, "--out", str(Path(_a_file(t)) / "x.png")],
        1,
        "is a file, not a folder",
    ),
    "sample --out name too long": (
        lambda t, c: ["sample", c, "--out", str(t / ("a" * 300 + ".png"))],
        1,
        "File name too long",
    ),
    "sample --out is the input, even with --force": (
        lambda t, c: ["sample", _copy(c, t, "ck.png"), "--out", str(t / "ck.png"), "--force"],
        2,
        "is the input file",
    ),
    # arguments that would quietly do something else
    "train --out empty": (
        lambda t, c: ["train", _config(t, ""), "--out", ""],
        2,
        "--out is empty",
    ),
    "override without a value": (
        lambda t, c: ["train", _config(t, ""), "--set", "steps="],
        2,
        "has no value",
    ),
    "name is a path": (
        lambda t, c: ["train", _config(t, ""), "--set", "name=../../elsewhere"],
        2,
        "name must be a plain name",
    ),
    "evaluate --json empty": (lambda t, c: ["evaluate", c, "--json", ""], 2, "is a folder"),
    "evaluate --json exists": (
        lambda t, c: ["evaluate", c, "--json", _file(t, "r.json", b'{"mine": 1}')],
        2,
        "--force",
    ),
    "a key given twice": (
        lambda t, c: ["train", _config(t, "ngf: 16\n")],
        2,
        "line 9, column 1: key 'ngf' is given twice",
    ),
    "an infinite learning rate": (
        lambda t, c: ["train", _config(t, ""), "--set", "lr=.inf"],
        2,
        "lr must be a finite number > 0",
    ),
    "a config file given as --preset": (
        lambda t, c: ["train", "--preset", _config(t, "")],
        2,
        "--preset takes a name; for a config file, give it alone",
    ),
    "data_root is a file": (
        lambda t, c: ["train", _config(t, "dataset: mnist\ndata_root: " + _a_file(t) + "\n")],
        1,
        "is a file, not a folder",
    ),
    "sample a named pipe": (
        lambda t, c: ["sample", _fifo(t, "g.onnx"), "--out", str(t / "x.png")],
        1,
        "not a regular file",
    ),
}
if NO_GPU:
    BAD["device cuda without a GPU"] = (
        lambda t, c: ["train", _config(t, "device: cuda\n")],
        2,
        "no CUDA GPU",
    )
    BAD["sample --device cuda without a GPU"] = (
        lambda t, c: ["sample", c, "--out", str(t / "x.png"), "--device", "cuda"],
        2,
        "no CUDA GPU",
    )


def status_of(argv):
    """``ganlab argv``'s exit status, whether main returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_error_line_with_the_right_status(case, run_dir, tmp_path, capfd):
    build, code, words = BAD[case]
    status = status_of(build(tmp_path, str(run_dir / "checkpoint.pt")))
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == code, f"{case}: exit status {status}, expected {code}; stderr: {err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), (
        f"{case}: one `error:` line expected: {err!r}"
    )
    assert words in lines[0], f"{case}: the error should say {words!r}: {lines[0]}"
    leftovers = [
        p.name for p in tmp_path.rglob("*") if ".partial" in p.name or p.name.endswith(".tmp")
    ]
    assert not leftovers, f"{case}: half-written files left behind: {leftovers}"


def test_upper_case_suffixes_write_the_file_named(run_dir, tmp_path):
    checkpoint = str(run_dir / "checkpoint.pt")
    for name in ("S.NPY", "G.PNG"):
        assert main(["sample", checkpoint, "-n", "4", "--out", str(tmp_path / name)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["G.PNG", "S.NPY"]
    assert np.load(tmp_path / "S.NPY").shape == (4, 1, 28, 28)


def test_an_unwritable_place_stops_a_command_before_its_work(run_dir, tmp_path, capfd, monkeypatch):
    """chmod 555 or a read-only disk (simulated: root ignores chmod): one line, nothing touched."""

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.TemporaryFile", refused)
    before = (run_dir / "checkpoint.pt").read_bytes()
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY.replace("steps: 4", "steps: 6"))
    for argv in (
        ["sample", str(run_dir / "checkpoint.pt"), "--out", str(tmp_path / "s.png")],
        ["train", str(config), "--out", str(run_dir)],  # 2 more steps, then it could not save
    ):
        assert status_of(argv) == 1, f"ganlab {argv[0]} should fail with status 1"
        err = capfd.readouterr().err
        assert err.startswith("error: cannot write in") and "Traceback" not in err, err
    assert (run_dir / "checkpoint.pt").read_bytes() == before, "the checkpoint was touched"
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"] == 4


def test_big_endian_samples_are_scored(tmp_path, capsys):
    images = np.random.default_rng(0).uniform(-1, 1, (8, 1, 28, 28)).astype(">f4")
    assert main(["evaluate", _npy(tmp_path, images), "--n", "8"]) == 0, capsys.readouterr().err


def test_evaluate_draws_no_more_samples_than_it_scores(run_dir, tmp_path, capsys, monkeypatch):
    import ganlab.cli

    drawn = []
    real_samples = ganlab.cli._samples
    monkeypatch.setattr(
        ganlab.cli, "_samples", lambda path, n, *a: drawn.append(n) or real_samples(path, 8, *a)
    )
    assert main(["evaluate", str(run_dir / "checkpoint.pt"), "--n", "100000000"]) == 0
    assert drawn and drawn[0] <= 10_000, f"drew {drawn} samples for a test set of at most 10,000"


def test_an_onnx_model_that_is_not_a_generator_is_refused(tmp_path, capfd):
    pytest.importorskip("onnxruntime")
    import warnings

    path = tmp_path / "linear.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            torch.nn.Linear(4, 10),
            (torch.zeros(2, 4),),
            str(path),
            input_names=["z"],
            dynamic_axes={"z": {0: "batch"}},
            dynamo=False,
        )
    assert status_of(["sample", str(path), "-n", "4", "--out", str(tmp_path / "s.npy")]) == 1
    err = capfd.readouterr().err
    assert err.startswith("error: ") and "not images" in err and "Traceback" not in err, err
    assert not (tmp_path / "s.npy").exists(), "a wrong model must not write samples"


def test_help_on_a_terminal_that_cannot_show_accents(tmp_path):
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    proc = subprocess.run(
        [sys.executable, "-m", "ganlab", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "Fr\\xe9chet" in proc.stdout, proc.stdout


def test_a_failed_command_leaves_no_empty_folder(run_dir, tmp_path, capfd):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 broken")
    for argv in (
        ["sample", str(corrupt), "--out", str(tmp_path / "new" / "deep" / "s.png")],
        ["export", str(corrupt), str(tmp_path / "new" / "g.onnx")],
        ["interpolate", str(corrupt), "--out", str(tmp_path / "new" / "w.gif")],
    ):
        assert status_of(argv) == 1, f"{argv[0]} on a corrupt checkpoint should fail with status 1"
        assert not (tmp_path / "new").exists(), (
            f"ganlab {argv[0]} failed but left {tmp_path / 'new'} behind"
        )
    assert "truncated" in capfd.readouterr().err


def test_ctrl_c_saves_a_checkpoint_and_says_so_in_one_line(tmp_path):
    """A real SIGINT, as a terminal sends it, long before the first `checkpoint_every`."""
    import signal
    import time

    config = tmp_path / "long.yaml"
    config.write_text(
        TINY.replace("steps: 4", "steps: 100000").replace(
            "checkpoint_every: 2", "checkpoint_every: 50000"
        )
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "ganlab", "train", str(config), "--out", str(tmp_path / "r")]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "r" / "samples").glob("*.png")) and time.monotonic() < deadline:
        time.sleep(0.2)  # training has started once the first snapshot is written
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, f"exit status {proc.returncode}: {err}"
    assert len(lines) == 1 and "saved" in lines[0] and "Traceback" not in err, (
        f"one line expected: {err!r}"
    )
    state = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    assert state["step"] > 0, "the checkpoint written on Ctrl-C should hold the steps trained"
    again = subprocess.run(
        command[:-2] + ["--out", str(tmp_path / "r"), "--set", f"steps={state['step'] + 2}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, f"the same command should resume: {again.stderr}"
    assert (
        torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)["step"] == state["step"] + 2
    )


def test_a_second_trainer_on_the_same_folder_is_refused(tmp_path, capfd):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from ganlab.checkpoints import RunLock; "
            f"RunLock({str(tmp_path / 'r')!r}).acquire(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        config = tmp_path / "tiny.yaml"
        config.write_text(TINY)
        assert status_of(["train", str(config), "--out", str(tmp_path / "r")]) == 1
        err = capfd.readouterr().err
        assert err.startswith("error: ") and f"process {holder.pid}" in err, (
            f"unclear refusal: {err}"
        )
    finally:
        holder.kill()
        holder.wait()


def test_the_shipped_generator_works_where_a_checkpoint_does(tmp_path, capsys):
    asset = str(REPO / "ganlab" / "assets" / "generator_mnist.pt2")
    assert main(["sample", asset, "-n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert (
        main(
            ["interpolate", asset, "--out", str(tmp_path / "w.png"), "--steps", "3", "--rows", "1"]
        )
        == 0
    )
    assert main(["evaluate", asset, "--n", "200"]) == 0, capsys.readouterr().err
    assert "real floor" in capsys.readouterr().out


@pytest.mark.parametrize("script", ["benchmark.py", "make_pretrained.py"])
def test_the_scripts_report_bad_input_like_the_cli(script, tmp_path):
    """scripts/ end with ``cli.guarded``: an error line and the CLI's exit status, no traceback."""
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / script),
            "--set",
            "no_such_key=1",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, GANLAB_SOLUTIONS="1"),
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "error: unknown config key 'no_such_key'" in proc.stderr, proc.stderr


def test_the_solutions_switch_in_a_student_copy_is_one_error_line(tmp_path):
    """GANLAB_SOLUTIONS=1 where no solutions/ exists (a student copy): one line, no traceback;
    and importing an exercise module still refuses, never quietly using the student's file."""
    env = dict(
        os.environ, GANLAB_SOLUTIONS="1", GANLAB_SOLUTIONS_DIR=str(tmp_path / "no-solutions")
    )
    run = tmp_path / "r"
    command = ["train", "--preset", "demo", "--set", "steps=1", "--out", str(run)]
    proc = subprocess.run(
        [sys.executable, "-m", "ganlab", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: GANLAB_SOLUTIONS=1 is set, but there are no reference"), (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert not run.exists(), "a run that cannot start must leave no folder"
    proc = subprocess.run(
        [sys.executable, "-c", "import ganlab; from ganlab import models"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and "SolutionsUnavailable" in proc.stderr, proc.stderr


@pytest.mark.parametrize("module", ["torch", "torchvision"])  # ganlab.cli's; train's (.trainer)
def test_ctrl_c_while_torch_is_imported_is_one_line_and_130(module):
    # The console script's own code; a finder holds the import until the signal comes.
    script = f"""if True:
        import sys, time
        class Slow:
            def find_spec(self, name, path=None, target=None):
                if name == {module!r}:
                    print("importing torch", file=sys.stderr, flush=True)
                    time.sleep(60)
        sys.meta_path.insert(0, Slow())
        from ganlab.cli import main
        sys.exit(main())
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "train", "--preset", "demo"],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_in_a_terminal,
    )
    try:
        assert proc.stderr.readline() == "importing torch\n"
        proc.send_signal(signal.SIGINT)
        # At once: not after importing that module again (it would wait the 60 s again)
        assert proc.wait(timeout=30) == 130
        err = proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    assert err.strip() == "interrupted", f"one line expected: {err!r}"


def test_a_failed_export_check_writes_nothing_and_keeps_the_old_file(
    run_dir, tmp_path, capsys, monkeypatch
):
    ort = pytest.importorskip("onnxruntime")
    run = ort.InferenceSession.run
    monkeypatch.setattr(  # an export that ONNX Runtime runs differently from PyTorch
        ort.InferenceSession, "run", lambda self, *a, **k: [x + 1 for x in run(self, *a, **k)]
    )
    out = tmp_path / "g.onnx"
    err = fails(["export", str(run_dir / "checkpoint.pt"), str(out)], capsys, code=1)
    assert "differs from PyTorch" in err, err
    assert not out.exists(), "an export that failed its check must not be written"
    out.write_bytes(b"precious")
    fails(["export", str(run_dir / "checkpoint.pt"), str(out), "--force"], capsys, code=1)
    assert out.read_bytes() == b"precious", "a failed export must not replace the old file"
    assert [p.name for p in tmp_path.iterdir()] == ["g.onnx"], "no partial file left behind"


def test_evaluate_scores_an_exported_onnx_as_its_checkpoint(run_dir, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "G.ONNX"  # any case of the suffix
    assert main(["export", str(run_dir / "checkpoint.pt"), str(onnx_path)]) == 0
    reports = []
    for source in (run_dir / "checkpoint.pt", onnx_path):
        out = tmp_path / f"{source.stem}.json"
        assert main(["evaluate", str(source), "--n", "64", "--json", str(out)]) == 0, (
            capsys.readouterr().err
        )
        reports.append(json.loads(out.read_text()))
    fd = [r["fd"] for r in reports]
    assert fd[0] == pytest.approx(fd[1], rel=1e-3), f"ONNX and checkpoint scored apart: {fd}"


def test_the_done_line_names_only_the_pictures_written(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY.replace("steps: 4", "steps: 1") + "gif: false\n")
    assert main(["train", str(config), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "samples.png, curves.png" in out and "training.gif" not in out, out
    assert not (tmp_path / "r" / "training.gif").exists()


def test_train_out_is_a_path_as_typed(tmp_path, monkeypatch, capsys):
    """--out 2024 was read as YAML (a number: refused), --out '#x' as a comment (null: the run
    went to runs/NAME, resuming what was there)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(TINY.replace("steps: 4", "steps: 1"))
    for out in ("2024", "#x"):
        assert main(["train", "tiny.yaml", "--out", out]) == 0, capsys.readouterr().err
        assert (tmp_path / out / "checkpoint.pt").is_file(), f"--out {out}: not trained there"
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="file names of any bytes: Linux")
def test_file_names_that_are_not_utf8(tmp_path, capsys):
    bad = os.fsdecode(b"\xff")  # as Python hands such a name from the command line
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY.replace("steps: 4", "steps: 1"))
    run, model = tmp_path / f"run{bad}", tmp_path / f"g{bad}.onnx"
    assert main(["train", str(config), "--out", str(run)]) == 0, capsys.readouterr().err
    if importlib.util.find_spec("onnxruntime") is None:
        return
    assert main(["export", str(run / "checkpoint.pt"), str(model)]) == 0, capsys.readouterr().err
    out = tmp_path / f"s{bad}.npy"
    assert main(["sample", str(model), "-n", "2", "--out", str(out)]) == 0, capsys.readouterr().err
    assert np.load(out).shape == (2, 1, 28, 28)
