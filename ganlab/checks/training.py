"""Checks for chapter 5 (notebook 05_training): the optimizers and the two update steps.

The steps are checked on tiny networks with plain SGD, so that every update can be
predicted exactly: a weight moves by -lr * gradient, nothing else. They run with the
reference losses in place of the student's ``critic_loss`` and ``generator_loss``
(``_core.substituted``): a bug in a loss costs check 4.1 or 4.2, not the step too.
"""

import copy

import torch
from torch import nn

from . import _reference as ref
from ._core import (
    CheckFailed,
    call,
    diagnose,
    fail_unless,
    first_line,
    graded,
    passed,
    seeded,
    substituted,
)

NZ, LR = 8, 0.1
STALE = 100.0  # a gradient left over from "a previous step"


def _tiny_pair():
    """A critic and a generator with BatchNorm, as DCGAN's: in training mode it normalises with the
    statistics of the batch it is given, so scoring real and fake images in one call, or in eval
    mode, changes the gradients."""
    seeded(0)
    critic = nn.Sequential(
        nn.Conv2d(1, 4, 4, 2, 1),
        nn.BatchNorm2d(4),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(64, 1),
        nn.Flatten(0),
    )
    generator = nn.Sequential(
        nn.Linear(NZ, 64), nn.BatchNorm1d(64), nn.Tanh(), nn.Unflatten(1, (1, 8, 8))
    )
    with torch.no_grad():
        critic[4].weight.mul_(3)  # logits of a few units: sigmoid is far from linear there
    return critic, generator


def _in_eval_mode(net):
    """A copy of ``net`` in eval mode (BatchNorm on its running statistics), as it stands now."""
    return copy.deepcopy(net).eval()


def _batch():
    g = seeded(1)
    b = 5 + int(torch.randint(0, 3, (1,), generator=g))
    return torch.rand(b, 1, 8, 8, generator=g) * 2 - 1, torch.randn(b, NZ, generator=g)


def _snapshot(model):
    return [p.detach().clone() for p in model.parameters()]


def _changed(model, before):
    return any(not torch.equal(p, b) for p, b in zip(model.parameters(), before))


def _fill_grads(model):
    for p in model.parameters():
        p.grad = torch.full_like(p, STALE)


def _grads(loss, model):
    grads = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
    return [g.detach() for g in grads]


def _moved_by(model, before, grads):
    """Did plain SGD move every weight by exactly lr * grads?"""
    moved = [b - p.detach() for p, b in zip(model.parameters(), before)]
    return all(torch.allclose(m, LR * g, atol=1e-5) for m, g in zip(moved, grads))


def _diagnose_move(model, before, want, variants):
    """None if the model moved by ``want``; else the hint of the variant it moved by, or ""."""
    if _moved_by(model, before, want):
        return None
    hits = [hint for hint, grads in variants.items() if _moved_by(model, before, grads)]
    return hits[0] if len(hits) == 1 else ""


def _same_size_moves(model, before, grads):
    """Did every weight with a gradient move by about the same amount, down its gradient (Adam's
    first step: lr * g / (|g| + eps), whatever the size of g)?"""
    moved = torch.cat([(b - p.detach()).flatten() for p, b in zip(model.parameters(), before)])
    g = torch.cat([x.flatten() for x in grads])
    some = g.abs() > 1e-5
    if not bool(some.any()):
        return False
    step = moved[some].abs()
    return bool(
        (torch.sign(moved[some]) == torch.sign(g[some])).all()
        and step.max() > 0
        and step.min() > 0.8 * step.max()
    )


def _no_graph(error):
    if "does not require grad" in error:
        return (
            "the loss has no graph to backpropagate: score the images outside torch.no_grad(), "
            "and detach nothing but the fakes of the critic step"
        )
    return ""


def _check_modes(critic, generator, what):
    """A step that switches a network to eval mode leaves it there (the trainer does not switch
    back): BatchNorm would use running statistics, and dropout stop, for the rest of training."""
    for name, net in (("critic", critic), ("generator", generator)):
        fail_unless(
            net.training,
            f"{what} left the {name} in eval mode: the trainer never switches it back, so its "
            "BatchNorm would use running statistics from then on; leave the modes alone "
            "(detach() and the optimizers decide who learns)",
        )


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


def _check_probability(out, key, want, logits, what, other=None):
    """``out[key]`` must be the mean of sigmoid(logits): D(x) or D(G(z)) before the step."""
    s = torch.sigmoid
    hint = diagnose(
        out[key].item(),
        s(logits).mean().item(),
        {
            f"{key} is the other half's value: real and fake logits mixed up": None
            if other is None
            else s(other).mean().item(),
            f"{key} is the mean of sigmoid(logits), not of the raw logits": logits.mean().item(),
            f"{key} is the mean of sigmoid(logits), not the sigmoid of the mean logit": s(
                logits.mean()
            ).item(),
            f"{key} is the mean of sigmoid(logits), not the fraction of logits above 0 (the "
            "critic's accuracy)": (logits > 0).float().mean().item(),
        },
        tol=1e-5,
    )
    if hint is not None:
        raise CheckFailed(
            f"{what}()[{key!r}] = {out[key].item():.5f}, expected {want} = "
            f"{s(logits).mean().item():.5f}" + (f": {hint}" if hint else " (before the step)")
        )


# -- exercise 5.1 --------------------------------------------------------------------------


def _adam_defaults(**options):
    group = torch.optim.Adam([torch.zeros(1, requires_grad=True)], **options).param_groups[0]
    return {k: v for k, v in group.items() if k != "params"}


def _check_pair(result, critic, generator, what, lr, betas, options):
    fail_unless(
        isinstance(result, (tuple, list)) and len(result) == 2,
        f"{what} must return the pair (opt_c, opt_g); got {type(result).__name__}",
    )
    opt_c, opt_g = result
    if opt_c is opt_g:
        raise CheckFailed(
            "one optimizer for both networks: each player needs its own, or the critic's "
            "update would also move the generator"
        )
    for name, opt in (("opt_c", opt_c), ("opt_g", opt_g)):
        fail_unless(  # not isinstance: AdamW is an Adam subclass, and it decays the weights
            type(opt) is torch.optim.Adam, f"{name} is {type(opt).__name__}; DCGAN uses Adam"
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
    want = _adam_defaults(lr=lr, betas=betas, **options)
    for name, opt in (("opt_c", opt_c), ("opt_g", opt_g)):
        for group in opt.param_groups:
            if abs(group["lr"] - lr) > 1e-12:
                raise CheckFailed(
                    f"{what}: {name} has lr={group['lr']}"
                    + (
                        "; Radford et al. use 2e-4"
                        if lr == 2e-4
                        else ": pass lr on to both Adams (2e-4 is only the default)"
                    )
                )
            got_betas = tuple(group["betas"])
            if tuple(betas) == (0.5, 0.999) and got_betas == (0.9, 0.999):
                raise CheckFailed(
                    f"{name} uses Adam's default betas (0.9, 0.999): Radford et al. found beta1 = "
                    "0.9 made training oscillate and use betas=(0.5, 0.999)"
                )
            fail_unless(
                got_betas == tuple(betas),
                f"{what}: {name} has betas={got_betas}"
                + (
                    "; use (0.5, 0.999)"
                    if tuple(betas) == (0.5, 0.999)
                    else ": pass betas on to both Adams ((0.5, 0.999) is only the default)"
                ),
            )
            for option, value in want.items():
                if option in ("lr", "betas") or group.get(option) == value:
                    continue
                if option in options:
                    others = "opt_g" if name == "opt_c" else "opt_c"
                    other = (opt_g if name == "opt_c" else opt_c).param_groups[0].get(option)
                    raise CheckFailed(
                        f"{what}: {name} has {option}={group.get(option)!r}"
                        + (f" (only {others} got it)" if other == value else "")
                        + ": pass every other keyword argument (**adam_options) on to both "
                        "Adams unchanged"
                    )
                raise CheckFailed(
                    f"{what}: {name} has {option}={group.get(option)!r}, Adam's default is "
                    f"{value!r}: set only lr, betas and what adam_options brings"
                )


def _options_hint(hint=""):
    """A dict where Adam wants a number: the options passed on without **."""

    def choose(error):
        if "'dict'" in error:
            return (
                "adam_options is a dict: pass it on unpacked, Adam(..., **adam_options); without "
                "the ** the dict lands in Adam's next positional argument (eps)"
            )
        return hint

    return choose


@graded
def check_optimizers(make_optimizers):
    """``make_optimizers(critic, generator, lr=2e-4, betas=(0.5, 0.999), **adam_options)``: two
    Adams, one per network, with lr, betas and every other keyword argument passed on."""
    critic, generator = _tiny_pair()
    what = "make_optimizers(critic, generator)"
    result = call(make_optimizers, what, critic, generator, hint=_options_hint())
    _check_pair(result, critic, generator, what, 2e-4, (0.5, 0.999), {})
    what = "make_optimizers(critic, generator, lr=0.001, betas=(0.0, 0.9))"
    hint = _options_hint(
        "keep the signature (critic, generator, lr=2e-4, betas=(0.5, 0.999), **adam_options)"
    )
    result = call(make_optimizers, what, critic, generator, lr=1e-3, betas=(0.0, 0.9), hint=hint)
    _check_pair(result, critic, generator, what, 1e-3, (0.0, 0.9), {})
    what = "make_optimizers(critic, generator, 0.001, (0.0, 0.9))"
    result = call(make_optimizers, what, critic, generator, 1e-3, (0.0, 0.9), hint=hint)
    _check_pair(result, critic, generator, what, 1e-3, (0.0, 0.9), {})
    options = {"weight_decay": 0.01, "eps": 1e-6, "amsgrad": True}
    what = "make_optimizers(critic, generator, weight_decay=0.01, eps=1e-06, amsgrad=True)"
    result = call(
        make_optimizers,
        what,
        critic,
        generator,
        **options,
        hint=_options_hint("accept **adam_options and pass them on to both Adams"),
    )
    _check_pair(result, critic, generator, what, 2e-4, (0.5, 0.999), options)
    passed("optimizers", "two Adams, lr 2e-4, betas (0.5, 0.999); lr, betas and options passed on")


# -- exercise 5.2 --------------------------------------------------------------------------


@graded
def check_critic_step(critic_step):
    """One critic update: only the critic moves, by exactly its fresh gradient."""
    critic, generator = _tiny_pair()
    real, z = _batch()
    real_logits, fake_logits = critic(real), critic(generator(z).detach())

    def grads(loss):
        return _grads(loss, critic)

    want_loss = ref.critic_loss(real_logits, fake_logits, 0.9)
    want = grads(want_loss)
    both = critic(torch.cat([real, generator(z).detach()]))
    with torch.no_grad():
        eval_fakes = _in_eval_mode(generator)(z)
    variants = {
        "real and fake images were scored in one call (torch.cat): BatchNorm then normalises "
        "them with the statistics of the mixed batch; score critic(real) and critic(fake) "
        "in two calls": grads(ref.critic_loss(both[: len(real)], both[len(real) :], 0.9)),
        "the fakes were made with the generator in eval mode: its BatchNorm used running "
        "statistics, so they are not the fakes the generator makes in training; leave the "
        "generator in training mode and detach its output": grads(
            ref.critic_loss(real_logits, critic(eval_fakes), 0.9)
        ),
        "the new gradient was added to the old one: call opt_c.zero_grad() before backward, "
        "gradients accumulate in PyTorch": [g + STALE for g in want],
        "real_label is not passed on: critic_loss(real_logits, fake_logits, real_label)": grads(
            ref.critic_loss(real_logits, fake_logits)
        ),
        "the logits are passed to critic_loss the wrong way round: "
        "critic_loss(real_logits, fake_logits, real_label)": grads(
            ref.critic_loss(fake_logits, real_logits, 0.9)
        ),
        "opt_c.step() ran twice: step once per call": [2 * g for g in want],
        "only the real images were scored, or the fake term gave the critic no gradient: "
        "score the (detached) fakes too, and detach the fakes before the critic, never the "
        "critic's logits (critic(fake).detach())": grads(ref.bce(real_logits, 0.9)),
        "the critic climbed its loss: minimise critic_loss as it is (BCE is already the "
        "negative log-likelihood), do not negate it": [-g for g in want],
    }
    opt_c = torch.optim.SGD(critic.parameters(), lr=LR)
    before_c, before_g = _snapshot(critic), _snapshot(generator)
    _fill_grads(critic)
    what = "critic_step(critic, generator, real, z, opt_c, real_label=0.9)"
    with substituted(critic_step, critic_loss=ref.critic_loss):
        out = call(
            critic_step, what, critic, generator, real, z, opt_c, real_label=0.9, hint=_no_graph
        )
    _check_modes(critic, generator, "critic_step")
    fail_unless(
        all(p.requires_grad for p in generator.parameters()),
        "the critic step left the generator frozen (requires_grad False): it could not learn in "
        "the generator step; detach the fakes instead (generator(z).detach()), or switch "
        "requires_grad back on",
    )
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
    hint = _diagnose_move(critic, before_c, want, variants)
    if hint is not None:
        raise CheckFailed(
            "the critic moved, but not by the gradient of critic_loss(real_logits, fake_logits, "
            "real_label) on this batch"
            + (
                f": {hint}"
                if hint
                else ": score real and generator(z).detach(), pass real_label on, step once"
            )
        )
    _check_outputs(out, ("loss_c", "d_real", "d_fake"), "critic_step")
    fail_unless(
        torch.allclose(out["loss_c"], want_loss.detach(), atol=1e-5),
        f"loss_c = {out['loss_c'].item():.5f}, expected {want_loss.item():.5f} (the loss you "
        "backpropagated, before the step)",
    )
    real_logits, fake_logits = real_logits.detach(), fake_logits.detach()
    _check_probability(out, "d_real", "D(x)", real_logits, "critic_step", fake_logits)
    _check_probability(out, "d_fake", "D(G(z))", fake_logits, "critic_step", real_logits)
    # The default real_label is 1: no smoothing unless asked for.
    critic, generator = _tiny_pair()
    want = _grads(ref.critic_loss(critic(real), critic(generator(z).detach())), critic)
    before = _snapshot(critic)
    with substituted(critic_step, critic_loss=ref.critic_loss):
        critic_step(critic, generator, real, z, torch.optim.SGD(critic.parameters(), lr=LR))
    fail_unless(
        _moved_by(critic, before, want),
        "without real_label the step must use real targets 1: keep the default real_label=1.0",
    )
    passed("critic_step", "only the critic learns, by its fresh gradient; D(x), D(G(z)) reported")


# -- exercise 5.3 --------------------------------------------------------------------------


@graded
def check_generator_step(generator_step):
    """One generator update: only the generator moves, along the non-saturating loss."""
    critic, generator = _tiny_pair()
    _, z = _batch()
    logits = critic(generator(z))
    want_loss = ref.generator_loss(logits)
    want = _grads(want_loss, generator)
    saturating = -torch.nn.functional.softplus(logits).mean()
    variants = {
        "the critic scored the fakes in eval mode: that does not freeze it (opt_c not stepping "
        "does), it only makes its BatchNorm use running statistics; leave the critic in "
        "training mode": _grads(ref.generator_loss(_in_eval_mode(critic)(generator(z))), generator),
        "the new gradient was added to the old one: call opt_g.zero_grad() before backward": [
            g + STALE for g in want
        ],
        "that is the saturating loss log(1 - D(G(z))): use generator_loss (non-saturating)": _grads(
            saturating, generator
        ),
        "opt_g.step() ran twice: step once per call": [2 * g for g in want],
        "target 0 is the critic's: the generator minimises generator_loss = BCE(fake logits, 1)": _grads(
            ref.bce(logits, 0.0), generator
        ),
        "the generator climbed its loss: minimise generator_loss as it is, do not negate it": [
            -g for g in want
        ],
    }
    # Last, after every forward pass in training mode: the generator's running statistics are
    # those the student's step will find. The critic is a copy, its own statistics stay as they are.
    generator.eval()
    eval_logits = copy.deepcopy(critic)(generator(z))
    generator.train()
    variants[
        "the generator made its images in eval mode: its BatchNorm used running statistics, so "
        "it learned from images it does not make in training; leave it in training mode"
    ] = _grads(ref.generator_loss(eval_logits), generator)
    opt_g = torch.optim.SGD(generator.parameters(), lr=LR)
    before_c, before_g = _snapshot(critic), _snapshot(generator)
    _fill_grads(generator)
    what = "generator_step(critic, generator, z, opt_g)"
    with substituted(generator_step, generator_loss=ref.generator_loss):
        out = call(generator_step, what, critic, generator, z, opt_g, hint=_no_graph)
    _check_modes(critic, generator, "generator_step")
    fail_unless(
        not _changed(critic, before_c),
        "the critic's weights changed during the generator step: "
        "step only opt_g (wrong optimizer?)",
    )
    fail_unless(
        all(p.requires_grad for p in critic.parameters()),
        "the generator step left the critic frozen (requires_grad False): the critic could not "
        "learn afterwards; leave requires_grad on, stepping only opt_g is enough",
    )
    fail_unless(
        _changed(generator, before_g),
        "the generator did not change: do not detach its images in the "
        "generator step, and call opt_g.step() after backward",
    )
    hint = _diagnose_move(generator, before_g, want, variants)
    if hint == "" and _same_size_moves(generator, before_g, want):
        hint = (
            "every weight moved by the same amount, against the sign of its gradient: that is "
            "the first step of a new Adam, not of the opt_g passed in (here plain SGD, which "
            "moves each weight by lr * its gradient); step opt_g, the trainer's optimizer, whose "
            "running averages must carry over from one step to the next"
        )
    if hint is not None:
        raise CheckFailed(
            "the generator moved, but not by the gradient of generator_loss(critic(generator(z)))"
            + (
                f": {hint}"
                if hint
                else ": score generator(z) for the z passed in, backpropagate through the critic "
                "into G, step once"
            )
        )
    _check_outputs(out, ("loss_g", "d_fake_g"), "generator_step")
    if torch.allclose(out["loss_g"], saturating.detach(), atol=1e-5):
        raise CheckFailed(
            "loss_g is the saturating loss log(1 - D(G(z))): use generator_loss (non-saturating)"
        )
    fail_unless(
        torch.allclose(out["loss_g"], want_loss.detach(), atol=1e-5),
        f"loss_g = {out['loss_g'].item():.5f}, expected {want_loss.item():.5f} = "
        "generator_loss(critic(G(z))), before the step",
    )
    _check_probability(out, "d_fake_g", "D(G(z))", logits.detach(), "generator_step")
    passed("generator_step", "only the generator learns, along the non-saturating loss")


# -- check 5.4 -----------------------------------------------------------------------------


def check_training_run(run, steps=None):
    """A training run with your steps: finite losses, both players still in the game.

    ``run`` is a ``Trainer`` (the check trains it with ``fit()``, which resumes a run
    already in its folder) or the history dict that ``Trainer.fit()`` returned.
    """
    # Trained here, outside @graded: a real run wants every thread and the trainer's own seeds.
    _check_history(run.fit() if hasattr(run, "fit") else run, steps)


@graded
def _check_history(history, steps):
    keys = ("loss_c", "loss_g", "d_real", "d_fake")
    fail_unless(
        isinstance(history, dict) and all(k in history for k in keys),
        f"pass the history returned by Trainer.fit() (a dict with {keys})",
    )
    try:
        values = {k: torch.tensor([float(v) for v in history[k]]) for k in keys}
    except (TypeError, ValueError, RuntimeError) as err:
        raise CheckFailed(
            f"the history holds something that is not one number per step ({first_line(err)}): "
            "pass the history returned by Trainer.fit(), a list of floats under each key"
        ) from err
    n = len(values["loss_c"])
    fail_unless(
        n > 0 and all(len(v) == n for v in values.values()), "the history is empty or uneven"
    )
    fail_unless(steps is None or n == steps, f"the history has {n} steps, expected {steps}")
    fail_unless(
        n > 1,
        "the history has 1 step: one step cannot show whether the losses change or the critic "
        "learns; train for more steps (the config's steps) and pass that history",
    )
    for k, v in values.items():
        fail_unless(
            bool(torch.isfinite(v).all()), f"{k} became NaN or infinite: see the trainer's message"
        )
    for k, name in (("d_real", "D(x)"), ("d_fake", "D(G(z))")):
        v = values[k]
        outside = v[(v < -1e-6) | (v > 1 + 1e-6)]
        fail_unless(
            len(outside) == 0,
            f"{k} holds {outside[0].item() if len(outside) else 0:.3f}, outside [0, 1]: {name} "
            "is a probability, the mean of sigmoid(logits), not of the raw logits (critic_step, "
            "check 5.2)",
        )
    for k, hint in (
        (
            "loss_c",
            "critic_loss is a sum of binary cross-entropies, never negative (checks 4.1, 5.2)",
        ),
        (
            "loss_g",
            "generator_loss = BCE(fake logits, 1) = mean of -log D(G(z)) is never negative; a "
            "negative loss_g is the saturating log(1 - D(G(z))) (checks 4.2, 5.3)",
        ),
    ):
        low = values[k].min().item()
        fail_unless(low > -1e-6, f"{k} reaches {low:.4f}, below 0: {hint}")
    fail_unless(
        values["loss_c"].std() > 0 and values["loss_g"].std() > 0,
        "a loss never changed: are both optimizers stepping? (make_optimizers, critic_step, "
        "generator_step: checks 5.1-5.3)",
    )
    tail = max(1, n // 4)
    d_real, d_fake = values["d_real"][-tail:].mean(), values["d_fake"][-tail:].mean()
    short = (
        " (or the run is too short: with a generator faster than its critic, as in the CPU "
        "preset, D(x) pulls ahead after about 200 steps)"
        if n < 250
        else ""
    )
    fail_unless(
        d_real > d_fake,
        f"at the end D(x) = {d_real:.2f} is not above D(G(z)) = {d_fake:.2f}: the critic "
        "is not learning to tell real from fake: check critic_loss's targets (check 4.1) and "
        f"critic_step (check 5.2){short}",
    )
    if d_fake < 0.005 and values["loss_g"][-tail:].mean() > 5:
        raise CheckFailed(
            f"the critic wins outright (D(G(z)) = {d_fake:.4f}, loss_g > 5): the generator gets no "
            "signal. Usual causes: a sigmoid at the end of the critic (check 2.4), or a "
            "generator that does not learn (detached images, wrong optimizer: checks 5.1, 5.3)"
        )
    passed("training run", f"{n} steps, final D(x) = {d_real:.2f}, D(G(z)) = {d_fake:.2f}")
