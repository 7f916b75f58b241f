"""Checks for chapter 4 (notebook 04_losses): values on logits, and the usual mistakes by value.

Each loss runs on logits drawn from the check's seed (a real and a fake batch of
different sizes) and is compared with the value its docstring defines and with the
values of the usual wrong variants, all worked out here with softplus (not with the
reference solution's code, so a check cannot agree with a wrong solution by sharing its
bug). A wrong value is put down to a variant only when it equals that one (or two that
these logits cannot tell apart); otherwise the hint says what was expected and what came.
"""

import torch
import torch.nn.functional as F

from ._core import CheckFailed, call, diagnose, fail_unless, graded, passed, seeded


def _bce(logits, target, reduce=torch.mean):
    """BCE on logits: -y log s(l) - (1 - y) log(1 - s(l)) = softplus(l) - y l."""
    return reduce(F.softplus(logits) - target * logits).item()


def _logits():
    g = seeded(40)
    n_real = 4 + int(torch.randint(0, 3, (1,), generator=g))
    n_fake = n_real + 1 + int(torch.randint(0, 2, (1,), generator=g))
    real = torch.randn(n_real, generator=g) * 2 + 0.5
    fake = torch.randn(n_fake, generator=g) * 2 - 0.5
    return real, fake


def _error_hint(error):
    if "in-place" in error:
        return (
            "do not change the logits in place (clamp_, sigmoid_): autograd needs them as they are"
        )
    if "size" in error:
        return "make each target from its own logits (torch.full_like, torch.zeros_like)"
    return ""


def _run(fn, what, *args):
    """Call a loss on fresh leaf tensors; return (loss, its float value, the leaves)."""
    leaves = [a.clone().requires_grad_(True) if isinstance(a, torch.Tensor) else a for a in args]
    loss = call(fn, what, *leaves, hint=_error_hint)
    if isinstance(loss, tuple):
        raise CheckFailed(
            f"{what} returned a tuple: return one scalar tensor, the sum of the terms"
        )
    fail_unless(
        isinstance(loss, torch.Tensor),
        f"{what} returned {type(loss).__name__}: return a tensor (a Python float has no gradient)",
    )
    fail_unless(
        loss.dim() == 0,
        f"{what} returned shape {tuple(loss.shape)}: reduce to a scalar with .mean()",
    )
    return loss, loss.item(), leaves


def _judge(value, want, variants, what, definition):
    hint = diagnose(value, want, variants)
    if hint is not None:
        raise CheckFailed(
            f"{what} is {value:.5f}, expected {want:.5f}"
            + (f": {hint}" if hint else f" = {definition}")
        )


def _check_extreme(fn, logits, expected, what):
    """Very confident logits: sigmoid rounds to exactly 0 or 1 in float32, so log(sigmoid(l)) is
    -inf (or, through BCELoss, clamped to -100). Only the logit form stays exact. The message names
    every way to cap the loss: the judge sees the value only, not how it was computed."""
    _, value, _ = _run(fn, what, *logits)
    fail_unless(
        abs(value - expected) < 1e-3,
        f"{what} gives {value} for logits of +-200, expected {expected}: the loss is capped there. "
        "Either sigmoid saturates to exactly 0 or 1 and log() breaks (BCELoss clamps it at -100, "
        "an eps inside the log caps it, exp(200) overflows to inf), or the logits are clamped "
        "before the loss; past the cap the loss stops growing and its gradient is 0, just where "
        "the network is most wrong. Work on logits with binary_cross_entropy_with_logits (or "
        "softplus): finite for any logit, no clamp needed",
    )


def _check_dtype(fn, name, *logits):
    """The targets come from the logits: on float64 logits the loss is float64. Targets from
    torch.ones(n) are float32 and on the CPU, which crashes the loss on a GPU."""
    what = f"{name} on float64 logits"
    loss, _, _ = _run(fn, what, *(x.double() for x in logits))
    fail_unless(
        loss.dtype == torch.float64,
        f"{what} returned a {loss.dtype} loss: the targets do not follow the logits; make them "
        "with torch.full_like / torch.ones_like / torch.zeros_like (torch.ones(n) is float32 and "
        "on the CPU: on a GPU the loss would crash)",
    )


@graded
def check_critic_loss(critic_loss):
    """``critic_loss(real_logits, fake_logits, real_label=1.0)``: mean BCE(real, real_label) +
    mean BCE(fake, 0), a scalar that keeps the graph; smoothing on the real targets only."""
    real, fake = _logits()
    s = torch.sigmoid
    what = f"critic_loss on {len(real)} real and {len(fake)} fake logits"
    loss, value, (r, f) = _run(critic_loss, what, real, fake)
    fail_unless(
        loss.requires_grad,
        "critic_loss returned a tensor without a graph: no .item(), .detach() "
        "or torch.no_grad() inside the loss",
    )
    want = _bce(real, 1) + _bce(fake, 0)
    summed = _bce(real, 1, torch.sum) + _bce(fake, 0, torch.sum)
    _judge(
        value,
        want,
        {
            "add the real and the fake terms, do not average them": want / 2,
            "one mean over the real and fake logits together weighs the larger batch more; "
            "add mean BCE(real) + mean BCE(fake)": summed / (len(real) + len(fake)),
            "the targets are swapped: real images get 1 (real_label), fakes get 0": _bce(real, 0)
            + _bce(fake, 1),
            "a sigmoid before binary_cross_entropy_with_logits: it takes the raw logits and "
            "applies the sigmoid itself": _bce(s(real), 1) + _bce(s(fake), 0),
            "wrong sign: BCE is already the negative log-likelihood to minimise": -want,
            "sum over the batch instead of the mean: the loss would grow with the batch size "
            "(use the default reduction='mean')": summed,
            "the fake term is missing: add mean BCE(fake logits, 0)": _bce(real, 1),
            "the real term is missing: add mean BCE(real logits, real_label)": _bce(fake, 0),
            "the real term is halved: halve neither, add the two means": _bce(real, 1) / 2
            + _bce(fake, 0),
            "the fake targets are smoothed (0.1): label smoothing is one-sided, the fake targets "
            "stay exactly 0": _bce(real, 1) + _bce(fake, 0.1),
            "the fake term is halved: halve neither, add the two means": _bce(real, 1)
            + _bce(fake, 0) / 2,
        },
        what,
        "mean BCE(real logits, 1) + mean BCE(fake logits, 0)",
    )
    loss.backward()
    fail_unless(
        r.grad is not None and f.grad is not None and r.grad.abs().sum() > 0,
        "no gradient reaches the logits: keep both terms in the graph",
    )
    _, smooth, _ = _run(critic_loss, what + " with real_label=0.9", real, fake, 0.9)
    _judge(
        smooth,
        _bce(real, 0.9) + _bce(fake, 0),
        {
            "critic_loss ignores real_label: the real targets must be real_label (0.9 with "
            "smoothing)": want,
            "smoothing is one-sided (Salimans et al. 2016): the fake targets stay exactly 0, "
            "only the real ones become real_label": _bce(real, 0.9) + _bce(fake, 0.1),
            "the smoothing went to the wrong side: the real targets become real_label, the "
            "fake targets stay 0": _bce(real, 1) + _bce(fake, 0.1),
            "the real targets are real_label itself, not 1 - real_label": _bce(real, 0.1)
            + _bce(fake, 0),
            "real_label is the target of the real images; the fakes keep target 0": _bce(real, 1)
            + _bce(fake, 0.9),
        },
        what + " with real_label=0.9",
        "mean BCE(real logits, 0.9) + mean BCE(fake logits, 0)",
    )
    _check_dtype(critic_loss, "critic_loss", real, fake)
    _check_extreme(
        critic_loss,
        (torch.tensor([200.0, -200.0]), torch.tensor([-200.0, 200.0])),
        200.0,
        "critic_loss",
    )
    passed("critic_loss", f"{value:.5f} on the check's logits, {smooth:.5f} with real_label=0.9")


@graded
def check_generator_loss(generator_loss):
    """``generator_loss(fake_logits)``: mean BCE(fake, 1) = mean of -log D(G(z)), with its graph."""
    _, fake = _logits()
    what = f"generator_loss on {len(fake)} fake logits"
    loss, value, (f,) = _run(generator_loss, what, fake)
    fail_unless(
        loss.requires_grad,
        "generator_loss returned a tensor without a graph: its gradient must reach the generator",
    )
    want = _bce(fake, 1)
    _judge(
        value,
        want,
        {
            "that is the saturating log(1 - D(G(z))) (= -BCE(fake logits, 0)): its gradient "
            "vanishes while the critic wins; minimise -log D(G(z)) = BCE(fake logits, 1)": -_bce(
                fake, 0
            ),
            "target 0 is the critic's target for fakes: the generator wants its fakes scored "
            "as real, target 1": _bce(fake, 0),
            "wrong sign: BCE(fake logits, 1) is already the quantity to minimise": -want,
            "sum over the batch instead of the mean (use the default reduction='mean')": _bce(
                fake, 1, torch.sum
            ),
            "half the expected value: do not halve it": want / 2,
            "a sigmoid before binary_cross_entropy_with_logits: it takes the raw logits": _bce(
                torch.sigmoid(fake), 1
            ),
            "the target is smoothed (0.9): label smoothing is for the critic's real targets "
            "only; the generator's target is exactly 1": _bce(fake, 0.9),
            "the arguments are swapped: binary_cross_entropy_with_logits(input, target) takes "
            "the logits first and the targets second, (fake_logits, torch.ones_like(fake_logits))": _bce(
                torch.ones_like(fake), fake
            ),
        },
        what,
        "mean BCE(fake logits, 1)",
    )
    loss.backward()
    fail_unless(
        f.grad is not None and torch.all(f.grad < 0),
        "the gradient must push every fake logit up (it is negative for each): check the target is 1",
    )
    _check_dtype(generator_loss, "generator_loss", fake)
    _check_extreme(generator_loss, (torch.tensor([-200.0, 200.0]),), 100.0, "generator_loss")
    passed("generator_loss", f"{value:.5f} on the check's logits, non-saturating")


@graded
def check_saturating_loss(saturating_generator_loss):
    """The minimax generator term mean(log(1 - D(G(z)))) on logits, to compare with the
    non-saturating one: a scalar tensor with its graph, finite for any logits."""
    _, fake = _logits()
    what = f"saturating_generator_loss on {len(fake)} fake logits"
    loss, value, (f,) = _run(saturating_generator_loss, what, fake)
    want = -_bce(fake, 0)
    _judge(
        value,
        want,
        {
            "wrong sign: it is mean(log(1 - D(G(z)))), which is negative; the generator "
            "minimises it": -want,
            "that is the non-saturating loss -log D(G(z)); this exercise asks for "
            "log(1 - D(G(z)))": _bce(fake, 1),
            "that is log D(G(z)); this exercise asks for log(1 - D(G(z)))": -_bce(fake, 1),
            "sum over the batch instead of the mean": -_bce(fake, 0, torch.sum),
            "half the expected value: do not halve it": want / 2,
            "a sigmoid too many: softplus takes the raw logits": -_bce(torch.sigmoid(fake), 0),
        },
        what,
        "mean(log(1 - sigmoid(l))) = -mean(softplus(l))",
    )
    fail_unless(
        loss.requires_grad,
        "saturating_generator_loss returned a tensor without a graph (an .item(), .detach(), "
        "torch.tensor(...) or torch.no_grad() inside): a loss must pass its gradient on",
    )
    loss.backward()
    fail_unless(
        f.grad is not None
        and torch.allclose(f.grad, -torch.sigmoid(fake) / len(fake), rtol=1e-4, atol=1e-7),
        "the gradient of saturating_generator_loss with respect to each logit must be "
        "-sigmoid(l) / B (the derivative of -mean(softplus(l))): keep every logit in the graph",
    )
    _check_extreme(
        saturating_generator_loss,
        (torch.tensor([-200.0, 200.0]),),
        -100.0,
        "saturating_generator_loss",
    )
    passed("saturating_generator_loss", f"{value:.5f} on the check's logits")
