"""The generator shipped with the kit, and how notebooks pick a generator to explore.

``ganlab/assets/generator_mnist.pt2`` was trained with the kit's own trainer and saved
with ``torch.export``: the file holds the computation graph and the weights, so it runs
without any Python class. Notebooks 06 and 07 can therefore use it before your own
``Generator`` works. ``generator_mnist.json`` beside it records how it was made and how
it scored (``ganlab evaluate`` measures it again).
"""

import json
import logging
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from . import environment

ASSET = "generator_mnist.pt2"


class ExportedGenerator(nn.Module):
    """A ``torch.export``-ed generator behind the usual interface (``.nz``, ``.channels``, ``.image_size``)."""

    def __init__(self, program, nz, channels, image_size):
        super().__init__()
        # Kept outside nn.Module's registry: exported graphs refuse .train()/.eval() calls,
        # and their BatchNorm already runs in evaluation mode.
        object.__setattr__(self, "program", program)
        self.nz, self.channels, self.image_size = nz, channels, image_size

    def forward(self, z):
        return self.program(z)


def export_generator(checkpoint_path, out_path, notes=None):
    """Export the generator of a training checkpoint to a ``.pt2`` file plus a ``.json`` description."""
    from .checkpoints import load_checkpoint, load_generator

    state = load_checkpoint(checkpoint_path)
    generator = load_generator(checkpoint_path)
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(
        generator, (torch.randn(2, generator.nz),), dynamic_shapes={"z": {0: batch}}
    )
    out_path = Path(out_path)
    torch.export.save(program, out_path)
    meta = {
        "nz": generator.nz,
        "channels": generator.channels,
        "image_size": generator.image_size,
        "step": state["step"],
        "config": state["config"],
        **(notes or {}),
    }
    out_path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out_path


def load_exported(path, device="cpu"):
    """The generator in a ``.pt2`` file, described by the ``.json`` beside it; anything wrong with
    either raises ``CheckpointError`` saying what."""
    from .checkpoints import CheckpointError, check_file, load_error

    path = Path(path)
    check_file(path)
    about = path.with_suffix(".json")
    try:
        meta = json.loads(about.read_text())
        nz, channels, size = (int(meta[key]) for key in ("nz", "channels", "image_size"))
    except FileNotFoundError:
        raise CheckpointError(
            f"{path} needs {about.name} beside it (its nz and image shape): copy both files"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{about} does not describe a generator (nz, channels, image_size): {err!r}"
        ) from None
    torch_log = logging.getLogger("torch.export")
    level = torch_log.level
    torch_log.setLevel(logging.ERROR)  # it logs a traceback of its own before raising
    try:
        program = torch.export.load(str(path)).module()
    except Exception as err:  # torch.export raises RuntimeError, zipfile's errors, ...
        raise CheckpointError(
            f"{path} is not a program saved with torch.export, it does not load as one "
            "(a renamed checkpoint.pt? an interrupted copy?)"
        ) from err
    finally:
        torch_log.setLevel(level)
    # One z through it: a program that is not the generator its description says fails here.
    try:
        with torch.no_grad():
            got = tuple(program(torch.zeros(2, nz)).shape)
    except Exception as err:
        got = load_error(err)
    if got != (2, channels, size, size):
        raise CheckpointError(
            f"{path} does not turn z of size {nz} into images of ({channels}, {size}, {size}) "
            f"as {about.name} says (got {got}): is it a generator exported by ganlab?"
        )
    generator = ExportedGenerator(program, nz, channels, size)
    if str(device) != "cpu":
        generator.program.to(device)
    return generator


def load_pretrained(device="cpu"):
    """The kit's pretrained MNIST generator; works even while your Generator is still a stub."""
    with resources.as_file(resources.files("ganlab") / "assets" / ASSET) as path:
        if not path.is_file():
            raise FileNotFoundError(
                f"the pretrained generator {path} is missing: reinstall the kit"
            )
        return load_exported(path, device)


def notebook_schedule(preset="cpu"):
    """How many steps notebook 05 trains for: its preset's (ganlab/configs/<preset>.yaml)."""
    from .config import load_config

    return load_config(preset=preset).steps


def course_generator(run="notebook05", preset="cpu", device="cpu"):
    """``(generator, description)``: your notebook-05 run if it completed notebook 05's own
    schedule (the ``preset``'s steps), else the kit's pretrained generator.

    A shortened or unfinished run is not used: its samples would make notebooks 06 and 07
    look worse than the course intends. The description says which generator it is, and why.
    """
    from .checkpoints import CheckpointError, load_checkpoint, load_generator

    pretrained = f"the kit's pretrained generator ({ASSET})"
    checkpoint = environment.runs_dir() / run / "checkpoint.pt"
    if environment.quick() or not checkpoint.is_file():
        return load_pretrained(device), pretrained
    schedule = notebook_schedule(preset)
    try:
        step = load_checkpoint(checkpoint)["step"]
        if step >= schedule:
            return load_generator(checkpoint, device), f"your run {checkpoint} ({step} steps)"
        why = f"your run {checkpoint} has {step} of notebook 05's {schedule} steps"
    except (CheckpointError, NotImplementedError) as err:
        why = f"cannot use your run {checkpoint} ({err})"
    except Exception as err:  # noqa: BLE001 - your Generator as it is now: any bug of an edit
        why = f"your Generator, as it is now, cannot rebuild {checkpoint} ({type(err).__name__}: {err})"
    return load_pretrained(device), f"{pretrained}; {why}"
