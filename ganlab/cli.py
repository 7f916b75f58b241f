"""The ``ganlab`` command: train, sample, interpolate, export, evaluate.

    ganlab train configs/demo.yaml [--set steps=500 ...] [--resume | --overwrite] [--out DIR]
    ganlab train --preset cpu
    ganlab sample runs/demo/checkpoint.pt -n 64 --out samples.png   (or .npy; or from model.onnx)
    ganlab interpolate runs/demo/checkpoint.pt --out walk.gif [--method slerp|lerp]
    ganlab export runs/demo/checkpoint.pt model.onnx
    ganlab evaluate runs/demo/checkpoint.pt
    ganlab grade submissions/ --out grades.csv     (instructors: a whole class)
    ganlab check                                   (students: self-check before submitting)

Mistakes (a missing file, a bad config key, a corrupt checkpoint, an unfinished
exercise) end with one ``error: ...`` line and a non-zero exit status, not a
traceback: 2 for a wrong command or config, 1 for anything that failed while running.
Existing outputs are never replaced unless you pass ``--overwrite`` / ``--force``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

from ._solutions import EXERCISE_MODULES, SolutionsUnavailable
from .data import DatasetUnavailable
from .trainer import (
    CheckpointError,
    ConfigError,
    TrainingDiverged,
    load_config,
    load_generator,
    sample_checkpoint,
    train,
)
from .viz import grid_array, save_gif, save_grid

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
EXERCISES = tuple(f"ganlab.{name.removesuffix('.py')}" for name in EXERCISE_MODULES)


class UsageError(Exception):
    """The command line asks for something impossible (e.g. to overwrite a file without --force)."""


def _check_out(path: Path, force: bool, suffixes) -> Path:
    if path.suffix.lower() not in suffixes:
        raise UsageError(f"--out {path}: unsupported file type; use one of {', '.join(suffixes)}")
    if path.exists() and not force:
        raise UsageError(
            f"{path} already exists; pass --force to replace it, or choose another file name"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# ---- train ----
def cmd_train(args) -> int:
    if args.config is None and args.preset is None:
        raise UsageError("give a config file (e.g. configs/demo.yaml) or --preset cpu")
    overrides = list(args.set) + ([f"out_dir={args.out}"] if args.out else [])
    config = load_config(args.config, overrides, preset=args.preset)
    trainer = train(config, resume=True if args.resume else None, overwrite=args.overwrite)
    if trainer.is_main:
        print(
            f"done: {trainer.step} steps; see {trainer.out_dir}/samples.png, curves.png, training.gif"
        )
    return 0


# ---- sample ----
def _onnx_generate(path: Path, n: int, seed: int) -> torch.Tensor:
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise UsageError("sampling from .onnx needs onnxruntime: pip install onnxruntime") from err
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for unreadable files
        raise CheckpointError(
            f"{path} is not a readable ONNX model ({err}); export one with "
            "`ganlab export CHECKPOINT model.onnx`"
        ) from err
    z_input = session.get_inputs()[0]  # "z", shaped (batch, nz)
    z = torch.randn(
        n, z_input.shape[1], generator=torch.Generator().manual_seed(seed)
    )  # as for a checkpoint
    return torch.from_numpy(session.run(None, {z_input.name: z.numpy()})[0])


def cmd_sample(args) -> int:
    source, out = (
        Path(args.source),
        _check_out(Path(args.out), args.force, IMAGE_SUFFIXES + (".npy",)),
    )
    if args.n <= 0:
        raise UsageError("-n must be positive")
    if source.suffix == ".onnx":
        if not source.is_file():
            raise FileNotFoundError(f"{source}: no such ONNX file")
        images = _onnx_generate(source, args.n, args.seed)
    else:
        images = sample_checkpoint(source, args.n, args.seed, args.device)
    images = images.clamp(-1, 1)
    if out.suffix == ".npy":
        np.save(out, images.numpy().astype(np.float32))  # (N, C, H, W) in [-1, 1]
    else:
        save_grid(images, out, nrow=args.nrow)
    print(f"wrote {args.n} images to {out}")
    return 0


# ---- interpolate ----
@torch.no_grad()
def cmd_interpolate(args) -> int:
    from .latent import lerp, slerp  # chapter 6: your code, or the solutions

    out = _check_out(Path(args.out), args.force, IMAGE_SUFFIXES + (".gif",))
    if args.steps < 2 or args.rows < 1:
        raise UsageError("--steps must be at least 2 and --rows at least 1")
    generator = load_generator(args.checkpoint, args.device)
    walk = slerp if args.method == "slerp" else lerp
    ends = torch.randn(
        args.rows, 2, generator.nz, generator=torch.Generator().manual_seed(args.seed)
    )
    t = torch.linspace(0, 1, args.steps)
    z = torch.cat([walk(z0, z1, t) for z0, z1 in ends])  # (rows * steps, nz), one row per pair
    images = generator(z.to(args.device)).float().cpu()
    if out.suffix == ".gif":  # one frame per t: all rows side by side, walking together
        images = images.view(args.rows, args.steps, *images.shape[1:])
        frames = [grid_array(images[:, i], nrow=args.rows) for i in range(args.steps)]
        save_gif(frames + frames[-2:0:-1], out, fps=args.fps)  # there and back again: a smooth loop
    else:
        save_grid(images, out, nrow=args.steps)
    print(f"wrote {args.rows} {args.method} interpolations of {args.steps} steps to {out}")
    return 0


# ---- export ----
def cmd_export(args) -> int:
    out = _check_out(Path(args.output), args.force, (".onnx",))
    if args.opset < 17:
        raise UsageError("--opset must be 17 or newer")
    generator = load_generator(args.checkpoint, "cpu")
    z = torch.randn(2, generator.nz)
    # Input "z" (batch, nz) -> output "images" (batch, C, H, W); the batch size stays free.
    kwargs = dict(
        input_names=["z"], output_names=["images"], opset_version=args.opset, verbose=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        if (
            importlib.util.find_spec("onnxscript") is not None
        ):  # the newer torch.export-based exporter
            torch.onnx.export(
                generator,
                (z,),
                str(out),
                dynamo=True,
                external_data=False,  # one file
                dynamic_shapes={"z": {0: torch.export.Dim("batch")}},
                **kwargs,
            )
        else:  # the TorchScript-based exporter, which needs no extra package
            torch.onnx.export(
                generator,
                (z,),
                str(out),
                dynamo=False,
                dynamic_axes={"z": {0: "batch"}, "images": {0: "batch"}},
                **kwargs,
            )
    try:
        import onnxruntime as ort
    except ImportError:
        print(f"wrote {out} (not verified: pip install onnxruntime to check it)")
        return 0
    # Check the file: the same z through PyTorch and ONNX Runtime, at another batch size than exported.
    z = torch.randn(5, generator.nz, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = generator(z).numpy()
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        ["images"], {"z": z.numpy()}
    )[0]
    diff = float(np.abs(got - expected).max())
    print(f"wrote {out}; ONNX Runtime vs PyTorch on a batch of 5: max difference {diff:.2e}")
    if diff > 1e-4:
        print(f"error: the exported model differs from PyTorch by {diff:.2e}", file=sys.stderr)
        return 1
    return 0


# ---- evaluate, grade, check: their options belong to their modules, loaded only when used ----
# main() passes these commands' arguments on unparsed (args.rest), so that `ganlab train`
# does not import the metrics or the grading engine just to build its parser.
PASS_THROUGH = ("evaluate", "grade", "check")


def _module_parser(name: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"ganlab {name}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def cmd_evaluate(args) -> int:
    from . import metrics

    parser = _module_parser("evaluate", "sample quality metrics")
    metrics.add_arguments(parser)
    return metrics.run(parser.parse_args(args.rest))


def cmd_grade(args) -> int:
    from .grading import commands

    parser = _module_parser("grade", commands.GRADE_HELP)
    commands.add_grade_arguments(parser)
    return commands.run_grade(parser.parse_args(args.rest))


def cmd_check(args) -> int:
    from .grading import commands

    parser = _module_parser("check", commands.CHECK_HELP)
    commands.add_check_arguments(parser)
    return commands.run_check(parser.parse_args(args.rest))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganlab", description="Train and use DCGANs (the ganlab course kit)."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a GAN from a YAML config")
    p.add_argument("config", nargs="?", help="YAML config, e.g. configs/demo.yaml")
    p.add_argument("--preset", help="start from a built-in config: cpu")
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

    p = sub.add_parser("sample", help="draw images from a checkpoint or an exported .onnx")
    p.add_argument("source", metavar="CHECKPOINT_OR_ONNX")
    p.add_argument("-n", type=int, default=64, help="number of images (default: 64)")
    p.add_argument(
        "--out", required=True, help="a .png grid, or .npy: float32 (N, C, H, W) in [-1, 1]"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nrow", type=int, default=8, help="images per grid row")
    p.add_argument("--device", default="cpu")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser("interpolate", help="walk the latent space between random pairs")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True, help=".png grid (a row per pair) or .gif")
    p.add_argument("--steps", type=int, default=8, help="images per interpolation (default: 8)")
    p.add_argument("--rows", type=int, default=4, help="number of pairs (default: 4)")
    p.add_argument("--method", choices=("slerp", "lerp"), default="slerp")
    p.add_argument("--seed", type=int, default=0)
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

    if (
        importlib.util.find_spec("ganlab.metrics") is not None
    ):  # a kit without metrics has no evaluate
        p = sub.add_parser(
            "evaluate", add_help=False, help="score samples (`ganlab evaluate --help`)"
        )
        p.set_defaults(run=cmd_evaluate)
    p = sub.add_parser(
        "grade",
        add_help=False,
        help="grade a folder of submissions, instructors (`ganlab grade --help`)",
    )
    p.set_defaults(run=cmd_grade)
    p = sub.add_parser(
        "check",
        add_help=False,
        help="run the graded checks on your copy of the kit, students (`ganlab check --help`)",
    )
    p.set_defaults(run=cmd_check)
    return parser


def _explain(err: BaseException) -> tuple[int, str] | None:
    """(exit status, message) for the errors a user can fix; None for real bugs (keep the traceback)."""
    if isinstance(err, (ConfigError, UsageError)):
        return 2, str(err)
    if isinstance(err, NotImplementedError):
        if str(err):  # the stubs' messages name the function, the file and the notebook
            return 1, f"your code is not finished: {err}"
        where = traceback.extract_tb(err.__traceback__)[-1]
        return (
            1,
            f"your code is not finished: {where.name} in {where.filename}:{where.lineno} raises NotImplementedError",
        )
    if isinstance(err, ModuleNotFoundError) and err.name in EXERCISES:
        return 1, (
            f"{err.name.replace('.', '/')}.py is missing: create the student files with "
            "`python -m ganlab.instructor stubs`, or set GANLAB_SOLUTIONS=1"
        )
    if isinstance(
        err,
        (
            CheckpointError,
            DatasetUnavailable,
            TrainingDiverged,
            SolutionsUnavailable,
            FileNotFoundError,
            FileExistsError,
            PermissionError,
            IsADirectoryError,
        ),
    ):
        return 1, str(err)
    return None


def main(argv=None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command not in PASS_THROUGH:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(
            "\ninterrupted. `ganlab train ... --resume` continues from the last checkpoint.",
            file=sys.stderr,
        )
        return 130
    except Exception as err:
        explained = _explain(err)
        if explained is None:
            raise
        code, message = explained
        print(f"error: {message}", file=sys.stderr)
        return code
