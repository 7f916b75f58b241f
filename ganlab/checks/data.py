"""Checks for chapter 1 (notebook 01_data): scaling images to the generator's range."""

import numpy as np
import torch
from PIL import Image

from ._core import CheckFailed, fail_unless, passed


def _grey(value):
    return Image.fromarray(np.full((28, 28), value, dtype=np.uint8), mode="L")


def check_transform(make_transform):
    """``make_transform()`` must map a 28x28 greyscale PIL image to a (1, 28, 28) float tensor in [-1, 1]."""
    transform = make_transform()
    out = transform(_grey(0))
    fail_unless(
        isinstance(out, torch.Tensor),
        f"the transform returns {type(out).__name__}, not a tensor: start the pipeline with "
        "transforms.ToTensor()",
    )
    fail_unless(
        tuple(out.shape) == (1, 28, 28),
        f"a 28x28 greyscale image became shape {tuple(out.shape)}; expected (1, 28, 28) "
        "(channels first, one channel). Do not resize or flatten here.",
    )
    fail_unless(out.dtype == torch.float32, f"dtype is {out.dtype}; the networks expect float32")
    black, white = out.mean().item(), transform(_grey(255)).mean().item()
    grey = transform(_grey(128)).mean().item()
    if abs(black) < 1e-6 and abs(white - 1) < 1e-6:
        raise CheckFailed(
            "black -> 0 and white -> 1: your images are in [0, 1], but the generator's tanh "
            "outputs [-1, 1]. Add transforms.Normalize((0.5,), (0.5,)) after ToTensor()."
        )
    if abs(black + 0.1307 / 0.3081) < 1e-3:
        raise CheckFailed(
            "black -> -0.42: you normalised with MNIST's mean and std (0.1307, 0.3081). "
            "That suits classifiers; a GAN needs the fixed range [-1, 1]: Normalize((0.5,), (0.5,))."
        )
    fail_unless(
        abs(black + 1) < 1e-5 and abs(white - 1) < 1e-5,
        f"black -> {black:.4f} and white -> {white:.4f}; expected -1 and 1 "
        "((x - 0.5) / 0.5 after ToTensor's division by 255)",
    )
    fail_unless(
        abs(grey - (128 / 255 - 0.5) / 0.5) < 1e-5, f"mid-grey 128 -> {grey:.4f}; expected 0.0039"
    )
    passed("transform", "pixels 0..255 -> [-1, 1], shape (1, 28, 28)")


def check_scaling(to_display):
    """``to_display(x)`` must map [-1, 1] back to [0, 1] for plotting, clamping overshoot."""
    x = torch.tensor([-1.0, 0.0, 1.0, -1.2, 1.3]).view(1, 1, 1, 5)
    out = to_display(x.clone())
    fail_unless(
        isinstance(out, torch.Tensor), f"to_display returns {type(out).__name__}, not a tensor"
    )
    fail_unless(
        out.shape == x.shape, f"to_display changed the shape {tuple(x.shape)} to {tuple(out.shape)}"
    )
    got = [round(v, 4) for v in out.flatten().tolist()]
    if got[:3] == [-1.0, 0.0, 1.0]:
        raise CheckFailed("to_display returns its input unchanged: compute (x + 1) / 2")
    if got[:3] == [0.5, 1.0, 1.5]:
        raise CheckFailed(
            "-1, 0, 1 -> 0.5, 1, 1.5: you divided by 2 before adding 1; compute (x + 1) / 2"
        )
    fail_unless(
        got[:3] == [0.0, 0.5, 1.0], f"-1, 0, 1 -> {got[:3]}; expected 0, 0.5, 1 from (x + 1) / 2"
    )
    fail_unless(
        got[3:] == [0.0, 1.0],
        f"-1.2 and 1.3 -> {got[3:]}; generator outputs can overshoot, so clamp to [0, 1] "
        "(tensor.clamp(0, 1)); matplotlib warns on values outside it",
    )
    passed("to_display", "[-1, 1] -> [0, 1], clamped")
