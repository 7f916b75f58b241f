"""Checkpoints: everything a run needs to continue exactly, written so that nothing is ever lost.

    save_checkpoint(state, "runs/demo/checkpoint.pt")   # atomic; the previous one becomes .prev.pt
    state = load_checkpoint("runs/demo/checkpoint.pt")  # checked; CheckpointError says what to do
    generator = load_generator("runs/demo/checkpoint.pt")   # or an exported .pt2 generator

A checkpoint holds what changes during training: both networks' weights and
BatchNorm statistics, both optimizers' moments, every random generator's state,
the history and the fixed noise. Three rules keep a user's work safe:

* **Atomic**: the new file is written beside the old one, flushed to disk, then
  renamed over it; a crash (or a full disk) mid-write leaves the old file whole.
* **Good or not at all**: a state with a NaN or an infinity anywhere (weights,
  BatchNorm statistics, Adam's moments) is never written as a checkpoint.
* **Never replaced by surprise**: ``run_state`` decides whether a command continues a
  run, starts one, or refuses; only ``overwrite=True`` deletes an earlier run.
"""

from __future__ import annotations

import errno
import os
import pickle
import random
import shutil
import sys
import tempfile
import zipfile
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import RUN_DEFINING, ConfigError, TrainConfig, build_models

FORMAT, VERSION = "ganlab-checkpoint", 1
KEYS = (
    "config",
    "step",
    "image_shape",
    "generator",
    "critic",
    "opt_g",
    "opt_c",
    "rng",
    "history",
    "fixed_z",
)
EXPORTED = ".pt2"  # a generator saved with torch.export (ganlab/pretrained.py): sampling only


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, truncated or does not fit this version of ganlab."""


class DiskFull(OSError):
    """A write failed for lack of space; the files that were there before are intact."""

    def __str__(self):  # the message alone, without OSError's "[Errno 28]" in front
        return self.strerror


class NotWritable(PermissionError):
    """Files cannot be created in a folder a command must write to (permissions, read-only disk)."""


def check_writable(folder):
    """Raise ``NotWritable`` unless files can be created in ``folder``, or, while it does not
    exist yet, in the nearest folder above it (where it would be made). Commands call this
    before their work, so a run that could never be saved stops before it starts."""
    folder = Path(folder)
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise NotWritable(f"cannot write in {folder}: {existing} is a file, not a folder")
    try:
        tempfile.TemporaryFile(dir=existing).close()  # the only sure test: try it
    except OSError as err:
        if disk_full_cause(err) is not None:
            return  # a full disk gets its own message when the real write fails
        fix = ", or make it writable (chmod u+w)" if err.errno == errno.EACCES else ""
        raise NotWritable(
            f"cannot write in {existing} ({err.strerror}): choose another place{fix}"
        ) from None


# ---- random generators ----
def rng_state() -> dict:
    """Every random generator training may touch, in types ``torch.load(weights_only=True)`` accepts."""
    kind, keys, *rest = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), *rest),
        "python": random.getstate(),
    }


def set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    if (
        state["cuda"]
        and torch.cuda.is_available()
        and len(state["cuda"]) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    random.setstate(state["python"])


# ---- writing ----
def nonfinite(obj, where="") -> list[str]:
    """Paths (e.g. ``generator/net.1.running_var``) of the tensors in ``obj`` holding NaN or inf."""
    if isinstance(obj, torch.Tensor):
        finite = not obj.is_floating_point() or bool(torch.isfinite(obj).all())
        return [] if finite else [where or "tensor"]
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return []
    return [path for key, value in items for path in nonfinite(value, f"{where}/{key}".lstrip("/"))]


def disk_full_message(path, err: OSError) -> str:
    return (
        f"the disk holding {Path(path).parent} is full ({err.strerror}): nothing was replaced, "
        "the files written before are intact. Free some space (or train into another --out "
        "folder) and run the same command again."
    )


def disk_full_cause(err: BaseException) -> OSError | None:
    """The "no space left" error in ``err`` or the errors it was raised from, if there is one."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return err
        err = err.__cause__ or err.__context__
    return None


def atomic_save(obj, path):
    """``torch.save`` that never leaves half a file: write a temporary file, then rename it.

    ``os.replace`` swaps names atomically, so ``path`` is always either the old complete
    file or the new complete one, even if the process dies mid-write. The previous file
    is kept as ``<name>.prev.pt``. A full disk raises ``DiskFull`` and changes nothing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(
                f.fileno()
            )  # the bytes are on disk before the rename makes them the checkpoint
        if path.exists():
            prev, prev_tmp = path.with_suffix(".prev.pt"), path.with_suffix(".prev.pt.tmp")
            prev_tmp.unlink(missing_ok=True)
            try:
                os.link(path, prev_tmp)  # a second name for the same bytes: no copy, path stays
            except OSError:  # file systems without hard links
                shutil.copyfile(path, prev_tmp)
            os.replace(prev_tmp, prev)
    except (OSError, RuntimeError) as err:  # torch's zip writer turns ENOSPC into a RuntimeError
        tmp.unlink(missing_ok=True)
        path.with_suffix(".prev.pt.tmp").unlink(missing_ok=True)
        full = disk_full_cause(err)
        if full is not None:
            raise DiskFull(full.errno, disk_full_message(path, full)) from err
        raise
    except BaseException:  # Ctrl-C mid-write: the old checkpoint stays, the temporary goes
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def make_state(config: TrainConfig, **parts) -> dict:
    """A checkpoint's contents: the format tag, the config, and ``parts`` (``KEYS`` but config)."""
    missing = set(KEYS) - {"config"} - set(parts)
    if missing:
        raise ValueError(f"make_state: missing {sorted(missing)}")
    return {"format": FORMAT, "version": VERSION, "config": asdict(config), **parts}


# ---- reading ----
def _unreadable(path: Path, err: Exception) -> str:
    """Why ``torch.load`` failed, in words a user can act on."""
    text = " ".join(str(err).split())
    if isinstance(err, pickle.UnpicklingError) and "weights only" in text.lower():
        return (
            "it holds Python objects besides tensors, which could run code when loaded; "
            "ganlab loads checkpoints as plain tensors only, so it was not loaded. Was it "
            "written by another program?"
        )
    if "central directory" in text or isinstance(err, (EOFError, zipfile.BadZipFile)):
        return "it is truncated (an interrupted copy? a full disk while it was written?)"
    first = text.split(". ")[0].rstrip(".")
    return f"torch.load failed: {first}"


def _kind_of(path: Path) -> str | None:
    """A word on what a non-checkpoint file is, from its first bytes; None for a PyTorch file."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        return "it is empty (0 bytes: an interrupted write or a full disk)"
    if head.startswith(b"PK\x03\x04"):  # torch.save's zip format: is the zip whole and sound?
        if not zipfile.is_zipfile(path):
            return "it is truncated (an interrupted copy? a full disk while it was written?)"
        try:  # torch.load does not check the zip's checksums: damaged weights would load
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, zlib.error) as err:
            return f"it is damaged ({err}: a bad disk or copy?)"
        return (
            f"it is damaged ({damaged} fails its checksum: a bad disk or copy?)"
            if damaged
            else None
        )
    if head[:1] == b"\x80":
        return None  # a legacy (pre-zip) torch.save pickle
    if head.startswith(b"\x08") and path.suffix == ".onnx":
        return "it is an ONNX model: sample from it with `ganlab sample MODEL.onnx`"
    return f"it is not a PyTorch file (it starts with {head!r})"


def _fallback(path: Path) -> str:
    prev = path.with_suffix(".prev.pt")
    return (
        f" The previous checkpoint {prev} may be intact: `ganlab train ... --resume` uses it "
        "when checkpoint.pt is missing, or copy it over this file."
        if prev.is_file()
        else ""
    )


def check_file(path):
    """``CheckpointError`` unless ``path`` is a file to read; for a run folder, name its checkpoint."""
    path = Path(path)
    if path.is_dir():
        inside = path / "checkpoint.pt"
        hint = f"did you mean {inside}?" if inside.is_file() else "give a file"
        raise CheckpointError(f"{path} is a folder: {hint}")
    if not path.is_file():
        there = path.exists()  # a named pipe or a device: reading it could wait forever
        raise CheckpointError(f"{path}: not a regular file" if there else f"{path}: no such file")


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read and check a checkpoint; any problem raises ``CheckpointError`` saying what to do."""
    path = Path(path)
    check_file(path)
    if path.suffix == EXPORTED:
        raise CheckpointError(
            f"{path} is an exported generator (.pt2): it can be sampled and "
            "evaluated, not resumed or exported again"
        )
    kind = _kind_of(path)
    if kind is not None:
        raise CheckpointError(f"{path} cannot be read: {kind}.{_fallback(path)}")
    try:
        # weights_only: tensors and plain containers only, so loading never runs code from the file.
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path} cannot be read: {_unreadable(path, err)}.{_fallback(path)}"
        ) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        what = (
            f"a dict with keys {sorted(map(str, state))[:6]}"
            if isinstance(state, dict)
            else type(state).__name__
        )
        raise CheckpointError(
            f"{path} is a PyTorch file but not a ganlab checkpoint (it holds {what}, "
            f"no {FORMAT!r} tag): give a checkpoint.pt written by `ganlab train`"
        )
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {state.get('version')!r}, but this ganlab reads "
            f"version {VERSION}: use the ganlab version that wrote it"
        )
    missing = [key for key in KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{path} is incomplete, it lacks {missing}.{_fallback(path)}")
    shape = state["image_shape"]
    if not (isinstance(shape, list) and len(shape) == 2 and all(type(v) is int for v in shape)):
        raise CheckpointError(
            f"{path} is malformed: its image_shape is {shape!r}, not [channels, size]"
        )
    bad = nonfinite(
        {k: state.get(k) for k in ("generator", "generator_ema", "critic", "opt_g", "opt_c")}
    )
    if bad:
        raise CheckpointError(
            f"{path} holds NaN or infinite values ({', '.join(bad[:3])}): the run had "
            f"diverged when it was written, so it cannot be used.{_fallback(path)}"
        )
    try:
        TrainConfig.from_dict(state["config"])
    except ConfigError as err:
        reason = str(err).splitlines()[0]  # not the list of allowed keys that follows
        raise CheckpointError(
            f"{path} holds a config this ganlab cannot use: {reason} Was it written by "
            "another version of ganlab?"
        ) from err
    return state


def load_error(err: Exception) -> str:
    """Why loading failed, in one line: for ``load_state_dict``, its second line (the first only
    says "Error(s) in loading state_dict")."""
    if isinstance(err, KeyError):
        return f"it lacks {err}"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[1 if len(lines) > 1 else 0][:300].rstrip(".") if lines else type(err).__name__


def load_generator(path, device="cpu") -> nn.Module:
    """The generator of a checkpoint (or an exported ``.pt2``), on ``device``, in eval mode: the
    moving average of its weights if the run kept one (``ema``), else the trained weights."""
    path = Path(path)
    if path.suffix == EXPORTED:
        from .pretrained import load_exported

        return load_exported(path, device)
    state = load_checkpoint(path)
    config = TrainConfig.from_dict(state["config"])
    try:
        generator, _ = build_models(config, *state["image_shape"])
    except ValueError as err:  # a size the model's own rule refuses
        raise CheckpointError(f"{path}: its image_shape does not fit its model: {err}") from err
    try:
        # ema > 0: the moving average of its weights (with its own BatchNorm statistics)
        generator.load_state_dict(state.get("generator_ema") or state["generator"])
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: its generator weights do not fit the Generator its config builds "
            f"({load_error(err)}). Was it trained with different model code?"
        ) from err
    return generator.to(device).eval()


@torch.no_grad()
def sample_checkpoint(path, n: int, seed: int = 0, device="cpu") -> torch.Tensor:
    """``n`` images from a checkpoint's (or ``.pt2``'s) generator, on the CPU. ``z`` is drawn on the
    CPU from ``seed``, so a seed gives the same images on any device (`ganlab sample`, `evaluate`)."""
    generator = load_generator(path, device)
    z = torch.randn(n, generator.nz, generator=torch.Generator().manual_seed(seed))
    return torch.cat([generator(chunk.to(device)).float().cpu() for chunk in z.split(1000)])


# ---- which run a command continues ----
def run_state(path, config: TrainConfig, resume: bool | None, overwrite: bool, is_main=True):
    """The checkpoint state to continue from, or None to start fresh; refuse anything that would lose a run.

    ``resume``: None = continue a matching run if there is one, True = must continue one,
    False = must start fresh. ``overwrite`` deletes the run in ``path``'s folder first.
    """
    path = Path(path)
    prev = path.with_suffix(".prev.pt")
    if overwrite:
        if resume:
            raise ConfigError("resume and overwrite exclude each other: pick one")
        if is_main:  # the user asked to replace the old run: remove what would mix with it
            for old in [path, prev, *path.parent.glob("samples/step_*.png")]:
                old.unlink(missing_ok=True)
        return None
    if not path.exists():
        if prev.is_file():
            if resume:  # the latest checkpoint is gone; the one before it is the run to continue
                return _matching(prev, config)
            raise ConfigError(
                f"{path} is missing, but {prev.name} (the checkpoint before it) is there: continue "
                "from it with --resume, or start again with --overwrite (which deletes it)"
            )
        if resume:
            raise CheckpointError(
                f"nothing to resume: {path} does not exist (train without --resume first)"
            )
        return None
    if resume is False:
        raise ConfigError(
            f"{path.parent} already holds a run ({path}); resume it (--resume), replace it "
            "(--overwrite) or train into another folder (--out DIR)"
        )
    return _matching(path, config)


def _matching(path: Path, config: TrainConfig) -> dict:
    state = load_checkpoint(path)
    old = TrainConfig.from_dict(state["config"])
    diffs = [
        f"  {k}: {getattr(old, k)!r} in the checkpoint, {getattr(config, k)!r} now"
        for k in RUN_DEFINING
        if getattr(old, k) != getattr(config, k)
    ]
    if diffs:
        raise ConfigError(
            f"{path} belongs to a run with a different config:\n"
            + "\n".join(diffs)
            + "\nRefusing to mix them. Use --overwrite to replace that run, --out DIR "
            "to train elsewhere, or restore those values to continue it."
        )
    return state


# ---- one trainer per run folder ----
class RunLocked(RuntimeError):
    """Another process is training into this run folder."""


class RunLock:
    """An exclusive lock on a run folder (``OUT_DIR/.lock``), held while a trainer may write to it.

    The operating system releases it when the process ends, however it ends, so a killed
    run never leaves a stale lock. Within one process (a notebook that builds a new
    ``Trainer`` for the same folder) the lock is shared. Without ``fcntl`` (Windows)
    there is no lock: do not start two trainers on one folder there.
    """

    _held: dict = {}  # real path of the lock file -> open file object, in this process

    def __init__(self, run_dir):
        self.path = Path(run_dir) / ".lock"

    def acquire(self):
        try:
            import fcntl
        except ImportError:
            return
        key = os.path.realpath(self.path)
        if key in RunLock._held:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", errors="backslashreplace")  # a command line may not be UTF-8
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise RunLocked(
                f"{self.path.parent} is in use: {holder} is training into it. Wait for it to "
                "finish (or stop it), or train into another folder with --out DIR."
            ) from None
        f.seek(0)
        f.truncate()
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:100] if sys.argv else "python"
        f.write(f"process {os.getpid()} ({command})")
        f.flush()
        RunLock._held[key] = f

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return os.path.realpath(self.path) in RunLock._held

    def release(self):
        f = RunLock._held.pop(os.path.realpath(self.path), None)
        if f is not None:
            f.close()  # closing the file drops the lock
