"""What every check shares: the failure type, the success line, small inspection helpers."""

import torch
from torch import nn


class CheckFailed(AssertionError):
    """A graded check failed; the message says what is wrong and the likely cause."""


def fail_unless(condition, message):
    if not condition:
        raise CheckFailed(message)


def passed(title, detail=""):
    """Print the one-line success message of a check."""
    print(f"\u2714 {title}" + (f": {detail}" if detail else ""))


def seeded(seed=0):
    """Make a check's random inputs the same on every run."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def layers_of(model, *types):
    return [m for m in model.modules() if isinstance(m, types)]


def output_op(tensor):
    """Name of the last real operation that produced ``tensor`` (reshapes skipped), e.g. 'Sigmoid'."""
    node = tensor.grad_fn
    while node is not None:
        name = type(node).__name__.replace("Backward0", "").replace("Backward1", "")
        if name not in {
            "View",
            "Reshape",
            "UnsafeView",
            "Squeeze",
            "Flatten",
            "Unsqueeze",
            "Clone",
            "Select",
            "Expand",
            "Permute",
            "Transpose",
            "Contiguous",
        }:
            return name
        node = node.next_functions[0][0] if node.next_functions else None
    return None


def try_build(cls, what, **kwargs):
    """Instantiate an exercise class, turning a TypeError about arguments into a hint."""
    try:
        return cls(**kwargs)
    except TypeError as err:
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise CheckFailed(
            f"{what}({args}) failed with TypeError: {err}. "
            "Keep the signature given in the exercise."
        ) from err


def run_forward(model, x, what):
    try:
        return model(x)
    except RuntimeError as err:
        raise CheckFailed(
            f"{what} crashed on an input of shape {tuple(x.shape)}: {err}. "
            "Print the shape after each layer to find the one that does not fit."
        ) from err


def describe(model):
    params = sum(p.numel() for p in model.parameters())
    return f"{params:,} parameters"


def is_module(obj):
    return isinstance(obj, nn.Module)
