"""Checks for chapter 5 (notebook 05_training): the optimizers and the two update steps.

The steps are checked on tiny networks with plain SGD, so that every update can be
predicted exactly: a weight moves by -lr * gradient, nothing else.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ._core import CheckFailed, fail_unless, passed, seeded

NZ, LR = 8, 0.1


def _tiny_pair():
    seeded(0)
    critic = nn.Sequential(
        nn.Conv2d(1, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(64, 1), nn.Flatten(0)
    )
    generator = nn.Sequential(nn.Linear(NZ, 64), nn.Tanh(), nn.Unflatten(1, (1, 8, 8)))
    return critic, generator


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(6, 1, 8, 8, generator=g) * 2 - 1, torch.randn(6, NZ, generator=g)


def _snapshot(model):
    return [p.detach().clone() for p in model.parameters()]


def _changed(model, before):
    return any(not torch.equal(p, b) for p, b in zip(model.parameters(), before))


STALE = 100.0  # a gradient left over from "a previous step"


def _fill_grads(model):
    for p in model.parameters():
        p.grad = torch.full_like(p, STALE)


def _sgd_step_was(model, before, grads, stale=0.0):
    """Did plain SGD move every weight by exactly lr * (grad + stale)?"""
    moved = [b - p.detach() for p, b in zip(model.parameters(), before)]
    return all(torch.allclose(m, LR * (g + stale), atol=1e-5) for m, g in zip(moved, grads))


def _check_outputs(out, keys, what):
    fail_unless(
        isinstance(out, dict) and set(keys) <= set(out),
        f"{what} must return a dict with keys {sorted(keys)}; got {out!r:.120}",
    )
    for key in keys:
        value = out[key]
        fail_unless(
            isinstance(value, torch.Tensor) and value.dim() == 0,
            f"{what}()[{key!r}] must be a 0-d tensor (no .item(): it would make the GPU wait every step)",
        )
        fail_unless(
            not value.requires_grad,
            f"{what}()[{key!r}] still holds the graph: return value.detach()",
        )


def check_optimizers(make_optimizers):
    """``make_optimizers(critic, generator)`` -> (opt_c, opt_g): two Adams, DCGAN's settings."""
    critic, generator = _tiny_pair()
    result = make_optimizers(critic, generator)
    fail_unless(isinstance(result, tuple) and len(result) == 2, "return a tuple (opt_c, opt_g)")
    opt_c, opt_g = result
    if opt_c is opt_g:
        raise CheckFailed(
            "one optimizer for both networks: each player needs its own, or the critic's "
            "update would also move the generator"
        )

    def ids(opt):
        return {id(p) for group in opt.param_groups for p in group["params"]}

    crit, gen = {id(p) for p in critic.parameters()}, {id(p) for p in generator.parameters()}
    if ids(opt_c) == gen and ids(opt_g) == crit:
        raise CheckFailed(
            "the optimizers are swapped: opt_c holds the generator's parameters (wrong optimizer)"
        )
    fail_unless(ids(opt_c) == crit, "opt_c must hold exactly critic.parameters()")
    fail_unless(ids(opt_g) == gen, "opt_g must hold exactly generator.parameters()")
    for name, opt in (("opt_c", opt_c), ("opt_g", opt_g)):
        fail_unless(
            isinstance(opt, torch.optim.Adam), f"{name} is {type(opt).__name__}; DCGAN uses Adam"
        )
        group = opt.param_groups[0]
        fail_unless(
            abs(group["lr"] - 2e-4) < 1e-12, f"{name} has lr={group['lr']}; Radford et al. use 2e-4"
        )
        if tuple(group["betas"]) == (0.9, 0.999):
            raise CheckFailed(
                f"{name} uses Adam's default betas (0.9, 0.999): Radford et al. found beta1 = 0.9 "
                "made training oscillate and use betas=(0.5, 0.999)"
            )
        fail_unless(
            tuple(group["betas"]) == (0.5, 0.999),
            f"{name} has betas={group['betas']}; use (0.5, 0.999)",
        )
    passed("optimizers", "two Adams, lr 2e-4, betas (0.5, 0.999)")


def _reference_critic_grads(critic, generator, real, z, real_label):
    """The gradient a correct critic step computes, worked out here with autograd."""
    critic.zero_grad(set_to_none=True)
    real_logits, fake_logits = critic(real), critic(generator(z).detach())
    loss = F.binary_cross_entropy_with_logits(
        real_logits, torch.full_like(real_logits, real_label)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    grads = torch.autograd.grad(loss, list(critic.parameters()))
    critic.zero_grad(set_to_none=True)
    return loss.detach(), grads


def check_critic_step(critic_step):
    """One critic update: only the critic moves, by exactly its fresh gradient."""
    critic, generator = _tiny_pair()
    real, z = _batch()
    want_loss, grads = _reference_critic_grads(critic, generator, real, z, 0.9)
    opt_c = torch.optim.SGD(critic.parameters(), lr=LR)
    before_c, before_g = _snapshot(critic), _snapshot(generator)
    _fill_grads(critic)
    out = critic_step(critic, generator, real, z, opt_c, real_label=0.9)
    fail_unless(
        not _changed(generator, before_g),
        "the generator's weights changed during the critic step: step only opt_c",
    )
    if any(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters()):
        raise CheckFailed(
            "gradients reached the generator in the critic step: detach the fakes "
            "(generator(z).detach()), the critic step must not backpropagate into G"
        )
    fail_unless(
        _changed(critic, before_c),
        "the critic's weights did not change: call loss.backward() and then "
        "opt_c.step() (in that order, after opt_c.zero_grad())",
    )
    if _sgd_step_was(critic, before_c, grads, stale=STALE):
        raise CheckFailed(
            "the critic step added the new gradient to the old one: call opt_c.zero_grad() before "
            "backward, gradients accumulate in PyTorch"
        )
    fail_unless(
        _sgd_step_was(critic, before_c, grads),
        "the critic moved, but not by the gradient of critic_loss(real, fake, real_label) on this batch: "
        "score both real and fake images, pass real_label on, and step once",
    )
    _check_outputs(out, ("loss_c", "d_real", "d_fake"), "critic_step")
    fail_unless(
        torch.allclose(out["loss_c"], want_loss, atol=1e-5),
        f"loss_c = {out['loss_c'].item():.5f}, expected {want_loss.item():.5f} (the loss before the step)",
    )
    fail_unless(
        0 < out["d_real"] < 1 and 0 < out["d_fake"] < 1,
        "d_real and d_fake are probabilities: the mean of sigmoid(logits)",
    )
    # A few steps on the same batch must teach the critic to separate it.
    opt = torch.optim.Adam(critic.parameters(), lr=1e-2)
    first = critic_step(critic, generator, real, z, opt)["loss_c"]
    for _ in range(30):
        last = critic_step(critic, generator, real, z, opt)["loss_c"]
    fail_unless(
        last < 0.5 * first,
        f"30 critic steps on one batch moved loss_c only from {first:.3f} to {last:.3f}",
    )
    passed("critic_step", f"only the critic learns; loss_c {first:.3f} -> {last:.3f} in 30 steps")


def check_generator_step(generator_step):
    """One generator update: only the generator moves, along the non-saturating loss."""
    critic, generator = _tiny_pair()
    _, z = _batch()
    opt_g = torch.optim.SGD(generator.parameters(), lr=LR)
    logits = critic(generator(z))
    want_loss = F.softplus(-logits).mean()
    grads = torch.autograd.grad(want_loss, list(generator.parameters()))
    before_c, before_g = _snapshot(critic), _snapshot(generator)
    _fill_grads(generator)
    out = generator_step(critic, generator, z, opt_g)
    fail_unless(
        not _changed(critic, before_c),
        "the critic's weights changed during the generator step: "
        "step only opt_g (wrong optimizer?)",
    )
    fail_unless(
        _changed(generator, before_g),
        "the generator did not change: do not detach its images in the "
        "generator step, and call opt_g.step() after backward",
    )
    if _sgd_step_was(generator, before_g, grads, stale=STALE):
        raise CheckFailed(
            "the generator step added the new gradient to the old one: call opt_g.zero_grad() "
            "before backward"
        )
    _check_outputs(out, ("loss_g", "d_fake_g"), "generator_step")
    if torch.allclose(out["loss_g"], -F.softplus(logits).mean().detach(), atol=1e-5):
        raise CheckFailed(
            "loss_g is the saturating loss log(1 - D(G(z))): use generator_loss (non-saturating)"
        )
    fail_unless(
        torch.allclose(out["loss_g"], want_loss.detach(), atol=1e-5),
        f"loss_g = {out['loss_g'].item():.5f}, expected {want_loss.item():.5f} = generator_loss(critic(G(z)))",
    )
    fail_unless(
        _sgd_step_was(generator, before_g, grads),
        "the generator moved, but not by the gradient of generator_loss: backpropagate the loss "
        "through the critic into the generator and step once",
    )
    opt = torch.optim.Adam(generator.parameters(), lr=1e-2)
    first = generator_step(critic, generator, z, opt)["loss_g"]
    for _ in range(30):
        last = generator_step(critic, generator, z, opt)["loss_g"]
    fail_unless(
        last < first,
        f"30 generator steps against a fixed critic did not lower loss_g ({first:.3f} -> {last:.3f})",
    )
    passed(
        "generator_step", f"only the generator learns; loss_g {first:.3f} -> {last:.3f} in 30 steps"
    )


def check_training_run(run, steps=None):
    """A training run with your steps: finite losses, both players still in the game.

    ``run`` is a ``Trainer`` (the check trains it with ``fit()``, which resumes a run
    already in its folder) or the history dict that ``Trainer.fit()`` returned.
    """
    keys = ("loss_c", "loss_g", "d_real", "d_fake")
    history = run.fit() if hasattr(run, "fit") else run
    fail_unless(
        isinstance(history, dict) and all(k in history for k in keys),
        f"pass the history returned by Trainer.fit() (a dict with {keys})",
    )
    values = {k: torch.tensor([float(v) for v in history[k]]) for k in keys}
    n = len(values["loss_c"])
    fail_unless(
        n > 0 and all(len(v) == n for v in values.values()), "the history is empty or uneven"
    )
    fail_unless(steps is None or n == steps, f"the history has {n} steps, expected {steps}")
    for k, v in values.items():
        fail_unless(
            bool(torch.isfinite(v).all()), f"{k} became NaN or infinite: see the trainer's message"
        )
    fail_unless(
        values["loss_c"].std() > 0 and values["loss_g"].std() > 0,
        "a loss never changed: are both optimizers stepping?",
    )
    tail = max(1, n // 4)
    d_real, d_fake = values["d_real"][-tail:].mean(), values["d_fake"][-tail:].mean()
    fail_unless(
        d_real > d_fake,
        f"at the end D(x) = {d_real:.2f} is not above D(G(z)) = {d_fake:.2f}: the critic "
        "is not learning to tell real from fake (check the targets of critic_loss)",
    )
    if d_fake < 0.005 and values["loss_g"][-tail:].mean() > 5:
        raise CheckFailed(
            f"the critic wins outright (D(G(z)) = {d_fake:.4f}, loss_g > 5): the generator gets no "
            "signal. Usual causes: a sigmoid at the end of the critic, or a generator that "
            "does not learn (detached images, wrong optimizer)"
        )
    passed("training run", f"{n} steps, final D(x) = {d_real:.2f}, D(G(z)) = {d_fake:.2f}")
