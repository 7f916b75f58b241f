"""The ``ganlab`` command: train, sample, interpolate, export, evaluate, grade, check, submit.

    ganlab train --preset demo [--set steps=500 ...] [--resume | --overwrite] [--out DIR]
    ganlab train my.yaml                                (a config file; presets: ganlab/configs/)
    ganlab sample runs/demo/checkpoint.pt -n 64 --out samples.png   (or .npy; or from .onnx / .pt2)
    ganlab interpolate runs/demo/checkpoint.pt --out walk.gif [--method slerp|lerp]
    ganlab export runs/demo/checkpoint.pt model.onnx
    ganlab evaluate runs/demo/checkpoint.pt              (or samples.npy, or a .pt2 / .onnx)
    ganlab grade submissions/ --out grades.csv           (instructors: a whole class)
    ganlab check                                         (students: self-check before submitting)
    ganlab submit [--notebooks DIR]                      (students: the zip to hand in)

Every sub-command's options are defined here; the modules that do the work are
imported only when their command runs, so ``ganlab train`` starts without loading
the metrics or the grading engine. Mistakes (a missing file, a bad config key, a
corrupt checkpoint, an unfinished exercise, a full disk) end with one ``error: ...``
line and a non-zero exit status, not a traceback: 2 for a wrong command or config,
1 for anything that failed while running. Existing outputs are never replaced unless
you pass ``--overwrite`` / ``--force``, and a command that fails leaves no half-written
file or empty folder behind.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import importlib.util
import json
import math
import os
import sys
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path

from ._solutions import EXERCISE_MODULES, SolutionsUnavailable

try:  # torch takes seconds to import: Ctrl-C meanwhile ends as in guarded(), not in a traceback
    import numpy as np
    import torch

    from .checkpoints import (
        CheckpointError,
        DiskFull,
        RunLocked,
        check_file,
        check_writable,
        load_error,
        load_generator,
        sample_checkpoint,
    )
    from .config import SEEDS, ConfigError, load_config, presets, resolve_device
except KeyboardInterrupt:
    print("\ninterrupted", file=sys.stderr)
    raise SystemExit(130) from None

# Imported inside the commands that use them, to keep start-up light: .trainer and .viz (torchvision,
# matplotlib), .metrics (torchmetrics), .grading (the Jupyter stack); also .latent (your file) and
# onnxruntime (optional).

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# A command holds all its images in memory at once: 50,000 (FID's usual sample size) take 157 MB
# at 28x28 in grey, 2.5 GB at 64x64 in colour.
MAX_IMAGES = 50_000
EXERCISES = tuple(f"ganlab.{name.removesuffix('.py')}" for name in EXERCISE_MODULES)


class UsageError(Exception):
    """The command line asks for something impossible (e.g. to overwrite a file without --force).
    Also the grading commands' (``ganlab.grading.commands``), which import it from here."""


class BadInput(Exception):
    """An input file exists but holds something the command cannot use."""


# ---- outputs: checked before any work, written whole or not at all ----
def check_output(
    path: Path, force: bool, suffixes=(), option="--out", source=None, folder=False
) -> Path:
    """``path`` if the command may write it (``option`` names it in messages); checked before any
    work, so a mistake costs no time. A file with one of ``suffixes`` (any, if none), never the
    input file ``source``, even with --force; or, with ``folder``, a folder (which may exist).
    The grading commands check their outputs with it too."""
    named = f"{option} {path}".lstrip()
    if folder and path.exists() and not path.is_dir():
        raise UsageError(f"{named} is not a folder")
    if not folder and path.is_dir():
        example = f", e.g. {path / ('out' + suffixes[0])}" if suffixes else ""
        raise UsageError(f"{named} is a folder; give a file name{example}")
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(f"{named}: unsupported file type; use one of {', '.join(suffixes)}")
    if source is not None and path.exists() and Path(source).exists() and path.samefile(source):
        raise UsageError(f"{named} is the input file: choose another name for the output")
    if not folder and path.exists() and not force:
        raise UsageError(
            f"{path} already exists; pass --force to replace it, or choose another file name"
        )
    check_writable(path if folder else path.parent)
    return path


@contextmanager
def _writing(path: Path):
    """Yield a temporary name beside ``path``; on success it becomes ``path``, on failure it and
    any folders made for it are removed, so a failed command leaves nothing behind."""
    made, parent = [], path.parent
    while not parent.exists():
        made.append(parent)
        parent = parent.parent
    # Keeps the suffix writers go by; a name of our own, as some writers (torch.onnx) refuse a
    # name that is not UTF-8, and two commands writing one file at once must not share it.
    tmp = path.with_name(f".ganlab-{os.getpid()}.partial{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        for folder in made:  # innermost first; only the ones this command made
            try:
                folder.rmdir()
            except OSError:
                pass
        raise


def _whole(text: str):
    """``text`` as a whole number, or None: argparse then says what was wrong, not "invalid int"."""
    try:
        return int(text)
    except ValueError:
        return None


def _positive(text: str) -> int:
    value = _whole(text)
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def _count(text: str) -> int:
    """A number of images: positive, and few enough to hold in memory."""
    value = _positive(text)
    if value > MAX_IMAGES:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_IMAGES:,} images at once (they are held in memory), got {text}; "
            "draw more with several commands and different --seed values"
        )
    return value


def _seed(text: str) -> int:
    value = _whole(text)
    if value is None or value not in SEEDS:
        raise argparse.ArgumentTypeError(f"must be a whole number {SEEDS}, got {text}")
    return value


# ---- train ----
def cmd_train(args) -> int:
    from .trainer import train

    if args.config is None and args.preset is None:
        raise UsageError(
            f"give a config file or a preset: --preset NAME, one of {', '.join(presets())}"
        )
    config = load_config(args.config, args.set, preset=args.preset)
    if args.out is not None:  # a path as typed: not read as YAML (2024 is no number, # no comment)
        if not args.out.strip():
            raise UsageError("--out is empty: give the folder to train into")
        config = dataclasses.replace(config, out_dir=args.out)
    trainer = train(config, resume=True if args.resume else None, overwrite=args.overwrite)
    if trainer.is_main:
        made = "samples.png, curves.png" + (", training.gif" if config.gif else "")  # gif: false
        print(f"done: {trainer.step} steps; see {trainer.out_dir}/{made}")
    return 0


# ---- sample ----
def _onnx_generate(path: Path, n: int, seed: int):
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise UsageError("sampling from .onnx needs onnxruntime: pip install onnxruntime") from err
    check_file(path)
    export = "export a generator with `ganlab export CHECKPOINT model.onnx`"
    model = path.read_bytes()  # the bytes, not the name: onnxruntime refuses names not in UTF-8
    try:
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for unreadable files
        raise CheckpointError(f"{path} is not a readable ONNX model ({err}); {export}") from err
    inputs = session.get_inputs()  # a generator's: one "z", shaped (batch, nz)
    nz = inputs[0].shape[-1] if len(inputs) == 1 and len(inputs[0].shape) == 2 else None
    if not isinstance(nz, int):
        shapes = [tuple(i.shape) for i in inputs]
        raise CheckpointError(f"{path} takes inputs {shapes}, not one z of (batch, nz); {export}")
    z = torch.randn(n, nz, generator=torch.Generator().manual_seed(seed))
    try:
        images = np.concatenate(
            [session.run(None, {inputs[0].name: c.numpy()})[0] for c in z.split(1000)]
        )
    except Exception as err:  # onnxruntime's own types again
        raise CheckpointError(f"{path} fails on z of shape (N, {nz}): {load_error(err)}") from err
    if images.ndim != 4:
        raise CheckpointError(
            f"{path} turns z into arrays of shape {images.shape[1:]}, not images (C, H, W); {export}"
        )
    return torch.from_numpy(images)


def _samples(source: Path, n: int, seed: int, device):
    """``n`` images in [-1, 1] from a checkpoint, a ``.pt2`` or an ``.onnx`` (the same seed, the same z)."""
    if source.suffix.lower() == ".onnx":
        return _onnx_generate(source, n, seed)
    return sample_checkpoint(source, n, seed, device)


def cmd_sample(args) -> int:
    from .viz import save_grid

    out = check_output(Path(args.out), args.force, IMAGE_SUFFIXES + (".npy",), source=args.source)
    images = _samples(Path(args.source), args.n, args.seed, resolve_device(args.device)).clamp(
        -1, 1
    )
    with _writing(out) as tmp:
        if out.suffix.lower() == ".npy":
            with open(tmp, "wb") as f:  # a file, not a name: np.save would add ".npy" to "x.NPY"
                np.save(f, images.numpy().astype(np.float32))  # (N, C, H, W) in [-1, 1]
        else:
            save_grid(images, tmp, nrow=args.nrow)
    print(f"wrote {args.n} images to {out}")
    return 0


# ---- interpolate ----
def cmd_interpolate(args) -> int:
    from .latent import lerp, slerp  # chapter 6: your code, or the solutions
    from .viz import grid_array, save_gif, save_grid

    out = check_output(
        Path(args.out), args.force, IMAGE_SUFFIXES + (".gif",), source=args.checkpoint
    )
    if args.steps < 2:
        raise UsageError("--steps must be at least 2")
    if args.rows * args.steps > MAX_IMAGES:
        raise UsageError(
            f"--rows x --steps: at most {MAX_IMAGES:,} images at once (they are held in memory)"
        )
    if not (math.isfinite(args.fps) and args.fps > 0):
        raise UsageError("--fps must be a positive number")
    device = resolve_device(args.device)
    generator = load_generator(args.checkpoint, device)
    walk = slerp if args.method == "slerp" else lerp
    ends = torch.randn(
        args.rows, 2, generator.nz, generator=torch.Generator().manual_seed(args.seed)
    )
    t = torch.linspace(0, 1, args.steps)
    with torch.no_grad():
        z = torch.cat([walk(z0, z1, t) for z0, z1 in ends])  # (rows * steps, nz), a row per pair
        images = generator(z.to(device)).float().cpu()
    with _writing(out) as tmp:
        if out.suffix.lower() == ".gif":  # one frame per t: all rows side by side, walking together
            images = images.view(args.rows, args.steps, *images.shape[1:])
            frames = [grid_array(images[:, i], nrow=args.rows) for i in range(args.steps)]
            save_gif(frames + frames[-2:0:-1], tmp, fps=args.fps)  # there and back: a smooth loop
        else:
            save_grid(images, tmp, nrow=args.steps)
    print(f"wrote {args.rows} {args.method} interpolations of {args.steps} steps to {out}")
    return 0


# ---- export ----
def cmd_export(args) -> int:
    out = check_output(Path(args.output), args.force, (".onnx",), option="", source=args.checkpoint)
    if args.opset < 17:
        raise UsageError("--opset must be 17 or newer")
    if Path(args.checkpoint).suffix == ".pt2":
        raise UsageError(
            f"{args.checkpoint} is already an exported generator; export a checkpoint.pt"
        )
    generator = load_generator(args.checkpoint, "cpu")
    z = torch.randn(2, generator.nz)
    # Input "z" (batch, nz) -> output "images" (batch, C, H, W); the batch size stays free.
    kwargs = dict(
        input_names=["z"], output_names=["images"], opset_version=args.opset, verbose=False
    )
    with _writing(out) as tmp:  # checked before it becomes `out`: a failed check leaves nothing
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
            if importlib.util.find_spec("onnxscript") is not None:  # the torch.export-based one
                torch.onnx.export(
                    generator,
                    (z,),
                    str(tmp),
                    dynamo=True,
                    external_data=False,  # one file
                    dynamic_shapes={"z": {0: torch.export.Dim("batch")}},
                    **kwargs,
                )
            else:  # the TorchScript-based exporter, which needs no extra package
                torch.onnx.export(
                    generator,
                    (z,),
                    str(tmp),
                    dynamo=False,
                    dynamic_axes={"z": {0: "batch"}, "images": {0: "batch"}},
                    **kwargs,
                )
        diff = _onnx_difference(tmp, generator)
    if diff is None:
        print(f"wrote {out} (not verified: pip install onnxruntime to check it)")
    else:
        print(f"wrote {out}; ONNX Runtime vs PyTorch on a batch of 5: max difference {diff:.2e}")
    return 0


def _onnx_difference(path: Path, generator) -> float | None:
    """How far ONNX Runtime's images from the file at ``path`` are from PyTorch's, on the same z,
    at another batch size than exported; None without onnxruntime. Raises BadInput when they differ.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    z = torch.randn(5, generator.nz, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = generator(z).numpy()
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        images = session.run(["images"], {"z": z.numpy()})[0]
    except Exception as err:  # onnxruntime raises its own exception types
        raise BadInput(f"ONNX Runtime cannot run the exported model: {load_error(err)}") from err
    diff = float(np.abs(images - expected).max()) if images.shape == expected.shape else math.inf
    if not diff <= 1e-4:  # NaN too
        raise BadInput(f"the exported model differs from PyTorch by {diff:.2e}; nothing written")
    return diff


# ---- evaluate ----
def _npy_samples(path: Path):
    check_file(path)
    with open(path, "rb") as f:
        head = f.read(6)
    if head != b"\x93NUMPY":  # np.load would go on to read it as an .npz archive or a pickle
        raise BadInput(
            f"{path} is not an .npy file (it starts with {head!r}): write one with np.save"
        )
    try:
        array = np.load(path, allow_pickle=False)  # never unpickle: a file could run code
    except (ValueError, EOFError) as err:
        raise BadInput(f"{path} is not a plain .npy array: {err}") from err
    if array.dtype.kind not in "biufc":
        raise BadInput(f"{path} holds {array.dtype} values: expected float images in [-1, 1]")
    native = array.astype(array.dtype.newbyteorder("="), copy=False)  # a big-endian file too
    return torch.from_numpy(native)


def cmd_evaluate(args) -> int:
    from . import metrics

    path = Path(args.input)
    if path.suffix.lower() not in (".pt", ".pth", ".pt2", ".onnx", ".npy"):
        raise UsageError(
            f"{path}: expected a checkpoint (.pt), a generator (.pt2 or .onnx) or samples (.npy)"
        )
    if args.json is not None:  # --json "" too: a report asked for must not be skipped silently
        json_out = check_output(Path(args.json), args.force, (".json",), option="--json")
    real = metrics.reference_data(args.dataset, args.real, args.data_root)
    size = metrics.reference_size(real, args.data_root)
    n = min(args.n or size, size)  # default: the whole test set; more would not be scored
    if path.suffix.lower() == ".npy":
        fake = _npy_samples(path)
    else:
        fake = _samples(path, n, args.seed, "cpu")  # same seed, same samples
    try:
        fake = metrics.check_images(fake, f"samples of {path}")
    except ValueError as err:
        raise BadInput(str(err)) from None
    with warnings.catch_warnings(record=True) as caught:  # shown as plain lines, not code excerpts
        warnings.simplefilter("always")
        report = metrics.evaluate(
            fake,
            dataset=args.dataset,
            n=n,
            real=real,
            data_root=args.data_root,
            inception=args.inception,
            seed=args.seed,
        )
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    print(metrics.format_report(report))
    if args.json is not None:
        with _writing(json_out) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n")
        print(f"report written to {json_out}")
    return 0


# ---- grade, check ----
def cmd_grade(args) -> int:
    from .grading import commands

    return commands.run_grade(args)


def cmd_check(args) -> int:
    from .grading import commands

    return commands.run_check(args)


def cmd_submit(args) -> int:
    from .submission import submit, written

    print(written(*submit(args.kit, args.notebooks, args.out, args.force)))
    return 0


def _grading_limits(p):
    p.add_argument(
        "--timeout-cell", type=float, default=120.0, help="seconds per notebook cell (default 120)"
    )
    p.add_argument(
        "--timeout-total",
        type=float,
        default=900.0,
        help="seconds for all the notebooks of one submission (default 900)",
    )
    p.add_argument(
        "--memory-mb",
        type=int,
        default=4096,
        help="address space a kernel may use beyond what torch maps at start-up (default 4096)",
    )
    p.add_argument(
        "--disk-mb",
        type=int,
        default=1024,
        help="what one submission may keep in its sandbox folder on disk (default 1024)",
    )
    p.add_argument(
        "--all-cells",
        action="store_true",
        help="run every notebook cell; by default the plots and demos no check needs are left out",
    )
    p.add_argument(
        "--isolation",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="run each submission in a bubblewrap sandbox (bwrap), without one (none), or "
        "with one where bwrap works (auto, the default); the summary says which",
    )


# ---- the parser ----
class _Parser(argparse.ArgumentParser):
    """argparse, but a wrong command line is one ``error:`` line too (the usage is one --help away)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ganlab", description="Train and use DCGANs (the ganlab course kit).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a GAN from a preset or a YAML config")
    p.add_argument(
        "config", nargs="?", help="a YAML config file (see ganlab/configs/ for examples)"
    )
    p.add_argument(
        "--preset", help="a shipped config by name: demo, cpu, mnist, gpu, ... (ganlab/configs/)"
    )
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    p.add_argument("--out", help="output folder (default: runs/NAME)")
    again = p.add_mutually_exclusive_group()
    again.add_argument(
        "--resume", action="store_true", help="continue the run in the output folder"
    )
    again.add_argument(
        "--overwrite", action="store_true", help="replace the run in the output folder"
    )
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("sample", help="draw images from a checkpoint, a .pt2 or an exported .onnx")
    p.add_argument("source", metavar="CHECKPOINT_PT2_OR_ONNX")
    p.add_argument("-n", type=_count, default=64, help="number of images (default: 64)")
    p.add_argument(
        "--out", required=True, help="a .png grid, or .npy: float32 (N, C, H, W) in [-1, 1]"
    )
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--nrow", type=_positive, default=8, help="images per grid row")
    p.add_argument("--device", default="cpu")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser("interpolate", help="walk the latent space between random pairs")
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_PT2")
    p.add_argument("--out", required=True, help=".png grid (a row per pair) or .gif")
    p.add_argument(
        "--steps", type=_positive, default=8, help="images per interpolation (default: 8)"
    )
    p.add_argument("--rows", type=_positive, default=4, help="number of pairs (default: 4)")
    p.add_argument("--method", choices=("slerp", "lerp"), default="slerp")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--fps", type=float, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--force", action="store_true")
    p.set_defaults(run=cmd_interpolate)

    p = sub.add_parser("export", help="export the generator to ONNX")
    p.add_argument("checkpoint")
    p.add_argument("output", metavar="MODEL.onnx")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, at least 17 (default: 18)")
    p.add_argument("--force", action="store_true")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser(
        "evaluate", help="score samples: Fréchet distance, precision/recall, classes"
    )
    p.add_argument(
        "input",
        metavar="CHECKPOINT_PT2_ONNX_OR_NPY",
        help="checkpoint .pt or generator .pt2 / .onnx (samples drawn with --seed), or .npy of "
        "(N, 1, 28, 28) in [-1, 1]",
    )
    p.add_argument(
        "--n",
        type=_positive,
        default=None,
        help="images per set (default: the size of the real test set, 10,000 for MNIST)",
    )
    p.add_argument(
        "--dataset",
        choices=("mnist", "fashion-mnist"),
        default="mnist",
        help="which shipped classifier (FeatureNet) scores the images",
    )
    p.add_argument(
        "--real",
        choices=("auto", "mnist-offline", "mnist", "fashion-mnist"),
        default="auto",
        help="real data whose test split is the reference (auto: for mnist the full MNIST test "
        "set if its files are in --data-root, else the shipped slice)",
    )
    p.add_argument(
        "--data-root", default="data", help="where the real datasets are (default: data)"
    )
    p.add_argument("--json", metavar="OUT", help="also write the report to this JSON file")
    p.add_argument("--force", action="store_true", help="replace --json if it exists")
    p.add_argument(
        "--inception", action="store_true", help="add Inception FID (torch-fidelity, download)"
    )
    p.add_argument(
        "--seed", type=_seed, default=0, help="seed for sampling and subsets (default: 0)"
    )
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser(
        "grade",
        help="grade a folder of submissions (instructors)",
        description=GRADE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "submissions",
        metavar="SUBMISSIONS_DIR",
        help="one sub-folder per student, each a copy of the kit (ganlab/ and notebooks/)",
    )
    p.add_argument(
        "--out", required=True, help="the grades CSV to write (not inside SUBMISSIONS_DIR)"
    )
    p.add_argument(
        "--force", action="store_true", help="replace --out and --gradebook if they exist"
    )
    p.add_argument("--feedback-dir", help="write one Markdown feedback file per student here")
    p.add_argument(
        "--gradebook",
        metavar="CSV",
        help="also write Moodle's grading worksheet here (see below)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="submissions graded at once (default: the number of CPUs)",
    )
    _grading_limits(p)
    p.add_argument(
        "--notebooks",
        action="append",
        metavar="NN[,NN...]",
        help="grade only these notebooks, by name prefix (e.g. 02,04); default: all",
    )
    p.add_argument(
        "--students",
        action="append",
        metavar="NAME[,NAME...]",
        help="grade only these rows, by the name grades.csv shows (a folder's name, a zip's "
        "without .zip, Moodle's 'Name_participant id'; a name may hold commas), e.g. one "
        "flagged 'grade again'; --out then holds their rows only",
    )
    p.add_argument("--work-dir", help="where the sandboxes go (default: the system's temp folder)")
    p.add_argument(
        "--keep-work", action="store_true", help="keep the sandboxes and logs (debugging)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_grade)

    p = sub.add_parser(
        "check",
        help="run the graded checks on your copy of the kit (students)",
        description=CHECK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "path",
        nargs="?",
        default=None,
        metavar="PATH",
        help="your copy of the kit (default: the one holding the current folder, else the one "
        "this ganlab was installed from)",
    )
    p.add_argument(
        "--notebooks",
        metavar="DIR",
        help="where your notebooks are, when not in PATH/notebooks (e.g. a Google Drive folder)",
    )
    p.add_argument(
        "--notebook",
        action="append",
        metavar="NN",
        help="check only this notebook (by name prefix, e.g. 02); repeat for more",
    )
    _grading_limits(p)
    p.set_defaults(run=cmd_check)

    p = sub.add_parser(
        "submit",
        help="pack your exercise modules and notebooks into one zip to hand in (students)",
        description=SUBMIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "kit",
        nargs="?",
        metavar="KIT",
        help="your copy of the kit (default: the one at or above the current folder)",
    )
    p.add_argument(
        "--notebooks",
        metavar="DIR",
        help="where your notebooks are (default: Drive's Colab Notebooks on Colab, else KIT/notebooks)",
    )
    p.add_argument(
        "--out", metavar="FILE", help="the zip to write (default: KIT/ganlab-submission.zip)"
    )
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=cmd_submit)
    return parser


GRADE_HELP = """Grade a class: each entry of SUBMISSIONS_DIR is one student, a copy of the kit (a
folder) or a zip made by `ganlab submit`. The check cells of this kit's notebooks/ (never
the students' copies) run against each student's exercise cells and ganlab/ exercise
modules, in a kernel in a bubblewrap sandbox of its own; every check that passed is then
re-run by a judge process that runs the checks itself and the student's code only in a fresh
sandbox, trading data with it (no student code can reach a check). Notebook 05 trains for 20
steps (GANLAB_QUICK=1). Writes one CSV row per student (points per check, total, max,
notes), with --gradebook Moodle's grading worksheet, with --feedback-dir one Markdown file
per student, and lists at the end what to review. ganlab/grading/__init__.py says what is
defended against, with and without bubblewrap, and what is not.

--gradebook is for a Moodle assignment's "Download all submissions" (each folder's name holds
the student's participant id; other entries get no Identifier, and Moodle skips them). In
the assignment's settings, turn on the feedback types "Offline grading worksheet" (and
"Feedback comments" for the feedback) and set the maximum grade to at least the points; then
upload the file with "Upload grading worksheet"."""

SUBMIT_HELP = """Pack your ganlab/ exercise modules and the course notebooks into one zip, with a
manifest (kit version, files, their SHA-256, time), for your instructor's `ganlab grade`.
Refuses, naming each file, when something is missing. Save your notebooks first."""

CHECK_HELP = """Run the graded checks on your copy of the kit, the way the instructor's grader does:
each notebook runs in a fresh sandboxed kernel with your exercise cells and your ganlab/
exercise modules, then every check that passed is run again outside the kernel. Only your
code counts: outputs saved in your notebooks (JupyterLab autosaves them) are ignored."""


# ---- errors -> one line ----
def _explain(err: BaseException) -> tuple[int, str] | None:
    """(exit status, message) for the errors a user can fix; None for real bugs (keep the traceback)."""
    from .data import DatasetUnavailable  # the modules the command has loaded already
    from .metrics import MetricUnavailable
    from .trainer import TrainingDiverged

    usage = (ConfigError, UsageError)
    from .submission import SubmissionError

    runtime = (
        BadInput,
        SubmissionError,
        CheckpointError,
        DatasetUnavailable,
        DiskFull,
        MetricUnavailable,
        RunLocked,
        SolutionsUnavailable,
        TrainingDiverged,
    )
    files = (
        FileNotFoundError,
        FileExistsError,
        PermissionError,
        IsADirectoryError,
        NotADirectoryError,
    )
    if isinstance(err, usage):
        return 2, str(err)
    if isinstance(err, NotImplementedError):
        if str(err):  # the stubs' messages name the function, the file and the notebook
            return 1, f"your code is not finished: {err}"
        where = traceback.extract_tb(err.__traceback__)[-1]
        return (
            1,
            f"your code is not finished: {where.name} in {where.filename}:{where.lineno} raises it",
        )
    if isinstance(err, ModuleNotFoundError) and err.name in EXERCISES:
        return 1, (
            f"{err.name.replace('.', '/')}.py is missing: create the student files with "
            "`python -m ganlab.instructor stubs`, or set GANLAB_SOLUTIONS=1"
        )
    if isinstance(err, SyntaxError) and err.filename and "ganlab" in err.filename:
        return 1, f"{err.filename}, line {err.lineno}: {err.msg}: fix the syntax error there"
    if isinstance(err, runtime) or isinstance(err, files):
        return 1, str(err)
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return 1, f"the disk is full ({err}): free some space and run the command again"
    # Any other refusal of the system's about a named file: a name too long, a read-only disk...
    if isinstance(err, OSError) and err.filename is not None:
        return 1, str(err)
    return None


def main(argv=None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a terminal without "é" shows "\xe9", not a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    return guarded(args.run, args)


def guarded(run, *args) -> int:
    """``run(*args)``'s exit status; a known failure is one ``error:`` line, Ctrl-C one line and 130.

    Any script can end with ``sys.exit(guarded(main))`` for the same messages."""
    try:
        return run(*args)
    except KeyboardInterrupt as err:
        # A plain Ctrl-C has no message; training's TrainingInterrupted says where it stopped.
        # (Importing .trainer here to tell them apart would redo an import Ctrl-C cut short.)
        print(f"\n{str(err) or 'interrupted'}", file=sys.stderr)
        return 130
    except Exception as err:
        explained = _explain(err)
        if explained is None:
            raise
        code, message = explained
        print(f"error: {message}", file=sys.stderr)
        return code
