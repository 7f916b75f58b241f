"""Planted mistakes: wrong versions of each exercise, built from the reference solutions.

Each entry is (check name, a wrong implementation, text the failure message must contain).
They are the mistakes students actually make; a check that lets one through is a bug.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import transforms

from ganlab.losses import critic_loss, generator_loss
from ganlab.models import Critic, Generator, init_dcgan_weights, upsample_block


def _replace(net, match, make):
    return nn.Sequential(*[make(m) if match(m) else m for m in net])


class SigmoidModuleCritic(Critic):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.net.append(nn.Sigmoid())


class SigmoidForwardCritic(Critic):
    def forward(self, x):
        return torch.sigmoid(super().forward(x))


class PoolingCritic(Critic):
    def __init__(self, **kw):
        super().__init__(**kw)
        layers = []
        for m in self.net:
            if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
                layers += [nn.Conv2d(m.in_channels, m.out_channels, 3, padding=1), nn.MaxPool2d(2)]
            else:
                layers.append(m)
        self.net = nn.Sequential(*layers)


class ReluCritic(Critic):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.net = _replace(self.net, lambda m: isinstance(m, nn.LeakyReLU), lambda m: nn.ReLU())


class InputBatchNormCritic(Critic):
    def __init__(self, **kw):
        super().__init__(**kw)
        first = self.net[0]
        self.net = nn.Sequential(first, nn.BatchNorm2d(first.out_channels), *list(self.net)[1:])


class LinearHeadCritic(Critic):
    def __init__(self, **kw):
        super().__init__(**kw)
        last = self.net[-1]
        size = last.kernel_size[0]
        self.net[-1] = nn.Sequential(nn.Flatten(), nn.Linear(last.in_channels * size * size, 1))


class NoDropoutCritic(Critic):
    def __init__(self, channels=1, image_size=28, ndf=64, dropout=0.0):
        super().__init__(channels, image_size, ndf, 0.0)


class ColumnCritic(Critic):
    def forward(self, x):
        return self.net(x).view(-1, 1)


class Only28Critic(Critic):
    def __init__(self, channels=1, image_size=28, ndf=64, dropout=0.0):
        super().__init__(channels, 28, ndf, dropout)


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


class NoTanhGenerator(Generator):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.net = self.net[:-1]


class SigmoidGenerator(Generator):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.net[-1] = nn.Sigmoid()


class OutputBatchNormGenerator(Generator):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.net = nn.Sequential(*list(self.net)[:-1], nn.BatchNorm2d(self.channels), nn.Tanh())


class IgnoresUpsampleGenerator(Generator):
    def __init__(self, nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
        super().__init__(nz, channels, image_size, ngf, "transposed")


class Padding0Generator(Generator):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.net = _replace(
            self.net,
            lambda m: isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2),
            lambda m: nn.ConvTranspose2d(m.in_channels, m.out_channels, 4, 2, 0),
        )


def nearest_with_deconv(i, o, mode="transposed"):
    if mode == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=2), nn.ConvTranspose2d(i, o, 3, padding=1))
    return upsample_block(i, o, mode)


def silent_fallback(i, o, mode="transposed"):
    return upsample_block(i, o, mode if mode in ("transposed", "nearest") else "transposed")


def init_std_one(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 1.0)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)


def init_noop(m):
    pass


def init_bn_at_zero(m):
    init_dcgan_weights(m)
    if isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 0.0, 0.02)


PLANTED = [
    ("check_transform", lambda: transforms.ToTensor(), "[0, 1]"),
    (
        "check_transform",
        lambda: transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
        ),
        "MNIST's mean and std",
    ),
    ("check_transform", lambda: transforms.Compose([transforms.Resize(28)]), "not a tensor"),
    ("check_scaling", lambda x: x, "unchanged"),
    ("check_scaling", lambda x: (x + 1) / 2, "clamp"),
    ("check_scaling", lambda x: x / 2 + 1, "divided by 2 before adding 1"),
    ("check_count_parameters", lambda m: len(list(m.parameters())), "counted parameter tensors"),
    ("check_count_parameters", lambda m: sum(p.numel() for p in m.parameters()), "frozen"),
    ("check_conv_out_size", lambda n, k, s=1, p=0: (n + 2 * p - k) // s, "forgot the + 1"),
    ("check_conv_out_size", lambda n, k, s=1, p=0: (n + 2 * p - k) / s + 1, "return an int"),
    ("check_conv_out_size", lambda n, k, s=1, p=0: (n - k) // s + 1, "both sides"),
    ("check_deconv_out_size", lambda n, k, s=1, p=0: n * s - 2 * p + k, "(n - 1) * stride"),
    ("check_deconv_out_size", lambda n, k, s=1, p=0: (n + 2 * p - k) // s + 1, "Conv2d formula"),
    ("check_init", init_std_one, "third argument"),
    ("check_init", init_noop, "unchanged"),
    ("check_init", init_bn_at_zero, "centred at 0"),
    (
        "check_critic_architecture",
        PoolingCritic,
        "MaxPool2d: DCGAN downsamples with stride-2 convolutions",
    ),
    ("check_critic_architecture", SigmoidModuleCritic, "remove it, the loss expects logits"),
    ("check_critic_architecture", ReluCritic, "LeakyReLU"),
    ("check_critic_architecture", InputBatchNormCritic, "first (input) conv"),
    ("check_critic_architecture", LinearHeadCritic, "nn.Linear"),
    ("check_critic_architecture", NoDropoutCritic, "dropout"),
    (
        "check_critic_output",
        SigmoidForwardCritic,
        "critic returns values in (0, 1): remove the final sigmoid",
    ),
    ("check_critic_output", ColumnCritic, "flatten it to (B,)"),
    ("check_critic_output", Only28Critic, "dcgan_schedule"),
    ("check_upsample_block", nearest_with_deconv, "checkerboard"),
    ("check_upsample_block", silent_fallback, "did not raise ValueError"),
    (
        "check_generator_output",
        FlatGenerator,
        "generator output has shape (B, 784): reshape to (B, 1, 28, 28)",
    ),
    ("check_generator_output", NoTanhGenerator, "nn.Tanh()"),
    ("check_generator_output", SigmoidGenerator, "ends with a sigmoid"),
    ("check_generator_output", Padding0Generator, "expected 28x28"),
    (
        "check_generator_architecture",
        OutputBatchNormGenerator,
        "BatchNorm right before the output tanh",
    ),
    ("check_generator_architecture", IgnoresUpsampleGenerator, "upsample argument"),
    (
        "check_critic_loss",
        lambda r, f, real_label=1.0: critic_loss(r, f, real_label) / 2,
        "do not average",
    ),
    (
        "check_critic_loss",
        lambda r, f, real_label=1.0: critic_loss(f, r, real_label),
        "swapped targets",
    ),
    (
        "check_critic_loss",
        lambda r, f, real_label=1.0: critic_loss(torch.sigmoid(r), torch.sigmoid(f)),
        "applies a sigmoid",
    ),
    ("check_critic_loss", lambda r, f, real_label=1.0: critic_loss(r, f), "ignores real_label"),
    (
        "check_critic_loss",
        lambda r, f, real_label=1.0: (
            F.binary_cross_entropy_with_logits(r, torch.full_like(r, real_label))
            + F.binary_cross_entropy_with_logits(f, torch.full_like(f, 1 - real_label))
        ),
        "one-sided",
    ),
    (
        "check_critic_loss",
        lambda r, f, real_label=1.0: critic_loss(r, f, real_label).item(),
        "returned float",
    ),
    (
        "check_critic_loss",
        lambda r, f, real_label=1.0: (
            F.binary_cross_entropy(torch.sigmoid(r), torch.full_like(r, real_label))
            + F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f))
        ),
        "binary_cross_entropy_with_logits",
    ),
    ("check_generator_loss", lambda f: -F.softplus(f).mean(), "saturating"),
    (
        "check_generator_loss",
        lambda f: F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)),
        "target 0",
    ),
    ("check_generator_loss", lambda f: generator_loss(f).detach(), "without a graph"),
    ("check_saturating_loss", lambda f: F.softplus(f).mean(), "wrong sign"),
    ("check_saturating_loss", lambda f: F.softplus(-f).mean(), "non-saturating"),
    (
        "check_saturating_loss",
        lambda f: torch.log(1 - torch.sigmoid(f)).mean(),
        "sigmoid saturates",
    ),
    ("check_generator_loss", lambda f: -torch.log(torch.sigmoid(f)).mean(), "sigmoid saturates"),
]


# -- chapter 5: the training step -------------------------------------------------------
from ganlab.latent import lerp, slerp  # noqa: E402


def critic_step_no_detach(critic, generator, real, z, opt_c, real_label=1.0):
    opt_c.zero_grad()
    loss = critic_loss(critic(real), critic(generator(z)), real_label)
    loss.backward()
    opt_c.step()
    return {"loss_c": loss.detach(), "d_real": torch.tensor(0.5), "d_fake": torch.tensor(0.5)}


def critic_step_no_zero_grad(critic, generator, real, z, opt_c, real_label=1.0):
    loss = critic_loss(critic(real), critic(generator(z).detach()), real_label)
    loss.backward()
    opt_c.step()
    return {"loss_c": loss.detach(), "d_real": torch.tensor(0.5), "d_fake": torch.tensor(0.5)}


def generator_step_detached(critic, generator, z, opt_g):
    opt_g.zero_grad()
    logits = critic(generator(z).detach())
    loss = generator_loss(logits)
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(logits).mean().detach()}


def generator_step_no_zero_grad(critic, generator, z, opt_g):
    logits = critic(generator(z))
    loss = generator_loss(logits)
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(logits).mean().detach()}


def generator_step_saturating(critic, generator, z, opt_g):
    opt_g.zero_grad()
    logits = critic(generator(z))
    loss = -F.softplus(logits).mean()
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(logits).mean().detach()}


def _adam(params, betas=(0.5, 0.999)):
    return torch.optim.Adam(params, lr=2e-4, betas=betas)


PLANTED += [
    ("check_critic_step", critic_step_no_detach, "detach the fakes"),
    ("check_critic_step", critic_step_no_zero_grad, "zero_grad()"),
    ("check_generator_step", generator_step_detached, "do not detach"),
    ("check_generator_step", generator_step_no_zero_grad, "zero_grad()"),
    ("check_generator_step", generator_step_saturating, "saturating"),
    (
        "check_optimizers",
        lambda c, g: (_adam(g.parameters()), _adam(c.parameters())),
        "wrong optimizer",
    ),
    (
        "check_optimizers",
        lambda c, g: (_adam(c.parameters(), (0.9, 0.999)), _adam(g.parameters(), (0.9, 0.999))),
        "default betas",
    ),
    (
        "check_optimizers",
        lambda c, g: (lambda o: (o, o))(_adam(list(c.parameters()) + list(g.parameters()))),
        "one optimizer for both",
    ),
    ("check_lerp", lambda z0, z1, t: lerp(z1, z0, t), "swapped"),
    ("check_lerp", lambda z0, z1, t: (1 - t) * z0 + t * z1, "broadcast"),
    ("check_slerp", lerp, "that is lerp"),
    ("check_slerp", lambda z0, z1, t, eps=0.0: slerp(z0, z1, t, eps=-1.0), "parallel"),
    (
        "check_latent_grid",
        lambda z0, z1, z2, rows, cols: torch.stack(
            [
                z0 + a * (z2 - z0) + b * (z1 - z0)
                for a in torch.linspace(0, 1, rows)
                for b in torch.linspace(0, 1, cols)
            ]
        ),
        "z1 is at the top right",
    ),
]
