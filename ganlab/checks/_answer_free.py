"""The parts other exercises build on: in a student copy, your own.

In the instructor's copy this module holds the checks' own versions of
``init_dcgan_weights``, ``upsample_block``, the two losses and ``lerp``: the network, step
and slerp checks swap them in (``_core.substituted``), so that a bug in one of those costs
only its own check when the instructor grades. A copy handed to students must not carry
those answers, so here each name calls *your* function in ``ganlab/`` (looked up at every
call, so an edit that autoreload picks up counts at once). A check that builds on one of
them therefore passes only once that exercise does too: if check 3.3 fails, check 3.1
(``upsample_block``) may be the reason, and the notebook's order is the order to fix them.

(In the instructor's kit this file is ``checks/_answer_free.py``: ``export-student`` makes it
the copy's ``checks/_reference.py``, and the grader gives it to every sandbox in that place.)
"""

import importlib

import torch.nn.functional as F


def _own(module, name):
    return getattr(importlib.import_module(f"ganlab.{module}"), name)


def _yours(function):
    function.students_own = True  # _core.substituted leaves the student's names alone for these
    return function


@_yours
def init_dcgan_weights(module):
    return _own("models", "init_dcgan_weights")(module)


@_yours
def upsample_block(in_channels, out_channels, mode="transposed"):
    return _own("models", "upsample_block")(in_channels, out_channels, mode)


@_yours
def critic_loss(real_logits, fake_logits, real_label=1.0):
    return _own("losses", "critic_loss")(real_logits, fake_logits, real_label)


@_yours
def generator_loss(fake_logits):
    return _own("losses", "generator_loss")(fake_logits)


@_yours
def lerp(z0, z1, t):
    return _own("latent", "lerp")(z0, z1, t)


def bce(logits, target):
    """Mean binary cross-entropy on logits, written as softplus: -y log s(l) - (1-y) log(1-s(l))."""
    return (F.softplus(logits) - target * logits).mean()
