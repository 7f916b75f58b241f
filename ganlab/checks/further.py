"""Checks for chapter 7 (notebook 07_going_further): the WGAN-GP gradient penalty (optional)."""

import torch
from torch import nn

from ._core import CheckFailed, fail_unless, passed, seeded


class _LinearCritic(nn.Module):
    """D(x) = <w, x>: its gradient is w at every point, so the penalty is known exactly."""

    def __init__(self, norm):
        super().__init__()
        w = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(5))
        self.w = nn.Parameter(w / w.norm() * norm)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def check_gradient_penalty(gradient_penalty):
    """``gradient_penalty(critic, real, fake, weight=10.0)`` of Gulrajani et al. (2017)."""
    seeded(0)
    real, fake = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4)
    critic = _LinearCritic(norm=3.0)
    gp = gradient_penalty(critic, real, fake, weight=10.0)
    fail_unless(
        isinstance(gp, torch.Tensor) and gp.dim() == 0, "return the penalty as a scalar tensor"
    )
    value = gp.item()
    if abs(value - 10 * (3 * 8**0.5 - 1) ** 2) < 1e-2:
        raise CheckFailed(
            "the gradient norm was taken over the whole batch: take it per sample "
            "(grad.flatten(1).norm(dim=1)), then average the squared distances to 1"
        )
    if abs(value - 10 * (9 - 1) ** 2) < 1e-2:
        raise CheckFailed(
            "you penalised the squared norm: the penalty is (||grad|| - 1)^2, with the plain L2 norm"
        )
    if abs(value - 4.0) < 1e-3:
        raise CheckFailed(
            "the weight (lambda = 10) is missing: return weight * mean((||grad|| - 1)^2)"
        )
    fail_unless(
        abs(value - 40.0) < 1e-3,
        f"for a critic whose gradient has norm 3 everywhere the penalty must be "
        f"10 * (3 - 1)^2 = 40, got {value:.4f}",
    )
    fail_unless(
        gp.requires_grad,
        "the penalty has no graph: pass create_graph=True to torch.autograd.grad, "
        "the critic must be trained through the penalty",
    )
    gp.backward()
    fail_unless(
        critic.w.grad is not None and critic.w.grad.abs().sum() > 0,
        "no gradient reaches the critic's weights: use create_graph=True",
    )
    passed("gradient_penalty", "40.0 for a critic with gradient norm 3, differentiable")
