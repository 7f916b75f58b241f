"""Checks for chapter 7 (notebook 07_going_further): the WGAN-GP gradient penalty (optional).

The check's critic is nonlinear, so its gradient differs from point to point, and it
records the points it is asked about: the check sees where the penalty was taken (on
x_hat = eps * real + (1 - eps) * fake with one eps ~ U[0, 1] per sample) and works out
the penalty there itself. Its images have three channels, so that a norm over the pixels of
each channel, or one eps per channel, cannot pass for the norm over every non-batch dimension.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ._core import CheckFailed, call, diagnose, fail_unless, graded, passed, seeded

B = 16
C, H = 3, 4  # the check's images: (B, C, H, H)


class _SpyCritic(nn.Module):
    """D(x) = w2 . tanh(W1 x): gradient norms from about 0.3 to 2.5 on the check's images."""

    def __init__(self, g):
        super().__init__()
        w1 = torch.randn(C * H * H, 12, generator=g) * 0.8 * (16 / (C * H * H)) ** 0.5
        w2 = torch.randn(12, generator=g)
        self.w1, self.w2 = nn.Parameter(w1), nn.Parameter(w2 / (w1 @ w2).norm() * 2.5)
        self.seen = []

    def score(self, x):
        return torch.tanh(x.flatten(1) @ self.w1) @ self.w2

    def forward(self, x):
        self.seen.append(x)
        return self.score(x)


def _batch(g):
    scale = torch.linspace(0.2, 3, B).view(B, 1, 1, 1)  # some points saturate tanh, some do not
    return torch.randn(B, C, H, H, generator=g) * scale, torch.randn(
        B, C, H, H, generator=g
    ) * scale


def _where(critic, real, fake):
    """The point x_hat the penalty was taken at, after checking it is a per-sample interpolation."""
    points = [x for x in critic.seen if isinstance(x, torch.Tensor) and x.requires_grad]
    fail_unless(
        points,
        "the critic never scored a point that requires grad: make x_hat with "
        "requires_grad_(True), then take the gradient of critic(x_hat) with respect to it",
    )
    x_hat = points[-1].detach()
    fail_unless(
        x_hat.shape == real.shape,
        f"the critic scored a batch of shape {tuple(x_hat.shape)}; x_hat has the shape of real",
    )
    d = (real - fake).flatten(1)
    eps = ((x_hat - fake).flatten(1) * d).sum(1) / (d * d).sum(1)
    rebuilt = fake + eps.view(-1, 1, 1, 1) * (real - fake)
    if not torch.allclose(x_hat, rebuilt, atol=1e-4):
        both = (real + fake).flatten(1)
        e = (x_hat.flatten(1) * both).sum(1) / (both * both).sum(1)
        if torch.allclose(x_hat, e.view(-1, 1, 1, 1) * (real + fake), atol=1e-4):
            raise CheckFailed(
                "x_hat = eps * real + eps * fake is not between the two images: the weights "
                "must add up to 1, x_hat = eps * real + (1 - eps) * fake"
            )
        raise CheckFailed(
            "x_hat is not on the line between each real image and its fake: draw one eps per "
            "sample, shape (B, 1, 1, 1) (not one per pixel or per channel), and take "
            "eps * real + (1 - eps) * fake"
        )
    if torch.allclose(eps, torch.ones(B), atol=1e-4):
        raise CheckFailed(
            "the penalty is taken at the real images: interpolate x_hat = eps * real + "
            "(1 - eps) * fake, with eps ~ U[0, 1] per sample"
        )
    if torch.allclose(eps, torch.zeros(B), atol=1e-4):
        raise CheckFailed(
            "the penalty is taken at the fake images: interpolate x_hat = eps * real + "
            "(1 - eps) * fake, with eps ~ U[0, 1] per sample"
        )
    fail_unless(
        eps.min() > -1e-4 and eps.max() < 1 + 1e-4,
        f"eps goes from {eps.min():.2f} to {eps.max():.2f}: draw it uniformly from [0, 1] "
        "with torch.rand (torch.randn is Gaussian)",
    )
    fail_unless(
        eps.max() - eps.min() > 1e-4,
        f"every sample has the same eps ({eps[0]:.2f}): draw one per sample, "
        "torch.rand(B, 1, 1, 1)",
    )
    return x_hat, eps


def _penalty(critic, x_hat, eps, weight):
    x = x_hat.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic.score(x).sum(), x)
    n = grad.flatten(1).norm(dim=1)
    want = weight * ((n - 1) ** 2).mean().item()
    variants = {
        "the gradient norm was taken over the whole batch: take it per sample "
        "(grad.flatten(1).norm(dim=1)), then average the squared distances to 1": weight
        * (grad.norm().item() - 1) ** 2,
        "you penalised the squared norm: the penalty is (||grad|| - 1)^2, with the plain L2 "
        "norm": weight * ((n**2 - 1) ** 2).mean().item(),
        "the weight (lambda) is missing: return weight * mean((||grad|| - 1)^2)": want / weight,
        "the mean of the norms was penalised: average the squared distances "
        "(||grad_i|| - 1)^2 instead": weight * (n.mean().item() - 1) ** 2,
        "sum over the batch instead of the mean": weight * ((n - 1) ** 2).sum().item(),
        "the penalty is two-sided: (||grad|| - 1)^2 also when the norm is below 1": weight
        * (F.relu(n - 1) ** 2).mean().item(),
        "norm(dim=1) of a (B, C, H, W) gradient spans the channels only: flatten it first, "
        "grad.flatten(1).norm(dim=1)": weight * ((grad.norm(dim=1) - 1) ** 2).mean().item(),
        "square the distance: (||grad|| - 1)^2": weight * (n - 1).abs().mean().item(),
        "the gradient of critic(x_hat).mean() is each sample's gradient divided by B: "
        "differentiate critic(x_hat).sum() (each score depends on its own sample only)": weight
        * ((n / len(n) - 1) ** 2).mean().item(),
        "that is the L1 norm (the sum of |grad|): use the L2 norm, grad.flatten(1).norm(dim=1)": (
            weight * ((grad.flatten(1).abs().sum(1) - 1) ** 2).mean().item()
        ),
        "the norm was taken over each channel's pixels (dims 2 and 3) only: take it over every "
        "non-batch dimension, grad.flatten(1).norm(dim=1)": weight
        * ((grad.norm(dim=(2, 3)) - 1) ** 2).mean().item(),
        "square the distance: the penalty is (||grad|| - 1)^2, not ||grad|| - 1": weight
        * (n - 1).mean().item(),
        "that is the root mean square of the gradient (a mean over its pixels): the L2 norm "
        "sums the squares, grad.flatten(1).norm(dim=1)": weight
        * ((grad.flatten(1).pow(2).mean(1).sqrt() - 1) ** 2).mean().item(),
        "that is the mean of |grad| over the pixels: use the L2 norm of each sample's "
        "gradient, grad.flatten(1).norm(dim=1)": weight
        * ((grad.flatten(1).abs().mean(1) - 1) ** 2).mean().item(),
        "the weight is squared: multiply the mean of (||grad|| - 1)^2 by weight, outside the "
        "square": weight * want,
        "the gradient was taken with respect to real (eps times the one at x_hat): "
        "differentiate with respect to x_hat itself": weight * ((eps * n - 1) ** 2).mean().item(),
        "the gradient was taken with respect to fake ((1 - eps) times the one at x_hat): "
        "differentiate with respect to x_hat itself": weight
        * (((1 - eps) * n - 1) ** 2).mean().item(),
    }
    return want, variants


def _grad_hint(error):
    if "only for scalar outputs" in error:
        return (
            "critic(x_hat) holds one score per sample: differentiate critic(x_hat).sum(), or "
            "pass grad_outputs=torch.ones_like(scores)"
        )
    if "does not require grad" in error:
        return (
            "x_hat needs requires_grad_(True) before the critic scores it, and the critic must "
            "score it with gradients on (not under torch.no_grad(), not a detached copy)"
        )
    if "must match the size of tensor" in error:
        return (
            "eps must broadcast over the images: one eps per sample, of shape (B, 1, 1, 1), "
            "e.g. torch.rand(real.size(0), 1, 1, 1)"
        )
    return ""


@graded
def check_gradient_penalty(gradient_penalty):
    """``gradient_penalty(critic, real, fake, weight=10.0)`` of Gulrajani et al. (2017)."""
    g = seeded(70)
    real, fake = _batch(g)
    critic = _SpyCritic(g)
    what = "gradient_penalty(critic, real, fake, weight=10.0)"
    kept = real.clone(), fake.clone()
    gp = call(gradient_penalty, what, critic, real, fake, weight=10.0, hint=_grad_hint)
    fail_unless(
        torch.equal(real, kept[0]) and torch.equal(fake, kept[1]),
        "gradient_penalty changed real or fake in place (mul_, add_, lerp_): make x_hat a new "
        "tensor, eps * real + (1 - eps) * fake; the caller still needs both batches",
    )
    fail_unless(
        isinstance(gp, torch.Tensor) and gp.dim() == 0, "return the penalty as a scalar tensor"
    )
    fail_unless(
        critic.w1.grad is None and critic.w2.grad is None,
        "gradient_penalty left gradients in the critic's weights: take the gradient with "
        "torch.autograd.grad(..., create_graph=True), not backward(), which also adds "
        "dD/dweights to every weight's .grad and so to the critic's next update",
    )
    x_hat, eps = _where(critic, real, fake)
    want, variants = _penalty(critic, x_hat, eps, 10.0)
    hint = diagnose(gp.item(), want, variants)
    if hint is not None:
        raise CheckFailed(
            f"the penalty is {gp.item():.4f}, expected {want:.4f} = 10 * mean((||grad D(x_hat)|| "
            "- 1)^2) at the x_hat your code chose" + (f": {hint}" if hint else "")
        )
    fail_unless(
        gp.requires_grad,
        "the penalty has no graph: pass create_graph=True to torch.autograd.grad (and no "
        ".item(), .detach() or torch.tensor(...) on the result), the critic must be trained "
        "through the penalty",
    )
    gp.backward()
    fail_unless(
        critic.w1.grad is not None and critic.w1.grad.abs().sum() > 0,
        "no gradient reaches the critic's weights: use create_graph=True",
    )
    other = _SpyCritic(g)
    gp = call(
        gradient_penalty,
        "gradient_penalty(critic, real, fake, weight=2.5)",
        other,
        real,
        fake,
        weight=2.5,
    )
    want, _ = _penalty(other, *_where(other, real, fake), 2.5)
    fail_unless(
        abs(gp.item() - want) < 1e-4 * max(1.0, want),
        f"with weight=2.5 the penalty is {gp.item():.4f}, expected {want:.4f}: multiply by the "
        "weight argument, not by a fixed 10",
    )
    passed("gradient_penalty", "per-sample interpolation, per-sample norms, differentiable")
