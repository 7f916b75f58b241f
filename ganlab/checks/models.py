"""Checks for chapters 2 and 3 (notebooks 02_critic, 03_generator): the DCGAN networks."""

import torch
from torch import nn

from ._core import (
    CheckFailed,
    describe,
    fail_unless,
    layers_of,
    output_op,
    passed,
    run_forward,
    seeded,
    try_build,
)

POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def check_conv_out_size(conv_out_size):
    """``conv_out_size(n, kernel, stride, padding)``: the output size of a Conv2d on an n x n input."""
    # Stride 1 first: there, forgetting the + 1 and forgetting the padding give different answers.
    cases = [
        ((32, 3, 1, 1), 32),
        ((28, 4, 2, 1), 14),
        ((14, 4, 2, 1), 7),
        ((7, 7, 1, 0), 1),
        ((5, 3, 2, 0), 2),
        ((64, 4, 2, 1), 32),
    ]
    for args, want in cases:
        got = conv_out_size(*args)
        fail_unless(
            isinstance(got, int) and not isinstance(got, bool),
            f"conv_out_size{args} returned {got!r} ({type(got).__name__}); return an int: use // "
            "(floor division), PyTorch rounds down",
        )
        if got != want and got == (args[0] + 2 * args[3] - args[1]) // args[2]:
            raise CheckFailed(
                f"conv_out_size{args} = {got}, expected {want}: you forgot the + 1 "
                "(the first window position counts too)"
            )
        if got != want and got == (args[0] - args[1]) // args[2] + 1:
            raise CheckFailed(
                f"conv_out_size{args} = {got}, expected {want}: the padding is added on "
                "both sides: n + 2 * padding"
            )
        fail_unless(
            got == want,
            f"conv_out_size{args} = {got}, expected {want}: "
            "floor((n + 2*padding - kernel) / stride) + 1",
        )
    passed("conv_out_size", "28 -> 14 -> 7 -> 1 with the DCGAN critic's layers")


def check_init(init_fn):
    """``init_fn(module)`` must draw conv weights from N(0, 0.02) and BatchNorm scales from N(1, 0.02)."""
    seeded(0)
    conv, deconv, bn = nn.Conv2d(64, 128, 4), nn.ConvTranspose2d(128, 64, 4), nn.BatchNorm2d(4096)
    default_conv_std = conv.weight.std().item()
    for module in (conv, deconv, bn, nn.ReLU()):
        result = init_fn(module)
        fail_unless(
            result is None or result is module,
            f"init_fn returned a {type(result).__name__}: it must change the module's tensors "
            "in place (nn.init.normal_), model.apply() ignores return values",
        )
    for name, layer in (("Conv2d", conv), ("ConvTranspose2d", deconv)):
        mean, std = layer.weight.mean().item(), layer.weight.std().item()
        if abs(std - default_conv_std) < 1e-6:
            raise CheckFailed(
                f"{name} weights are unchanged (PyTorch's default init): handle "
                f"nn.{name} in init_fn with nn.init.normal_(module.weight, 0.0, 0.02)"
            )
        if abs(std - 1) < 0.05:
            raise CheckFailed(
                f"{name} weights have std {std:.3f}: nn.init.normal_ takes the standard "
                "deviation as its third argument; DCGAN uses 0.02, not 1"
            )
        if abs(mean - 1) < 0.01:
            raise CheckFailed(
                f"{name} weights have mean {mean:.3f}: the mean 1 is for BatchNorm scales; "
                "conv weights are centred at 0"
            )
        fail_unless(
            abs(std - 0.02) < 0.002 and abs(mean) < 0.002,
            f"{name} weights have mean {mean:.4f} and std {std:.4f}; expected N(0, 0.02)",
        )
    fail_unless(
        bn.weight.std().item() > 0.01,
        "BatchNorm scales are all equal: draw them from N(1, 0.02) with nn.init.normal_",
    )
    if abs(bn.weight.mean().item()) < 0.05:
        raise CheckFailed(
            "BatchNorm scales are centred at 0: they multiply the normalised activations, "
            "so a scale near 0 switches the layer off. Use N(1, 0.02)"
        )
    fail_unless(
        abs(bn.weight.mean().item() - 1) < 0.005 and abs(bn.weight.std().item() - 0.02) < 0.003,
        f"BatchNorm scales have mean {bn.weight.mean().item():.3f} and std "
        f"{bn.weight.std().item():.3f}; expected N(1, 0.02)",
    )
    fail_unless(torch.all(bn.bias == 0), "BatchNorm shifts (bias) must start at 0")
    fail_unless(conv.bias is None or torch.all(conv.bias == 0), "conv biases must start at 0")
    passed("init", "conv weights ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02)")


def check_critic_architecture(Critic):
    """The DCGAN rules for the critic, checked on its layers."""
    seeded(0)
    critic = try_build(Critic, "Critic")
    fail_unless(isinstance(critic, nn.Module), "Critic must subclass nn.Module")
    pools = layers_of(critic, *POOLING)
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
        "covers the remaining 7x7 map",
    )
    convs = layers_of(critic, nn.Conv2d)
    fail_unless(convs, "your critic has no Conv2d layers: is self.net built in __init__?")
    strided = [c for c in convs if c.stride == (2, 2)]
    fail_unless(
        len(strided) >= 2,
        f"found {len(strided)} stride-2 convolutions; a 28x28 critic needs two "
        "(28 -> 14 -> 7): Conv2d(kernel_size=4, stride=2, padding=1)",
    )
    fail_unless(
        convs[0].in_channels == 1,
        f"the first conv takes {convs[0].in_channels} channels; MNIST images have 1",
    )
    relus = layers_of(critic, nn.ReLU)
    leaky = layers_of(critic, nn.LeakyReLU)
    fail_unless(
        leaky,
        "no LeakyReLU found"
        + (" (you used ReLU)" if relus else "")
        + ": the DCGAN critic uses LeakyReLU(0.2) so that gradients flow for negative inputs too",
    )
    slopes = {m.negative_slope for m in leaky}
    fail_unless(slopes == {0.2}, f"LeakyReLU slope {sorted(slopes)}; Radford et al. use 0.2")
    fail_unless(
        layers_of(critic, nn.BatchNorm2d),
        "no BatchNorm2d: put one after every conv block but the first",
    )
    order = [m for m in critic.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    fail_unless(
        len(order) < 2 or not isinstance(order[1], nn.BatchNorm2d),
        "BatchNorm follows the first (input) conv: leave it out there, it would normalise away "
        "the statistics of the real images the critic must learn",
    )
    fail_unless(
        isinstance(order[-1], nn.Conv2d) and order[-1].out_channels == 1,
        "the last layer must be a Conv2d with one output channel (one logit per image)",
    )
    drop = try_build(Critic, "Critic", dropout=0.3)
    ps = {m.p for m in layers_of(drop, nn.Dropout, nn.Dropout2d)}
    fail_unless(
        ps == {0.3},
        f"Critic(dropout=0.3) has dropout rates {sorted(ps) or 'none'}: add "
        "Dropout2d(dropout) after each LeakyReLU when dropout > 0",
    )
    fail_unless(
        not layers_of(critic, nn.Dropout, nn.Dropout2d)
        or all(m.p == 0 for m in layers_of(critic, nn.Dropout, nn.Dropout2d)),
        "Critic() with the default dropout=0.0 must not add dropout layers",
    )
    passed(
        "critic architecture",
        f"{len(strided)} strided convs, BatchNorm, LeakyReLU(0.2); {describe(critic)}",
    )


def check_critic_output(Critic):
    """One logit per image, for MNIST and for other image sizes."""
    seeded(0)
    critic = try_build(Critic, "Critic")
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    out = run_forward(critic, x, "Critic()")
    fail_unless(
        isinstance(out, torch.Tensor), f"forward returned {type(out).__name__}, not a tensor"
    )
    if tuple(out.shape) in {(5, 1), (5, 1, 1, 1)}:
        raise CheckFailed(
            f"critic output has shape {tuple(out.shape)}: flatten it to (B,) = (5,) with "
            ".view(-1), so it lines up with the labels in the loss"
        )
    fail_unless(
        tuple(out.shape) == (5,),
        f"critic output has shape {tuple(out.shape)} for a batch of 5; "
        "expected (5,): one logit per image",
    )
    last = output_op(out)
    if last == "Sigmoid" or (out.min() > 0 and out.max() < 1 and (out - 0.5).abs().max() < 0.05):
        raise CheckFailed(
            "critic returns values in (0, 1): remove the final sigmoid, the loss expects "
            "logits (binary_cross_entropy_with_logits applies it, stably)"
        )
    fail_unless(
        out.requires_grad,
        "the output does not require grad: do not use torch.no_grad() or .detach() "
        "in forward, the losses must backpropagate through the critic",
    )
    for channels, size in ((3, 32), (3, 64)):
        big = try_build(Critic, "Critic", channels=channels, image_size=size)
        y = run_forward(
            big,
            torch.zeros(2, channels, size, size),
            f"Critic(channels={channels}, image_size={size})",
        )
        fail_unless(
            tuple(y.shape) == (2,),
            f"Critic(channels={channels}, image_size={size}) gives shape "
            f"{tuple(y.shape)} for 2 images; build the layers from "
            "dcgan_schedule(image_size), not for 28x28 only",
        )
    passed("critic output", "(B,) logits for 1x28x28, 3x32x32 and 3x64x64 images")


def check_upsample_block(upsample_block):
    """Both upsampling layers of the course double H and W."""
    seeded(0)
    x = torch.randn(2, 8, 7, 7)
    for mode in ("transposed", "nearest"):
        block = upsample_block(8, 4, mode)
        fail_unless(
            isinstance(block, nn.Module),
            f"upsample_block(8, 4, {mode!r}) returned {type(block).__name__}, not an nn.Module",
        )
        y = run_forward(block, x, f"upsample_block(8, 4, {mode!r})")
        fail_unless(
            tuple(y.shape) == (2, 4, 14, 14),
            f"upsample_block(8, 4, {mode!r}) maps (2, 8, 7, 7) to {tuple(y.shape)}; expected "
            "(2, 4, 14, 14): double H and W, change the channels",
        )
        fail_unless(
            not layers_of(block, nn.BatchNorm2d, nn.ReLU, nn.Tanh, nn.LeakyReLU),
            f"upsample_block({mode!r}) contains normalisation or an activation; the generator adds them",
        )
    deconvs = layers_of(upsample_block(8, 4, "transposed"), nn.ConvTranspose2d)
    fail_unless(
        len(deconvs) == 1 and deconvs[0].stride == (2, 2) and deconvs[0].kernel_size == (4, 4),
        "mode='transposed' must be one ConvTranspose2d(kernel_size=4, stride=2, padding=1)",
    )
    nearest = upsample_block(8, 4, "nearest")
    fail_unless(
        not layers_of(nearest, nn.ConvTranspose2d),
        "mode='nearest' must not use ConvTranspose2d: the point is to avoid its checkerboard "
        "artefacts (Odena et al. 2016); use Upsample(scale_factor=2) then Conv2d(kernel_size=3, padding=1)",
    )
    ups = layers_of(nearest, nn.Upsample)
    fail_unless(
        ups and ups[0].mode == "nearest",
        "mode='nearest' needs nn.Upsample(scale_factor=2, mode='nearest')",
    )
    try:
        upsample_block(8, 4, "bilinear-typo")
    except ValueError:
        pass
    else:
        raise CheckFailed(
            "upsample_block(8, 4, 'bilinear-typo') did not raise ValueError: an unknown mode "
            "must not silently fall back to another layer"
        )
    passed("upsample_block", "transposed and nearest both double H and W")


def check_generator_output(Generator):
    """z (B, nz) -> images (B, C, H, W) in [-1, 1] through tanh."""
    seeded(0)
    gen = try_build(Generator, "Generator")
    nz = getattr(gen, "nz", 100)
    z = torch.randn(6, nz)
    out = run_forward(gen, z, "Generator()")
    fail_unless(
        isinstance(out, torch.Tensor), f"forward returned {type(out).__name__}, not a tensor"
    )
    if tuple(out.shape) == (6, 784):
        raise CheckFailed(
            "generator output has shape (B, 784): reshape to (B, 1, 28, 28); "
            "the critic expects images, channels first"
        )
    fail_unless(
        out.dim() == 4, f"generator output has shape {tuple(out.shape)}; expected (6, 1, 28, 28)"
    )
    if tuple(out.shape[2:]) != (28, 28):
        raise CheckFailed(
            f"generator output is {out.shape[2]}x{out.shape[3]}, expected 28x28: each "
            "upsampling layer must exactly double H and W starting from 7x7 "
            "(ConvTranspose2d(kernel_size=4, stride=2, padding=1), or upsample + conv with padding=1)"
        )
    fail_unless(
        tuple(out.shape) == (6, 1, 28, 28),
        f"generator output has shape {tuple(out.shape)}; expected (6, 1, 28, 28)",
    )
    last = output_op(out)
    if last == "Sigmoid":
        raise CheckFailed(
            "the generator ends with a sigmoid, so its images are in (0, 1) while the real ones "
            "are in [-1, 1]: end with nn.Tanh()"
        )
    fail_unless(
        last == "Tanh",
        f"the generator's last operation is {last or 'none'}, not tanh: its images "
        "are not bounded to [-1, 1] like the real ones; end with nn.Tanh()",
    )
    fail_unless(out.requires_grad, "the output does not require grad: do not detach inside forward")
    fail_unless(out.std() > 1e-4, "all generated pixels are equal: is z used at all?")
    for channels, size in ((3, 32), (3, 64)):
        big = try_build(Generator, "Generator", channels=channels, image_size=size)
        y = run_forward(
            big, torch.randn(2, nz), f"Generator(channels={channels}, image_size={size})"
        )
        fail_unless(
            tuple(y.shape) == (2, channels, size, size),
            f"Generator(channels={channels}, image_size={size}) gives {tuple(y.shape)}; build the "
            "layers from dcgan_schedule(image_size)",
        )
    passed(
        "generator output",
        "(B, nz) -> (B, 1, 28, 28) in [-1, 1] via tanh; also 3x32x32 and 3x64x64",
    )


def check_generator_architecture(Generator):
    """The DCGAN rules for the generator, in both upsampling variants."""
    seeded(0)
    for mode in ("transposed", "nearest"):
        gen = try_build(Generator, "Generator", upsample=mode)
        fail_unless(
            layers_of(gen, nn.BatchNorm2d), f"Generator(upsample={mode!r}) has no BatchNorm2d"
        )
        fail_unless(not layers_of(gen, *POOLING), "the generator must not pool")
        fail_unless(
            layers_of(gen, nn.ReLU),
            "the DCGAN generator uses ReLU between layers (LeakyReLU is for the critic)",
        )
        fail_unless(len(layers_of(gen, nn.Tanh)) == 1, "exactly one nn.Tanh, at the output")
        order = [
            m
            for m in gen.modules()
            if isinstance(m, (nn.BatchNorm2d, nn.Tanh, nn.Conv2d, nn.ConvTranspose2d))
        ]
        fail_unless(
            not isinstance(order[-2], nn.BatchNorm2d),
            "BatchNorm right before the output tanh: leave it out on the output layer, it would fix "
            "the mean and spread of the generated pixels",
        )
        strided = [m for m in layers_of(gen, nn.ConvTranspose2d) if m.stride == (2, 2)]
        if mode == "transposed":
            fail_unless(
                len(strided) == 2,
                f"upsample='transposed' should use 2 stride-2 ConvTranspose2d "
                f"(7 -> 14 -> 28), found {len(strided)}",
            )
        else:
            fail_unless(
                not strided and len(layers_of(gen, nn.Upsample)) == 2,
                "upsample='nearest' must use upsample_block(..., 'nearest') twice and no strided "
                "ConvTranspose2d; is the upsample argument passed on?",
            )
    passed("generator architecture", "both variants follow the DCGAN rules; " + describe(gen))


def check_count_parameters(count_parameters):
    """``count_parameters(model)``: trainable scalars only."""
    layer = nn.Linear(10, 5)  # 50 weights + 5 biases
    got = count_parameters(layer)
    if got == 2:
        raise CheckFailed(
            "count_parameters returned 2 for nn.Linear(10, 5): you counted parameter tensors; "
            "sum p.numel() to count the scalars in them"
        )
    fail_unless(
        got == 55,
        f"count_parameters(nn.Linear(10, 5)) = {got!r}, expected 55 (50 weights + 5 biases)",
    )
    frozen = nn.Sequential(nn.Linear(10, 5), nn.Linear(5, 1))
    frozen[0].requires_grad_(False)
    got = count_parameters(frozen)
    fail_unless(got != 61, "frozen parameters were counted: keep only those with p.requires_grad")
    fail_unless(got == 6, f"count_parameters gave {got} for a model with 6 trainable scalars")
    fail_unless(count_parameters(nn.ReLU()) == 0, "a model without parameters has 0")
    passed("count_parameters")


def check_deconv_out_size(deconv_out_size):
    """``deconv_out_size(n, kernel, stride, padding)``: the output size of a ConvTranspose2d."""
    cases = [
        ((1, 7, 1, 0), 7),
        ((7, 4, 2, 1), 14),
        ((14, 4, 2, 1), 28),
        ((4, 4, 2, 1), 8),
        ((5, 3, 2, 0), 11),
    ]
    for args, want in cases:
        got = deconv_out_size(*args)
        n, k, s, p = args
        if got != want and got == n * s - 2 * p + k:
            raise CheckFailed(
                f"deconv_out_size{args} = {got}, expected {want}: it is (n - 1) * stride, "
                "the last input pixel's kernel starts at (n - 1) * stride"
            )
        if got != want and got == (n + 2 * p - k) // s + 1:
            raise CheckFailed(
                f"deconv_out_size{args} = {got}: that is the Conv2d formula; a transposed "
                "conv inverts it: (n - 1) * stride - 2 * padding + kernel"
            )
        fail_unless(got == want, f"deconv_out_size{args} = {got!r}, expected {want}")
    passed("deconv_out_size", "1 -> 7 -> 14 -> 28 with the DCGAN generator's layers")
