"""Pictures: image grids, training curves and the GIF of a generator learning.

Everything here takes images the way the models produce them: a float tensor
(N, C, H, W) in [-1, 1]. ``to_unit_range`` maps them to [0, 1] for display.

Nothing here picks a matplotlib backend. In a notebook, figures show inline as
usual; ``plot_history(..., path=...)`` and the trainer save through a bare
``matplotlib.figure.Figure``, which needs no backend and no display at all, so
training on a headless server works and leaves no figures open.
"""

from __future__ import annotations

import io
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor
from torchvision.utils import make_grid

from .data import to_unit_range


def image_grid(images: Tensor, nrow: int = 8, padding: int = 2) -> Tensor:
    """(N, C, H, W) images in [-1, 1] -> one (3, H', W') grid in [0, 1], ``nrow`` images per row."""
    images = images.detach().float().cpu()
    if images.dim() == 3:  # a single image (C, H, W)
        images = images.unsqueeze(0)
    # make_grid copies a single grey channel to three, so the grid is always RGB.
    return make_grid(to_unit_range(images), nrow=nrow, padding=padding)


def to_uint8(grid: Tensor) -> np.ndarray:
    """A (C, H, W) tensor in [0, 1] -> (H, W, C) uint8 array, rounded like torchvision's save_image."""
    array = grid.detach().cpu().mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
    return array.permute(1, 2, 0).numpy()


def grid_array(images: Tensor, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """The grid of ``images`` as a uint8 array: (H, W) for grey images, (H, W, 3) for colour."""
    array = to_uint8(image_grid(images, nrow, padding))
    grey = images.shape[-3] == 1
    return array[..., 0] if grey else array  # grey PNGs are a third of the size


def _write_whole(path, encoded: bytes) -> Path:
    """Write ``encoded`` to ``path`` through a temporary file: never half a picture on disk.

    Pictures are encoded in memory first, so a failed write (a full disk) is one plain
    OSError here, not an image writer left half-closed behind it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(encoded)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def png_bytes(images: Tensor, nrow: int = 8, upscale: int = 1, padding: int = 2) -> bytes:
    """The grid of ``images`` (in [-1, 1]) as PNG bytes, each pixel enlarged ``upscale`` times
    (nearest neighbour: crisp pixels), e.g. for an ``ipywidgets.Image``."""
    array = grid_array(images, nrow, padding)
    array = array.repeat(upscale, axis=0).repeat(upscale, axis=1)
    return iio.imwrite("<bytes>", array, extension=".png")


def save_grid(images: Tensor, path, nrow: int = 8) -> Path:
    """Save ``images`` (in [-1, 1]) as one grid image (PNG, JPEG... by the file's extension)."""
    encoded = iio.imwrite(
        "<bytes>", grid_array(images, nrow), extension=Path(path).suffix.lower() or ".png"
    )
    return _write_whole(path, encoded)


def show_grid(images: Tensor, nrow: int = 8, title: str | None = None, ax=None):
    """Draw a grid of ``images`` (in [-1, 1]) on ``ax`` (a new figure if None); returns the axes."""
    if ax is None:
        import matplotlib.pyplot as plt  # only here: pyplot is for interactive display

        # An explicit opaque white: some front ends/styles make figures transparent by default,
        # and the title (black) would vanish on a dark theme (JupyterLab Dark, Colab, VS Code).
        _, ax = plt.subplots(figsize=(6, 6), facecolor="white")
    grid = image_grid(images, nrow)
    if images.shape[-3] == 1:  # grey images: one channel with a grey colour map
        ax.imshow(grid[0].numpy(), cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(grid.permute(1, 2, 0).numpy())
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def _smooth(values, width: int):
    """Moving average over ``width`` steps: GAN losses are noisy; the trend is what we read."""
    values = np.asarray(values, dtype=float)
    width = max(1, min(width, len(values)))
    kernel = np.ones(width) / width
    return np.convolve(values, kernel, mode="valid"), np.arange(width, len(values) + 1)


def plot_history(history: dict, path=None, smooth: int | None = None) -> Figure:
    """Two panels: the losses per step, and D(x) / D(G(z)) per step with the 0.5 line.

    ``history`` has lists ``loss_c``, ``loss_g``, ``d_real``, ``d_fake`` (one value
    per step), as ``Trainer.history``. Raw values are drawn faintly, a moving average
    (``smooth`` steps, default ~2% of the run) on top. With ``path`` the figure is saved.
    """
    n = len(history.get("loss_c", []))
    smooth = smooth or max(1, n // 50)
    if path is None:
        import matplotlib.pyplot as plt  # interactive: let the notebook show it

        fig = plt.figure(figsize=(11, 4), facecolor="white")  # opaque: readable on dark themes
    else:
        fig = Figure(
            figsize=(11, 4), facecolor="white"
        )  # saving only: no backend, nothing left open
    ax_loss, ax_d = fig.subplots(1, 2)
    steps = np.arange(1, n + 1)
    for ax, keys in (
        (ax_loss, [("loss_c", "critic"), ("loss_g", "generator")]),
        (ax_d, [("d_real", "D(x), real"), ("d_fake", "D(G(z)), fake")]),
    ):
        for key, label in keys:
            values = history.get(key, [])
            if not len(values):
                continue
            (line,) = ax.plot(steps, values, alpha=0.25, linewidth=0.8)
            mean, at = _smooth(values, smooth)
            ax.plot(at, mean, color=line.get_color(), label=label)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    ax_loss.set_title("losses")
    ax_d.set_title("critic outputs (0.5 = cannot tell)")
    # A critic that cannot tell real from fake outputs 0.5 on both: the GAN's equilibrium.
    ax_d.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax_d.set_ylim(0, 1)
    for ax in (ax_loss, ax_d):
        if ax.lines:
            ax.legend(loc="upper right")
    fig.tight_layout()
    if path is not None:
        buffer = io.BytesIO()
        fig.savefig(buffer, dpi=100, format=Path(path).suffix.lstrip(".") or "png")
        _write_whole(path, buffer.getvalue())
    return fig


def _frame_array(frame) -> np.ndarray:
    """A GIF frame as uint8 (H, W, 3): accepts uint8 arrays (H, W) / (H, W, C) or grid tensors in [0, 1]."""
    if isinstance(frame, Tensor):
        frame = to_uint8(frame)
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise TypeError(
            f"GIF frames must be uint8 arrays or grid tensors in [0, 1], got {frame.dtype}"
        )
    if frame.ndim == 2:
        frame = frame[..., None]
    return np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame[..., :3]


def save_gif(frames, path, fps: float = 4) -> Path:
    """Write ``frames`` (uint8 HxW[xC] arrays or grids from ``image_grid``) as a looping GIF."""
    frames = [_frame_array(frame) for frame in frames]
    if not frames:
        raise ValueError("save_gif: no frames to write")
    if len({frame.shape for frame in frames}) > 1:
        raise ValueError(
            f"save_gif: all frames must have one size, got {sorted({f.shape for f in frames})}"
        )
    # Pillow's GIF writer takes the duration of each frame in milliseconds; loop=0 repeats forever.
    encoded = iio.imwrite(
        "<bytes>", np.stack(frames), extension=".gif", duration=1000 / fps, loop=0
    )
    return _write_whole(path, encoded)
