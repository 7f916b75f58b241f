"""The catalogue of mistakes: wrong versions of every exercise, each with the checks it must fail.

Each ``Mistake`` names the exercise it replaces, a wrong implementation built from the
reference solutions (the mistakes students actually make, one sentence of a docstring
broken each), and ``hints``: for EXACTLY the checks that must fail, text their message
must contain. ``install`` puts the wrong version where a student's would be (the module
attribute, and every exercise module that imported it), and ``CONSUMERS`` lists every
check that reads an exercise, directly or through another one (the critic checks build
the critic, which calls ``init_dcgan_weights``): all of them run, and the ones not in
``hints`` must pass. A check that lets a mistake through, or blames the wrong cause,
is a bug.
"""

import functools
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import transforms
from torchvision.transforms import v2

from ganlab import latent, losses, models, training
from ganlab.latent import lerp, slerp
from ganlab.losses import critic_loss, generator_loss
from ganlab.models import Critic, Generator, init_dcgan_weights, upsample_block
from ganlab.training import critic_step, generator_step, make_optimizers

REPO = Path(__file__).resolve().parent.parent


def notebook_exercise(notebook, cell_id):
    """Execute a solution notebook's exercise cell and return its namespace (the one source of it)."""
    nb = nbformat.read(str(REPO / "solutions" / "notebooks" / notebook), as_version=4)
    cell = next((c for c in nb.cells if c.get("id") == cell_id), None)
    assert cell is not None, f"{notebook} has no cell with id {cell_id!r}"
    namespace = {}
    exec(compile(cell.source, f"{notebook}:{cell_id}", "exec"), namespace)
    return namespace


# Where each exercise lives: a module of the kit, or a notebook cell (notebook, cell id).
NOTEBOOK_EXERCISES = {
    "count_parameters": ("00_setup.ipynb", "ex-0-1"),
    "make_transform": ("01_data.ipynb", "ex-1-1"),
    "to_display": ("01_data.ipynb", "ex-1-2"),
    "conv_out_size": ("02_critic.ipynb", "ex-2-1"),
    "deconv_out_size": ("03_generator.ipynb", "ex-3-1"),
    "saturating_generator_loss": ("04_losses.ipynb", "ex-4-3"),
    "gradient_penalty": ("07_going_further.ipynb", "ex-7-1"),
}
MODULE_EXERCISES = {
    "init_dcgan_weights": models,
    "Critic": models,
    "upsample_block": models,
    "Generator": models,
    "critic_loss": losses,
    "generator_loss": losses,
    "make_optimizers": training,
    "critic_step": training,
    "generator_step": training,
    "lerp": latent,
    "slerp": latent,
    "latent_grid": latent,
}
# What each check is called with (check 5.4 takes a training history).
CHECK_ARGUMENT = {
    "check_count_parameters": "count_parameters",
    "check_transform": "make_transform",
    "check_scaling": "to_display",
    "check_conv_out_size": "conv_out_size",
    "check_init": "init_dcgan_weights",
    "check_critic_architecture": "Critic",
    "check_critic_output": "Critic",
    "check_deconv_out_size": "deconv_out_size",
    "check_upsample_block": "upsample_block",
    "check_generator_output": "Generator",
    "check_generator_architecture": "Generator",
    "check_critic_loss": "critic_loss",
    "check_generator_loss": "generator_loss",
    "check_saturating_loss": "saturating_generator_loss",
    "check_optimizers": "make_optimizers",
    "check_critic_step": "critic_step",
    "check_generator_step": "generator_step",
    "check_training_run": "history",
    "check_lerp": "lerp",
    "check_slerp": "slerp",
    "check_latent_grid": "latent_grid",
    "check_gradient_penalty": "gradient_penalty",
}
# Exercises other exercises build on, and so the checks that read them too.
BUILT_ON = {
    "Critic": ["init_dcgan_weights"],
    "Generator": ["init_dcgan_weights", "upsample_block"],
    "critic_step": ["critic_loss"],
    "generator_step": ["generator_loss"],
    "slerp": ["lerp"],
}
CONSUMERS = {
    exercise: sorted(
        check
        for check, arg in CHECK_ARGUMENT.items()
        if arg == exercise or exercise in BUILT_ON.get(arg, [])
    )
    for exercise in set(CHECK_ARGUMENT.values())
}

# A short history of a healthy run (check 5.4's argument on the reference).
HISTORY = {
    "loss_c": [1.4, 1.2, 1.0, 1.1] * 25,
    "loss_g": [0.7, 0.9, 1.2, 1.0] * 25,
    "d_real": [0.5, 0.6, 0.7, 0.65] * 25,
    "d_fake": [0.5, 0.4, 0.3, 0.35] * 25,
}


def reference(exercise):
    if exercise == "history":
        return {k: list(v) for k, v in HISTORY.items()}
    if exercise in NOTEBOOK_EXERCISES:
        return _notebook_reference(exercise)
    return getattr(MODULE_EXERCISES[exercise], exercise)


@functools.cache
def _notebook_reference(exercise):
    return notebook_exercise(*NOTEBOOK_EXERCISES[exercise])[exercise]


def install(monkeypatch, exercise, wrong):
    """Put ``wrong`` where the student's version of ``exercise`` would be."""
    module = MODULE_EXERCISES.get(exercise)
    if module is None:
        return
    original = getattr(module, exercise)
    for other in set(MODULE_EXERCISES.values()):
        if getattr(other, exercise, None) is original:  # e.g. training's `from .losses import ...`
            monkeypatch.setattr(other, exercise, wrong)


@dataclass(frozen=True)
class Mistake:
    exercise: str
    what: str  # the mistake, in a few words (the test id)
    wrong: object
    hints: dict = field(default_factory=dict)  # check -> text (or tuple of texts) it must say

    @property
    def id(self):
        return f"{self.exercise}: {self.what}"


CATALOGUE = []


def planted(exercise, what, wrong=None, **hints):
    """Add a mistake; as a decorator, the decorated function or class is the wrong version."""
    if wrong is not None:
        CATALOGUE.append(Mistake(exercise, what, wrong, hints))
        return wrong

    def add(obj):
        CATALOGUE.append(Mistake(exercise, what, obj, hints))
        return obj

    return add


def _replace(net, match, make):
    return nn.Sequential(*[make(m) if match(m) else m for m in net])


# -- 0.1 count_parameters -----------------------------------------------------------------
E = "count_parameters"
planted(
    E,
    "counts tensors",
    lambda m: len(list(m.parameters())),
    check_count_parameters="counted parameter tensors",
)
planted(
    E,
    "counts frozen ones too",
    lambda m: sum(p.numel() for p in m.parameters()),
    check_count_parameters="frozen parameters were counted",
)
planted(
    E,
    "counts frozen ones only",
    lambda m: sum(p.numel() for p in m.parameters() if not p.requires_grad),
    check_count_parameters="not those without",
)
planted(
    E,
    "counts the state_dict",
    lambda m: sum(v.numel() for v in m.state_dict().values()),
    check_count_parameters="buffers",
)
planted(
    E,
    "counts weights only",
    lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad and p.dim() > 1),
    check_count_parameters="biases are parameters too",
)
planted(
    E,
    "returns a float",
    lambda m: float(sum(p.numel() for p in m.parameters() if p.requires_grad)),
    check_count_parameters="return an int",
)
planted(
    E,
    "one level of children",
    lambda m: sum(
        p.numel()
        for x in [m, *m.children()]
        for p in x.parameters(recurse=False)
        if p.requires_grad
    ),
    check_count_parameters="nested ones too",
)

planted(
    E,
    "concatenates the parameters",
    lambda m: torch.cat([p.flatten() for p in m.parameters() if p.requires_grad]).numel(),
    check_count_parameters="a model without parameters has 0",
)
planted(
    E,
    "loops over modules() too",
    lambda m: sum(p.numel() for x in m.modules() for p in x.parameters() if p.requires_grad),
    check_count_parameters="do not loop over model.modules()",
)

# -- 1.1 make_transform -------------------------------------------------------------------
E = "make_transform"
T = transforms
planted(E, "no Normalize", lambda: T.ToTensor(), check_transform="[0, 1]")
planted(
    E,
    "MNIST statistics",
    lambda: T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))]),
    check_transform="MNIST's mean and std",
)
planted(E, "no ToTensor", lambda: T.Compose([T.Resize(28)]), check_transform="not a tensor")
planted(
    E,
    "Normalize before ToTensor",
    lambda: T.Compose([T.Normalize((0.5,), (0.5,)), T.ToTensor()]),
    check_transform="after ToTensor()",
)
planted(E, "PILToTensor", lambda: T.Compose([T.PILToTensor()]), check_transform="uint8")
planted(
    E,
    "PILToTensor + ConvertImageDtype",
    lambda: T.Compose([T.PILToTensor(), T.ConvertImageDtype(torch.float32)]),
    check_transform="[0, 1]",
)
planted(
    E,
    "std 1",
    lambda: T.Compose([T.ToTensor(), T.Normalize((0.5,), (1.0,))]),
    check_transform="expected -1 and 1",
)
planted(
    E,
    "normalised twice",
    lambda: T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,)), T.Normalize((0.5,), (0.5,))]),
    check_transform="expected -1 and 1",
)
planted(
    E,
    "three channels",
    lambda: T.Compose([T.Grayscale(3), T.ToTensor(), T.Normalize((0.5,), (0.5,))]),
    check_transform="one channel",
)
planted(
    E,
    "resizes",
    lambda: T.Compose([T.Resize(32), T.ToTensor(), T.Normalize((0.5,), (0.5,))]),
    check_transform="Do not resize",
)
planted(
    E,
    "flattens",
    lambda: T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,)), T.Lambda(lambda x: x.view(-1))]),
    check_transform="flatten",
)
planted(
    E,
    "random flips",
    lambda: T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize((0.5,), (0.5,))]),
    check_transform="no flips",
)
planted(
    E,
    "per-image min-max",
    lambda: T.Compose(
        [T.ToTensor(), T.Lambda(lambda x: (x - x.min()) / (x.max() - x.min() + 1e-8) * 2 - 1)]
    ),
    check_transform="expected -1 and 1",
)
planted(E, "returns the class", lambda: T.ToTensor, check_transform="an instance")

planted(
    E,
    "RGB statistics",
    lambda: T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]),
    check_transform="MNIST has one channel",
)
planted(
    E,
    "a class in Compose",
    lambda: T.Compose([T.ToTensor, T.Normalize((0.5,), (0.5,))]),
    check_transform="a class where an instance belongs",
)

# -- 1.2 to_display -----------------------------------------------------------------------
E = "to_display"
planted(E, "identity", lambda x: x, check_scaling="unchanged")
planted(E, "no clamp", lambda x: (x + 1) / 2, check_scaling="clamp")
planted(E, "divides first", lambda x: x / 2 + 1, check_scaling="divided by 2 before adding 1")
planted(
    E,
    "to 0..255",
    lambda x: ((x + 1) / 2 * 255).clamp(0, 255),
    check_scaling="do not multiply by 255",
)
planted(
    E,
    "clamps first",
    lambda x: (x.clamp(0, 1) + 1) / 2,
    check_scaling="clamped to [0, 1] before rescaling",
)
planted(
    E, "returns numpy", lambda x: ((x + 1) / 2).clamp(0, 1).numpy(), check_scaling="not a tensor"
)
planted(
    E, "squeezes", lambda x: ((x + 1) / 2).clamp(0, 1).squeeze(), check_scaling="changed the shape"
)
planted(
    E,
    "channels last",
    lambda x: ((x + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1),
    check_scaling="changed the shape",
)
planted(
    E,
    "per-image min-max",
    lambda x: (x - x.min()) / (x.max() - x.min()),
    check_scaling="expected 0, 0.5, 1",
)
planted(
    E,
    "one shape only",
    lambda x: ((x.view(1, 1, 1, -1) + 1) / 2).clamp(0, 1),
    check_scaling="any shape",
)

planted(E, "in place", lambda x: x.add_(1).div_(2).clamp_(0, 1), check_scaling="changed the images")
planted(
    E, "to float64", lambda x: ((x + 1) / 2).clamp(0, 1).double(), check_scaling="changed the dtype"
)

# -- 2.1 conv_out_size and 3.1 deconv_out_size ----------------------------------------------
E = "conv_out_size"
planted(
    E, "no + 1", lambda n, k, s=1, p=0: (n + 2 * p - k) // s, check_conv_out_size="forgot the + 1"
)
planted(
    E,
    "true division",
    lambda n, k, s=1, p=0: (n + 2 * p - k) / s + 1,
    check_conv_out_size="return an int",
)
planted(
    E,
    "no padding",
    lambda n, k, s=1, p=0: (n - k) // s + 1,
    check_conv_out_size="the padding is missing",
)
planted(
    E,
    "one-sided padding",
    lambda n, k, s=1, p=0: (n + p - k) // s + 1,
    check_conv_out_size="both sides",
)
planted(
    E,
    "+ 1 inside the floor",
    lambda n, k, s=1, p=0: (n + 2 * p - k + 1) // s,
    check_conv_out_size="after the division",
)
planted(
    E,
    "rounds up",
    lambda n, k, s=1, p=0: math.ceil((n + 2 * p - k) / s) + 1,
    check_conv_out_size="rounds down",
)
planted(
    E,
    "rounds to nearest",
    lambda n, k, s=1, p=0: round((n + 2 * p - k) / s) + 1,
    check_conv_out_size="rounds down",
)
planted(
    E,
    "no stride",
    lambda n, k, s=1, p=0: n + 2 * p - k + 1,
    check_conv_out_size="divide by the stride",
)
planted(
    E,
    "padding subtracted",
    lambda n, k, s=1, p=0: (n - 2 * p - k) // s + 1,
    check_conv_out_size="not n - 2 * padding",
)
planted(
    E,
    "the transposed formula",
    lambda n, k, s=1, p=0: (n - 1) * s - 2 * p + k,
    check_conv_out_size="transposed conv's formula",
)
planted(
    E,
    "no defaults",
    lambda n, k, s, p: (n + 2 * p - k) // s + 1,
    check_conv_out_size="keep the defaults",
)
planted(
    E,
    "numpy floor",
    lambda n, k, s=1, p=0: np.floor((n + 2 * p - k) / s) + 1,
    check_conv_out_size="return an int",
)

E = "deconv_out_size"
planted(
    E,
    "n * stride",
    lambda n, k, s=1, p=0: n * s - 2 * p + k,
    check_deconv_out_size="(n - 1) * stride",
)
planted(
    E,
    "the Conv2d formula",
    lambda n, k, s=1, p=0: (n + 2 * p - k) // s + 1,
    check_deconv_out_size="Conv2d formula",
)
planted(
    E,
    "one-sided padding",
    lambda n, k, s=1, p=0: (n - 1) * s - p + k,
    check_deconv_out_size="both sides",
)
planted(
    E,
    "padding added",
    lambda n, k, s=1, p=0: (n - 1) * s + 2 * p + k,
    check_deconv_out_size="crops the output",
)
planted(
    E,
    "no padding",
    lambda n, k, s=1, p=0: (n - 1) * s + k,
    check_deconv_out_size="the padding is missing",
)
planted(
    E,
    "no stride",
    lambda n, k, s=1, p=0: n - 1 - 2 * p + k,
    check_deconv_out_size="multiply (n - 1) by the stride",
)
planted(
    E,
    "an extra + 1",
    lambda n, k, s=1, p=0: (n - 1) * s - 2 * p + k + 1,
    check_deconv_out_size="no + 1",
)
planted(
    E,
    "no defaults",
    lambda n, k, s, p: (n - 1) * s - 2 * p + k,
    check_deconv_out_size="keep the defaults",
)

# -- 2.2 init_dcgan_weights ---------------------------------------------------------------
E = "init_dcgan_weights"
CONVS = (nn.Conv2d, nn.ConvTranspose2d)


@planted(E, "std 1", check_init="third argument")
def init_std_one(m):
    if isinstance(m, CONVS + (nn.Linear,)):
        nn.init.normal_(m.weight, 0.0, 1.0)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)


planted(E, "does nothing", lambda m: None, check_init="unchanged")


@planted(E, "BatchNorm scales at 0", check_init="centred at 0")
def init_bn_at_zero(m):
    init_dcgan_weights(m)
    if isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 0.0, 0.02)


@planted(
    E, "the PyTorch tutorial's (no Linear, biases kept)", check_init="Linear weights are unchanged"
)
def init_tutorial(m):
    name = type(m).__name__
    if name.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


@planted(E, "convs only, no transposed convs", check_init="ConvTranspose2d weights are unchanged")
def init_conv2d_only(m):
    if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
        init_dcgan_weights(m)


@planted(E, "mean and std swapped", check_init="third argument")
def init_mean_std_swapped(m):
    if isinstance(m, CONVS + (nn.Linear,)):
        nn.init.normal_(m.weight, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        init_dcgan_weights(m)


@planted(E, "the variance as std", check_init="not the variance")
def init_variance(m):
    init_dcgan_weights(m)
    if isinstance(m, CONVS + (nn.Linear,)):
        nn.init.normal_(m.weight, 0.0, 0.02**2)


@planted(E, "biases kept", check_init="Conv2d biases must start at 0")
def init_biases_kept(m):
    if isinstance(m, CONVS + (nn.Linear,)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        init_dcgan_weights(m)


@planted(E, "zeroes a missing bias", check_init="module.bias is not None")
def init_bias_none(m):
    if isinstance(m, CONVS + (nn.Linear,)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        init_dcgan_weights(m)


@planted(E, "if module.bias:", check_init="Boolean value of Tensor")
def init_bias_truth(m):
    if isinstance(m, CONVS + (nn.Linear,)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        init_dcgan_weights(m)


@planted(E, "BatchNorm scales constant 1", check_init="BatchNorm2d scales are all 1")
def init_bn_constant(m):
    init_dcgan_weights(m)
    if isinstance(m, nn.BatchNorm2d):
        nn.init.ones_(m.weight)


@planted(E, "BatchNorm weight and bias swapped", check_init="shift")
def init_bn_swapped(m):
    if isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.bias, 1.0, 0.02)
    else:
        init_dcgan_weights(m)


@planted(E, "BatchNorm shifts drawn too", check_init="BatchNorm2d shifts (bias) must start at 0")
def init_bn_shift(m):
    init_dcgan_weights(m)
    if isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.bias, 0.0, 0.02)


planted(
    E, "returns True", lambda m: init_dcgan_weights(m) or True, check_init="init_fn returned a bool"
)


@planted(E, "everything with a weight", check_init="leave every module but")
def init_hasattr(m):
    if isinstance(m, nn.BatchNorm2d):
        init_dcgan_weights(m)
    elif getattr(m, "weight", None) is not None:
        nn.init.normal_(m.weight, 0.0, 0.02)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)


@planted(E, "returns a new layer", check_init="in place")
def init_recreates(m):
    if isinstance(m, nn.Conv2d):
        m = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size)
        init_dcgan_weights(m)
        return m
    init_dcgan_weights(m)


@planted(E, "xavier", check_init="expected N(0, 0.02)")
def init_xavier(m):
    init_dcgan_weights(m)
    if isinstance(m, CONVS + (nn.Linear,)):
        nn.init.xavier_normal_(m.weight)


@planted(E, "uniform", check_init="expected N(0, 0.02)")
def init_uniform(m):
    init_dcgan_weights(m)
    if isinstance(m, CONVS + (nn.Linear,)):
        nn.init.uniform_(m.weight, -0.02, 0.02)


@planted(E, "new Parameters", check_init="replaced nn.Conv2d's weight with a new tensor")
def init_new_parameters(m):
    if isinstance(m, CONVS + (nn.Linear,)):
        m.weight = nn.Parameter(torch.randn_like(m.weight) * 0.02)
        if m.bias is not None:
            m.bias = nn.Parameter(torch.zeros_like(m.bias))
    elif isinstance(m, nn.BatchNorm2d):
        init_dcgan_weights(m)


# -- 2.3 the critic -------------------------------------------------------------------------
E = "Critic"
ARCH, OUT = "check_critic_architecture", "check_critic_output"


def critic_variant(what, **hints):
    """Register a Critic subclass whose __init__ calls ``edit(self.net, config)`` afterwards."""

    def wrap(edit):
        class Wrong(Critic):
            def __init__(self, channels=1, image_size=28, ndf=64, dropout=0.0):
                super().__init__(channels, image_size, ndf, dropout)
                self.net = edit(
                    self.net,
                    dict(channels=channels, image_size=image_size, ndf=ndf, dropout=dropout),
                )

        Wrong.__name__ = Wrong.__qualname__ = f"Critic_{edit.__name__}"
        planted(E, what, Wrong, **hints)
        return Wrong

    return wrap


@critic_variant(
    "a final nn.Sigmoid",
    **{ARCH: "remove it, the loss expects logits", OUT: "remove the final sigmoid"},
)
def sigmoid_module(net, c):
    return nn.Sequential(*net, nn.Sigmoid())


@critic_variant(
    "MaxPool instead of strides",
    **{ARCH: "MaxPool2d: DCGAN downsamples with stride-2 convolutions"},
)
def pooling(net, c):
    layers = []
    for m in net:
        if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
            layers += [nn.Conv2d(m.in_channels, m.out_channels, 3, padding=1), nn.MaxPool2d(2)]
        else:
            layers.append(m)
    return nn.Sequential(*layers)


@critic_variant("ReLU instead of LeakyReLU", **{ARCH: "(you used ReLU)"})
def relu(net, c):
    return _replace(net, lambda m: isinstance(m, nn.LeakyReLU), lambda m: nn.ReLU())


@critic_variant("LeakyReLU's default slope", **{ARCH: "slope [0.01]"})
def slope(net, c):
    return _replace(net, lambda m: isinstance(m, nn.LeakyReLU), lambda m: nn.LeakyReLU())


@critic_variant("BatchNorm in the first block", **{ARCH: "BatchNorm in the first block"})
def bn_first_block(net, c):
    return nn.Sequential(net[0], nn.BatchNorm2d(net[0].out_channels), *list(net)[1:])


@critic_variant("BatchNorm on the raw input", **{ARCH: "BatchNorm on the raw input"})
def bn_raw_input(net, c):
    return nn.Sequential(nn.BatchNorm2d(c["channels"]), *net)


@critic_variant("BatchNorm after LeakyReLU", **{ARCH: "BatchNorm after the LeakyReLU"})
def bn_after_activation(net, c):
    layers = list(net)
    for i in range(len(layers) - 1):
        if isinstance(layers[i], nn.BatchNorm2d) and isinstance(layers[i + 1], nn.LeakyReLU):
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
    return nn.Sequential(*layers)


@critic_variant("no BatchNorm at all", **{ARCH: "no BatchNorm2d: put one after every conv"})
def no_bn(net, c):
    return nn.Sequential(*[m for m in net if not isinstance(m, nn.BatchNorm2d)])


@critic_variant("InstanceNorm instead of BatchNorm", **{ARCH: "InstanceNorm2d"})
def instance_norm(net, c):
    return _replace(
        net, lambda m: isinstance(m, nn.BatchNorm2d), lambda m: nn.InstanceNorm2d(m.num_features)
    )


@critic_variant("a Linear head", **{ARCH: "nn.Linear"})
def linear_head(net, c):
    last = net[-1]
    size = last.kernel_size[0]
    return nn.Sequential(
        *list(net)[:-1], nn.Flatten(), nn.Linear(last.in_channels * size * size, 1)
    )


@critic_variant("dropout never added", **{ARCH: "no Dropout2d"})
def no_dropout(net, c):
    return nn.Sequential(*[m for m in net if not isinstance(m, nn.Dropout2d)])


@critic_variant("nn.Dropout instead of Dropout2d", **{ARCH: "use nn.Dropout2d"})
def plain_dropout(net, c):
    return _replace(net, lambda m: isinstance(m, nn.Dropout2d), lambda m: nn.Dropout(m.p))


@critic_variant("dropout always on, rate 0.5", **{ARCH: "whose dropout is 0"})
def dropout_always(net, c):
    layers = []
    for m in net:
        if not isinstance(m, nn.Dropout2d):
            layers.append(m)
        if isinstance(m, nn.LeakyReLU):
            layers.append(nn.Dropout2d(0.5))
    return nn.Sequential(*layers)


@critic_variant(
    "dropout before the activation", **{ARCH: "Dropout2d goes right after each LeakyReLU"}
)
def dropout_early(net, c):
    layers = list(net)
    for i in range(1, len(layers)):
        if isinstance(layers[i], nn.Dropout2d):
            layers[i - 1], layers[i] = layers[i], layers[i - 1]
    return nn.Sequential(*layers)


@critic_variant("widths hard-coded to 64, 128, ...", **{ARCH: "they follow ndf"})
def fixed_widths(net, c):
    new = Critic(c["channels"], c["image_size"], 64, c["dropout"])
    return new.net


@critic_variant(
    "final kernel 4 instead of base", **{ARCH: "it must be base = 7", OUT: "expected (5,)"}
)
def final_kernel_4(net, c):
    last = net[-1]
    return nn.Sequential(*list(net)[:-1], nn.Conv2d(last.in_channels, 1, 4))


@critic_variant("3x3 kernels", **{ARCH: "Conv2d(kernel_size=4, stride=2, padding=1)"})
def kernel_3(net, c):
    return _replace(
        net,
        lambda m: isinstance(m, nn.Conv2d) and m.stride == (2, 2),
        lambda m: nn.Conv2d(m.in_channels, m.out_channels, 3, 2, 1),
    )


@critic_variant(
    "no padding", **{ARCH: "Conv2d(kernel_size=4, stride=2, padding=1)", OUT: "crashed"}
)
def padding_0(net, c):
    return _replace(
        net,
        lambda m: isinstance(m, nn.Conv2d) and m.stride == (2, 2),
        lambda m: nn.Conv2d(m.in_channels, m.out_channels, 4, 2, 0),
    )


@critic_variant("an activation after the final conv", **{ARCH: "after the final conv"})
def activation_after_logit(net, c):
    return nn.Sequential(*net, nn.LeakyReLU(0.2))


@critic_variant("input channels hard-coded to 1", **{ARCH: "the images have 3", OUT: "crashed"})
def one_channel(net, c):
    first = net[0]
    return nn.Sequential(nn.Conv2d(1, first.out_channels, 4, 2, 1), *list(net)[1:])


@critic_variant("an extra block", **{ARCH: "dcgan_schedule(28) gives n_blocks = 2", OUT: "crashed"})
def extra_block(net, c):
    last = net[-1]
    ch = last.in_channels
    extra = [nn.Conv2d(ch, ch, 4, 2, 1, bias=False), nn.BatchNorm2d(ch), nn.LeakyReLU(0.2)]
    return nn.Sequential(*list(net)[:-1], *extra, last)


class SigmoidForwardCritic(Critic):
    def forward(self, x):
        return torch.sigmoid(super().forward(x))


class ManualSigmoidCritic(Critic):
    def forward(self, x):
        return 1 / (1 + torch.exp(-super().forward(x)))


class ColumnCritic(Critic):
    def forward(self, x):
        return self.net(x).view(-1, 1)


class Only28Critic(Critic):
    def __init__(self, channels=1, image_size=28, ndf=64, dropout=0.0):
        super().__init__(channels, 28, ndf, dropout)


class DetachingCritic(Critic):
    def forward(self, x):
        return super().forward(x.detach())


class NoGradCritic(Critic):
    def forward(self, x):
        with torch.no_grad():
            return super().forward(x)


planted(E, "torch.sigmoid in forward", SigmoidForwardCritic, **{OUT: "remove the final sigmoid"})
planted(E, "1 / (1 + exp(-x)) in forward", ManualSigmoidCritic, **{OUT: "remove the final sigmoid"})
planted(E, "output (B, 1)", ColumnCritic, **{OUT: "flatten it to (B,)"})
planted(
    E,
    "28x28 only",
    Only28Critic,
    **{ARCH: "dcgan_schedule(32) gives n_blocks = 3", OUT: "dcgan_schedule"},
)
planted(E, "detaches its input", DetachingCritic, **{OUT: "no gradient reaches the input images"})
planted(E, "forward under no_grad", NoGradCritic, **{OUT: "does not require grad"})


class SqueezeCritic(Critic):
    def forward(self, x):
        return self.net(x).squeeze()


planted(E, "squeeze() in forward", SqueezeCritic, **{OUT: "squeeze() drops the batch dimension"})

# -- 3.2 upsample_block -----------------------------------------------------------------------
E = "upsample_block"
UP = "check_upsample_block"


@planted(E, "a transposed conv in nearest mode", **{UP: "checkerboard"})
def nearest_with_deconv(i, o, mode="transposed"):
    if mode == "nearest":
        return nn.Sequential(
            nn.Upsample(scale_factor=2), nn.ConvTranspose2d(i, o, 3, padding=1, bias=False)
        )
    return upsample_block(i, o, mode)


@planted(E, "unknown modes fall back", **{UP: "did not raise ValueError"})
def silent_fallback(i, o, mode="transposed"):
    return upsample_block(i, o, mode if mode in ("transposed", "nearest") else "transposed")


@planted(E, "biases kept", **{UP: "bias=False"})
def with_bias(i, o, mode="transposed"):
    if mode == "transposed":
        return nn.ConvTranspose2d(i, o, 4, 2, 1)
    return nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(i, o, 3, padding=1))


@planted(E, "bilinear", **{UP: "(yours uses mode='bilinear')"})
def bilinear(i, o, mode="transposed"):
    if mode == "nearest":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(i, o, 3, padding=1, bias=False)
        )
    return upsample_block(i, o, mode)


@planted(E, "conv before upsample", **{UP: "Upsample first"})
def conv_first(i, o, mode="transposed"):
    if mode == "nearest":
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.Upsample(scale_factor=2))
    return upsample_block(i, o, mode)


@planted(E, "no padding in nearest mode", **{UP: "expected (2, 4, 14, 14)"})
def nearest_no_padding(i, o, mode="transposed"):
    if mode == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(i, o, 3, bias=False))
    return upsample_block(i, o, mode)


@planted(E, "5x5 kernel in nearest mode", **{UP: "Conv2d(kernel_size=3, padding=1)"})
def nearest_kernel_5(i, o, mode="transposed"):
    if mode == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(i, o, 5, padding=2, bias=False))
    return upsample_block(i, o, mode)


@planted(E, "no padding in transposed mode", **{UP: "expected (2, 4, 14, 14)"})
def transposed_no_padding(i, o, mode="transposed"):
    if mode == "transposed":
        return nn.ConvTranspose2d(i, o, 4, 2, 0, bias=False)
    return upsample_block(i, o, mode)


@planted(E, "ignores mode", **{UP: "must not use ConvTranspose2d"})
def ignores_mode(i, o, mode="transposed"):
    return upsample_block(i, o, "transposed")


@planted(E, "BatchNorm inside", **{UP: "normalisation or an activation"})
def with_batchnorm(i, o, mode="transposed"):
    return nn.Sequential(upsample_block(i, o, mode), nn.BatchNorm2d(o))


@planted(E, "ReLU inside", **{UP: "normalisation or an activation"})
def with_relu(i, o, mode="transposed"):
    return nn.Sequential(upsample_block(i, o, mode), nn.ReLU())


@planted(E, "a list instead of Sequential", **{UP: "not an nn.Module"})
def as_list(i, o, mode="transposed"):
    block = upsample_block(i, o, mode)
    return list(block) if mode == "nearest" else block


@planted(E, "ValueError without the modes", **{UP: "name the modes"})
def vague_error(i, o, mode="transposed"):
    if mode not in ("transposed", "nearest"):
        raise ValueError("bad mode")
    return upsample_block(i, o, mode)


@planted(E, "KeyError from a dict", **{UP: "raised KeyError"})
def dict_lookup(i, o, mode="transposed"):
    return {
        "transposed": lambda: upsample_block(i, o, "transposed"),
        "nearest": lambda: upsample_block(i, o, "nearest"),
    }[mode]()


@planted(E, "Upsample to a fixed size", **{UP: "expected (2, 5, 8, 8)"})
def fixed_size(i, o, mode="transposed"):
    if mode == "nearest":
        return nn.Sequential(nn.Upsample(size=14), nn.Conv2d(i, o, 3, padding=1, bias=False))
    return upsample_block(i, o, mode)


class _Wrapper(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.up, self.conv = nn.Upsample(scale_factor=2), nn.Conv2d(i, o, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv(self.up(x))


@planted(E, "a custom Module for nearest", **{UP: "return nn.Sequential"})
def custom_module(i, o, mode="transposed"):
    return _Wrapper(i, o) if mode == "nearest" else upsample_block(i, o, mode)


@planted(E, "returns the error", **{UP: "did not raise ValueError"})
def returns_error(i, o, mode="transposed"):
    if mode not in ("transposed", "nearest"):
        return ValueError(f"unknown mode {mode!r}: 'transposed' or 'nearest'")
    return upsample_block(i, o, mode)


@planted(E, "default mode nearest", **{UP: "is the default"})
def default_nearest(i, o, mode="nearest"):
    return upsample_block(i, o, mode)


@planted(E, "transposed conv in a Sequential", **{UP: "return the ConvTranspose2d itself"})
def transposed_wrapped(i, o, mode="transposed"):
    block = upsample_block(i, o, mode)
    return nn.Sequential(block) if mode == "transposed" else block


@planted(E, "UpsamplingNearest2d", **{UP: "deprecates"})
def upsampling_nearest2d(i, o, mode="transposed"):
    if mode == "nearest":
        return nn.Sequential(
            nn.UpsamplingNearest2d(scale_factor=2), nn.Conv2d(i, o, 3, padding=1, bias=False)
        )
    return upsample_block(i, o, mode)


# -- 3.3 the generator ------------------------------------------------------------------------
E = "Generator"
GOUT, GARCH = "check_generator_output", "check_generator_architecture"


def generator_variant(what, **hints):
    def wrap(edit):
        class Wrong(Generator):
            def __init__(self, nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
                super().__init__(nz, channels, image_size, ngf, upsample)
                self.net = edit(
                    self.net,
                    dict(
                        nz=nz, channels=channels, image_size=image_size, ngf=ngf, upsample=upsample
                    ),
                )

        Wrong.__name__ = Wrong.__qualname__ = f"Generator_{edit.__name__}"
        planted(E, what, Wrong, **hints)
        return Wrong

    return wrap


class FlatGenerator(nn.Module):
    """An MLP generator that forgets to reshape its output."""

    def __init__(self, nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
        super().__init__()
        self.nz = nz
        self.net = nn.Sequential(
            nn.Linear(nz, 256), nn.ReLU(), nn.Linear(256, channels * image_size**2), nn.Tanh()
        )

    def forward(self, z):
        return self.net(z)


planted(
    E,
    "an MLP, output not reshaped",
    FlatGenerator,
    **{GOUT: "(B, 784): reshape", GARCH: "nn.Linear"},
)


@generator_variant("no tanh", **{GOUT: "nn.Tanh()", GARCH: "exactly one nn.Tanh"})
def no_tanh(net, c):
    return net[:-1]


@generator_variant(
    "a sigmoid at the end", **{GOUT: "ends with a sigmoid", GARCH: "exactly one nn.Tanh"}
)
def sigmoid_end(net, c):
    return nn.Sequential(*list(net)[:-1], nn.Sigmoid())


@generator_variant("BatchNorm before the tanh", **{GARCH: "BatchNorm right before the output tanh"})
def output_bn(net, c):
    return nn.Sequential(*list(net)[:-1], nn.BatchNorm2d(c["channels"]), nn.Tanh())


@generator_variant(
    "no padding in the upsampling", **{GOUT: "expected 28x28", GARCH: "expected ConvTranspose2d"}
)
def upsampling_padding_0(net, c):
    return _replace(
        net,
        lambda m: isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2),
        lambda m: nn.ConvTranspose2d(m.in_channels, m.out_channels, 4, 2, 0, bias=False),
    )


@generator_variant(
    "no BatchNorm after the projection", **{GARCH: "after the projection come BatchNorm2d and ReLU"}
)
def no_projection_bn(net, c):
    return nn.Sequential(net[0], *list(net)[2:])


@generator_variant("BatchNorm after ReLU", **{GARCH: "BatchNorm after the ReLU"})
def bn_after_relu(net, c):
    layers = list(net)
    for i in range(1, len(layers) - 1):
        if isinstance(layers[i], nn.BatchNorm2d) and isinstance(layers[i + 1], nn.ReLU) and i > 1:
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
    return nn.Sequential(*layers)


@generator_variant("a block without BatchNorm", **{GARCH: "lacks its BatchNorm2d"})
def block_without_bn(net, c):
    layers = list(net)
    bns = [i for i, m in enumerate(layers) if isinstance(m, nn.BatchNorm2d)]
    del layers[bns[-1]]
    return nn.Sequential(*layers)


@generator_variant("LeakyReLU", **{GARCH: "LeakyReLU is for the critic"})
def leaky(net, c):
    return _replace(net, lambda m: isinstance(m, nn.ReLU), lambda m: nn.LeakyReLU(0.2))


@generator_variant("dropout", **{GOUT: "dropout", GARCH: "Dropout"})
def dropout(net, c):
    return nn.Sequential(*net[:3], nn.Dropout(0.5), *net[3:])


@generator_variant("projection kernel 4", **{GOUT: "expected 28x28", GARCH: "kernel_size=base = 7"})
def projection_kernel_4(net, c):
    first = net[0]
    return nn.Sequential(
        nn.ConvTranspose2d(first.in_channels, first.out_channels, 4, bias=False), *list(net)[1:]
    )


class IgnoresUpsampleGenerator(Generator):
    def __init__(self, nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
        super().__init__(nz, channels, image_size, ngf, "transposed")


class FixedWidthGenerator(Generator):
    def __init__(self, nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
        super().__init__(nz, channels, image_size, 64, upsample)


class FixedNzGenerator(Generator):
    def __init__(self, nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
        super().__init__(100, channels, image_size, ngf, upsample)
        self.nz = nz


class OneChannelGenerator(Generator):
    def __init__(self, nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
        super().__init__(nz, 1, image_size, ngf, upsample)


class Only28Generator(Generator):
    def __init__(self, nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
        super().__init__(nz, channels, 28, ngf, upsample)


class FreshNoiseGenerator(Generator):
    def forward(self, z):
        return super().forward(torch.randn_like(z))


class NoisyGenerator(Generator):
    def forward(self, z):
        return super().forward(z + 0.1 * torch.randn_like(z))


class ConstantGenerator(Generator):
    """A learned constant input: the same image for every z."""

    def __init__(self, nz=100, **kw):
        super().__init__(nz, **kw)
        self.const = nn.Parameter(torch.randn(1, nz))

    def forward(self, z):
        return super().forward(self.const.expand(z.size(0), -1))


class HalfZGenerator(Generator):
    def forward(self, z):
        half = z.size(1) // 2
        return super().forward(torch.cat([z[:, :half], torch.zeros_like(z[:, half:])], 1))


class TransposedZGenerator(Generator):
    def forward(self, z):
        return self.net(z.t().reshape(z.size(0), -1, 1, 1))


class NeedsFourDGenerator(Generator):
    def forward(self, z):
        return self.net(z)


class DetachedZGenerator(Generator):
    """Not a mistake: detaching z changes nothing the generator's training needs."""

    def forward(self, z):
        return super().forward(z.detach())


planted(
    E, "ignores upsample", IgnoresUpsampleGenerator, **{GARCH: "pass upsample on to upsample_block"}
)
planted(E, "widths hard-coded", FixedWidthGenerator, **{GARCH: "they follow ngf"})
planted(E, "nz hard-coded", FixedNzGenerator, **{GOUT: "Generator(nz=16)", GARCH: "z has nz = 20"})
planted(
    E,
    "channels ignored",
    OneChannelGenerator,
    **{
        GOUT: "Generator(channels=3, image_size=32, ngf=8) gives (2, 1, 32, 32)",
        GARCH: "`channels` at the end",
    },
)
planted(
    E,
    "28x28 only",
    Only28Generator,
    **{GOUT: "dcgan_schedule(image_size)", GARCH: "dcgan_schedule(32) gives n_blocks = 3"},
)
planted(E, "fresh noise in forward", FreshNoiseGenerator, **{GOUT: "do not draw new noise"})
planted(E, "noise added in forward", NoisyGenerator, **{GOUT: "do not draw new noise"})
planted(E, "a learned constant input", ConstantGenerator, **{GOUT: "do not depend on z"})
planted(E, "half of z unused", HalfZGenerator, **{GOUT: "ignore 50 of the nz = 100 coordinates"})
planted(E, "z transposed", TransposedZGenerator, **{GOUT: "image i must depend on z[i] only"})
planted(E, "no reshape of z", NeedsFourDGenerator, **{GOUT: "forward must reshape z itself"})


class BatchNormalisedZGenerator(Generator):
    def forward(self, z):
        return super().forward((z - z.mean(0)) / (z.std(0) + 1e-8))


planted(
    E,
    "z standardised over the batch",
    BatchNormalisedZGenerator,
    **{GOUT: "statistics of the batch"},
)


@generator_variant("ReLU before the tanh", **{GARCH: "followed by nn.Tanh() only"})
def relu_before_tanh(net, c):
    return nn.Sequential(*list(net)[:-1], nn.ReLU(), nn.Tanh())


class RescaledGenerator(Generator):
    def forward(self, z):
        return super().forward(z) * 0.5 + 0.5


planted(
    E, "rescaled to [0, 1] after the tanh", RescaledGenerator, **{GOUT: "last operation is Add"}
)

# -- 4.1 critic_loss --------------------------------------------------------------------------
E = "critic_loss"
CL = "check_critic_loss"
BCE = F.binary_cross_entropy_with_logits


def _full(x, v):
    return torch.full_like(x, v)


planted(
    E,
    "averages the two terms",
    lambda r, f, real_label=1.0: critic_loss(r, f, real_label) / 2,
    **{CL: "do not average"},
)
planted(
    E,
    "swapped targets",
    lambda r, f, real_label=1.0: critic_loss(f, r, real_label),
    **{CL: "swapped"},
)
planted(
    E,
    "sigmoid first",
    lambda r, f, real_label=1.0: critic_loss(torch.sigmoid(r), torch.sigmoid(f), real_label),
    **{CL: "a sigmoid before"},
)
planted(
    E,
    "ignores real_label",
    lambda r, f, real_label=1.0: critic_loss(r, f),
    **{CL: "ignores real_label"},
)
planted(
    E,
    "two-sided smoothing",
    lambda r, f, real_label=1.0: BCE(r, _full(r, real_label)) + BCE(f, _full(f, 1 - real_label)),
    **{CL: "one-sided"},
)
planted(
    E,
    "smoothing on the wrong side",
    lambda r, f, real_label=1.0: BCE(r, torch.ones_like(r)) + BCE(f, _full(f, 1 - real_label)),
    **{CL: "wrong side"},
)
planted(
    E,
    "real targets 1 - real_label",
    lambda r, f, real_label=1.0: (
        BCE(r, _full(r, 1 - real_label) if real_label < 1 else torch.ones_like(r))
        + BCE(f, torch.zeros_like(f))
    ),
    **{CL: "not 1 - real_label"},
)
planted(
    E,
    "returns a float",
    lambda r, f, real_label=1.0: critic_loss(r, f, real_label).item(),
    **{CL: "returned float"},
)
planted(
    E,
    "BCELoss on sigmoid",
    lambda r, f, real_label=1.0: (
        F.binary_cross_entropy(torch.sigmoid(r), _full(r, real_label))
        + F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f))
    ),
    **{CL: "binary_cross_entropy_with_logits"},
)
planted(
    E,
    "log of sigmoid",
    lambda r, f, real_label=1.0: (
        -(
            real_label * torch.log(torch.sigmoid(r))
            + (1 - real_label) * torch.log(1 - torch.sigmoid(r))
        ).mean()
        - torch.log(1 - torch.sigmoid(f)).mean()
    ),
    **{CL: "sigmoid saturates"},
)
planted(
    E,
    "sum instead of mean",
    lambda r, f, real_label=1.0: (
        BCE(r, _full(r, real_label), reduction="sum") + BCE(f, torch.zeros_like(f), reduction="sum")
    ),
    **{CL: "sum over the batch"},
)
planted(
    E,
    "one mean over both",
    lambda r, f, real_label=1.0: BCE(
        torch.cat([r, f]), torch.cat([_full(r, real_label), torch.zeros_like(f)])
    ),
    **{CL: "one mean over the real and fake logits together"},
)
planted(
    E,
    "wrong sign",
    lambda r, f, real_label=1.0: -critic_loss(r, f, real_label),
    **{CL: "wrong sign"},
)
planted(
    E,
    "no fake term",
    lambda r, f, real_label=1.0: BCE(r, _full(r, real_label)),
    **{CL: "the fake term is missing"},
)
planted(
    E,
    "fake target 1",
    lambda r, f, real_label=1.0: BCE(r, _full(r, real_label)) + BCE(f, torch.ones_like(f)),
    **{CL: "expected"},
)
planted(
    E,
    "targets shaped like the real batch",
    lambda r, f, real_label=1.0: BCE(r, _full(r, real_label)) + BCE(f, torch.zeros_like(r)),
    **{CL: "make each target from its own logits"},
)
planted(
    E,
    "returns both terms",
    lambda r, f, real_label=1.0: (BCE(r, _full(r, real_label)), BCE(f, torch.zeros_like(f))),
    **{CL: "returned a tuple"},
)
planted(
    E,
    "no graph",
    lambda r, f, real_label=1.0: torch.tensor(critic_loss(r, f, real_label).item()),
    **{CL: "without a graph"},
)
planted(
    E,
    "real term halved",
    lambda r, f, real_label=1.0: BCE(r, _full(r, real_label)) / 2 + BCE(f, torch.zeros_like(f)),
    **{CL: "the real term is halved"},
)

planted(
    E,
    "real_label as a 0-d target",
    lambda r, f, real_label=1.0: BCE(r, torch.tensor(real_label)) + BCE(f, torch.tensor(0.0)),
    **{CL: "make each target from its own logits"},
)

# -- 4.2 generator_loss and 4.3 the saturating loss -------------------------------------------
E = "generator_loss"
GL = "check_generator_loss"
planted(E, "saturating", lambda f: -F.softplus(f).mean(), **{GL: "saturating"})
planted(
    E,
    "minus the critic's fake term",
    lambda f: -BCE(f, torch.zeros_like(f)),
    **{GL: "-BCE(fake logits, 0)"},
)
planted(E, "target 0", lambda f: BCE(f, torch.zeros_like(f)), **{GL: "target 0"})
planted(E, "no graph", lambda f: generator_loss(f).detach(), **{GL: "without a graph"})
planted(
    E, "log of sigmoid", lambda f: -torch.log(torch.sigmoid(f)).mean(), **{GL: "sigmoid saturates"}
)
planted(
    E, "sum", lambda f: BCE(f, torch.ones_like(f), reduction="sum"), **{GL: "sum over the batch"}
)
planted(E, "halved", lambda f: generator_loss(f) / 2, **{GL: "do not halve"})
planted(E, "wrong sign", lambda f: -generator_loss(f), **{GL: "wrong sign"})
planted(E, "sigmoid first", lambda f: generator_loss(torch.sigmoid(f)), **{GL: "a sigmoid before"})
planted(
    E,
    "no reduction",
    lambda f: BCE(f, torch.ones_like(f), reduction="none"),
    **{GL: "reduce to a scalar"},
)
planted(E, "returns a float", lambda f: generator_loss(f).item(), **{GL: "returned float"})

E = "saturating_generator_loss"
SL = "check_saturating_loss"
planted(E, "wrong sign", lambda f: F.softplus(f).mean(), **{SL: "wrong sign"})
planted(E, "the non-saturating one", lambda f: F.softplus(-f).mean(), **{SL: "non-saturating"})
planted(
    E,
    "log of sigmoid",
    lambda f: torch.log(1 - torch.sigmoid(f)).mean(),
    **{SL: "sigmoid saturates"},
)
planted(
    E,
    "log1p of sigmoid",
    lambda f: torch.log1p(-torch.sigmoid(f)).mean(),
    **{SL: "sigmoid saturates"},
)
planted(E, "log D instead", lambda f: -F.softplus(-f).mean(), **{SL: "that is log D(G(z))"})
planted(E, "sum", lambda f: -F.softplus(f).sum(), **{SL: "sum over the batch"})
planted(E, "no mean", lambda f: -F.softplus(f), **{SL: "reduce to a scalar"})

# -- 5.1 make_optimizers ------------------------------------------------------------------------
E = "make_optimizers"
OPT = "check_optimizers"
ADAM = torch.optim.Adam


def _two(c, g, **kw):
    return ADAM(c.parameters(), **kw), ADAM(g.parameters(), **kw)


planted(
    E,
    "swapped",
    lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: make_optimizers(g, c, lr, betas, **kw),
    **{OPT: "wrong optimizer"},
)
planted(
    E,
    "Adam's default betas",
    lambda c, g, lr=2e-4, betas=(0.9, 0.999), **kw: make_optimizers(c, g, lr, betas, **kw),
    **{OPT: "default betas"},
)
planted(
    E,
    "one for both",
    lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: (lambda o: (o, o))(
        ADAM(list(c.parameters()) + list(g.parameters()), lr=lr, betas=betas)
    ),
    **{OPT: "one optimizer for both"},
)
planted(
    E,
    "SGD",
    lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: (
        torch.optim.SGD(c.parameters(), lr=lr),
        torch.optim.SGD(g.parameters(), lr=lr),
    ),
    **{OPT: "DCGAN uses Adam"},
)
planted(
    E,
    "lr hard-coded",
    lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: _two(c, g, lr=2e-4, betas=betas, **kw),
    **{OPT: "pass lr on"},
)
planted(
    E,
    "betas hard-coded",
    lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: _two(c, g, lr=lr, betas=(0.5, 0.999), **kw),
    **{OPT: "pass betas on"},
)
planted(
    E,
    "no **adam_options",
    lambda c, g, lr=2e-4, betas=(0.5, 0.999): _two(c, g, lr=lr, betas=betas),
    **{OPT: "accept **adam_options"},
)
planted(
    E,
    "options to opt_c only",
    lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: (
        ADAM(c.parameters(), lr=lr, betas=betas, **kw),
        ADAM(g.parameters(), lr=lr, betas=betas),
    ),
    **{OPT: "(only opt_c got it)"},
)
planted(
    E,
    "options swallowed",
    lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: _two(c, g, lr=lr, betas=betas),
    **{OPT: "pass every other keyword argument"},
)
planted(
    E,
    "lr 1e-3",
    lambda c, g, lr=1e-3, betas=(0.5, 0.999), **kw: _two(c, g, lr=lr, betas=betas, **kw),
    **{OPT: "Radford et al. use 2e-4"},
)
planted(
    E,
    "its own weight decay",
    lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: _two(
        c, g, lr=lr, betas=betas, **{"weight_decay": 1e-5, **kw}
    ),
    **{OPT: "set only lr, betas"},
)
planted(
    E,
    "opt_g over both",
    lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: (
        ADAM(c.parameters(), lr=lr, betas=betas, **kw),
        ADAM(list(g.parameters()) + list(c.parameters()), lr=lr, betas=betas, **kw),
    ),
    **{OPT: "opt_g must hold exactly generator.parameters()"},
)
planted(
    E,
    "betas before lr",
    lambda c, g, betas=(0.5, 0.999), lr=2e-4, **kw: _two(c, g, lr=lr, betas=betas, **kw),
    **{OPT: "keep the signature"},
)

planted(
    E,
    "AdamW",
    lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: (
        torch.optim.AdamW(c.parameters(), lr=lr, betas=betas, **kw),
        torch.optim.AdamW(g.parameters(), lr=lr, betas=betas, **kw),
    ),
    **{OPT: "opt_c is AdamW; DCGAN uses Adam"},
)

# -- 5.2 critic_step and 5.3 generator_step ------------------------------------------------------
E = "critic_step"
CS = "check_critic_step"


def _d(real_logits, fake_logits):
    return torch.sigmoid(real_logits.detach()).mean(), torch.sigmoid(fake_logits.detach()).mean()


def _critic_out(loss, real_logits, fake_logits):
    d_real, d_fake = _d(real_logits, fake_logits)
    return {"loss_c": loss.detach(), "d_real": d_real, "d_fake": d_fake}


@planted(E, "no detach", **{CS: "detach the fakes"})
def critic_step_no_detach(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    r, f = critic(real), critic(generator(z))
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    return _critic_out(loss, r, f)


@planted(E, "no zero_grad", **{CS: "zero_grad()"})
def critic_step_no_zero_grad(critic, generator, real, z, opt_c, real_label=1.0):
    r, f = critic(real), critic(generator(z).detach())
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    return _critic_out(loss, r, f)


@planted(E, "zero_grad after backward", **{CS: "did not change"})
def critic_step_zero_grad_late(critic, generator, real, z, opt_c, real_label=1.0):
    r, f = critic(real), critic(generator(z).detach())
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.zero_grad()
    opt_c.step()
    return _critic_out(loss, r, f)


@planted(E, "real_label not passed on", **{CS: "real_label is not passed on"})
def critic_step_no_label(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    r, f = critic(real), critic(generator(z).detach())
    loss = critic_loss(r, f)
    loss.backward()
    opt_c.step()
    return _critic_out(loss, r, f)


@planted(E, "logits swapped in the loss", **{CS: "the wrong way round"})
def critic_step_swapped(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    r, f = critic(real), critic(generator(z).detach())
    loss = critic_loss(f, r, real_label)
    loss.backward()
    opt_c.step()
    return _critic_out(loss, r, f)


@planted(E, "steps twice", **{CS: "ran twice"})
def critic_step_twice(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    r, f = critic(real), critic(generator(z).detach())
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    opt_c.step()
    return _critic_out(loss, r, f)


@planted(E, "scores the real images only", **{CS: "only the real images were scored"})
def critic_step_real_only(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    r, f = critic(real), critic(generator(z).detach())
    loss = BCE(r, _full(r, real_label))
    loss.backward()
    opt_c.step()
    return _critic_out(loss, r, f)


@planted(E, "fakes from fresh noise", **{CS: "score real and generator(z).detach()"})
def critic_step_fresh_noise(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    r, f = critic(real), critic(generator(torch.randn_like(z)).detach())
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    return _critic_out(loss, r, f)


@planted(E, "d_real and d_fake swapped", **{CS: "real and fake logits mixed up"})
def critic_step_d_swapped(critic, generator, real, z, opt_c, real_label=1.0):
    out = critic_step(critic, generator, real, z, opt_c, real_label)
    out["d_real"], out["d_fake"] = out["d_fake"], out["d_real"]
    return out


@planted(E, "d_real from the logits", **{CS: "not of the raw logits"})
def critic_step_d_logits(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    r, f = critic(real), critic(generator(z).detach())
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    return {"loss_c": loss.detach(), "d_real": r.detach().mean(), "d_fake": f.detach().mean()}


@planted(E, "d_real as sigmoid of the mean", **{CS: "not the sigmoid of the mean logit"})
def critic_step_d_of_mean(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    r, f = critic(real), critic(generator(z).detach())
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    return {
        "loss_c": loss.detach(),
        "d_real": torch.sigmoid(r.detach().mean()),
        "d_fake": torch.sigmoid(f.detach()).mean(),
    }


@planted(E, ".item() outputs", **{CS: "0-d tensor"})
def critic_step_items(critic, generator, real, z, opt_c, real_label=1.0):
    return {
        k: v.item() for k, v in critic_step(critic, generator, real, z, opt_c, real_label).items()
    }


@planted(E, "loss not detached", **{CS: "still holds the graph"})
def critic_step_graph(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    r, f = critic(real), critic(generator(z).detach())
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    return {"loss_c": loss, **dict(zip(("d_real", "d_fake"), _d(r, f)))}


@planted(E, "loss after the step", **{CS: "before the step"})
def critic_step_loss_after(critic, generator, real, z, opt_c, real_label=1.0):
    out = critic_step(critic, generator, real, z, opt_c, real_label)
    with torch.no_grad():
        out["loss_c"] = critic_loss(critic(real), critic(generator(z)), real_label)
    return out


@planted(E, "smoothing by default", **{CS: "keep the default real_label=1.0"})
def critic_step_default_09(critic, generator, real, z, opt_c, real_label=0.9):
    return critic_step(critic, generator, real, z, opt_c, real_label)


@planted(E, "minimises the negated loss", **{CS: "the critic climbed its loss"})
def critic_step_negated(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    r, f = critic(real), critic(generator(z).detach())
    loss = -critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    return _critic_out(loss, r, f)


@planted(E, "generator left in eval mode", **{CS: "left the generator in eval mode"})
def critic_step_generator_eval(critic, generator, real, z, opt_c, real_label=1.0):
    generator.eval()
    return critic_step(critic, generator, real, z, opt_c, real_label)


@planted(E, "step before backward", **{CS: "in that order"})
def critic_step_step_first(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    r, f = critic(real), critic(generator(z).detach())
    loss = critic_loss(r, f, real_label)
    opt_c.step()
    loss.backward()
    return _critic_out(loss, r, f)


@planted(E, "d_real after the step", **{CS: "(before the step)"})
def critic_step_d_after(critic, generator, real, z, opt_c, real_label=1.0):
    out = critic_step(critic, generator, real, z, opt_c, real_label)
    with torch.no_grad():
        out["d_real"] = torch.sigmoid(critic(real)).mean()
    return out


@planted(E, "scores under no_grad", **{CS: "no graph to backpropagate"})
def critic_step_no_grad(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    with torch.no_grad():
        r, f = critic(real), critic(generator(z))
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    return _critic_out(loss, r, f)


E = "generator_step"
GS = "check_generator_step"


@planted(E, "detached fakes", **{GS: "do not detach"})
def generator_step_detached(critic, generator, z, opt_g):
    opt_g.zero_grad()
    logits = critic(generator(z).detach())
    loss = generator_loss(logits)
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(logits).mean().detach()}


@planted(E, "no zero_grad", **{GS: "zero_grad()"})
def generator_step_no_zero_grad(critic, generator, z, opt_g):
    logits = critic(generator(z))
    loss = generator_loss(logits)
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(logits).mean().detach()}


@planted(E, "the saturating loss", **{GS: "saturating"})
def generator_step_saturating(critic, generator, z, opt_g):
    opt_g.zero_grad()
    logits = critic(generator(z))
    loss = -F.softplus(logits).mean()
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(logits).mean().detach()}


@planted(E, "target 0 inline", **{GS: "target 0 is the critic's"})
def generator_step_target_0(critic, generator, z, opt_g):
    opt_g.zero_grad()
    logits = critic(generator(z))
    loss = BCE(logits, torch.zeros_like(logits))
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(logits).mean().detach()}


@planted(E, "leaves the critic frozen", **{GS: "left the critic frozen"})
def generator_step_freezes(critic, generator, z, opt_g):
    critic.requires_grad_(False)
    return generator_step(critic, generator, z, opt_g)


@planted(E, "steps twice", **{GS: "ran twice"})
def generator_step_twice(critic, generator, z, opt_g):
    opt_g.zero_grad()
    logits = critic(generator(z))
    loss = generator_loss(logits)
    loss.backward()
    opt_g.step()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(logits).mean().detach()}


@planted(E, "zero_grad after backward", **{GS: "did not change"})
def generator_step_zero_grad_late(critic, generator, z, opt_g):
    logits = critic(generator(z))
    loss = generator_loss(logits)
    loss.backward()
    opt_g.zero_grad()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(logits).mean().detach()}


@planted(E, "no d_fake_g", **{GS: "must return a dict with keys"})
def generator_step_no_d(critic, generator, z, opt_g):
    return {"loss_g": generator_step(critic, generator, z, opt_g)["loss_g"]}


@planted(E, ".item() outputs", **{GS: "0-d tensor"})
def generator_step_items(critic, generator, z, opt_g):
    return {k: v.item() for k, v in generator_step(critic, generator, z, opt_g).items()}


@planted(E, "d_fake_g from the logits", **{GS: "not of the raw logits"})
def generator_step_d_logits(critic, generator, z, opt_g):
    opt_g.zero_grad()
    logits = critic(generator(z))
    loss = generator_loss(logits)
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": logits.detach().mean()}


@planted(E, "loss not detached", **{GS: "still holds the graph"})
def generator_step_graph(critic, generator, z, opt_g):
    opt_g.zero_grad()
    logits = critic(generator(z))
    loss = generator_loss(logits)
    loss.backward()
    opt_g.step()
    return {"loss_g": loss, "d_fake_g": torch.sigmoid(logits).mean().detach()}


@planted(E, "minimises the negated loss", **{GS: "the generator climbed its loss"})
def generator_step_negated(critic, generator, z, opt_g):
    opt_g.zero_grad()
    logits = critic(generator(z))
    loss = -generator_loss(logits)
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(logits).mean().detach()}


@planted(E, "critic left in eval mode", **{GS: "left the critic in eval mode"})
def generator_step_critic_eval(critic, generator, z, opt_g):
    critic.eval()
    return generator_step(critic, generator, z, opt_g)


@planted(E, "critic under no_grad", **{GS: "no graph to backpropagate"})
def generator_step_no_grad(critic, generator, z, opt_g):
    opt_g.zero_grad()
    fake = generator(z)
    with torch.no_grad():
        logits = critic(fake)
    loss = generator_loss(logits)
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(logits).mean().detach()}


@planted(E, "fresh noise", **{GS: "the z passed in"})
def generator_step_fresh_noise(critic, generator, z, opt_g):
    return generator_step(critic, generator, torch.randn_like(z), opt_g)


# -- 5.4 a training run ----------------------------------------------------------------------------
E = "history"
TR = "check_training_run"
planted(
    E, "NaN losses", dict(HISTORY, loss_c=[1.0] * 50 + [float("nan")] * 50), **{TR: "became NaN"}
)
planted(E, "frozen losses", dict(HISTORY, loss_g=[0.7] * 100), **{TR: "never changed"})
planted(
    E,
    "the critic cannot tell",
    dict(HISTORY, d_real=HISTORY["d_fake"], d_fake=HISTORY["d_real"]),
    **{TR: ("critic_loss's targets", "critic_step")},
)
planted(
    E,
    "the critic wins outright",
    dict(HISTORY, d_real=[0.99] * 100, d_fake=[0.001] * 100, loss_g=[6.0, 7.0] * 50),
    **{TR: "the critic wins outright"},
)
planted(E, "empty", {k: [] for k in HISTORY}, **{TR: "empty"})
planted(E, "uneven", dict(HISTORY, loss_g=[1.0] * 10), **{TR: "uneven"})
planted(E, "not a history", [1.0, 2.0], **{TR: "pass the history"})

# -- 6.1 lerp, 6.2 slerp, 6.3 latent_grid -------------------------------------------------------------
E = "lerp"
LP = "check_lerp"
planted(E, "swapped", lambda z0, z1, t: lerp(z1, z0, t), **{LP: "swapped"})
planted(E, "no broadcasting", lambda z0, z1, t: (1 - t) * z0 + t * z1, **{LP: "broadcast"})
planted(
    E,
    "a Python loop over t",
    lambda z0, z1, t: (
        lerp(z0, z1, t)
        if not isinstance(t, torch.Tensor)
        else torch.stack([lerp(z0, z1, float(ti)) for ti in t])
    ),
    **{LP: "one value at a time"},
)
planted(
    E,
    "t must be a tensor",
    lambda z0, z1, t: (1 - t.unsqueeze(-1)) * z0 + t.unsqueeze(-1) * z1,
    **{LP: "torch.as_tensor(t) first"},
)
planted(
    E,
    "always 2-D",
    lambda z0, z1, t: lerp(z0, z1, torch.atleast_1d(torch.as_tensor(t))),
    **{LP: "with shape"},
)
planted(E, "eased t", lambda z0, z1, t: lerp(z0, z1, torch.as_tensor(t) ** 2), **{LP: "midpoint"})


def _lerp_squeezed(z0, z1, t):
    t = torch.as_tensor(t, dtype=z0.dtype).view(-1, 1)
    return ((1 - t) * z0 + t * z1).squeeze()


planted(E, "squeezed", _lerp_squeezed, **{LP: "squeeze() drops T too"})


@planted(E, "in place", **{LP: "changed z0 or z1 in place"})
def lerp_in_place(z0, z1, t):
    t = torch.as_tensor(t, dtype=z0.dtype).unsqueeze(-1)
    return z0.mul_(1 - t).add_(t * z1) if t.numel() == 1 else (1 - t) * z0 + t * z1


@planted(E, "t in float64", **{LP: "make t with their dtype"})
def lerp_float64(z0, z1, t):
    t = torch.as_tensor(t, dtype=torch.float64).unsqueeze(-1)
    return (1 - t) * z0 + t * z1


E = "slerp"
SP = "check_slerp"


@planted(E, "the lerp formula", **{SP: "that is lerp"})
def slerp_is_lerp(z0, z1, t, eps=1e-7):
    return lerp(z0, z1, t)


planted(
    E,
    "no fallback",
    lambda z0, z1, t, eps=1e-7: slerp(z0, z1, t, eps=-1.0),
    **{SP: "sin(omega) is 0 there"},
)


def _slerp_formula(z0, z1, t, omega, eps):
    so = torch.sin(omega)
    if so.abs() < eps:
        return lerp(z0, z1, t)
    t = torch.as_tensor(t, dtype=z0.dtype).unsqueeze(-1)
    return torch.sin((1 - t) * omega) / so * z0 + torch.sin(t * omega) / so * z1


@planted(E, "unclamped cosine", **{SP: "clamp it to [-1, 1]"})
def slerp_unclamped(z0, z1, t, eps=1e-7):
    return _slerp_formula(z0, z1, t, torch.arccos(torch.dot(z0, z1) / (z0.norm() * z1.norm())), eps)


@planted(E, "unclamped cosine of unit vectors", **{SP: "clamp it to [-1, 1]"})
def slerp_unclamped_units(z0, z1, t, eps=1e-7):
    return _slerp_formula(z0, z1, t, torch.arccos(torch.dot(z0 / z0.norm(), z1 / z1.norm())), eps)


@planted(E, "dot product not normalised", **{SP: "the dot product of the unit vectors"})
def slerp_raw_dot(z0, z1, t, eps=1e-7):
    return _slerp_formula(z0, z1, t, torch.arccos(torch.dot(z0, z1).clamp(-1, 1)), eps)


@planted(E, "rescaled lerp", **{SP: "keeps the norm but not the speed"})
def slerp_nlerp(z0, z1, t, eps=1e-7):
    path = lerp(z0, z1, t)
    t = torch.as_tensor(t, dtype=z0.dtype).unsqueeze(-1)
    norm = (1 - t) * z0.norm() + t * z1.norm()
    return path / path.norm(dim=-1, keepdim=True) * norm


planted(E, "weights swapped", lambda z0, z1, t, eps=1e-7: slerp(z1, z0, t, eps), **{SP: "swapped"})


@planted(E, "no broadcasting", **{SP: "broadcast"})
def slerp_no_broadcast(z0, z1, t, eps=1e-7):
    omega = torch.arccos((torch.dot(z0, z1) / (z0.norm() * z1.norm())).clamp(-1, 1))
    if torch.sin(omega).abs() < eps:
        return lerp(z0, z1, t)
    return (
        torch.sin((1 - t) * omega) / torch.sin(omega) * z0
        + torch.sin(t * omega) / torch.sin(omega) * z1
    )


planted(E, "ignores eps", lambda z0, z1, t, eps=1e-7: slerp(z0, z1, t), **{SP: "ignores eps"})


@planted(E, "falls back to z0", **{SP: "must fall back to lerp"})
def slerp_fallback_z0(z0, z1, t, eps=1e-7):
    omega = torch.arccos((torch.dot(z0, z1) / (z0.norm() * z1.norm())).clamp(-1, 1))
    if torch.sin(omega).abs() < eps:
        t = torch.as_tensor(t)
        return z0.expand(*t.shape, -1).clone()
    return slerp(z0, z1, t, eps)


planted(
    E,
    "squeezed",
    lambda z0, z1, t, eps=1e-7: slerp(z0, z1, t, eps).squeeze(),
    **{SP: "squeeze() drops T too"},
)


@planted(E, "unit-vector slerp, norms interpolated", **{SP: "weigh z0 and z1 themselves"})
def slerp_unit_rescaled(z0, z1, t, eps=1e-7):
    path = slerp(z0 / z0.norm(), z1 / z1.norm(), t, eps)
    t = torch.as_tensor(t, dtype=z0.dtype).unsqueeze(-1)
    return path * ((1 - t) * z0.norm() + t * z1.norm())


E = "latent_grid"
LG = "check_latent_grid"
lin = torch.linspace


def _grid(z0, z1, z2, a, b):
    return (z0 + a.view(-1, 1, 1) * (z1 - z0) + b.view(1, -1, 1) * (z2 - z0)).reshape(-1, len(z0))


planted(
    E,
    "corners swapped",
    lambda z0, z1, z2, rows, cols: _grid(z0, z2, z1, lin(0, 1, rows), lin(0, 1, cols)),
    **{LG: "z1 is at the top right"},
)
planted(
    E,
    "column-major",
    lambda z0, z1, z2, rows, cols: (
        _grid(z0, z1, z2, lin(0, 1, rows), lin(0, 1, cols))
        .view(rows, cols, -1)
        .transpose(0, 1)
        .reshape(rows * cols, -1)
    ),
    **{LG: "column-major"},
)
planted(
    E,
    "rows and cols swapped",
    lambda z0, z1, z2, rows, cols: _grid(z0, z1, z2, lin(0, 1, cols), lin(0, 1, rows)),
    **{LG: "rows and cols are swapped"},
)
planted(
    E,
    "arange / n",
    lambda z0, z1, z2, rows, cols: _grid(
        z0, z1, z2, torch.arange(rows) / rows, torch.arange(cols) / cols
    ),
    **{LG: "never reaches 1"},
)
planted(
    E,
    "not flattened",
    lambda z0, z1, z2, rows, cols: _grid(z0, z1, z2, lin(0, 1, rows), lin(0, 1, cols)).view(
        rows, cols, -1
    ),
    **{LG: "flatten it"},
)
planted(
    E,
    "directions not relative to z0",
    lambda z0, z1, z2, rows, cols: (
        z0 + lin(0, 1, rows).view(-1, 1, 1) * z1 + lin(0, 1, cols).view(1, -1, 1) * z2
    ).reshape(rows * cols, -1),
    **{LG: "entry (0, 1) is wrong"},
)

planted(
    E,
    "arange / (n - 1)",
    lambda z0, z1, z2, rows, cols: _grid(
        z0, z1, z2, torch.arange(rows) / (rows - 1), torch.arange(cols) / (cols - 1)
    ),
    **{LG: "divides by 0"},
)

# -- 7.1 gradient_penalty ------------------------------------------------------------------------------
E = "gradient_penalty"
GP = "check_gradient_penalty"


def _penalty(
    critic,
    x_hat,
    weight=10.0,
    norm=lambda g: g.flatten(1).norm(dim=1),
    create_graph=True,
    reduce=lambda d: (d**2).mean(),
):
    x_hat = x_hat.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=create_graph)
    return weight * reduce(norm(grad) - 1)


def _eps(real):
    return torch.rand(real.size(0), 1, 1, 1)


def _mix(real, fake, eps):
    return eps * real + (1 - eps) * fake


planted(
    E,
    "norm over the batch",
    lambda c, r, f, weight=10.0: _penalty(c, _mix(r, f, _eps(r)), weight, norm=lambda g: g.norm()),
    **{GP: "over the whole batch"},
)
planted(
    E,
    "squared norm",
    lambda c, r, f, weight=10.0: _penalty(
        c, _mix(r, f, _eps(r)), weight, norm=lambda g: g.flatten(1).pow(2).sum(1)
    ),
    **{GP: "squared norm"},
)
planted(
    E,
    "no weight",
    lambda c, r, f, weight=10.0: _penalty(c, _mix(r, f, _eps(r)), 1.0),
    **{GP: "the weight (lambda) is missing"},
)
planted(
    E,
    "no create_graph",
    lambda c, r, f, weight=10.0: _penalty(c, _mix(r, f, _eps(r)), weight, create_graph=False),
    **{GP: "create_graph=True"},
)
planted(
    E,
    "at the real images",
    lambda c, r, f, weight=10.0: _penalty(c, r, weight),
    **{GP: "taken at the real images"},
)
planted(
    E,
    "at the fake images",
    lambda c, r, f, weight=10.0: _penalty(c, f, weight),
    **{GP: "taken at the fake images"},
)
planted(
    E,
    "one eps for the batch",
    lambda c, r, f, weight=10.0: _penalty(c, _mix(r, f, torch.rand(1)), weight),
    **{GP: "the same eps"},
)
planted(
    E,
    "eps per pixel",
    lambda c, r, f, weight=10.0: _penalty(c, _mix(r, f, torch.rand_like(r)), weight),
    **{GP: "one eps per sample"},
)
planted(
    E,
    "Gaussian eps",
    lambda c, r, f, weight=10.0: _penalty(c, _mix(r, f, torch.randn(r.size(0), 1, 1, 1)), weight),
    **{GP: "torch.rand"},
)
planted(
    E,
    "eps fixed at 0.5",
    lambda c, r, f, weight=10.0: _penalty(c, _mix(r, f, 0.5), weight),
    **{GP: "the same eps"},
)
planted(
    E,
    "one-sided",
    lambda c, r, f, weight=10.0: _penalty(
        c, _mix(r, f, _eps(r)), weight, reduce=lambda d: (F.relu(d) ** 2).mean()
    ),
    **{GP: "two-sided"},
)
planted(
    E,
    "mean of the norms",
    lambda c, r, f, weight=10.0: _penalty(
        c, _mix(r, f, _eps(r)), weight, reduce=lambda d: d.mean() ** 2
    ),
    **{GP: "the mean of the norms"},
)
planted(
    E,
    "norm over dim 1",
    lambda c, r, f, weight=10.0: _penalty(
        c, _mix(r, f, _eps(r)), weight, norm=lambda g: g.norm(dim=1)
    ),
    **{GP: "flatten it first"},
)
planted(
    E,
    "weight hard-coded",
    lambda c, r, f, weight=10.0: _penalty(c, _mix(r, f, _eps(r)), 10.0),
    **{GP: "weight argument"},
)
planted(
    E,
    "sum over the batch",
    lambda c, r, f, weight=10.0: _penalty(
        c, _mix(r, f, _eps(r)), weight, reduce=lambda d: (d**2).sum()
    ),
    **{GP: "sum over the batch"},
)
planted(
    E,
    "distance not squared",
    lambda c, r, f, weight=10.0: _penalty(
        c, _mix(r, f, _eps(r)), weight, reduce=lambda d: d.abs().mean()
    ),
    **{GP: "square the distance"},
)


def _penalty_of(reduce, use_backward=False):
    """A penalty that differentiates ``critic(x_hat).reduce()`` (None: the scores themselves),
    with ``backward()`` and ``x_hat.grad`` if ``use_backward``."""

    def penalty(critic, real, fake, weight=10.0):
        x_hat = _mix(real, fake, _eps(real)).requires_grad_(True)
        out = critic(x_hat)
        out = getattr(out, reduce)() if reduce else out
        if use_backward:
            out.backward(create_graph=True)
            grad = x_hat.grad
        else:
            (grad,) = torch.autograd.grad(out, x_hat, create_graph=True)
        return weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    return penalty


planted(E, "gradient of the mean score", _penalty_of("mean"), **{GP: "critic(x_hat).mean()"})
planted(E, "scores not summed", _penalty_of(None), **{GP: "one score per sample"})
planted(
    E,
    "backward() and x_hat.grad",
    _penalty_of("sum", use_backward=True),
    **{GP: "left gradients in the critic's weights"},
)
planted(
    E,
    "L1 norm",
    lambda c, r, f, weight=10.0: _penalty(
        c, _mix(r, f, _eps(r)), weight, norm=lambda g: g.flatten(1).abs().sum(1)
    ),
    **{GP: "the L1 norm"},
)


# Correct variants a student may well write: every check must pass them.
class AttributeCritic(nn.Module):
    """Layers as attributes, registered in another order than they run, one LeakyReLU shared."""

    def __init__(self, channels=1, image_size=28, ndf=64, dropout=0.0):
        super().__init__()
        n_blocks, base = models.dcgan_schedule(image_size)
        self.final = nn.Conv2d(ndf * 2 ** (n_blocks - 1), 1, base)
        self.convs = nn.ModuleList(
            nn.Conv2d(channels if i == 0 else ndf * 2 ** (i - 1), ndf * 2**i, 4, 2, 1)
            for i in range(n_blocks)
        )
        self.norms = nn.ModuleList(nn.BatchNorm2d(ndf * 2**i) for i in range(1, n_blocks))
        self.act = nn.LeakyReLU(0.2)
        self.drop = nn.Dropout2d(dropout) if dropout > 0 else None
        self.apply(init_dcgan_weights)

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = conv(x)
            x = self.act(self.norms[i - 1](x) if i > 0 else x)
            x = self.drop(x) if self.drop is not None else x
        return self.final(x).flatten()


def _slerp_unit(z0, z1, t, eps=1e-7):
    u0, u1 = z0 / z0.norm(), z1 / z1.norm()
    omega = torch.acos(torch.clamp(u0 @ u1, -1.0, 1.0))
    if torch.sin(omega) < eps:
        return lerp(z0, z1, t)
    t = torch.as_tensor(t, dtype=z0.dtype)[..., None]
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def _grid_loops(z0, z1, z2, rows, cols):
    a, b = torch.linspace(0, 1, rows), torch.linspace(0, 1, cols)
    return torch.stack(
        [z0 + a[i] * (z1 - z0) + b[j] * (z2 - z0) for i in range(rows) for j in range(cols)]
    )


def _penalty_ones(critic, real, fake, weight=10.0):
    eps = torch.rand(real.size(0), 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out, x_hat, grad_outputs=torch.ones_like(out), create_graph=True)
    return weight * ((grad.view(grad.size(0), -1).norm(2, dim=1) - 1) ** 2).mean()


def _freeze_and_restore(critic, generator, z, opt_g):
    critic.requires_grad_(False)
    try:
        return generator_step(critic, generator, z, opt_g)
    finally:
        critic.requires_grad_(True)


def _init_data(m):
    if isinstance(m, CONVS + (nn.Linear,)):
        m.weight.data.normal_(0.0, 0.02)
        if m.bias is not None:
            m.bias.data.zero_()
    elif isinstance(m, nn.BatchNorm2d):
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


def _init_assigned(m):
    """``.data =`` keeps the Parameter itself: only its values change."""
    if isinstance(m, CONVS + (nn.Linear,)):
        m.weight.data = torch.randn_like(m.weight) * 0.02
        if m.bias is not None:
            m.bias.data = torch.zeros_like(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        m.weight.data = 1 + torch.randn_like(m.weight) * 0.02
        m.bias.data = torch.zeros_like(m.bias)


def _grid_meshgrid(z0, z1, z2, rows, cols):
    a, b = torch.meshgrid(torch.linspace(0, 1, rows), torch.linspace(0, 1, cols), indexing="ij")
    return (z0 + a[..., None] * (z1 - z0) + b[..., None] * (z2 - z0)).reshape(rows * cols, -1)


def _penalty_sqrt(critic, real, fake, weight=10.0):
    eps = torch.rand(real.size(0), 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return weight * ((torch.sqrt((grad.flatten(1) ** 2).sum(1) + 1e-12) - 1) ** 2).mean()


def _critic_step_no_grad_fakes(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    with torch.no_grad():
        fake = generator(z)
    r, f = critic(real), critic(fake)
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    return _critic_out(loss, r, f)


CORRECT = [
    ("Generator", DetachedZGenerator),
    ("Critic", AttributeCritic),
    ("lerp", lambda z0, z1, t: z0 + torch.as_tensor(t).unsqueeze(-1) * (z1 - z0)),
    ("slerp", _slerp_unit),
    ("latent_grid", _grid_loops),
    ("to_display", lambda x: torch.clamp(x * 0.5 + 0.5, 0, 1)),
    ("make_transform", lambda: T.Compose([T.ToTensor(), T.Lambda(lambda x: x * 2 - 1)])),
    ("conv_out_size", lambda n, k, s=1, p=0: math.floor((n + 2 * p - k) / s) + 1),
    ("count_parameters", lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)),
    ("init_dcgan_weights", _init_data),
    (
        "critic_loss",
        lambda r, f, real_label=1.0: (F.softplus(r) - real_label * r).mean() + F.softplus(f).mean(),
    ),
    ("generator_loss", lambda f: F.softplus(-f).mean()),
    (
        "make_optimizers",
        lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: list(
            make_optimizers(c, g, lr, betas, **kw)
        ),
    ),
    ("generator_step", _freeze_and_restore),
    ("gradient_penalty", _penalty_ones),
    ("to_display", lambda x: x.clone().add_(1).div_(2).clamp_(0, 1)),
    ("init_dcgan_weights", _init_assigned),
    ("lerp", lambda z0, z1, t: torch.lerp(z0, z1, torch.as_tensor(t, dtype=z0.dtype)[..., None])),
    ("latent_grid", _grid_meshgrid),
    ("gradient_penalty", _penalty_sqrt),
    ("critic_step", _critic_step_no_grad_fakes),
]


# -- a third round: mistakes and correct variants found by trying the exercises another way ------
class TanhCritic(Critic):
    def forward(self, x):
        return torch.tanh(super().forward(x))


planted("Critic", "tanh on the logits", TanhCritic, **{OUT: "squashes the logits"})


class FunctionalLeakyCritic(Critic):
    """LeakyReLU as F.leaky_relu in forward: self.net holds no activation layers."""

    def __init__(self, channels=1, image_size=28, ndf=64, dropout=0.0):
        super().__init__(channels, image_size, ndf, dropout)
        self.net = nn.Sequential(*[m for m in self.net if not isinstance(m, nn.LeakyReLU)])

    def forward(self, x):
        for m in self.net[:-1]:
            x = m(x)
            first = isinstance(m, nn.Conv2d) and m.in_channels == self.channels
            if isinstance(m, nn.BatchNorm2d) or first:
                x = F.leaky_relu(x, 0.2)
        return self.net[-1](x).view(-1)


planted("Critic", "F.leaky_relu in forward", FunctionalLeakyCritic, **{ARCH: "F.leaky_relu call"})


class FunctionalTanhGenerator(Generator):
    def __init__(self, nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
        super().__init__(nz, channels, image_size, ngf, upsample)
        self.net = self.net[:-1]

    def forward(self, z):
        return torch.tanh(super().forward(z))


planted(
    "Generator", "torch.tanh in forward", FunctionalTanhGenerator, **{GARCH: "no nn.Tanh layer"}
)


@planted(
    "upsample_block", "NotImplementedError for unknown modes", **{UP: "raised NotImplementedError"}
)
def not_implemented_mode(i, o, mode="transposed"):
    if mode not in ("transposed", "nearest"):
        raise NotImplementedError(mode)
    return upsample_block(i, o, mode)


planted(
    "critic_loss",
    "logits clamped in place",
    lambda r, f, real_label=1.0: critic_loss(r.clamp_(-10, 10), f, real_label),
    **{CL: ("a leaf Variable that requires grad", "do not change the logits in place")},
)
planted(
    "critic_loss",
    "fake targets smoothed to 0.1",
    lambda r, f, real_label=1.0: BCE(r, _full(r, real_label)) + BCE(f, _full(f, 0.1)),
    **{CL: "label smoothing is one-sided"},
)
planted(
    "generator_loss",
    "smoothed target 0.9",
    lambda f: BCE(f, _full(f, 0.9)),
    **{GL: "the generator's target is exactly 1"},
)


@planted("critic_step", "detaches the fake logits", **{CS: "never the critic's logits"})
def critic_step_detached_logits(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    r, f = critic(real), critic(generator(z)).detach()
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    return _critic_out(loss, r, f)


planted(
    "make_transform",
    "PILToTensor, .float(), Normalize",
    lambda: T.Compose(
        [T.PILToTensor(), T.Lambda(lambda x: x.float()), T.Normalize((0.5,), (0.5,))]
    ),
    check_transform="not scaled from 0..255",
)


@planted("slerp", "fallback for parallel vectors only", **{SP: "opposite vectors"})
def slerp_parallel_only(z0, z1, t, eps=1e-7):
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    if cos > 1 - eps:
        return lerp(z0, z1, t)
    return _slerp_formula(z0, z1, t, torch.arccos(cos.clamp(-1, 1)), -1.0)


@planted("slerp", "fallback when omega < eps", **{SP: "opposite vectors"})
def slerp_omega_below_eps(z0, z1, t, eps=1e-7):
    omega = torch.arccos((torch.dot(z0, z1) / (z0.norm() * z1.norm())).clamp(-1, 1))
    if omega < eps:
        return lerp(z0, z1, t)
    return _slerp_formula(z0, z1, t, omega, -1.0)


planted(
    "latent_grid",
    "numpy's float64 linspace",
    lambda z0, z1, z2, rows, cols: _grid(
        z0,
        z1,
        z2,
        torch.from_numpy(np.linspace(0, 1, rows)),
        torch.from_numpy(np.linspace(0, 1, cols)),
    ),
    **{LG: "not numpy's float64 linspace"},
)


def _lerp_numpy(z0, z1, t):
    t = torch.as_tensor(np.asarray(t), dtype=z0.dtype)
    return (1 - t)[..., None] * z0 + t[..., None] * z1


def _lerp_np_array(z0, z1, t):
    t = torch.from_numpy(np.array(t, dtype=np.float32)).unsqueeze(-1)
    return (1 - t) * z0 + t * z1


def _lerp_einsum(z0, z1, t):
    t = torch.as_tensor(t, dtype=z0.dtype)
    if t.dim() == 0:
        return (1 - t) * z0 + t * z1
    return torch.einsum("t,n->tn", 1 - t, z0) + torch.einsum("t,n->tn", t, z1)


def _lerp_outer(z0, z1, t):
    if isinstance(t, float):
        return (1 - t) * z0 + t * z1
    return torch.outer(1 - t, z0) + torch.outer(t, z1)


def _grid_cartesian(z0, z1, z2, rows, cols):
    ab = torch.cartesian_prod(torch.linspace(0, 1, rows), torch.linspace(0, 1, cols)).view(-1, 2)
    return z0 + ab[:, :1] * (z1 - z0) + ab[:, 1:] * (z2 - z0)


class OrderedDictCritic(nn.Module):
    """Named layers in an OrderedDict, keyword arguments, biases everywhere, inplace=False."""

    def __init__(self, channels=1, image_size=28, ndf=64, dropout=0.0):
        super().__init__()
        n_blocks, base = models.dcgan_schedule(image_size)
        layers, ch = OrderedDict(), channels
        for i in range(n_blocks):
            out = ndf * 2**i
            layers[f"conv{i}"] = nn.Conv2d(ch, out, kernel_size=4, stride=2, padding=1)
            if i:
                layers[f"bn{i}"] = nn.BatchNorm2d(out)
            layers[f"act{i}"] = nn.LeakyReLU(negative_slope=0.2, inplace=False)
            if dropout > 0:
                layers[f"drop{i}"] = nn.Dropout2d(p=dropout)
            ch = out
        layers["logit"] = nn.Conv2d(ch, 1, kernel_size=(base, base))
        self.net = nn.Sequential(layers)
        self.apply(init_dcgan_weights)

    def forward(self, x):
        return self.net(x).flatten()


class BlocksGenerator(nn.Module):
    """A projection Sequential and a ModuleList of blocks; z[:, :, None, None]."""

    def __init__(self, nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
        super().__init__()
        self.nz = nz
        n_blocks, base = models.dcgan_schedule(image_size)
        ch = ngf * 2 ** (n_blocks - 1)
        self.project = nn.Sequential(
            nn.ConvTranspose2d(nz, ch, base, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(False)
        )
        self.blocks = nn.ModuleList()
        for i in range(n_blocks):
            last = i == n_blocks - 1
            out = channels if last else ch // 2
            after = [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU()]
            self.blocks.append(nn.Sequential(upsample_block(ch, out, mode=upsample), *after))
            ch = out
        self.apply(init_dcgan_weights)

    def forward(self, z):
        x = self.project(z[:, :, None, None])
        for block in self.blocks:
            x = block(x)
        return x


def _upsample_same(i, o, mode="transposed"):
    if mode == "nearest":
        return nn.Sequential(
            nn.Upsample(scale_factor=2.0), nn.Conv2d(i, o, 3, padding="same", bias=False)
        )
    return upsample_block(i, o, mode)


def _init_trunc_normal(m):
    if isinstance(m, CONVS + (nn.Linear,)):
        nn.init.trunc_normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.0)
    elif isinstance(m, nn.modules.batchnorm._BatchNorm):
        nn.init.normal_(m.weight, mean=1.0, std=0.02)
        nn.init.constant_(m.bias, 0)


def _critic_step_module_zero_grad(critic, generator, real, z, opt_c, real_label=1.0):
    critic.zero_grad()
    r, f = critic(real), critic(generator(z).detach())
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    return _critic_out(loss, r, f)


CORRECT += [
    ("lerp", _lerp_numpy),
    ("lerp", _lerp_np_array),
    ("lerp", _lerp_einsum),
    ("lerp", _lerp_outer),
    ("latent_grid", _grid_cartesian),
    ("Critic", OrderedDictCritic),
    ("Generator", BlocksGenerator),
    ("upsample_block", _upsample_same),
    ("init_dcgan_weights", _init_trunc_normal),
    ("critic_step", _critic_step_module_zero_grad),
    ("generator_loss", lambda f: -F.logsigmoid(f).mean()),
    (
        "critic_loss",
        lambda r, f, real_label=1.0: (
            nn.BCEWithLogitsLoss()(r, torch.ones_like(r) * real_label)
            + nn.BCEWithLogitsLoss()(f, torch.zeros_like(f))
        ),
    ),
    (
        "make_transform",
        lambda: v2.Compose(
            [
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize([0.5], [0.5]),
            ]
        ),
    ),
    ("make_transform", lambda: T.Compose([T.ToTensor(), T.Normalize(0.5, 0.5)])),
    (
        "make_optimizers",
        lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: (
            ADAM(c.parameters(), lr, list(betas), **kw),
            ADAM(g.parameters(), lr, list(betas), **kw),
        ),
    ),
]


# -- a fourth round: the exercises written in notebook cells, tried another way -------------------
E = "count_parameters"
planted(
    E,
    "np.sum of the numels",
    lambda m: np.sum([p.numel() for p in m.parameters() if p.requires_grad]),
    check_count_parameters="np.sum of an empty list",
)
planted(
    E,
    "named_parameters() pairs",
    lambda m: sum(p.numel() for p in m.named_parameters()),
    check_count_parameters="(name, parameter) pairs",
)
planted(
    E,
    "len of each tensor",
    lambda m: sum(len(p) for p in m.parameters() if p.requires_grad),
    check_count_parameters="len(p) is a tensor's first dimension",
)
planted(
    E,
    "those with a .grad",
    lambda m: sum(p.numel() for p in m.parameters() if p.grad is not None),
    check_count_parameters="keep the parameters with requires_grad",
)
planted(
    E,
    "state_dict(keep_vars=True) counts a shared weight twice",
    lambda m: sum(v.numel() for v in m.state_dict(keep_vars=True).values() if v.requires_grad),
    check_count_parameters="counted twice",
)
planted(
    E,
    "each module's own parameters count a shared weight twice",
    lambda m: sum(
        p.numel() for x in m.modules() for p in x.parameters(recurse=False) if p.requires_grad
    ),
    check_count_parameters="counted twice",
)

E = "to_display"
planted(
    E, ".float() at the end", lambda x: ((x + 1) / 2).clamp(0, 1).float(), check_scaling="float64"
)
planted(
    E,
    "a new tensor from a list",
    lambda x: torch.tensor(((x + 1) / 2).clamp(0, 1).tolist()),
    check_scaling="changed the dtype",
)
planted(E, "half precision", lambda x: ((x + 1) / 2).clamp(0, 1).half(), check_scaling="float16")
planted(
    E,
    "adds a batch dimension",
    lambda x: ((x if x.dim() == 4 else x.unsqueeze(0)) + 1).div(2).clamp(0, 1),
    check_scaling="any shape",
)
planted(E, "clamps below only", lambda x: ((x + 1) / 2).clamp(min=0), check_scaling="clamp")
planted(
    E,
    "in place on a detached alias",
    lambda x: x.detach().add_(1).div_(2).clamp_(0, 1),
    check_scaling="changed the images passed in",
)

E = "conv_out_size"
planted(
    E,
    "only the kernel divided",
    lambda n, k, s=1, p=0: n + 2 * p - k // s + 1,
    check_conv_out_size="// binds tighter",
)
planted(
    E,
    "torch.div with rounding_mode",
    lambda n, k, s=1, p=0: torch.div(torch.tensor(n + 2 * p - k), s, rounding_mode="floor") + 1,
    check_conv_out_size="return an int: use //",
)

E = "deconv_out_size"
planted(
    E,
    "n - 1 * stride",
    lambda n, k, s=1, p=0: n - 1 * s - 2 * p + k,
    check_deconv_out_size="* binds tighter than -",
)
planted(
    E,
    "returns a float",
    lambda n, k, s=1, p=0: float((n - 1) * s - 2 * p + k),
    check_deconv_out_size="return an int",
)

E = "saturating_generator_loss"
planted(
    E,
    "eps inside the log",
    lambda f: torch.log(1 - torch.sigmoid(f) + 1e-8).mean(),
    **{SL: "an eps inside the log"},
)
planted(
    E,
    "log of a clamped sigmoid",
    lambda f: torch.log((1 - torch.sigmoid(f)).clamp(min=1e-12)).mean(),
    **{SL: "sigmoid saturates"},
)
planted(E, "log1p(exp(l))", lambda f: -torch.log1p(torch.exp(f)).mean(), **{SL: "overflows"})
planted(
    E, "log(sigmoid(-l))", lambda f: torch.log(torch.sigmoid(-f)).mean(), **{SL: "log() breaks"}
)
planted(
    E,
    "BCELoss on the sigmoid",
    lambda f: -F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f)),
    **{SL: "BCELoss clamps it"},
)
planted(E, "detached", lambda f: -F.softplus(f).mean().detach(), **{SL: "without a graph"})
planted(
    E,
    "a new tensor from .item()",
    lambda f: torch.tensor(-F.softplus(f).mean().item()),
    **{SL: "without a graph"},
)
planted(E, "mean with keepdim", lambda f: -F.softplus(f).mean(0, keepdim=True), **{SL: "a scalar"})

E = "history"
planted(
    E,
    "a tensor of D(x) per step",
    dict(HISTORY, d_real=[torch.full((4,), 0.6)] * 100),
    **{TR: "not one number per step"},
)
planted(E, "None for the missing steps", dict(HISTORY, loss_g=[None] * 100), **{TR: "one number"})

E = "gradient_penalty"


def _penalty_on(make_x_hat, norm=lambda g: g.flatten(1).norm(dim=1), reduce=None, wrt=None):
    """A penalty on the point ``make_x_hat(real, fake, eps)``; the gradient is taken with respect
    to it, or to ``wrt(real, fake)`` (a leaf ``make_x_hat`` is built from)."""

    def penalty(critic, real, fake, weight=10.0):
        eps = torch.rand(real.size(0), 1, 1, 1)
        leaf = wrt(real, fake) if wrt else None
        if leaf is not None:
            real, fake = leaf
        x_hat = make_x_hat(real, fake, eps)
        inputs = [t for t in (real, fake) if t.requires_grad] if leaf else [x_hat]
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), inputs, create_graph=True)
        d = norm(grad) - 1
        return reduce(d, weight) if reduce else weight * (d**2).mean()

    return penalty


def _leaf_mix(real, fake, eps):
    return (eps * real + (1 - eps) * fake).requires_grad_(True)


planted(
    E,
    "eps * real + eps * fake",
    _penalty_on(lambda r, f, e: (e * r + e * f).requires_grad_(True)),
    **{GP: "must add up to 1"},
)
planted(
    E,
    "distance neither squared nor absolute",
    _penalty_on(_leaf_mix, reduce=lambda d, w: w * d.mean()),
    **{GP: "not ||grad|| - 1"},
)
planted(
    E,
    "root mean square over the pixels",
    _penalty_on(_leaf_mix, norm=lambda g: g.flatten(1).pow(2).mean(1).sqrt()),
    **{GP: "root mean square"},
)
planted(
    E,
    "mean |grad| over the pixels",
    _penalty_on(_leaf_mix, norm=lambda g: g.flatten(1).abs().mean(1)),
    **{GP: "mean of |grad| over the pixels"},
)
planted(
    E,
    "norm over height and width only",
    _penalty_on(_leaf_mix, norm=lambda g: g.norm(dim=(2, 3))),
    **{GP: "each channel's pixels"},
)
planted(
    E,
    "one eps per channel",
    _penalty_on(
        lambda r, f, e: _leaf_mix(r, f, torch.rand(r.size(0), r.size(1), 1, 1)),
    ),
    **{GP: "per channel"},
)
planted(
    E,
    "x_hat detached, no requires_grad",
    _penalty_on(lambda r, f, e: (e * r + (1 - e) * f).detach()),
    **{GP: "x_hat needs requires_grad_(True)"},
)
planted(
    E,
    "eps of shape (B,)",
    _penalty_on(lambda r, f, e: _leaf_mix(r, f, e.view(-1))),
    **{GP: "eps must broadcast over the images"},
)
planted(
    E,
    "weight inside the square",
    _penalty_on(_leaf_mix, reduce=lambda d, w: ((w * d) ** 2).mean()),
    **{GP: "the weight is squared"},
)
planted(
    E,
    "gradient with respect to real",
    _penalty_on(
        lambda r, f, e: e * r + (1 - e) * f,
        wrt=lambda r, f: (r.clone().requires_grad_(True), f),
    ),
    **{GP: "with respect to real"},
)
planted(
    E,
    "gradient with respect to fake",
    _penalty_on(
        lambda r, f, e: e * r + (1 - e) * f,
        wrt=lambda r, f: (r, f.clone().requires_grad_(True)),
    ),
    **{GP: "with respect to fake"},
)


def _penalty_grad_outputs(critic, real, fake, weight=10.0):
    eps = torch.rand_like(real[:, :1, :1, :1]).expand_as(real)
    x_hat = torch.lerp(fake, real, eps).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(
        outputs=scores,
        inputs=x_hat,
        grad_outputs=torch.ones(scores.size()),
        create_graph=True,
        retain_graph=True,
        only_inputs=True,
    )
    return weight * ((torch.linalg.vector_norm(grad, dim=(1, 2, 3)) - 1) ** 2).mean()


CORRECT += [
    (
        "count_parameters",
        lambda m: sum(np.prod(p.shape) for p in m.parameters() if p.requires_grad),
    ),
    (
        "count_parameters",
        lambda m: sum(math.prod(p.size()) for p in m.parameters() if p.requires_grad),
    ),
    (
        "count_parameters",
        lambda m: sum(p.nelement() for _, p in m.named_parameters() if p.requires_grad),
    ),
    ("to_display", lambda x: ((x.detach() + 1) / 2).clip(0.0, 1.0)),
    ("to_display", lambda x: torch.clamp(x.add(1).div(2), min=0.0, max=1.0)),
    ("conv_out_size", lambda n, k, s=1, p=0: int((n + 2 * p - k) / s) + 1),
    ("deconv_out_size", lambda n, k, s=1, p=0: n * s - s - 2 * p + k),
    ("saturating_generator_loss", lambda f: F.logsigmoid(-f).mean()),
    (
        "saturating_generator_loss",
        lambda f: -F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)),
    ),
    ("saturating_generator_loss", lambda f: -torch.logaddexp(torch.zeros_like(f), f).mean()),
    (
        "saturating_generator_loss",
        lambda f: -(f.clamp(min=0) + torch.log1p(torch.exp(-f.abs()))).sum() / len(f),
    ),
    ("gradient_penalty", _penalty_on(lambda r, f, e: _leaf_mix(r, f, 1 - e))),
    ("gradient_penalty", _penalty_on(lambda r, f, e: (r + e * (f - r)).requires_grad_(True))),
    ("gradient_penalty", _penalty_grad_outputs),
]


@planted(E, "x_hat made in place in real", **{GP: "changed real or fake in place"})
def _penalty_in_place(critic, real, fake, weight=10.0):
    eps = torch.rand(real.size(0), 1, 1, 1)
    x_hat = real.mul_(eps).add_((1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


@planted(E, "the critic scores under no_grad", **{GP: "not under torch.no_grad()"})
def _penalty_no_grad(critic, real, fake, weight=10.0):
    x_hat = _leaf_mix(real, fake, torch.rand(real.size(0), 1, 1, 1))
    with torch.no_grad():
        scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


planted(
    E,
    "a new tensor from .item()",
    lambda c, r, f, weight=10.0: torch.tensor(_penalty_on(_leaf_mix)(c, r, f, weight).item()),
    **{GP: "no .item()"},
)


# -- a fifth round: DCGAN's rules, the steps' BatchNorm and modes, targets on the logits' dtype ----
@planted("init_dcgan_weights", "std 0.2", check_init="ten times too large")
def init_std_02(m):
    init_dcgan_weights(m)
    if isinstance(m, CONVS + (nn.Linear,)):
        nn.init.normal_(m.weight, 0.0, 0.2)


@planted("init_dcgan_weights", "BatchNorm scales zeroed", check_init="BatchNorm2d scales are all 0")
def init_bn_zeroed(m):
    init_dcgan_weights(m)
    if isinstance(m, nn.BatchNorm2d):
        nn.init.zeros_(m.weight)


E = "Critic"


@critic_variant("LeakyReLU slope 0.02", **{ARCH: "slope [0.02]"})
def slope_002(net, c):
    return _replace(net, lambda m: isinstance(m, nn.LeakyReLU), lambda m: nn.LeakyReLU(0.02))


@critic_variant("ReLU in the last block", **{ARCH: "ReLU() where LeakyReLU(0.2) belongs"})
def relu_last_block(net, c):
    layers = list(net)
    last = max(i for i, m in enumerate(layers) if isinstance(m, nn.LeakyReLU))
    layers[last] = nn.ReLU()
    return nn.Sequential(*layers)


class LogSigmoidCritic(Critic):
    def forward(self, x):
        return torch.log(torch.sigmoid(super().forward(x)))


planted(E, "log of sigmoid on the logits", LogSigmoidCritic, **{OUT: "log D(x)"})


class NoAffineCritic(Critic):
    """BatchNorm2d(affine=False): no scale or shift, so init_dcgan_weights has none to draw."""

    def __init__(self, channels=1, image_size=28, ndf=64, dropout=0.0):
        nn.Module.__init__(self)
        self.channels, self.image_size = channels, image_size
        n_blocks, base = models.dcgan_schedule(image_size)
        layers, ch = [], channels
        for i in range(n_blocks):
            out = ndf * 2**i
            layers += [nn.Conv2d(ch, out, 4, 2, 1, bias=False)]
            layers += [nn.BatchNorm2d(out, affine=False)] if i else []
            layers += [nn.LeakyReLU(0.2)] + ([nn.Dropout2d(dropout)] if dropout > 0 else [])
            ch = out
        self.net = nn.Sequential(*layers, nn.Conv2d(ch, 1, base))
        self.apply(init_dcgan_weights)


planted(
    E,
    "BatchNorm without affine",
    NoAffineCritic,
    **{ARCH: "keep the default affine=True", OUT: "keep the default affine=True"},
)


class AlwaysDropoutCritic(Critic):
    """Not a mistake: Dropout2d(0) in every block changes nothing (the rate is the argument)."""

    def __init__(self, channels=1, image_size=28, ndf=64, dropout=0.0):
        super().__init__(channels, image_size, ndf, 0.0)
        layers = []
        for m in self.net:
            layers.append(m)
            if isinstance(m, nn.LeakyReLU):
                layers.append(nn.Dropout2d(dropout))
        self.net = nn.Sequential(*layers)


E = "Generator"


class SigmoidRescaledGenerator(Generator):
    def __init__(self, nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
        super().__init__(nz, channels, image_size, ngf, upsample)
        self.net = nn.Sequential(*list(self.net)[:-1], nn.Sigmoid())

    def forward(self, z):
        return super().forward(z) * 2 - 1


class ClampGenerator(Generator):
    def __init__(self, nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
        super().__init__(nz, channels, image_size, ngf, upsample)
        self.net = self.net[:-1]

    def forward(self, z):
        return super().forward(z).clamp(-1, 1)


class NoGradGenerator(Generator):
    def forward(self, z):
        with torch.no_grad():
            return super().forward(z)


class ClampAfterTanhGenerator(Generator):
    """Not a mistake: the tanh is within [-1, 1] already, the clamp changes nothing."""

    def forward(self, z):
        return super().forward(z).clamp(-1, 1)


planted(
    E,
    "2 * sigmoid - 1",
    SigmoidRescaledGenerator,
    **{GOUT: "on a sigmoid", GARCH: "where its nn.Sigmoid is"},
)
planted(
    E,
    "a clamp instead of the tanh",
    ClampGenerator,
    **{GOUT: "a clamp's gradient is 0", GARCH: "no nn.Tanh layer"},
)
planted(E, "forward under no_grad", NoGradGenerator, **{GOUT: "does not require grad"})

planted(
    "critic_loss",
    "targets from torch.ones(n)",
    lambda r, f, real_label=1.0: (
        BCE(r, torch.ones(len(r)) * real_label) + BCE(f, torch.zeros(len(f)))
    ),
    **{CL: "on float64 logits returned a torch.float32 loss"},
)
planted(
    "generator_loss",
    "target from torch.ones(n)",
    lambda f: BCE(f, torch.ones(f.size(0))),
    **{GL: "on float64 logits returned a torch.float32 loss"},
)

E = "critic_step"


@planted(E, "real and fake scored in one call", **{CS: "in one call (torch.cat)"})
def critic_step_one_call(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    logits = critic(torch.cat([real, generator(z).detach()]))
    r, f = logits[: len(real)], logits[len(real) :]
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    return _critic_out(loss, r, f)


@planted(E, "fakes made in eval mode, mode restored", **{CS: "generator in eval mode"})
def critic_step_eval_fakes(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    generator.eval()
    with torch.no_grad():
        fake = generator(z)
    generator.train()
    r, f = critic(real), critic(fake)
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    return _critic_out(loss, r, f)


@planted(E, "generator frozen and left frozen", **{CS: "left the generator frozen"})
def critic_step_freezes_generator(critic, generator, real, z, opt_c, real_label=1.0):
    generator.requires_grad_(False)
    return critic_step(critic, generator, real, z, opt_c, real_label)


@planted(E, "zero_grad at the end", **{CS: "call opt_c.zero_grad() before backward"})
def critic_step_zero_grad_at_end(critic, generator, real, z, opt_c, real_label=1.0):
    r, f = critic(real), critic(generator(z).detach())
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    opt_c.zero_grad()
    return _critic_out(loss, r, f)


@planted(E, "d_real as the accuracy", **{CS: "not the fraction of logits above 0"})
def critic_step_accuracy(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    r, f = critic(real), critic(generator(z).detach())
    loss = critic_loss(r, f, real_label)
    loss.backward()
    opt_c.step()
    r, f = r.detach(), f.detach()
    return {
        "loss_c": loss.detach(),
        "d_real": (r > 0).float().mean(),
        "d_fake": (f > 0).float().mean(),
    }


def _critic_step_two_backwards(critic, generator, real, z, opt_c, real_label=1.0):
    """Not a mistake: the PyTorch DCGAN tutorial's two backward calls sum the same gradients."""
    opt_c.zero_grad()
    r = critic(real)
    loss_real = BCE(r, torch.full_like(r, real_label))
    loss_real.backward()
    f = critic(generator(z).detach())
    loss_fake = BCE(f, torch.zeros_like(f))
    loss_fake.backward()
    opt_c.step()
    return _critic_out(loss_real + loss_fake, r, f)


def _critic_step_freeze_restore(critic, generator, real, z, opt_c, real_label=1.0):
    """Not a mistake: a frozen generator makes no graph, and requires_grad is switched back on."""
    generator.requires_grad_(False)
    try:
        return critic_step(critic, generator, real, z, opt_c, real_label)
    finally:
        generator.requires_grad_(True)


E = "generator_step"


@planted(E, "critic in eval mode while scoring", **{GS: "scored the fakes in eval mode"})
def generator_step_critic_eval_restored(critic, generator, z, opt_g):
    opt_g.zero_grad()
    critic.eval()
    logits = critic(generator(z))
    critic.train()
    loss = generator_loss(logits)
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(logits.detach()).mean()}


def _generator_step_zeroes_critic(critic, generator, z, opt_g):
    """Not a mistake: zeroing the critic's gradients afterwards is tidy, not needed."""
    out = generator_step(critic, generator, z, opt_g)
    critic.zero_grad(set_to_none=True)
    return out


E = "slerp"


@planted(E, "slerp of the unit vectors only", **{SP: "a unit vector"})
def slerp_units_only(z0, z1, t, eps=1e-7):
    return slerp(z0 / z0.norm(), z1 / z1.norm(), t, eps)


@planted(E, "no division by sin(omega)", **{SP: "divide both weights by sin(omega)"})
def slerp_undivided(z0, z1, t, eps=1e-7):
    omega = torch.arccos((torch.dot(z0, z1) / (z0.norm() * z1.norm())).clamp(-1, 1))
    if torch.sin(omega).abs() < eps:
        return lerp(z0, z1, t)
    t = torch.as_tensor(t, dtype=z0.dtype).unsqueeze(-1)
    return torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1


def _slerp_cosine_similarity(z0, z1, t, eps=1e-7):
    omega = torch.acos(F.cosine_similarity(z0, z1, dim=0).clamp(-1, 1))
    if torch.sin(omega).abs() < eps:
        return lerp(z0, z1, t)
    t = torch.as_tensor(t, dtype=z0.dtype)[..., None]
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


planted(
    "latent_grid",
    "linspace(0, 1, n + 1)[1:]",
    lambda z0, z1, z2, rows, cols: _grid(
        z0, z1, z2, lin(0, 1, rows + 1)[1:], lin(0, 1, cols + 1)[1:]
    ),
    **{LG: "skips 0"},
)


def _grid_barycentric(z0, z1, z2, rows, cols):
    """Not a mistake: (1 - a - b) z0 + a z1 + b z2 is the same plane, written out."""
    a = torch.linspace(0, 1, rows).view(-1, 1, 1)
    b = torch.linspace(0, 1, cols).view(1, -1, 1)
    return ((1 - a - b) * z0 + a * z1 + b * z2).reshape(rows * cols, -1)


CORRECT += [
    ("Critic", AlwaysDropoutCritic),
    ("Generator", ClampAfterTanhGenerator),
    (
        "critic_loss",
        lambda r, f, real_label=1.0: (
            BCE(r, torch.full((len(r),), real_label, dtype=r.dtype, device=r.device))
            + BCE(f, torch.zeros(len(f), dtype=f.dtype, device=f.device))
        ),
    ),
    ("critic_step", _critic_step_two_backwards),
    ("critic_step", _critic_step_freeze_restore),
    ("generator_step", _generator_step_zeroes_critic),
    ("slerp", _slerp_cosine_similarity),
    ("latent_grid", _grid_barycentric),
]


# -- a sixth round: in-place edits of t and the vectors, the history's ranges, clamps, ---------
# -- swapped arguments, an optimizer of the step's own, PyTorch's size formulas copied ---------
@planted("lerp", "t unsqueezed in place", **{LP: "changed the caller's t in place"})
def lerp_t_unsqueezed_in_place(z0, z1, t):
    t = torch.as_tensor(t, dtype=z0.dtype)  # the caller's own tensor: as_tensor does not copy
    t.unsqueeze_(-1)
    return (1 - t) * z0 + t * z1


@planted("lerp", "t[:, None]", **{LP: "t[:, None]"})
def lerp_colon_none(z0, z1, t):
    t = torch.as_tensor(t, dtype=z0.dtype)[:, None]
    return (1 - t) * z0 + t * z1


@planted("slerp", "t unsqueezed in place", **{SP: "changed the caller's t in place"})
def slerp_t_unsqueezed_in_place(z0, z1, t, eps=1e-7):
    omega = torch.arccos((torch.dot(z0, z1) / (z0.norm() * z1.norm())).clamp(-1, 1))
    so = torch.sin(omega)
    if so.abs() < eps:
        return lerp(z0, z1, t)
    t = torch.as_tensor(t, dtype=z0.dtype)
    t.unsqueeze_(-1)
    return torch.sin((1 - t) * omega) / so * z0 + torch.sin(t * omega) / so * z1


@planted("slerp", "t unsqueezed before the fallback", **{SP: "pass lerp the t you were given"})
def slerp_unsqueezed_before_fallback(z0, z1, t, eps=1e-7):
    t = torch.as_tensor(t, dtype=z0.dtype).unsqueeze(-1)
    omega = torch.arccos((torch.dot(z0, z1) / (z0.norm() * z1.norm())).clamp(-1, 1))
    so = torch.sin(omega)
    if so.abs() < eps:
        return lerp(z0, z1, t)
    return torch.sin((1 - t) * omega) / so * z0 + torch.sin(t * omega) / so * z1


@planted("latent_grid", "directions made in place", **{LG: "changed z0, z1 or z2 in place"})
def grid_directions_in_place(z0, z1, z2, rows, cols):
    z1 -= z0
    z2 -= z0
    a = torch.linspace(0, 1, rows).view(-1, 1, 1)
    b = torch.linspace(0, 1, cols).view(1, -1, 1)
    return (z0 + a * z1 + b * z2).reshape(rows * cols, -1)


planted(
    "latent_grid",
    "rows running upwards",
    lambda z0, z1, z2, rows, cols: _grid(z0, z1, z2, lin(1, 0, rows), lin(0, 1, cols)),
    **{LG: "the rows run upwards"},
)
planted(
    "history",
    "D(x) and D(G(z)) as raw logits",
    dict(HISTORY, d_real=[2.0, 1.5] * 50, d_fake=[-2.0, -1.0] * 50),
    **{TR: ("outside [0, 1]", "not of the raw logits")},
)
planted(
    "history",
    "the saturating generator loss",
    dict(HISTORY, loss_g=[-0.02, -0.01] * 50, d_real=[0.98] * 100, d_fake=[0.02, 0.01] * 50),
    **{TR: ("below 0", "the saturating log(1 - D(G(z)))")},
)
planted(
    "history",
    "one step",
    {k: v[:1] for k, v in HISTORY.items()},
    **{TR: "the history has 1 step"},
)
planted(
    "generator_loss",
    "logits clamped to [-10, 10]",
    lambda f: BCE(f.clamp(-10, 10), torch.ones_like(f)),
    **{GL: "the logits are clamped"},
)
planted(
    "critic_loss",
    "logits clamped to [-10, 10]",
    lambda r, f, real_label=1.0: critic_loss(r.clamp(-10, 10), f.clamp(-10, 10), real_label),
    **{CL: "the logits are clamped"},
)
planted(
    "generator_loss",
    "input and target swapped",
    lambda f: BCE(torch.ones_like(f), f),
    **{GL: "the arguments are swapped"},
)
planted(
    "make_optimizers",
    "options without **",
    lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: (
        ADAM(c.parameters(), lr, betas, kw),
        ADAM(g.parameters(), lr, betas, kw),
    ),
    **{OPT: "pass it on unpacked"},
)


@planted("generator_step", "an Adam of its own", **{GS: "the first step of a new Adam"})
def generator_step_own_adam(critic, generator, z, opt_g):
    opt = ADAM(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))  # made afresh every step
    return generator_step(critic, generator, z, opt)


@planted("generator_step", "fakes made in eval mode", **{GS: "made its images in eval mode"})
def generator_step_generator_eval(critic, generator, z, opt_g):
    opt_g.zero_grad()
    generator.eval()
    fake = generator(z)
    generator.train()
    logits = critic(fake)
    loss = generator_loss(logits)
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(logits).mean().detach()}


planted(
    "conv_out_size",
    "PyTorch's formula without its - 1",
    lambda n, k, s=1, p=0: (n + 2 * p - (k - 1)) // s + 1,
    check_conv_out_size="the - 1 after (kernel - 1) is missing",
)
planted(
    "conv_out_size",
    "n // stride",
    lambda n, k, s=1, p=0: n // s,
    check_conv_out_size="n // stride fits only",
)
planted(
    "deconv_out_size",
    "PyTorch's formula without its + 1",
    lambda n, k, s=1, p=0: (n - 1) * s - 2 * p + (k - 1),
    check_deconv_out_size="the + 1 after (kernel - 1) is missing",
)
planted(
    "deconv_out_size",
    "n * stride alone",
    lambda n, k, s=1, p=0: n * s,
    check_deconv_out_size="n * stride fits only",
)


def _slerp_math_omega(z0, z1, t, eps=1e-7):
    """Not a mistake: omega as a Python float (math.acos of the clamped cosine)."""
    cos = float(torch.dot(z0, z1) / (z0.norm() * z1.norm()))
    omega = math.acos(max(-1.0, min(1.0, cos)))
    if abs(math.sin(omega)) < eps:
        return lerp(z0, z1, t)
    t = torch.as_tensor(t, dtype=z0.dtype).unsqueeze(-1)
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / math.sin(omega)


CORRECT += [
    ("slerp", _slerp_math_omega),
    (
        "conv_out_size",
        lambda n, kernel, stride=1, padding=0, dilation=1: math.floor(
            (n + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1
        ),
    ),
    (
        "deconv_out_size",
        lambda n, kernel, stride=1, padding=0, output_padding=0, dilation=1: (
            (n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
        ),
    ),
    (
        "make_optimizers",
        lambda c, g, lr=2e-4, betas=(0.5, 0.999), **kw: tuple(
            ADAM(filter(lambda p: p.requires_grad, net.parameters()), lr=lr, betas=betas, **kw)
            for net in (c, g)
        ),
    ),
    ("history", dict(HISTORY, lr=[2e-4] * 100)),
    (
        "lerp",
        lambda z0, z1, t: torch.addcmul(z0, torch.as_tensor(t, dtype=z0.dtype)[..., None], z1 - z0),
    ),
]
