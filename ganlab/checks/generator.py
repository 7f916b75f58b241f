"""Checks for chapter 3 (notebook 03_generator): a transposed conv's size, upsampling, the generator.

The architecture check compares the layers the generator runs, in order, with the list
its docstring gives, in both upsampling variants and at other widths; the output check
runs it and makes sure every image comes from its own z. Both build the student's class
with the reference ``init_dcgan_weights`` and ``upsample_block`` (``_layers.build``), so
that a bug in those costs only checks 2.2 and 3.2.
"""

import torch
from torch import nn

from ._core import (
    CheckFailed,
    call,
    describe,
    fail_unless,
    first_line,
    graded,
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
    show,
)
from .models import _last_ops, check_size_formula, conv_size, deconv_size

# -- output size (exercise 3.1) ------------------------------------------------------------

DECONV_CASES = [
    (1, 7, 1, 0),
    (7, 4, 2, 1),
    (14, 4, 2, 1),
    (4, 4, 2, 1),
    (5, 3, 2, 0),
    (3, 3, 1, 2),
    (6, 5, 3, 1),
]
DECONV_MISTAKES = [
    (
        "it is (n - 1) * stride: the last input pixel's kernel starts at (n - 1) * stride",
        lambda n, k, s, p: n * s - 2 * p + k,
    ),
    ("that is the Conv2d formula; a transposed conv inverts it", conv_size),
    (
        "the padding is cut from both sides: - 2 * padding",
        lambda n, k, s, p: (n - 1) * s - p + k,
    ),
    (
        "a transposed conv's padding crops the output: - 2 * padding, not + 2 * padding",
        lambda n, k, s, p: (n - 1) * s + 2 * p + k,
    ),
    ("the padding is missing: - 2 * padding", lambda n, k, s, p: (n - 1) * s + k),
    ("multiply (n - 1) by the stride", lambda n, k, s, p: n - 1 - 2 * p + k),
    (
        "there is no + 1 in the transposed formula (that is the Conv2d one)",
        lambda n, k, s, p: deconv_size(n, k, s, p) + 1,
    ),
    (
        "n - 1 * stride is n - stride: * binds tighter than -, so write (n - 1) * stride",
        lambda n, k, s, p: n - 1 * s - 2 * p + k,
    ),
    (
        "PyTorch's docs end in dilation * (kernel - 1) + 1, which is the kernel with dilation "
        "1: the + 1 after (kernel - 1) is missing",
        lambda n, k, s, p: (n - 1) * s - 2 * p + (k - 1),
    ),
    (
        "n * stride fits only layers whose kernel is 2 * padding + stride (DCGAN's 4, 2, 1 "
        "doubles): the kernel and the padding count too",
        lambda n, k, s, p: n * s,
    ),
]


@graded
def check_deconv_out_size(deconv_out_size):
    """``deconv_out_size(n, kernel, stride=1, padding=0)``: the output size of a ConvTranspose2d."""
    check_size_formula(
        deconv_out_size,
        "deconv_out_size",
        DECONV_CASES,
        deconv_size,
        DECONV_MISTAKES,
        "(n - 1) * stride - 2 * padding + kernel",
        int_hint="every term is an int, no / or float() needed",
    )
    passed("deconv_out_size", "1 -> 7 -> 14 -> 28 with the DCGAN generator's layers")


# -- upsampling (exercise 3.2) -------------------------------------------------------------


@graded
def check_upsample_block(upsample_block):
    """Both upsampling layers double H and W, with exactly the layers the docstring lists."""
    g = seeded(0)
    activations = (nn.BatchNorm2d, nn.ReLU, nn.Tanh, nn.LeakyReLU, nn.Sigmoid, *OTHER_NORMS)
    for mode in ("transposed", "nearest"):
        for cin, cout, size in ((8, 4, 7), (3, 5, 4)):
            what = f"upsample_block({cin}, {cout}, {mode!r})"
            block = call(upsample_block, what, cin, cout, mode)
            fail_unless(
                isinstance(block, nn.Module),
                f"{what} returned {type(block).__name__}, not an nn.Module",
            )
            x = torch.randn(2, cin, size, size, generator=g)
            y = run_forward(block, x, what)
            want = (2, cout, 2 * size, 2 * size)
            fail_unless(
                isinstance(y, torch.Tensor) and tuple(y.shape) == want,
                f"{what} maps {tuple(x.shape)} to {tuple(getattr(y, 'shape', ()))}; expected "
                f"{want}: double H and W, map {cin} channels to {cout}",
            )
        layers = executed_layers(block, x)
        fail_unless(
            not [m for m in layers if isinstance(m, activations)],
            f"upsample_block({mode!r}) contains normalisation or an activation; the generator adds them",
        )
        biased = [m for m in layers if getattr(m, "bias", None) is not None]
        fail_unless(
            not biased,
            f"upsample_block({mode!r})'s {type(biased[0]).__name__ if biased else ''} has a bias: "
            "pass bias=False (the BatchNorm after it would cancel it)",
        )
        if mode == "transposed":
            fail_unless(
                [key(m) for m in layers] == [("ConvTranspose2d", 3, 5, 4, 2, 1)],
                "mode='transposed' must be one ConvTranspose2d(kernel_size=4, stride=2, padding=1); "
                f"found {', '.join(show(m) for m in layers)}",
            )
            fail_unless(
                isinstance(block, nn.ConvTranspose2d),
                f"mode='transposed' returned a {type(block).__name__} around the layer: return "
                "the ConvTranspose2d itself",
            )
            continue
        fail_unless(
            not layers_of(block, nn.ConvTranspose2d),
            "mode='nearest' must not use ConvTranspose2d: the point is to avoid its checkerboard "
            "artefacts (Odena et al. 2016); use Upsample(scale_factor=2) then Conv2d(kernel_size=3, "
            "padding=1)",
        )
        ups = layers_of(block, nn.Upsample)
        fail_unless(
            ups and ups[0].mode == "nearest",
            "mode='nearest' needs nn.Upsample(scale_factor=2, mode='nearest')"
            + (f" (yours uses mode={ups[0].mode!r})" if ups else ""),
        )
        fail_unless(
            type(ups[0]) is nn.Upsample,
            f"mode='nearest' uses nn.{type(ups[0]).__name__}, which PyTorch deprecates: use "
            "nn.Upsample(scale_factor=2, mode='nearest')",
        )
        kinds = [type(m).__name__ for m in layers]
        fail_unless(
            kinds == ["Upsample", "Conv2d"],
            f"mode='nearest' runs {', '.join(show(m) for m in layers)}; it is Upsample first, then "
            "Conv2d(kernel_size=3, padding=1)",
        )
        fail_unless(
            key(layers[1]) == ("Conv2d", 3, 5, 3, 1, 1),
            f"mode='nearest': the conv is {show(layers[1])}; use Conv2d(kernel_size=3, padding=1), "
            "which keeps the doubled size",
        )
        fail_unless(
            isinstance(block, nn.Sequential),
            f"mode='nearest' returned a {type(block).__name__}: return nn.Sequential(upsample, conv)",
        )
    default = call(upsample_block, "upsample_block(8, 4)", 8, 4)
    fail_unless(
        isinstance(default, nn.ConvTranspose2d),
        "upsample_block(8, 4) without a mode must give the transposed conv: mode='transposed' "
        "is the default",
    )
    try:
        upsample_block(8, 4, "bilinear-typo")
    except ValueError as err:
        fail_unless(
            "transposed" in str(err) and "nearest" in str(err),
            f"the ValueError says {first_line(err)!r}: name the modes that exist "
            "(UPSAMPLE_MODES), so the caller sees how to fix the call",
        )
    except CheckFailed:
        raise
    except Exception as err:  # NotImplementedError too: both modes work, this is no stub
        raise CheckFailed(
            f"upsample_block(8, 4, 'bilinear-typo') raised {type(err).__name__}: raise a "
            "ValueError naming UPSAMPLE_MODES for an unknown mode"
        ) from err
    else:
        raise CheckFailed(
            "upsample_block(8, 4, 'bilinear-typo') did not raise ValueError: an unknown mode "
            "must not silently fall back to another layer"
        )
    passed("upsample_block", "transposed and nearest both double H and W")


# -- the generator (exercise 3.3) ----------------------------------------------------------


def _generate(gen, z, what):
    """``gen(z)``; a crash on (B, nz) that does not happen on (B, nz, 1, 1) has its own hint."""
    try:
        return gen(z)
    except (NotImplementedError, CheckFailed):
        raise
    except Exception as err:
        try:
            gen(z.view(*z.shape, 1, 1))
        except Exception:  # noqa: BLE001 - it fails either way: report the first error
            raise CheckFailed(
                f"{what} crashed on z of shape {tuple(z.shape)}: {first_line(err)}. "
                "Print the shape after each layer to find the one that does not fit."
            ) from err
        raise CheckFailed(
            f"{what} crashed on z of shape {tuple(z.shape)} but runs on "
            f"{tuple(z.shape) + (1, 1)}: forward must reshape z itself "
            "(z.view(z.size(0), -1, 1, 1)); callers pass plain (B, nz) vectors"
        ) from err


def _check_depends_on_z(gen, nz, g):
    """Every image comes from its own z, and from nothing else: no fresh noise, no constant."""
    z = torch.randn(4, nz, generator=g)
    with torch.no_grad():
        same = torch.allclose(gen(z), gen(z), atol=1e-6)
    gen.eval()  # batch statistics would tie the images of a batch together
    try:
        with torch.no_grad():
            a, b = gen(z), gen(z)
            shuffled, pair = gen(z[[2, 0, 3, 1]]), gen(z[:2])
        fail_unless(
            same and torch.allclose(a, b, atol=1e-6),
            "the same z gave different images in two calls: do not draw new noise (torch.randn) "
            "or use dropout inside forward; the randomness comes in as z",
        )
        fail_unless(
            (a - a[:1]).abs().amax() > 1e-6,
            "the images do not depend on z (every z gives the same image): feed z itself "
            "through the layers, not a learned constant or fresh zeros",
        )
        unused = _unused_coordinates(gen, z[:1], g)
        fail_unless(
            unused == 0,
            f"the images ignore {unused} of the nz = {nz} coordinates of z: view z as "
            "(B, nz, 1, 1), so that the projection sees all of it",
        )
        fail_unless(
            torch.allclose(shuffled, a[[2, 0, 3, 1]], atol=1e-5),
            "image i must depend on z[i] only: keep the batch dimension first when you reshape z "
            "(z.view(z.size(0), -1, 1, 1))",
        )
        fail_unless(  # a shuffle keeps batch statistics; a smaller batch does not
            torch.allclose(pair, a[:2], atol=1e-5),
            "the first two images change when the batch holds only them: image i must depend on "
            "z[i] only, so do not normalise z (or anything) with statistics of the batch in "
            "forward; BatchNorm layers do that in training mode only",
        )
    finally:
        gen.train()


def _unused_coordinates(gen, z, g):
    """How many coordinates of z leave the image unchanged (in eval mode): by the gradient, or,
    where no gradient reaches z (a detached z is fine), by moving each coordinate in turn."""
    zz = z.clone().requires_grad_(True)
    out = gen(zz)
    if out.requires_grad:
        (grad,) = torch.autograd.grad(
            (out * torch.randn(out.shape, generator=g)).sum(), zz, allow_unused=True
        )
        if grad is not None and grad.abs().sum() > 0:
            return int((grad == 0).sum())
    with torch.no_grad():
        moved = gen(torch.cat([z, z + torch.eye(z.size(1))]))
    return int(((moved[1:] - moved[:1]).flatten(1).abs().amax(1) == 0).sum())


@graded
def check_generator_output(Generator):
    """z (B, nz) -> images (B, C, H, W) in [-1, 1] through tanh, each made from its own z."""
    g = seeded(0)
    gen = build(Generator, "Generator")
    nz = getattr(gen, "nz", 100)
    z = torch.randn(6, nz, generator=g)
    out = _generate(gen, z, "Generator()")
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
    fail_unless(
        out.requires_grad,
        "the output does not require grad: do not detach or use torch.no_grad() inside forward, "
        "the generator learns through its images",
    )
    ops = _last_ops(out, 4)
    if ops[:1] in (["Clamp"], ["Hardtanh"]) and ops[1:2] == ["Tanh"]:
        ops = ops[1:]  # a clamp after the tanh changes nothing: tanh is within [-1, 1] already
    last = ops[0] if ops else None
    if last == "Sigmoid":
        raise CheckFailed(
            "the generator ends with a sigmoid, so its images are in (0, 1) while the real ones "
            "are in [-1, 1]: end with nn.Tanh()"
        )
    if last in ("Clamp", "Hardtanh"):
        raise CheckFailed(
            f"the generator's last operation is {last}: a clamp's gradient is 0 wherever it "
            "cuts, so those pixels stop learning; end with nn.Tanh(), which bounds the images "
            "smoothly"
        )
    if last != "Tanh" and "Sigmoid" in ops:
        raise CheckFailed(
            f"the generator's last operation is {last}, on a sigmoid: rescaling a sigmoid to "
            "[-1, 1] is tanh written the long way; end with nn.Tanh(), as the docstring lists"
        )
    if last != "Tanh" and "Tanh" in ops:
        raise CheckFailed(
            f"the generator's last operation is {last}, after the tanh: its images must be the "
            "tanh's output, in [-1, 1] like the real ones; do not rescale or shift them"
        )
    fail_unless(
        last == "Tanh",
        f"the generator's last operation is {last or 'none'}, not tanh: its images "
        "are not bounded to [-1, 1] like the real ones; end with nn.Tanh()",
    )
    _check_depends_on_z(build(Generator, "Generator", nz=nz, ngf=8), nz, g)
    small = build(Generator, "Generator", nz=16)
    y = _generate(small, torch.randn(2, 16, generator=g), "Generator(nz=16)")
    fail_unless(
        tuple(getattr(y, "shape", ())) == (2, 1, 28, 28),
        f"Generator(nz=16) gives {tuple(getattr(y, 'shape', ()))} for z of shape (2, 16); "
        "build the projection from nz",
    )
    for channels, size in ((3, 32), (3, 64)):
        what = f"Generator(channels={channels}, image_size={size}, ngf=8)"
        big = build(Generator, "Generator", channels=channels, image_size=size, ngf=8)
        y = _generate(big, torch.randn(2, nz, generator=g), what)
        fail_unless(
            tuple(getattr(y, "shape", ())) == (2, channels, size, size),
            f"{what} gives {tuple(getattr(y, 'shape', ()))}; build the layers from "
            "dcgan_schedule(image_size)",
        )
    passed(
        "generator output",
        "(B, nz) -> (B, 1, 28, 28) in [-1, 1] via tanh, one image per z; also 3x32x32, 3x64x64",
    )


# -- the generator's architecture (exercise 3.3) -------------------------------------------


def _generator_spec(nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
    n_blocks, base = SCHEDULE[image_size]
    ch = ngf * 2 ** (n_blocks - 1)
    spec = [("ConvTranspose2d", nz, ch, base, 1, 0), ("BatchNorm2d", ch), ("ReLU",)]
    for i in range(n_blocks):
        last = i == n_blocks - 1
        out = channels if last else ch // 2
        if upsample == "transposed":
            spec.append(("ConvTranspose2d", ch, out, 4, 2, 1))
        else:
            spec += [("Upsample", 2.0, "nearest"), ("Conv2d", ch, out, 3, 1, 1)]
        spec += [("Tanh",)] if last else [("BatchNorm2d", out), ("ReLU",)]
        ch = out
    return spec


GENERATOR_CONFIGS = (
    {},
    {"upsample": "nearest", "ngf": 8},
    {"nz": 20, "ngf": 16},
    {"channels": 3, "image_size": 32, "ngf": 8, "upsample": "nearest"},
)


def _is_upsampling(k):
    return k[0] == "Upsample" or (k[0] == "ConvTranspose2d" and k[4] == 2)


def _generator_hint(layers, config):
    spec, net = _generator_spec(**config), label("Generator", config)
    nz, channels = config.get("nz", 100), config.get("channels", 1)
    size, ngf = config.get("image_size", 28), config.get("ngf", 64)
    mode = config.get("upsample", "transposed")
    n_blocks, base = SCHEDULE[size]
    keys = [key(m) for m in layers]
    kinds = [k[0] for k in keys]
    if (mode == "nearest") != ("Upsample" in kinds):
        return f"{net} builds the other upsampling layers: pass upsample on to upsample_block"
    if not keys or keys[0][0] != "ConvTranspose2d":
        return (
            f"{net} starts with {show(keys[0]) if keys else 'nothing'}: the projection is "
            "ConvTranspose2d(nz, C, kernel_size=base) on z viewed as (B, nz, 1, 1)"
        )
    ups = [i for i, k in enumerate(keys) if _is_upsampling(k)]
    if len(ups) != n_blocks:
        return (
            f"{net} has {len(ups)} upsampling blocks; dcgan_schedule({size}) gives n_blocks = "
            f"{n_blocks} ({base} doubled up to {size})"
        )
    proj = keys[0]
    if proj[1] != nz:
        return f"{net}: the projection takes {proj[1]} channels; z has nz = {nz}"
    if proj[3:] != (base, 1, 0):
        return (
            f"{net}: the projection is {show(proj)}; it is ConvTranspose2d(nz, C, kernel_size="
            f"base = {base}), stride 1, no padding: z (B, nz, 1, 1) becomes (B, C, {base}, {base})"
        )
    out_convs = [
        keys[i + 1] if keys[i][0] == "Upsample" and i + 1 < len(keys) else keys[i] for i in ups
    ]
    widths = [proj[2]] + [k[2] if len(k) > 2 else None for k in out_convs]
    want = [ngf * 2 ** (n_blocks - 1) // 2**i for i in range(n_blocks)] + [channels]
    if widths != want:
        return (
            f"{net}: the widths are {widths}; they follow ngf: {want} (C = ngf * 2**(n_blocks - 1), "
            "halved by each block, `channels` at the end)"
        )
    i = first_difference(layers, spec)
    got, want = (keys[i] if i < len(keys) else None), (spec[i] if i < len(spec) else None)
    found = show(got) if got else "nothing"
    if want is None:
        return f"{net}: {show(got)} after the Tanh; the Tanh is the last layer"
    if i in (1, 2):
        return f"{net}: after the projection come BatchNorm2d and ReLU (found {found})"
    if want[0] == "Tanh":
        if got and got[0] == "BatchNorm2d":
            return (
                "BatchNorm right before the output tanh: leave it out on the output layer, it "
                "would fix the mean and spread of the generated pixels"
            )
        return f"{net}: the last block must be followed by nn.Tanh() only (found {found})"
    if got and got[0] == "Tanh":
        return f"{net}: Tanh before the last block; it belongs at the output only"
    if want[0] == "BatchNorm2d":
        nxt = next((j for j in range(i, len(keys)) if _is_upsampling(keys[j])), len(keys))
        if "BatchNorm2d" in kinds[i:nxt]:
            return f"{net}: BatchNorm after the ReLU; each block is upsampling, BatchNorm, ReLU"
        return f"{net}: a block lacks its BatchNorm2d; every block but the last is followed by BatchNorm2d and ReLU"
    if want[0] == "ReLU":
        return f"{net}: BatchNorm2d is followed by ReLU in every block but the last (found {found})"
    return f"{net}: layer {i + 1} is {show(got) if got else 'missing'}, expected {show(want)}"


@graded
def check_generator_architecture(Generator):
    """The DCGAN rules for the generator, in both upsampling variants and at other widths."""
    seeded(0)
    gen = build(Generator, "Generator")
    fail_unless(isinstance(gen, nn.Module), "Generator must subclass nn.Module")
    fail_unless(not layers_of(gen, *POOLING), "the generator must not pool")
    fail_unless(
        not layers_of(gen, nn.LeakyReLU) and layers_of(gen, nn.ReLU),
        "the DCGAN generator uses ReLU between layers (LeakyReLU is for the critic)",
    )
    fail_unless(
        not layers_of(gen, nn.Linear),
        "the generator uses nn.Linear: project z with ConvTranspose2d(nz, C, kernel_size=base) "
        "on z viewed as (B, nz, 1, 1)",
    )
    fail_unless(
        layers_of(gen, nn.BatchNorm2d) and not layers_of(gen, *OTHER_NORMS),
        "the generator normalises with BatchNorm2d after the projection and every block but the last",
    )
    fail_unless(
        layers_of(gen, nn.Tanh),
        "the generator has no nn.Tanh layer; it needs exactly one nn.Tanh, at the end of "
        + (
            "self.net, where its nn.Sigmoid is: the images must be in [-1, 1] like the real ones"
            if layers_of(gen, nn.Sigmoid)
            else "self.net (a torch.tanh or F.tanh call in forward is not one of self.net's "
            "layers, which the docstring lists)"
        ),
    )
    fail_unless(len(layers_of(gen, nn.Tanh)) == 1, "exactly one nn.Tanh, at the output")
    for config in GENERATOR_CONFIGS:
        net = gen if not config else build(Generator, "Generator", **config)
        layers = executed_layers(net, torch.zeros(2, config.get("nz", 100)))
        if first_difference(layers, _generator_spec(**config)) is not None:
            raise CheckFailed(_generator_hint(layers, config))
    passed("generator architecture", "both variants follow the DCGAN rules; " + describe(gen))
