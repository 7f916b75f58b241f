"""Checks for chapter 4 (notebook 04_losses): numeric values on fixed logits, and the usual mistakes.

The reference numbers are written out (not recomputed with the reference code) so
that a check cannot agree with a wrong solution by sharing its bug.
"""

import torch
import torch.nn.functional as F

from ._core import CheckFailed, fail_unless, passed

REAL = torch.tensor([2.0, -1.0, 0.5, 3.0])
FAKE = torch.tensor([-2.0, 1.0, 0.0, -0.5])
# mean(softplus(-REAL)) + mean(softplus(FAKE)), and the same with real targets 0.9.
CRITIC_LOSS = 1.1425669
CRITIC_LOSS_SMOOTH = 1.2550670
# mean(softplus(-FAKE)): -log D(G(z)), the non-saturating generator loss.
GENERATOR_LOSS = 1.0268536
# mean(log(1 - sigmoid(FAKE))) = -mean(softplus(FAKE)): the saturating (minimax) generator term.
SATURATING_LOSS = -0.6518534


def _value(loss, what):
    fail_unless(
        isinstance(loss, torch.Tensor),
        f"{what} returned {type(loss).__name__}: return a tensor (a Python float has no gradient)",
    )
    fail_unless(
        loss.dim() == 0,
        f"{what} returned shape {tuple(loss.shape)}: reduce to a scalar with .mean()",
    )
    return loss.item()


def _check_extreme(loss, expected, what):
    """Very confident logits: sigmoid rounds to exactly 0 or 1 in float32, so log(sigmoid(l)) is -inf
    (or, through BCELoss, clamped to -100). Only the logit form stays exact."""
    value = loss.item() if isinstance(loss, torch.Tensor) else float(loss)
    fail_unless(
        abs(value - expected) < 1e-3,
        f"{what} gives {value} for logits of +-200, expected {expected}: sigmoid saturates to exactly "
        "0 or 1 there and log() breaks (BCELoss clamps it at -100); work on logits with "
        "binary_cross_entropy_with_logits, or softplus",
    )


def _call(fn, *args):
    leaves = [a.clone().requires_grad_(True) if isinstance(a, torch.Tensor) else a for a in args]
    return fn(*leaves), leaves


def check_critic_loss(critic_loss):
    loss, (real, fake) = _call(critic_loss, REAL, FAKE)
    value = _value(loss, "critic_loss")
    fail_unless(
        loss.requires_grad,
        "critic_loss returned a tensor without a graph: no .item(), .detach() "
        "or torch.no_grad() inside the loss",
    )
    swapped = (F.softplus(REAL).mean() + F.softplus(-FAKE).mean()).item()
    on_probs = (
        F.binary_cross_entropy_with_logits(torch.sigmoid(REAL), torch.ones(4))
        + F.binary_cross_entropy_with_logits(torch.sigmoid(FAKE), torch.zeros(4))
    ).item()
    if abs(value - CRITIC_LOSS / 2) < 1e-4:
        raise CheckFailed(
            "critic_loss is half the expected value: add the real and the fake terms, do not average them"
        )
    if abs(value - swapped) < 1e-4:
        raise CheckFailed(
            "critic_loss uses swapped targets: real images get 1 (real_label), fakes get 0"
        )
    if abs(value - on_probs) < 1e-4:
        raise CheckFailed(
            "critic_loss applies a sigmoid before binary_cross_entropy_with_logits: it takes "
            "the raw logits and applies the sigmoid itself"
        )
    if abs(value + CRITIC_LOSS) < 1e-4:
        raise CheckFailed(
            "critic_loss has the wrong sign: BCE is already the negative log-likelihood to minimise"
        )
    fail_unless(
        abs(value - CRITIC_LOSS) < 1e-4,
        f"critic_loss on the fixed logits is {value:.5f}, expected {CRITIC_LOSS:.5f} "
        "= mean BCE(real logits, 1) + mean BCE(fake logits, 0)",
    )
    loss.backward()
    fail_unless(
        real.grad is not None and fake.grad is not None,
        "no gradient reaches the logits: keep both terms in the graph",
    )
    smooth, _ = _call(critic_loss, REAL, FAKE, 0.9)
    smooth_value = _value(smooth, "critic_loss(..., real_label=0.9)")
    if abs(smooth_value - CRITIC_LOSS) < 1e-6:
        raise CheckFailed(
            "critic_loss ignores real_label: the real targets must be real_label (0.9 with smoothing)"
        )
    both = (
        F.binary_cross_entropy_with_logits(REAL, torch.full((4,), 0.9))
        + F.binary_cross_entropy_with_logits(FAKE, torch.full((4,), 0.1))
    ).item()
    if abs(smooth_value - both) < 1e-4:
        raise CheckFailed(
            "label smoothing changed the fake targets to 0.1: smoothing is one-sided "
            "(Salimans et al. 2016), the fake targets stay exactly 0"
        )
    fail_unless(
        abs(smooth_value - CRITIC_LOSS_SMOOTH) < 1e-4,
        f"critic_loss(..., real_label=0.9) is {smooth_value:.5f}, expected {CRITIC_LOSS_SMOOTH:.5f}",
    )
    extreme, _ = _call(critic_loss, torch.tensor([200.0, -200.0]), torch.tensor([-200.0, 200.0]))
    _check_extreme(extreme, 200.0, "critic_loss")
    passed(
        "critic_loss", f"{value:.5f} on the fixed logits, {smooth_value:.5f} with real_label=0.9"
    )


def check_generator_loss(generator_loss):
    loss, (fake,) = _call(generator_loss, FAKE)
    value = _value(loss, "generator_loss")
    fail_unless(
        loss.requires_grad,
        "generator_loss returned a tensor without a graph: its gradient must reach the generator",
    )
    if abs(value - SATURATING_LOSS) < 1e-4:
        raise CheckFailed(
            "generator_loss is the saturating log(1 - D(G(z))): its gradient vanishes while "
            "the critic wins; minimise -log D(G(z)) = BCE(fake logits, 1) instead"
        )
    if (
        abs(value + F.softplus(FAKE).mean().item()) < 1e-4
        or abs(value - F.softplus(FAKE).mean().item()) < 1e-4
    ):
        raise CheckFailed(
            "generator_loss uses target 0 (the critic's target for fakes): the generator wants "
            "its fakes scored as real, target 1"
        )
    fail_unless(
        abs(value - GENERATOR_LOSS) < 1e-4,
        f"generator_loss on the fixed logits is {value:.5f}, expected {GENERATOR_LOSS:.5f} = mean BCE(fake logits, 1)",
    )
    loss.backward()
    fail_unless(
        fake.grad is not None and torch.all(fake.grad < 0),
        "the gradient must push every fake logit up (it is negative for each): check the target is 1",
    )
    extreme, _ = _call(generator_loss, torch.tensor([-200.0, 200.0]))
    _check_extreme(extreme, 100.0, "generator_loss")
    passed("generator_loss", f"{value:.5f} on the fixed logits, non-saturating")


def check_saturating_loss(saturating_generator_loss):
    """The minimax generator term mean(log(1 - D(G(z)))) on logits, to compare with the non-saturating one."""
    loss, (fake,) = _call(saturating_generator_loss, FAKE)
    value = _value(loss, "saturating_generator_loss")
    if abs(value + SATURATING_LOSS) < 1e-4:
        raise CheckFailed(
            "saturating_generator_loss has the wrong sign: it is mean(log(1 - D(G(z)))), "
            "which is negative, the generator minimises it"
        )
    if abs(value - GENERATOR_LOSS) < 1e-4:
        raise CheckFailed(
            "that is the non-saturating loss -log D(G(z)); this exercise asks for log(1 - D(G(z)))"
        )
    fail_unless(
        abs(value - SATURATING_LOSS) < 1e-4,
        f"saturating_generator_loss is {value:.5f}, expected {SATURATING_LOSS:.5f} = "
        "mean(log(1 - sigmoid(l))) = -mean(softplus(l))",
    )
    extreme, _ = _call(saturating_generator_loss, torch.tensor([-200.0, 200.0]))
    _check_extreme(extreme, -100.0, "saturating_generator_loss")
    passed("saturating_generator_loss", f"{value:.5f} on the fixed logits")
