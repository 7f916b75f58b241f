"""The parts other exercises build on, exactly as their docstrings state them.

A check grades one exercise. The network checks build the student's Critic and
Generator with this ``init_dcgan_weights`` and ``upsample_block``, the step checks run
the student's steps with these losses, the slerp check gives slerp this ``lerp``: a bug
in one of those costs only its own check (``_core.substituted`` swaps them in).

They are answers, so a student copy does not get this file: ``export-student`` puts
``checks/_answer_free.py`` in its place, whose names call the student's own
functions, and refuses to write a copy in which any solution block's code appears.
"""

import torch
import torch.nn.functional as F
from torch import nn


def init_dcgan_weights(module):
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def upsample_block(in_channels, out_channels, mode="transposed"):
    if mode == "transposed":
        return nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False)
    if mode == "nearest":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        )
    raise ValueError(f"unknown upsample mode {mode!r}; choose 'transposed' or 'nearest'")


def bce(logits, target):
    """Mean binary cross-entropy on logits, written as softplus: -y log s(l) - (1-y) log(1-s(l))."""
    return (F.softplus(logits) - target * logits).mean()


def critic_loss(real_logits, fake_logits, real_label=1.0):
    return bce(real_logits, real_label) + bce(fake_logits, 0.0)


def generator_loss(fake_logits):
    return bce(fake_logits, 1.0)


def lerp(z0, z1, t):
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device).unsqueeze(-1)  # (1,) or (T, 1)
    return (1 - t) * z0 + t * z1
