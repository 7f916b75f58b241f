"""Chapter 4: the GAN losses, on logits (Goodfellow et al. 2014).

The critic D outputs a logit l; D(x) = sigmoid(l) is its belief that x is real.

* Critic: maximise log D(x) + log(1 - D(G(z))), i.e. minimise the binary
  cross-entropy with target 1 on real images and 0 on generated ones.
* Generator, non-saturating form: minimise -log D(G(z)) (BCE with target 1 on
  fakes) instead of log(1 - D(G(z))), whose gradient vanishes exactly when the
  generator is bad and the critic is confident, at the start of training.

We work on logits with ``F.binary_cross_entropy_with_logits``: it computes
log(sigmoid(l)) as -softplus(-l), which stays finite where sigmoid rounds to 0 or 1.
"""

import torch
import torch.nn.functional as F


def critic_loss(real_logits, fake_logits, real_label=1.0):
    """Binary cross-entropy of the critic, summed over the real and the fake half.

    ``real_logits``: (B,) critic outputs on real images; ``fake_logits``: (B',) on
    generated ones. Targets: ``real_label`` for real images, 0 for fakes. Return
    ``mean BCE(real) + mean BCE(fake)``, a scalar tensor that keeps the graph. Make each
    target from its own logits (``torch.full_like``, ``torch.zeros_like``), so it has their
    shape, dtype and device: ``torch.ones(n)`` is float32 on the CPU, and fails on a GPU.

    ``real_label`` < 1 (e.g. 0.9) is one-sided label smoothing (Salimans et al. 2016):
    it stops the critic from becoming over-confident. Smooth only the real targets;
    the fake targets stay exactly 0.

    Work on logits: no ``torch.sigmoid`` and no ``BCELoss``.
    """
    # BEGIN SOLUTION (notebooks/04_losses.ipynb)
    real_targets = torch.full_like(real_logits, real_label)
    fake_targets = torch.zeros_like(fake_logits)
    return F.binary_cross_entropy_with_logits(
        real_logits, real_targets
    ) + F.binary_cross_entropy_with_logits(fake_logits, fake_targets)
    # END SOLUTION


def generator_loss(fake_logits):
    """The non-saturating generator loss: mean of -log D(G(z)).

    ``fake_logits``: (B,) critic outputs on generated images. Return the mean BCE
    with target 1, a scalar tensor that keeps the graph (its gradient must reach the
    generator); make the target from the logits (``torch.ones_like``), on their dtype and
    device. Not ``-critic_loss``, and not the saturating log(1 - D(G(z))).
    """
    # BEGIN SOLUTION (notebooks/04_losses.ipynb)
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    # END SOLUTION
