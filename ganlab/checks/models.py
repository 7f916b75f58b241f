"""Checks for chapter 2 (notebook 02_critic): a conv's output size, the init, the critic.

The architecture check compares the layers the critic runs, in the order it runs them,
with the list its docstring gives, for the defaults and for other sizes and widths; the
output check runs it. Both build the student's class with the reference
``init_dcgan_weights`` (``_layers.build``), so that a bug there costs only check 2.2.
"""

import math
import numbers

import torch
from torch import nn

from ._core import (
    RESHAPES,
    CheckFailed,
    call,
    describe,
    fail_unless,
    graded,
    output_op,
    passed,
    run_forward,
    seeded,
)
from ._layers import (
    OTHER_NORMS,
    POOLING,
    SCHEDULE,
    build,
    executed_layers,
    first_difference,
    key,
    label,
    layers_of,
    leaves,
    show,
)

# -- output sizes (exercise 2.1; 3.1 uses the same helper) --------------------------------


def check_size_formula(fn, name, cases, want, mistakes, formula, int_hint=""):
    """Every case must give ``want``. A wrong answer is put down to a known mistake only when
    that mistake explains every case (two that these cases cannot tell apart are both
    named); otherwise the hint says what was expected and what came."""
    got = {}
    for args in cases:
        value = call(fn, f"{name}{args}", *args)
        fail_unless(
            isinstance(value, numbers.Integral) and not isinstance(value, bool),
            f"{name}{args} returned {value!r} ({type(value).__name__}); return an int"
            + (f": {int_hint}" if int_hint else ""),
        )
        got[args] = value
    bad = next((args for args in cases if got[args] != want(*args)), None)
    if bad is not None:
        hits = sorted({hint for hint, f in mistakes if all(got[a] == f(*a) for a in cases)})
        message = f"{name}{bad} = {got[bad]}, expected {want(*bad)}"
        raise CheckFailed(message + (": " + " or ".join(hits) if hits else f"; it is {formula}"))
    value = call(fn, f"{name}(28, 5)", 28, 5, hint="keep the defaults stride=1 and padding=0")
    fail_unless(
        value == want(28, 5, 1, 0),
        f"{name}(28, 5) = {value!r}, expected {want(28, 5, 1, 0)}: keep the defaults "
        "stride=1, padding=0",
    )


def conv_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def deconv_size(n, k, s, p):
    return (n - 1) * s - 2 * p + k


# Stride 1 with padding 1 and 2 among them: there, forgetting the + 1 and padding one side differ.
CONV_CASES = [
    (32, 3, 1, 1),
    (28, 4, 2, 1),
    (14, 4, 2, 1),
    (7, 7, 1, 0),
    (5, 3, 2, 0),
    (10, 3, 1, 2),
    (10, 3, 3, 0),
    (11, 3, 3, 0),
]
FLOOR = "PyTorch rounds down: use floor division //"
CONV_MISTAKES = [
    (
        "you forgot the + 1 (the first window position counts too)",
        lambda n, k, s, p: (n + 2 * p - k) // s,
    ),
    (
        "the padding is added on both sides: n + 2 * padding",
        lambda n, k, s, p: (n + p - k) // s + 1,
    ),
    ("the padding is missing: n + 2 * padding", lambda n, k, s, p: (n - k) // s + 1),
    (
        "padding adds to n: n + 2 * padding, not n - 2 * padding",
        lambda n, k, s, p: (n - 2 * p - k) // s + 1,
    ),
    ("the + 1 comes after the division", lambda n, k, s, p: (n + 2 * p - k + 1) // s),
    (FLOOR, lambda n, k, s, p: math.ceil((n + 2 * p - k) / s) + 1),
    (FLOOR, lambda n, k, s, p: round((n + 2 * p - k) / s) + 1),
    ("divide by the stride", lambda n, k, s, p: n + 2 * p - k + 1),
    (
        "only the kernel was divided by the stride: // binds tighter than + and -, so put "
        "(n + 2 * padding - kernel) in parentheses",
        lambda n, k, s, p: n + 2 * p - k // s + 1,
    ),
    ("that is the transposed conv's formula; a Conv2d shrinks its input", deconv_size),
    (
        "PyTorch's docs write n + 2 * padding - dilation * (kernel - 1) - 1: with dilation 1 "
        "that is n + 2 * padding - kernel, and the - 1 after (kernel - 1) is missing",
        lambda n, k, s, p: (n + 2 * p - (k - 1)) // s + 1,
    ),
    (
        "n // stride fits only layers whose kernel is 2 * padding + stride (DCGAN's 4, 2, 1): "
        "the kernel and the padding count too",
        lambda n, k, s, p: n // s,
    ),
]


@graded
def check_conv_out_size(conv_out_size):
    """``conv_out_size(n, kernel, stride=1, padding=0)``: the output size of a Conv2d, an int."""
    check_size_formula(
        conv_out_size,
        "conv_out_size",
        CONV_CASES,
        conv_size,
        CONV_MISTAKES,
        "floor((n + 2*padding - kernel) / stride) + 1",
        int_hint="use // (floor division), PyTorch rounds down",
    )
    passed("conv_out_size", "28 -> 14 -> 7 -> 1 with the DCGAN critic's layers")


# -- initialisation (exercise 2.2) --------------------------------------------------------


def _tolerance(n, std=0.02):
    """Six standard errors of a mean (and of a standard deviation) of ``n`` draws: no seed fails."""
    return 6 * std / n**0.5, 6 * std / (2 * n) ** 0.5


def _check_normal(name, tensor, mean_want):
    w = tensor.detach().float()
    mean, std = w.mean().item(), w.std().item()
    what = "BatchNorm2d scales" if mean_want == 1 else f"{name} weights"
    if abs(std - 1) < 0.05:
        raise CheckFailed(
            f"{what} have std {std:.3f}: nn.init.normal_ takes the standard deviation as its "
            "third argument; DCGAN uses 0.02, not 1"
        )
    if abs(std - 0.2) < 0.02:
        raise CheckFailed(
            f"{what} have std {std:.3f}: ten times too large; DCGAN draws them with std 0.02, "
            "not 0.2"
        )
    if abs(std - 0.02**2) < 1e-4:
        raise CheckFailed(
            f"{what} have std {std:.4f}: 0.02 is the standard deviation, not the variance"
        )
    if mean_want == 0 and abs(mean - 1) < 0.01:
        raise CheckFailed(
            f"{what} have mean {mean:.3f}: the mean 1 is for BatchNorm scales; "
            "conv and linear weights are centred at 0"
        )
    if mean_want == 1 and std < 1e-6:
        raise CheckFailed(
            f"BatchNorm2d scales are all {mean:g}: draw them from N(1, 0.02) with nn.init.normal_"
        )
    if mean_want == 1 and abs(mean) < 0.05:
        raise CheckFailed(
            "BatchNorm2d scales are centred at 0: they multiply the normalised activations, "
            "so a scale near 0 switches the layer off. Use N(1, 0.02)"
        )
    tol_mean, tol_std = _tolerance(w.numel())
    fail_unless(
        abs(mean - mean_want) < tol_mean and abs(std - 0.02) < tol_std,
        f"{what} have mean {mean:.4f} and std {std:.4f}; expected N({mean_want}, 0.02)",
    )


@graded
def check_init(init_fn):
    """``init_fn(module)``: conv, transposed conv and linear weights ~ N(0, 0.02) with zero biases,
    BatchNorm scales ~ N(1, 0.02) with zero shifts, every other module left alone, in place."""
    seeded(0)
    # PyTorch's defaults for these shapes have stds 0.048, 0.036 and 0.072: far from 0.02.
    weighted = [
        ("Conv2d", nn.Conv2d(16, 32, 3)),
        ("ConvTranspose2d", nn.ConvTranspose2d(32, 16, 4)),
        ("Linear", nn.Linear(64, 48)),
    ]
    no_bias = [nn.Conv2d(8, 8, 4, bias=False), nn.ConvTranspose2d(8, 8, 4, bias=False)]
    bn = nn.BatchNorm2d(2048)
    others = [
        ("LayerNorm", nn.LayerNorm(64)),
        ("Embedding", nn.Embedding(16, 32)),
        ("ReLU", nn.ReLU()),
    ]
    modules = [m for _, m in weighted] + no_bias + [bn] + [m for _, m in others]
    before = {id(m): [p.detach().clone() for p in m.parameters()] for m in modules}
    tensors = {id(m): dict(m.named_parameters()) for m in modules}
    for module in modules:
        name = type(module).__name__
        hint = (
            "DCGAN's convolutions have no bias: test module.bias is not None first"
            if module in no_bias
            else ""
        )
        result = call(init_fn, f"init_fn(nn.{name}(...))", module, hint=hint)
        fail_unless(
            result is None or result is module,
            f"init_fn returned a {type(result).__name__}: change the module's tensors in place "
            "(nn.init.normal_); model.apply() ignores what it returns",
        )
        for attr, p in module.named_parameters():
            fail_unless(
                p is tensors[id(module)][attr],
                f"init_fn replaced nn.{name}'s {attr} with a new tensor: fill the one it has in "
                f"place (nn.init.normal_(module.{attr}, ...)); a new Parameter loses the "
                "layer's device and dtype",
            )

    def unchanged(m):
        return all(torch.equal(p, b) for p, b in zip(m.parameters(), before[id(m)]))

    for name, layer in weighted:
        if torch.equal(layer.weight, before[id(layer)][0]):
            raise CheckFailed(
                f"{name} weights are unchanged (PyTorch's default init): handle nn.{name} in "
                "init_fn with nn.init.normal_(module.weight, 0.0, 0.02)"
            )
        _check_normal(name, layer.weight, 0)
    for name, layer in weighted:
        fail_unless(
            torch.all(layer.bias == 0),
            f"{name} biases must start at 0: nn.init.zeros_(module.bias)",
        )
    for layer in no_bias:
        _check_normal(type(layer).__name__, layer.weight, 0)
    scale, shift = bn.weight.detach(), bn.bias.detach()
    if unchanged(bn):
        raise CheckFailed(
            "BatchNorm2d scales are all 1 (PyTorch's default, or nn.init.ones_): handle "
            "nn.BatchNorm2d in init_fn with nn.init.normal_(module.weight, 1.0, 0.02)"
        )
    if torch.all(scale == 1) and abs(shift.mean().item() - 1) < 0.01:
        raise CheckFailed(
            "BatchNorm2d shifts (bias) ~ N(1, 0.02) and scales untouched: the scale is "
            "module.weight (N(1, 0.02)), the shift module.bias (0)"
        )
    _check_normal("BatchNorm2d", scale, 1)
    fail_unless(torch.all(shift == 0), "BatchNorm2d shifts (bias) must start at 0")
    for name, module in others:
        fail_unless(
            unchanged(module),
            f"init_fn changed an nn.{name}: leave every module but Conv2d, ConvTranspose2d, Linear "
            "and BatchNorm2d alone",
        )
    passed("init", "weights ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02), biases 0")


# -- the critic (exercise 2.3) ------------------------------------------------------------


def _critic_spec(channels=1, image_size=28, ndf=64, dropout=0.0):
    n_blocks, base = SCHEDULE[image_size]
    spec, ch = [], channels
    for i in range(n_blocks):
        out = ndf * 2**i
        spec.append(("Conv2d", ch, out, 4, 2, 1))
        spec += [("BatchNorm2d", out)] if i > 0 else []
        spec.append(("LeakyReLU", 0.2))
        spec += [("Dropout2d", dropout)] if dropout > 0 else []
        ch = out
    return spec + [("Conv2d", ch, 1, base, 1, 0)]


CRITIC_CONFIGS = ({}, {"ndf": 16, "dropout": 0.3}, {"channels": 3, "image_size": 32, "ndf": 8})


def _critic_hint(layers, config):
    """What is wrong with a critic whose layers differ from its docstring's list, in one sentence."""
    spec, net = _critic_spec(**config), label("Critic", config)
    channels, size = config.get("channels", 1), config.get("image_size", 28)
    ndf, dropout = config.get("ndf", 64), config.get("dropout", 0.0)
    n_blocks, base = SCHEDULE[size]
    keys = [key(m) for m in layers]
    strided = [k for k in keys if k[0] == "Conv2d" and k[4] == 2]
    if len(strided) != n_blocks:
        return (
            f"{net} has {len(strided)} stride-2 convs; dcgan_schedule({size}) gives n_blocks = "
            f"{n_blocks} (halving {size} down to base = {base})"
        )
    widths, want_widths = [k[2] for k in strided], [ndf * 2**i for i in range(n_blocks)]
    if widths != want_widths:
        return f"{net}: the blocks' conv widths are {widths}; they follow ndf: {want_widths}"
    if strided[0][1] != channels:
        return (
            f"{net}: the first conv takes {strided[0][1]} channels; the images have {channels} "
            "(use the channels argument)"
        )
    i = first_difference(layers, spec)
    got, want = (keys[i] if i < len(keys) else None), (spec[i] if i < len(spec) else None)
    convs_before = sum(k[0] == "Conv2d" for k in keys[:i])
    kinds_before = [k[0] for k in keys[:i]]
    if want is None:
        return (
            f"{net}: {show(got)} after the final conv: the final Conv2d(..., 1, kernel_size=base) "
            "is the last layer, the critic returns raw logits"
        )
    if got is None:
        return f"{net} ends without {show(want)}: finish with Conv2d(last_channels, 1, kernel_size=base)"
    if got[0] == "BatchNorm2d":
        if convs_before == 0:
            return (
                "BatchNorm on the raw input, before the first conv: remove it, the critic must see "
                "the real images' own statistics"
            )
        if convs_before == 1:
            return (
                "BatchNorm in the first block (after the input conv): leave it out there, it would "
                "normalise away the statistics of the real images the critic must learn"
            )
        if want[0] == "BatchNorm2d":
            return f"{net}: {show(got)} after a conv with {want[1]} channels: they must match"
        if kinds_before and kinds_before[-1] in ("LeakyReLU", "Dropout2d", "Dropout"):
            return f"{net}: BatchNorm after the LeakyReLU; each block is conv, BatchNorm, LeakyReLU"
    if want[0] == "BatchNorm2d":
        rest = [k[0] for k in keys[i:]]
        block_rest = rest[: rest.index("Conv2d")] if "Conv2d" in rest else rest
        if "BatchNorm2d" in block_rest:
            return f"{net}: BatchNorm after the LeakyReLU; each block is conv, BatchNorm, LeakyReLU"
        return f"{net}: block {convs_before} has no BatchNorm2d: put one after every conv but the first"
    if want[0] == "Dropout2d":
        if got[0] == "Dropout":
            return f"{net} uses nn.Dropout: use nn.Dropout2d, which drops whole feature maps"
        if got[0] == "Dropout2d":
            return f"{net} has {show(got)}: its rate is the dropout argument, {dropout}"
        if not any(k[0].startswith("Dropout") for k in keys):
            return f"{net} has no Dropout2d: add Dropout2d(dropout) after each LeakyReLU when dropout > 0"
        return f"{net}: Dropout2d goes right after each LeakyReLU"
    if got[0].startswith("Dropout"):
        if dropout == 0:
            return f"{show(got)} in {net}, whose dropout is 0: add dropout layers only when dropout > 0"
        return f"{net}: Dropout2d goes right after each LeakyReLU, once per block"
    if got[0] == want[0] == "Conv2d" and i < len(spec) - 1:
        return (
            f"{net}: block {convs_before + 1}'s conv is {show(got)}; each block's conv is "
            "Conv2d(kernel_size=4, stride=2, padding=1)"
        )
    if got[0] == want[0] == "Conv2d":
        if got[3] != base:
            return (
                f"{net}: the final conv has kernel_size {got[3]}; it must be base = {base} "
                f"(dcgan_schedule({size})), the size of the map it turns into one value"
            )
        if got[2] != 1:
            return (
                f"{net}: the final conv has {got[2]} output channels; one logit per image needs 1"
            )
        return f"{net}: the final conv is {show(got)}; use stride 1 and no padding"
    if want[0] == "LeakyReLU" and got[0] != "LeakyReLU":
        return (
            f"{net}: block {convs_before} runs {show(got)} where LeakyReLU(0.2) belongs: every "
            "block of the critic, not only the first, uses LeakyReLU(0.2)"
        )
    return f"{net}: layer {i + 1} is {show(got)}, expected {show(want)}"


@graded
def check_critic_architecture(Critic):
    """The DCGAN rules for the critic: which layers it runs, in which order, at which widths."""
    seeded(0)
    critic = build(Critic, "Critic")
    fail_unless(isinstance(critic, nn.Module), "Critic must subclass nn.Module")
    everything = leaves(critic)
    pools = [m for m in everything if isinstance(m, POOLING)]
    if pools:
        raise CheckFailed(
            f"your critic uses {type(pools[0]).__name__}: DCGAN downsamples with stride-2 "
            "convolutions, which learn how to downsample; remove the pooling"
        )
    fail_unless(
        not layers_of(critic, nn.Sigmoid),
        "your critic contains nn.Sigmoid: remove it, the loss expects logits "
        "(binary_cross_entropy_with_logits applies the sigmoid itself)",
    )
    fail_unless(
        not layers_of(critic, nn.Linear),
        "your critic uses nn.Linear: DCGAN is all-convolutional; end with a Conv2d whose kernel "
        "covers the remaining base x base map",
    )
    fail_unless(
        layers_of(critic, nn.Conv2d), "your critic has no Conv2d layers: is self.net built?"
    )
    leaky = layers_of(critic, nn.LeakyReLU)
    fail_unless(
        leaky,
        "no LeakyReLU found"
        + (
            " (you used ReLU)"
            if layers_of(critic, nn.ReLU)
            else " among self.net's layers (an F.leaky_relu call in forward is not a layer: put "
            "nn.LeakyReLU(0.2) modules in self.net, as the docstring lists)"
        )
        + ": the DCGAN critic uses LeakyReLU(0.2) so that gradients flow for negative inputs too",
    )
    slopes = {m.negative_slope for m in leaky}
    fail_unless(slopes == {0.2}, f"LeakyReLU slope {sorted(slopes)}; Radford et al. use 0.2")
    norms = layers_of(critic, *OTHER_NORMS)
    fail_unless(
        not norms,
        f"your critic uses {type(norms[0]).__name__ if norms else ''}: DCGAN normalises with "
        "BatchNorm2d, in every block but the first",
    )
    for config in CRITIC_CONFIGS:
        net = critic if not config else build(Critic, "Critic", **config)
        size, channels = config.get("image_size", 28), config.get("channels", 1)
        layers = executed_layers(net, torch.zeros(2, channels, size, size))
        if first_difference(layers, _critic_spec(**config)) is not None:
            raise CheckFailed(_critic_hint(layers, config))
    passed(
        "critic architecture",
        "conv blocks with BatchNorm (not in the first) and LeakyReLU(0.2), widths from ndf, "
        f"final conv base x base; {describe(critic)}",
    )


@graded
def check_critic_output(Critic):
    """One logit per image, for MNIST and for other image sizes, differentiable in the image."""
    g = seeded(0)
    critic = build(Critic, "Critic")
    b = 5
    x = (torch.rand(b, 1, 28, 28, generator=g) * 2 - 1).requires_grad_(True)
    out = run_forward(critic, x, "Critic()")
    fail_unless(
        isinstance(out, torch.Tensor), f"forward returned {type(out).__name__}, not a tensor"
    )
    if tuple(out.shape) in {(b, 1), (b, 1, 1, 1)}:
        raise CheckFailed(
            f"critic output has shape {tuple(out.shape)}: flatten it to (B,) = ({b},) with "
            ".view(-1), so it lines up with the labels in the loss"
        )
    fail_unless(
        tuple(out.shape) == (b,),
        f"critic output has shape {tuple(out.shape)} for a batch of {b}; "
        f"expected ({b},): one logit per image",
    )
    fail_unless(
        out.requires_grad,
        "the output does not require grad: do not use torch.no_grad() or .detach() "
        "in forward, the losses must backpropagate through the critic",
    )
    (grad,) = torch.autograd.grad((out * torch.randn(b, generator=g)).sum(), x, allow_unused=True)
    fail_unless(
        grad is not None and grad.abs().sum() > 0,
        "no gradient reaches the input images: do not detach x (or use x.data) in forward; "
        "the generator learns through the critic",
    )
    if _is_probability(out):
        raise CheckFailed(
            "critic returns values in (0, 1): remove the final sigmoid, the loss expects "
            "logits (binary_cross_entropy_with_logits applies it, stably)"
        )
    last = output_op(out)
    # Not Clamp: its bounds are the student's choice (say +-20 against overflow), not [-1, 1].
    if last == "LogSigmoid" or _last_ops(out, 2) == ["Log", "Sigmoid"]:
        raise CheckFailed(
            "the critic returns the log of sigmoid(logits), log D(x), which is always negative: "
            "return the raw logits, binary_cross_entropy_with_logits takes them and applies "
            "the sigmoid itself"
        )
    if last in ("Tanh", "Hardtanh"):
        raise CheckFailed(
            f"the critic's last operation is {last}: it squashes the logits into [-1, 1], so "
            "sigmoid(logit) stays within (0.27, 0.73) and the critic can never be confident; "
            "return the final conv's raw output, unbounded"
        )
    one = run_forward(critic, x[:1].detach(), "Critic()")
    fail_unless(
        tuple(getattr(one, "shape", ())) == (1,),
        f"critic output has shape {tuple(getattr(one, 'shape', ()))} for a batch of one image; "
        "expected (1,): squeeze() drops the batch dimension too when B = 1, use .view(-1)",
    )
    for channels, size in ((3, 32), (3, 64)):
        what = f"Critic(channels={channels}, image_size={size}, ndf=8)"
        big = build(Critic, "Critic", channels=channels, image_size=size, ndf=8)
        y = run_forward(big, torch.zeros(2, channels, size, size), what)
        fail_unless(
            tuple(y.shape) == (2,),
            f"{what} gives shape {tuple(getattr(y, 'shape', ()))} for 2 images; build the layers "
            "from dcgan_schedule(image_size), not for 28x28 only",
        )
    passed("critic output", "(B,) logits for 1x28x28, 3x32x32 and 3x64x64 images")


def _is_probability(out):
    """Did a sigmoid make the critic's output? Its graph ends in one, or in 1 / (1 + exp(-x))."""
    ops = _last_ops(out, 4)
    return ops[:1] == ["Sigmoid"] or ("Exp" in ops and bool({"Reciprocal", "Div"} & set(ops)))


def _last_ops(tensor, n):
    """The names of the last ``n`` operations that made ``tensor``, reshapes skipped, nearest first."""
    names, node = [], tensor.grad_fn
    while node is not None and len(names) < n:
        name = type(node).__name__.replace("Backward0", "").replace("Backward1", "")
        if name not in RESHAPES:
            names.append(name)
        inputs = [f for f, _ in node.next_functions if f is not None]
        node = inputs[0] if inputs else None
    return names
