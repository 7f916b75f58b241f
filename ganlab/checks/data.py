"""Checks for chapters 0 and 1 (notebooks 00_setup, 01_data): counting weights, scaling images."""

import numbers

import numpy as np
import torch
from PIL import Image
from torch import nn

from ._core import CheckFailed, call, fail_unless, graded, passed


def _image(pixels):
    return Image.fromarray(np.asarray(pixels, dtype=np.uint8), mode="L")


def _grey(value):
    return _image(np.full((28, 28), value))


def _transform_hint(error):
    if "__init__()" in error:  # Compose called a class with the image
        return (
            "the pipeline holds a class where an instance belongs: transforms.ToTensor(), with ()"
        )
    if "broadcast shape [3" in error:
        return (
            "Normalize got three means and stds (for RGB images); MNIST has one channel: "
            "Normalize((0.5,), (0.5,))"
        )
    return (
        "it gets a PIL image: ToTensor() comes first, Normalize works on tensors, after ToTensor()"
    )


@graded
def check_transform(make_transform):
    """``make_transform()`` must map a 28x28 greyscale PIL image to a (1, 28, 28) float tensor in
    [-1, 1]: pixel v -> v / 127.5 - 1."""
    transform = call(make_transform, "make_transform()")
    fail_unless(
        callable(transform),
        f"make_transform() returned {type(transform).__name__}: return "
        "the transform (e.g. transforms.Compose([...])), not the result of applying it",
    )
    if isinstance(transform, type):
        raise CheckFailed(
            f"make_transform() returned the class {transform.__name__}: return an instance, "
            f"e.g. transforms.{transform.__name__}()"
        )
    out = call(transform, "the transform on a PIL image", _grey(0), hint=_transform_hint)
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
    if out.dtype == torch.uint8:
        raise CheckFailed(
            "the transform gives uint8 pixels 0..255 (PILToTensor): use transforms.ToTensor(), "
            "which gives floats in [0, 1], then Normalize((0.5,), (0.5,))"
        )
    fail_unless(out.dtype == torch.float32, f"dtype is {out.dtype}; the networks expect float32")
    black, white = out.mean().item(), transform(_grey(255)).mean().item()
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
    if abs(black + 1) < 1e-5 and abs(white - 509) < 1e-3:
        raise CheckFailed(
            "black -> -1 and white -> 509: the pixels were not scaled from 0..255 to [0, 1] "
            "before Normalize; use ToTensor() (or v2.ToDtype(torch.float32, scale=True))"
        )
    fail_unless(
        abs(black + 1) < 1e-5 and abs(white - 1) < 1e-5,
        f"black -> {black:.4f} and white -> {white:.4f}; expected -1 and 1 "
        "((x - 0.5) / 0.5 after ToTensor's division by 255)",
    )
    ramp = np.arange(28 * 28).reshape(28, 28) % 256
    want = torch.from_numpy(ramp).float().div(127.5).sub(1).unsqueeze(0)
    outs = [transform(_image(ramp)) for _ in range(16)]  # a random flip shows up in one of 16
    fail_unless(
        all(
            isinstance(got, torch.Tensor)
            and got.shape == want.shape
            and torch.allclose(got, want, atol=1e-5)
            for got in outs
        ),
        "on an image of every grey level, pixel v must become v / 127.5 - 1, each pixel on its "
        "own and in place: no per-image statistics, no flips or crops",
    )
    passed("transform", "pixels 0..255 -> [-1, 1], shape (1, 28, 28)")


@graded
def check_scaling(to_display):
    """``to_display(x)`` must map [-1, 1] back to [0, 1] for plotting, clamping overshoot, in any shape."""
    x = torch.tensor([-1.0, 0.0, 1.0, -1.2, 1.3]).view(1, 1, 1, 5)
    images = x.clone()
    out = call(to_display, "to_display(images)", images)
    fail_unless(
        torch.equal(images, x),
        "to_display changed the images passed in (an in-place add_, div_ or clamp_): compute a "
        "new tensor, the caller's images must stay in [-1, 1]",
    )
    fail_unless(
        isinstance(out, torch.Tensor), f"to_display returns {type(out).__name__}, not a tensor"
    )
    fail_unless(
        out.shape == x.shape, f"to_display changed the shape {tuple(x.shape)} to {tuple(out.shape)}"
    )
    fail_unless(
        out.dtype == x.dtype, f"to_display changed the dtype {x.dtype} to {out.dtype}: keep it"
    )
    got = [round(v, 4) for v in out.flatten().tolist()]
    if got[:3] == [-1.0, 0.0, 1.0]:
        raise CheckFailed("to_display returns its input unchanged: compute (x + 1) / 2")
    if got[:3] == [0.5, 1.0, 1.5]:
        raise CheckFailed(
            "-1, 0, 1 -> 0.5, 1, 1.5: you divided by 2 before adding 1; compute (x + 1) / 2"
        )
    if got[:3] == [0.0, 127.5, 255.0]:
        raise CheckFailed(
            "-1, 0, 1 -> 0, 127.5, 255: matplotlib wants floats in [0, 1]; do not multiply by 255"
        )
    if got[:3] == [0.5, 0.5, 1.0]:
        raise CheckFailed(
            "-1 -> 0.5: you clamped to [0, 1] before rescaling; rescale first, then clamp"
        )
    fail_unless(
        got[:3] == [0.0, 0.5, 1.0], f"-1, 0, 1 -> {got[:3]}; expected 0, 0.5, 1 from (x + 1) / 2"
    )
    fail_unless(
        got[3:] == [0.0, 1.0],
        f"-1.2 and 1.3 -> {got[3:]}; generator outputs can overshoot, so clamp to [0, 1] "
        "(tensor.clamp(0, 1)); matplotlib warns on values outside it",
    )
    # A colour batch, and a single float64 image without batch or channel dimensions.
    for batch in (
        torch.linspace(-1, 1, 2 * 3 * 4 * 4).view(2, 3, 4, 4),
        torch.linspace(-1, 1, 5 * 7, dtype=torch.float64).view(5, 7),
    ):
        shape = ", ".join(map(str, batch.shape))
        out = call(to_display, f"to_display(images of shape ({shape}))", batch.clone())
        fail_unless(
            isinstance(out, torch.Tensor)
            and out.shape == batch.shape
            and torch.allclose(out.to(batch.dtype), (batch + 1) / 2, atol=1e-6),
            f"to_display must work on any shape, e.g. ({shape}): the same shape back, "
            "every value mapped by (x + 1) / 2",
        )
        fail_unless(
            out.dtype == batch.dtype,
            f"to_display changed the dtype {batch.dtype} to {out.dtype}: keep the images' dtype "
            "(no .float() or torch.tensor(...))",
        )
    passed("to_display", "[-1, 1] -> [0, 1], clamped")


def _count_hint(error):
    if "'tuple' object" in error:
        return (
            "named_parameters() gives (name, parameter) pairs: for name, p in ..., or parameters()"
        )
    return ""


@graded
def check_count_parameters(count_parameters):
    """``count_parameters(model)``: the trainable scalars, as an int."""
    layer = nn.Linear(10, 5)  # 50 weights + 5 biases
    got = call(count_parameters, "count_parameters(nn.Linear(10, 5))", layer, hint=_count_hint)
    if got == 2:
        raise CheckFailed(
            "count_parameters returned 2 for nn.Linear(10, 5): you counted parameter tensors; "
            "sum p.numel() to count the scalars in them"
        )
    if got == 0:
        raise CheckFailed(
            "count_parameters(nn.Linear(10, 5)) = 0, expected 55: keep the parameters with "
            "requires_grad (not those without), and count the model's own ones too"
        )
    if got == 50:
        raise CheckFailed(
            "count_parameters(nn.Linear(10, 5)) = 50: the 5 biases are parameters too"
        )
    if got == 10:
        raise CheckFailed(
            "count_parameters(nn.Linear(10, 5)) = 10: len(p) is a tensor's first dimension only "
            "(5 rows of 10 weights); p.numel() counts every scalar in it"
        )
    fail_unless(
        got == 55,
        f"count_parameters(nn.Linear(10, 5)) = {got!r}, expected 55 (50 weights + 5 biases)",
    )
    fail_unless(
        isinstance(got, numbers.Integral) and not isinstance(got, bool),
        f"count_parameters returned a {type(got).__name__}; return an int (sum of p.numel())",
    )
    nested = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)), nn.ReLU())
    got = call(count_parameters, "count_parameters(model)", nested)
    if got == 20 + 4 + 5:
        raise CheckFailed(
            "BatchNorm's running mean and variance were counted: they are buffers, not "
            "parameters; count model.parameters(), not model.state_dict()"
        )
    if got == 24 + 24 + 20 + 4:  # m.parameters() summed over model.modules(): outer, inner, layers
        raise CheckFailed(
            f"count_parameters gave {got}, 3 times the 24 trainable scalars: model.parameters() "
            "already includes every nested layer's; do not loop over model.modules() as well"
        )
    fail_unless(
        got == 24,
        f"count_parameters gave {got} for Sequential(Sequential(Conv2d(1, 2, 3), BatchNorm2d(2)), "
        "ReLU()), which has 24 trainable scalars: count every layer, nested ones too",
    )
    frozen = nn.Sequential(nn.Linear(10, 5), nn.Linear(5, 1))
    frozen[0].requires_grad_(False)
    got = call(count_parameters, "count_parameters(model)", frozen)
    fail_unless(got != 61, "frozen parameters were counted: keep only those with p.requires_grad")
    fail_unless(got == 6, f"count_parameters gave {got} for a model with 6 trainable scalars")
    tied = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    tied[1].weight = tied[0].weight  # one weight matrix used by both layers: 16 + 4 + 4 scalars
    got = call(count_parameters, "count_parameters(model)", tied)
    fail_unless(
        got != 40,
        "a weight shared by two layers was counted twice: it is one parameter, which the "
        "optimizer trains once; model.parameters() lists each parameter once",
    )
    fail_unless(
        got == 24,
        f"count_parameters gave {got} for two Linear(4, 4) sharing one weight: expected 24",
    )
    got = call(
        count_parameters,
        "count_parameters(nn.ReLU())",
        nn.ReLU(),
        hint="a model without parameters has 0 (the sum of no numel()s)",
    )
    fail_unless(
        got == 0, f"count_parameters(nn.ReLU()) = {got!r}: a model without parameters has 0"
    )
    fail_unless(
        isinstance(got, numbers.Integral) and not isinstance(got, bool),
        f"count_parameters(nn.ReLU()) returned {got!r} ({type(got).__name__}); return an int "
        "(np.sum of an empty list is the float 0.0; Python's sum() gives 0)",
    )
    passed("count_parameters")
